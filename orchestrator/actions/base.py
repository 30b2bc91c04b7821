"""What every built-in action is: an argument spec, `run` on a host session, and `check`.

The engine knows nothing about scanning: it renders a task's arguments, hands them to the
action named by the task, and records the outcome. Each action is one small module.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.connections import Timeouts
from orchestrator.errors import StepFailed
from orchestrator.journal import Journal
from orchestrator.playbook.spec import ActionSpec
from orchestrator.results import RunFolder
from orchestrator.session import HostSession


class PatternArchives:
    """Each pattern folder is zipped once per run, whatever the number of hosts and tasks."""

    def __init__(self, build_dir: Path):
        self.build_dir = build_dir
        self._lock = threading.Lock()
        self._archives: dict[str | Path, tuple[Path, bool]] = {}

    def get(self, source: str | Path) -> tuple[Path, bool]:
        """`source`: a pattern folder or `bundle:NAME`."""
        from orchestrator.campaign import zip_patterns

        key = source if isinstance(source, str) else source.resolve()
        with self._lock:
            if key not in self._archives:
                dest = self.build_dir / f"patterns-{len(self._archives)}.zip"
                self._archives[key] = zip_patterns(key, dest)
            return self._archives[key]


@dataclass(frozen=True)
class RunContext:
    """The same for every host and task of a run."""

    run: RunFolder
    payload: Path
    default_patterns: Path
    wheel_dir: Path | None
    timeouts: Timeouts
    playbook_dir: Path
    archives: PatternArchives  # pattern folder -> zip pushed to hosts, built once per run
    journal: Journal | None = None
    diff: bool = False  # --diff: report what changed since the previous run in the same --out


@dataclass
class ActionContext:
    """One task on one host."""

    host: str
    session: HostSession | None  # None in check mode: nothing is created on the host
    check: bool
    variables: dict[str, Any]
    hostvars: dict[str, Any]
    run: RunContext
    timeout: float | None
    state: dict[str, Any] = field(default_factory=dict)  # per host per play, across tasks

    def live_session(self) -> HostSession:
        if self.session is None:
            raise StepFailed(self.host, "this action needs a host session")
        if self.session.proof is not None:
            raise StepFailed(self.host, "the temp dir was already removed by a cleanup task")
        return self.session


@dataclass
class Outcome:
    """ok | changed | failed | skipped; `data` is what `register` stores."""

    status: str
    data: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    findings: int = 0
    facts: dict[str, Any] = field(default_factory=dict)  # merged into the host's variables
    diff: list[str] | None = None  # --diff lines; None when there was nothing to compare with


class Action(ABC):
    spec: ActionSpec

    @abstractmethod
    def run(self, ctx: ActionContext, args: dict[str, Any]) -> Outcome:
        """Do the task on the host (ctx.session is open)."""

    def check(self, ctx: ActionContext, args: dict[str, Any]) -> Outcome:
        """--check: say what would be done, touch nothing."""
        return Outcome("skipped", message="skipped in check mode")
