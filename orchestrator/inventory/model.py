"""The inventory model: hosts, groups, their relations, and the queries others code against.

Built by the source parsers through ``add_group`` / ``add_host`` / ``add_child`` /
``set_*_var``, then ``reconcile`` (implicit ``all``/``ungrouped`` rules, as Ansible does once
after all sources are parsed) and ``finalize`` (merge variables). After that it is read-only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import HostPatternError, InventoryError

from .addresses import is_ipv4, is_ipv6
from .patterns import select_host_names
from .precedence import merge_host_vars

ALL = "all"
UNGROUPED = "ungrouped"


@dataclass(eq=False)
class Group:
    """A group. ``hosts`` are its direct members; ``children`` its child group names."""

    name: str
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    # Kept apart because they sit at different precedence levels (inventory file < group_vars/).
    inventory_vars: dict[str, Any] = field(default_factory=dict)
    file_vars: dict[str, Any] = field(default_factory=dict)
    # Ansible's ansible_group_priority: orders sibling groups when merging, not a variable.
    priority: int = 1
    # Longest path from 'all'; deeper (more specific) groups win when merging.
    depth: int = 0

    @property
    def vars(self) -> dict[str, Any]:
        """The group's own variables: inventory source, then its group_vars/ files."""
        return {**self.inventory_vars, **self.file_vars}


@dataclass(eq=False)
class Host:
    """One host; a host listed in many groups is still one object."""

    name: str
    inventory_vars: dict[str, Any] = field(default_factory=dict)
    file_vars: dict[str, Any] = field(default_factory=dict)
    # Set by finalize(): every group the host is in (directly or via a child), incl. 'all'.
    groups: list[str] = field(default_factory=list)
    # Set by finalize(): fully merged variables (group levels, host, host_vars/, extra vars).
    vars: dict[str, Any] = field(default_factory=dict)
    # The inventory file that first defined the host (Ansible's inventory_file).
    source: str | None = None


@dataclass
class SourceVars:
    """group_vars/ and host_vars/ found next to one inventory source (``-i`` argument)."""

    basedir: str
    group_vars: dict[str, dict[str, Any]] = field(default_factory=dict)
    host_vars: dict[str, dict[str, Any]] = field(default_factory=dict)


CRITICALITY = "criticality"


def _mission_critical(value: Any) -> bool:
    return str(value or "").strip().lower() == "mission-critical"


