"""What ``plantsweep inventory`` prints: the same output as ansible-inventory (ansible-core 2.19).

``render_list`` -> ``--list`` (a dict), ``render_graph`` -> ``--graph [GROUP] [--vars]`` (text),
``render_host`` -> ``--host NAME`` (a dict). Pure functions; the dicts hold only JSON types
(YAML dates become ISO strings, as ansible-inventory prints them), so ``json.dumps(d,
indent=4, sort_keys=True)`` or ``dumps`` gives ansible-inventory's layout.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from orchestrator.errors import HostPatternError

from .model import ALL, Group, Inventory

# Ansible's INTERNAL_STATIC_VARS: magic names ansible-inventory never prints as variables.
INTERNAL_VARS = frozenset(
    {
        "ansible_async_path", "ansible_collection_name", "ansible_config_file",
        "ansible_dependent_role_names", "ansible_diff_mode", "ansible_facts", "ansible_forks",
        "ansible_inventory_sources", "ansible_limit", "ansible_play_batch", "ansible_play_hosts",
        "ansible_play_hosts_all", "ansible_play_role_names", "ansible_playbook_python",
        "ansible_role_name", "ansible_role_names", "ansible_run_tags", "ansible_skip_tags",
        "ansible_verbosity", "ansible_version", "inventory_dir", "inventory_file",
        "inventory_hostname", "inventory_hostname_short", "groups", "group_names", "hostvars",
        "playbook_dir", "play_hosts", "role_name", "role_names", "role_path", "role_uuid",
    }
)  # fmt: skip

# ansible-core 2.19 tags --list output with the serialisation profile it used.
LIST_PROFILE = "inventory_legacy"


def printable_host_vars(inventory: Inventory, name: str) -> dict[str, Any]:
    """A host's merged variables without magic/internal names (what --host prints)."""
    return jsonable(_without_internal(inventory.host_vars(name)))


def printable_group_vars(group: Group) -> dict[str, Any]:
    """A group's own variables as ``--graph --vars`` shows them."""
    result = _without_internal(group.vars)
    if group.priority != 1:
        result["ansible_group_priority"] = group.priority
    return result


def render_list(inventory: Inventory, limit: str | None = None) -> dict[str, Any]:
    """``ansible-inventory --list``: groups with their direct hosts and children, plus
    ``_meta.hostvars``. Empty keys and empty groups are left out, as ansible-inventory does;
    'ungrouped' stays listed under all.children even when it is empty."""
    if limit is None:
        available = list(inventory.hosts)
    else:
        available = [h.name for h in inventory.select("all", limit)]
    wanted = set(available)
    result: dict[str, Any] = {}
    done: set[str] = set()

    def add(group: Group) -> None:
        entry: dict[str, Any] = {}
        if group.name != ALL:
            entry["hosts"] = [h for h in group.hosts if h in wanted]
        entry["children"] = list(group.children)
        for child in group.children:
            if child not in done:
                done.add(child)
                add(inventory.groups[child])
        entry = {key: value for key, value in entry.items() if value}
        if entry:
            result[group.name] = entry

    add(inventory.groups[ALL])
    hostvars = {}
    for name in available:
        printable = printable_host_vars(inventory, name)
        if printable:
            hostvars[name] = printable
    result["_meta"] = {"hostvars": hostvars, "profile": LIST_PROFILE}
    return result


def render_host(inventory: Inventory, pattern: str) -> dict[str, Any]:
    """``ansible-inventory --host NAME``: the merged variables of exactly one host."""
    try:
        hosts = inventory.select(pattern)
    except HostPatternError as exc:
        raise HostPatternError(f"You must pass a single valid host to --host: {exc}") from None
    if len(hosts) != 1:
        names = ", ".join(h.name for h in hosts)
        raise HostPatternError(
            f"You must pass a single valid host to --host; '{pattern}' matches {names}"
        )
    return printable_host_vars(inventory, hosts[0].name)


def render_graph(inventory: Inventory, group: str | None = None, show_vars: bool = False) -> str:
    """``ansible-inventory --graph [GROUP] [--vars]`` as text (no trailing newline)."""
    group = group if isinstance(group, str) and group else ALL
    if group not in inventory.groups:
        raise HostPatternError(f"Pattern must be valid group name when using --graph: {group}")
    lines: list[str] = []

    def walk(node: Group, depth: int) -> None:
        lines.append(_graph_line(f"@{node.name}:", depth))
        depth += 1
        for child in node.children:
            walk(inventory.groups[child], depth)
        if node.name != ALL:  # 'all' lists its hosts through its children only
            for host in node.hosts:
                lines.append(_graph_line(host, depth))
                if show_vars:
                    lines.extend(_graph_vars(printable_host_vars(inventory, host), depth + 1))
        if show_vars:
            lines.extend(_graph_vars(printable_group_vars(node), depth))

    walk(inventory.groups[group], 0)
    return "\n".join(lines)


def dumps(data: Any) -> str:
    """JSON text laid out like ansible-inventory's (sorted keys, 4-space indent, UTF-8)."""
    return json.dumps(data, sort_keys=True, indent=4, ensure_ascii=False, default=str)


def jsonable(value: Any) -> Any:
    """Values as JSON can hold them: dates as ISO text, tuples/sets as lists."""
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


# The names the CLI calls these by.
to_list = render_list
to_graph = render_graph
host_vars = render_host


def _graph_line(text: str, depth: int) -> str:
    return "  |" * depth + "--" + text if depth else text


def _graph_vars(variables: dict[str, Any], depth: int) -> list[str]:
    # Ansible formats values with Python's str(): True, None, ['a', 1], {'k': 'v'}.
    return [_graph_line(f"{{{key} = {value}}}", depth) for key, value in sorted(variables.items())]


def _without_internal(variables: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in variables.items() if k not in INTERNAL_VARS}
