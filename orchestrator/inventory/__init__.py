"""Ansible-compatible inventory: YAML and INI files, group_vars/host_vars, host patterns.

from orchestrator.inventory import load_inventory, connection_settings
inv = load_inventory(["inventories/demo-plant.yml"], extra_vars={"scan_type": "quick"})
for host in inv.select("windows_hmi:&line_a", limit="hmi0*"):
    settings = connection_settings(host.vars, host.name)
"""

from .connection_vars import connection_settings
from .loader import load_inventory
from .model import Group, Host, Inventory
from .patterns import split_host_pattern
from .render import dumps, render_graph, render_host, render_list

__all__ = [
    "Group",
    "Host",
    "Inventory",
    "connection_settings",
    "dumps",
    "load_inventory",
    "render_graph",
    "render_host",
    "render_list",
    "split_host_pattern",
]
