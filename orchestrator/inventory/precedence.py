"""Merge a host's variables in Ansible's order (lowest to highest precedence).

1. 'all' group vars from the inventory sources
2. other groups' vars from the inventory sources, sorted by (depth, ansible_group_priority,
   name): parents before children, siblings by priority then ASCII name
3. group_vars/all from each source directory (in source order)
4. group_vars/<group> from each source directory, groups sorted as in 2
5. the host's vars from the inventory sources
6. host_vars/<host> from each source directory
7. extra vars (-e), which always win

This is Ansible's default VARIABLE_PRECEDENCE for what an inventory can hold. Merging replaces
whole top-level values (Ansible's default hash_behaviour=replace), it never deep-merges dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import Group, Host, SourceVars


def sort_groups(groups: Iterable[Group]) -> list[Group]:
    """Merge order of groups: shallow before deep, then low priority first, then by name."""
    return sorted(groups, key=lambda g: (g.depth, g.priority, g.name))


def merge_host_vars(
    host: Host,
    groups: Mapping[str, Group],
    source_vars: list[SourceVars],
    extra_vars: Mapping[str, Any],
) -> dict[str, Any]:
    ordered = sort_groups(groups[name] for name in host.groups if name != "all")
    merged: dict[str, Any] = dict(groups["all"].inventory_vars)
    for group in ordered:
        merged.update(group.inventory_vars)
    for source in source_vars:
        merged.update(source.group_vars.get("all", {}))
    for source in source_vars:
        for group in ordered:
            merged.update(source.group_vars.get(group.name, {}))
    merged.update(host.inventory_vars)
    for source in source_vars:
        merged.update(source.host_vars.get(host.name, {}))
    merged.update(extra_vars)
    return merged
