"""``load_inventory``: inventory sources in, merged read-only Inventory out."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.errors import InventoryError

from .model import Inventory
from .sources import parse_source
from .vars_files import load_source_vars


def load_inventory(
    sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    extra_vars: Mapping[str, Any] | None = None,
) -> Inventory:
    """Load inventory files, directories or ``host1,host2,`` lists, in order.

    Later sources win on conflicting variables (like ``-i staging -i production``);
    ``extra_vars`` (``-e``) win over everything.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    paths = [os.path.expanduser(os.fspath(s)) for s in sources]
    if not paths:
        raise InventoryError("no inventory given: pass an inventory file or directory with -i")
    inventory = Inventory()
    for path in paths:
        parse_source(path, inventory)
        inventory.sources.append(path)
    # Implicit-group rules apply once to the union of all sources, as in Ansible.
    inventory.reconcile()
    for path in paths:
        if os.path.exists(path):
            inventory.source_vars.append(load_source_vars(path, inventory))
    _attach_file_vars(inventory)
    inventory.finalize(dict(extra_vars or {}))
    return inventory


def _attach_file_vars(inventory: Inventory) -> None:
    """Give each group/host its group_vars/host_vars content (all sources, later winning)."""
    for source in inventory.source_vars:
        for name, data in source.group_vars.items():
            inventory.groups[name].file_vars.update(data)
        for name, data in source.host_vars.items():
            inventory.hosts[name].file_vars.update(data)
