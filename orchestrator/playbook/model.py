"""A loaded, validated playbook: plain data, no behaviour.

Every play and task keeps the file and line it came from, so the engine can name them in
run-time errors (an undefined variable, a failed condition) as the loader does at load time.
Values are still raw: strings with ``{{ }}`` are rendered by the engine per host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Task:
    name: str  # the task's name, or its action when it has none (as Ansible shows it)
    action: str
    args: dict[str, Any]  # raw: templated strings are rendered per host at run time
    when: str | list[str] | None  # bare Jinja2 expression(s); a list means all must hold
    tags: tuple[str, ...]  # the task's own tags (play tags are added by selection)
    register: str | None
    ignore_errors: bool
    timeout: float | None  # seconds; None: the action's default
    path: str
    line: int


@dataclass(frozen=True)
class Play:
    name: str  # the play's name, or its hosts pattern when it has none (as Ansible shows it)
    hosts: str  # host pattern (a YAML list of patterns is joined with ",")
    vars: dict[str, Any]
    vars_files: list[str]  # paths as resolved against the playbook's directory
    serial: list[int | str]  # e.g. [1, "25%", "100%"]; empty: all hosts in one batch
    max_fail_percentage: float | None
    any_errors_fatal: bool
    tags: tuple[str, ...]
    tasks: list[Task]
    path: str
    line: int
    # The merged contents of vars_files (later files win), read at load time so a bad vars
    # file is reported by --syntax-check, before any host is contacted.
    vars_files_vars: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Playbook:
    path: str
    plays: list[Play]