class Inventory:
    """Hosts and groups of one or more inventory sources, merged."""

    def __init__(self) -> None:
        self.hosts: dict[str, Host] = {}
        self.groups: dict[str, Group] = {}
        self.extra_vars: dict[str, Any] = {}
        self.sources: list[str] = []
        self.source_vars: list[SourceVars] = []
        # Things Ansible only warns about (host and group with the same name, ...).
        self.warnings: list[str] = []
        self._members: dict[str, list[str]] = {}
        self._order: dict[str, int] = {}
        self.add_group(ALL)
        self.add_group(UNGROUPED)
        self.add_child(ALL, UNGROUPED)

    # -- building ---------------------------------------------------------------------------

    def add_group(self, name: Any) -> Group:
        if not isinstance(name, str):
            raise InventoryError(
                f"group name must be a string, got {type(name).__name__}: {name!r}"
            )
        if not name:
            raise InventoryError("group name must not be empty")
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = Group(name)
        return group

    def add_host(
        self,
        name: Any,
        group: str | None = None,
        port: int | None = None,
        source: str | None = None,
    ) -> Host:
        if not isinstance(name, str):
            raise InventoryError(
                f"host name {name!r} must be a string: enclose numbers in quotation marks"
            )
        if not name:
            raise InventoryError("host name must not be empty")
        host = self.hosts.get(name)
        if host is None:
            source = os.path.abspath(source) if source else None
            host = self.hosts[name] = Host(name, source=source)
            # Like Ansible, a host:port shorthand only counts where the host is first defined.
            if port:
                host.inventory_vars["ansible_port"] = int(port)
        if group is not None:
            members = self.groups[group].hosts
            if name not in members:
                members.append(name)
        return host

    def add_child(self, parent: str, child: str) -> None:
        if parent == child:
            raise InventoryError(f"group '{parent}' cannot be a child of itself")
        parent_group, child_group = self.groups[parent], self.groups[child]
        if child in parent_group.children:
            return
        if child in self.ancestors(parent):
            raise InventoryError(
                f"adding group '{child}' as child to '{parent}' creates a recursive dependency loop"
            )
        parent_group.children.append(child)
        child_group.parents.append(parent)

    def set_group_var(self, group: str, key: str, value: Any) -> None:
        if key == "ansible_group_priority":
            # Ansible keeps it out of the variables and only uses it to order sibling groups.
            try:
                self.groups[group].priority = int(value)
            except (TypeError, ValueError):
                raise InventoryError(
                    f"ansible_group_priority of group '{group}' must be an integer, got {value!r}"
                ) from None
            return
        self.groups[group].inventory_vars[key] = value

    def set_host_var(self, host: str, key: str, value: Any) -> None:
        self.hosts[host].inventory_vars[key] = value

    def ancestors(self, group: str) -> set[str]:
        seen: set[str] = set()
        todo = list(self.groups[group].parents)
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(self.groups[name].parents)
        return seen

    def reconcile(self) -> None:
        """Apply the implicit-group rules once all sources are parsed (as Ansible does)."""
        for group in self.groups.values():
            if group.name != ALL and not group.parents:
                self.add_child(ALL, group.name)
        direct: dict[str, set[str]] = {name: set() for name in self.hosts}
        for group in self.groups.values():
            for host in group.hosts:
                direct[host].add(group.name)
        ungrouped = self.groups[UNGROUPED]
        for name, groups in direct.items():
            if groups - {ALL, UNGROUPED}:
                if name in ungrouped.hosts:
                    ungrouped.hosts.remove(name)
            elif name not in ungrouped.hosts:
                # A host only in 'all' (or nowhere) is 'ungrouped'.
                ungrouped.hosts.append(name)
        self._compute_depths()
        for name in self.hosts:
            if name in self.groups:
                self.warnings.append(f"Found both group and host with same name: {name}")

    def _compute_depths(self) -> None:
        depth: dict[str, int] = {}

        def visit(name: str) -> int:
            if name not in depth:
                parents = self.groups[name].parents
                depth[name] = max((visit(p) + 1 for p in parents), default=0)
            return depth[name]

        for group in self.groups.values():
            group.depth = visit(group.name)

    def finalize(self, extra_vars: dict[str, Any] | None = None) -> None:
        """Compute memberships and merged variables; call after reconcile and vars files."""
        self.extra_vars = dict(extra_vars or {})
        self._order = {name: i for i, name in enumerate(self.hosts)}
        self._members = {}
        member_sets = {name: set(self._member_set(name)) for name in self.groups}
        for name, members in member_sets.items():
            self._members[name] = sorted(members, key=self._order.__getitem__)
        for host in self.hosts.values():
            host.groups = [g for g in self.groups if host.name in member_sets[g]]
        for host in self.hosts.values():
            host.vars = merge_host_vars(host, self.groups, self.source_vars, self.extra_vars)
            if CRITICALITY in self.extra_vars:
                # Unlike Ansible: -e cannot lift a mission-critical mark (it keeps such a host
                # log-only); it can only add one.
                own = merge_host_vars(host, self.groups, self.source_vars, {})
                if _mission_critical(own.get(CRITICALITY)):
                    host.vars[CRITICALITY] = own[CRITICALITY]

    def _member_set(self, group: str) -> set[str]:
        found: set[str] = set()
        seen: set[str] = set()
        todo = [group]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            found.update(self.groups[name].hosts)
            todo.extend(self.groups[name].children)
        if group == ALL:
            found.update(self.hosts)  # every host is in 'all'
        return found

    # -- queries ----------------------------------------------------------------------------

    def get_host(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise HostPatternError(f"Host '{name}' is not in the inventory") from None

    def group_members(self, group: str) -> list[str]:
        """Hosts of the group and of all its descendants, in inventory order."""
        if group not in self.groups:
            raise HostPatternError(f"Group '{group}' is not in the inventory")
        return list(self._members.get(group, []))

    def host_order(self, name: str) -> int:
        return self._order[name]

    def host_vars(self, name: str) -> dict[str, Any]:
        """Fully merged variables of a host, extra vars included (what ``--host`` prints)."""
        return dict(self.get_host(name).vars)

    def magic_vars(self, name: str) -> dict[str, Any]:
        """Ansible's inventory magic variables for a host.

        ``group_names`` is sorted and leaves out 'all' but, like Ansible, keeps 'ungrouped'
        for a host that is in no other group.
        """
        host = self.get_host(name)
        short = name if is_ipv4(name) or is_ipv6(name) else name.split(".")[0]
        return {
            "inventory_hostname": name,
            "inventory_hostname_short": short,
            "group_names": sorted(g for g in host.groups if g != ALL),
            "groups": {g: list(self._members.get(g, [])) for g in self.groups},
            "inventory_file": host.source,
            "inventory_dir": _dirname(host.source),
        }

    def select(self, pattern: str = "all", limit: str | None = None) -> list[Host]:
        """Hosts matching an Ansible host pattern (and ``--limit``), in inventory order."""
        return [self.hosts[n] for n in select_host_names(self, pattern, limit)]


def _dirname(path: str | None) -> str | None:
    return os.path.dirname(path) if path else None
