"""Ansible's INI inventory format, with the same quirks as ansible-core's ini plugin.

    mail.example.com                      # before any section: group 'ungrouped'
    [webservers]
    web[01:03].example.com http_port=80 motd="hello world"
    badwolf.example.com:5309              # host:port sets ansible_port
    [webservers:vars]
    ntp_server=ntp.example.com ; everything after '=' is the value
    [site:children]
    webservers

Inline host variables are split like a shell line (quotes, ``#`` comments) and each value is
read as a Python literal when it is one (``80`` -> int, ``True`` -> bool, ``[1, 2]`` -> list),
as Ansible does. Ansible's docs say ``:vars`` values are strings, but ansible-core runs them
through the same literal reading (``myvar=23`` is the int 23 in ``ansible-inventory``); we
match what ansible-core does. A ``[g:vars]`` or ``[p:children]`` may name a group declared
further down; one that is never declared is an error, reported at the line that used it.
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import InventoryError

from .location import located
from .model import UNGROUPED, Inventory
from .password_refs import check_not_clear_text
from .ranges import expand_host_entry

_COMMENT_MARKERS = ("#", ";")
# "[name]" or "[name:kind]", optionally followed by a '#' comment.
_SECTION_RE = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$")
_GROUP_NAME_RE = re.compile(r"^([^:\]\s]+)\s*(?:#.*)?$")


@dataclass
class _Pending:
    """A group used by [g:vars] or listed under [p:children] before it is declared."""

    kind: str
    line: int
    parents: list[str] = field(default_factory=list)


def parse_ini_inventory(text: str, path: str, inventory: Inventory) -> None:
    _IniParser(path, inventory).parse(text)


class _IniParser:
    def __init__(self, path: str, inventory: Inventory) -> None:
        self.path = path
        self.inventory = inventory
        self.pending: dict[str, _Pending] = {}
        self.group = UNGROUPED
        self.kind = "hosts"

    def parse(self, text: str) -> None:
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith(_COMMENT_MARKERS):
                continue
            with located(self.path, number):
                self.line(line, number)
        for name, pending in self.pending.items():
            if pending.kind == "vars":
                message = f"section [{name}:vars] is for group '{name}', which is never declared"
            else:
                message = (
                    f"section [{pending.parents[-1]}:children] includes group '{name}', "
                    f"which is never declared"
                )
            raise InventoryError(message, path=self.path, line=pending.line)

    def line(self, line: str, number: int) -> None:
        section = _SECTION_RE.match(line)
        if section:
            self.section(section.group(1), section.group(2) or "hosts", number)
        elif line.startswith("[") and line.endswith("]"):
            raise InventoryError(
                f"invalid section entry: '{line}': a section is [group], [group:vars] or "
                f"[group:children], with no spaces"
            )
        elif self.kind == "hosts":
            self.host_line(line)
        elif self.kind == "vars":
            self.vars_line(line)
        else:
            self.children_line(line, number)

    def section(self, name: str, kind: str, number: int) -> None:
        if kind not in ("hosts", "vars", "children"):
            raise InventoryError(f"section [{name}:{kind}] has unknown type: {kind}")
        self.group, self.kind = name, kind
        if name not in self.inventory.groups:
            # [g] or [g:children] declares a group; [g:vars] alone does not (checked at end).
            if kind == "vars" and name not in self.pending:
                self.pending[name] = _Pending("vars", number)
            self.inventory.add_group(name)
        pending = self.pending.get(name)
        if pending is not None and kind != "vars":
            for parent in pending.parents:
                self.inventory.add_child(parent, name)
            del self.pending[name]

    def host_line(self, line: str) -> None:
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            raise InventoryError(f"cannot parse host definition '{line}': {exc}") from None
        if not tokens:
            return
        entry = tokens[0]
        names, port = expand_host_entry(entry)
        if entry.endswith(":") and port is None:
            raise InventoryError(
                f"invalid host pattern '{entry}': ending in ':' is not allowed, "
                f"':' is reserved to give a port"
            )
        if "---" in names:
            raise InventoryError("invalid host pattern '---': this looks like a YAML file")
        variables: dict[str, Any] = {}
        for token in tokens[1:]:
            if "=" not in token:
                raise InventoryError(f"expected key=value host variable assignment, got: {token}")
            key, value = token.split("=", 1)
            variables[key] = parse_value(value)
            check_not_clear_text(key, variables[key])
        for name in names:
            self.inventory.add_host(name, group=self.group, port=port, source=self.path)
            for key, value in variables.items():
                self.inventory.set_host_var(name, key, value)

    def vars_line(self, line: str) -> None:
        if "=" not in line:
            raise InventoryError(f"expected key=value, got: {line}")
        key, value = (part.strip() for part in line.split("=", 1))
        if not key:
            raise InventoryError(f"missing variable name before '=' in: {line}")
        parsed = parse_value(value)
        check_not_clear_text(key, parsed)
        self.inventory.set_group_var(self.group, key, parsed)

    def children_line(self, line: str, number: int) -> None:
        match = _GROUP_NAME_RE.match(line)
        if not match:
            raise InventoryError(f"expected a group name, got: {line}")
        child = match.group(1)
        if child in self.inventory.groups:
            self.inventory.add_child(self.group, child)
        elif child in self.pending:
            self.pending[child].parents.append(self.group)
        else:
            self.pending[child] = _Pending("children", number, [self.group])


def parse_value(text: str) -> Any:
    """An INI value as Ansible reads it: a Python literal if it is one, else the string."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    return _plain(value)


def _plain(value: Any) -> Any:
    """Only inventory-friendly types: tuples/sets become lists, odd literals become text."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain_key(k): _plain(v) for k, v in value.items()}
    if value is ...:
        return "..."
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _plain_key(key: Any) -> Any:
    return key if key is None or isinstance(key, (str, int, float)) else str(key)
