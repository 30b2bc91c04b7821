"""A comma-separated host list given as the inventory: ``-i 'hmi01,hmi02:5986,'``.

As in Ansible's host_list plugin: used only when no file of that name exists; each entry may
carry a ``:port``; ranges are not expanded; the hosts go to 'ungrouped'.
"""

from __future__ import annotations

from .addresses import split_host_port
from .model import UNGROUPED, Inventory


def is_host_list(source: str) -> bool:
    return "," in source


def parse_host_list(source: str, inventory: Inventory) -> None:
    for entry in source.split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, port = split_host_port(entry)
        if name not in inventory.hosts:
            inventory.add_host(name, group=UNGROUPED, port=port)
