"""Ansible's YAML inventory format.

    all:                      # any top-level key is a group ('all' is just the usual one)
      vars: {scan_profile: quick}
      children:
        windows_hmi:
          hosts:
            hmi[01:12].plant.local:      # ranges; a value of nothing means "no host vars"
          vars: {ansible_connection: winrm}
        linux_gw:
          hosts:
            gw-1: {ansible_host: 10.0.5.1}
            gw-2:2222:                   # host:port sets ansible_port

``hosts``, ``vars`` and ``children`` nest to any depth; a host listed in several groups is one
host whose variables merge. Where Ansible only warns and skips (a group that is not a
mapping, an unknown key such as a misspelt ``host:``), we stop with the file and line: a
silently skipped group means hosts that are silently not scanned.
"""

from __future__ import annotations

from typing import TypeGuard

import yaml

from orchestrator.errors import InventoryError

from .location import located
from .model import Inventory
from .password_refs import check_not_clear_text
from .ranges import expand_host_entry
from .yaml_loading import NULL_TAG, construct, describe, is_null, mapping_items, node_line

SECTIONS = ("hosts", "vars", "children")


def is_group_mapping(root: yaml.Node | None, path: str) -> TypeGuard[yaml.MappingNode]:
    """True if the document looks like a YAML inventory: a mapping of group name -> mapping.

    This is how a file without extension is told apart from INI: ``web1:2222`` alone is valid
    YAML (a mapping of 'web1' to 2222) but clearly an INI host line.
    """
    if not isinstance(root, yaml.MappingNode):
        return False
    return all(
        isinstance(value, yaml.MappingNode) or is_null(value)
        for _key, value in mapping_items(root, path)
    )


def structure_error(root: yaml.Node | None, path: str) -> InventoryError:
    """Why a YAML document is not an inventory (used when INI does not fit either)."""
    if not isinstance(root, yaml.MappingNode):
        kind = describe(root) if root is not None else "empty"
        return InventoryError(
            f"YAML inventory must be a mapping of group names, found {kind}",
            path=path,
            line=node_line(root),
        )
    for key, value in mapping_items(root, path):
        if not (isinstance(value, yaml.MappingNode) or is_null(value)):
            name = construct(key, path)
            return InventoryError(
                f"group '{name}' must be a mapping with hosts, vars and children, "
                f"found {describe(value)}",
                path=path,
                line=node_line(key),
            )
    return InventoryError("not a YAML inventory", path=path)


def reject_plugin_config(root: yaml.MappingNode, path: str) -> None:
    """Ansible inventory plugin configs (``plugin: aws_ec2``) are YAML too; say so clearly."""
    for key, _value in mapping_items(root, path):
        if isinstance(key, yaml.ScalarNode) and key.value == "plugin":
            raise InventoryError(
                "this is an inventory plugin configuration file; only YAML and INI "
                "inventories are supported",
                path=path,
                line=node_line(key),
            )


def parse_yaml_inventory(root: yaml.MappingNode, path: str, inventory: Inventory) -> None:
    """Add the groups, hosts and variables of a composed YAML inventory document."""
    parser = _YamlInventory(path, inventory)
    for key, value in mapping_items(root, path):
        parser.group(key, value)


class _YamlInventory:
    def __init__(self, path: str, inventory: Inventory) -> None:
        self.path = path
        self.inventory = inventory

    def group(self, key: yaml.Node, body: yaml.Node) -> str:
        with located(self.path, node_line(key)):
            name = self.inventory.add_group(construct(key, self.path)).name
        if is_null(body):
            return name
        if not isinstance(body, yaml.MappingNode):
            raise InventoryError(
                f"group '{name}' must be a mapping with hosts, vars and children, "
                f"found {describe(body)}",
                path=self.path,
                line=node_line(key),
            )
        for section_key, section in mapping_items(body, self.path):
            self.section(name, section_key, section)
        return name

    def section(self, group: str, key: yaml.Node, value: yaml.Node) -> None:
        section = construct(key, self.path)
        if section not in SECTIONS:
            raise InventoryError(
                f"unexpected key '{section}' in group '{group}': only hosts, vars and "
                f"children are valid",
                path=self.path,
                line=node_line(key),
            )
        if is_null(value):
            return
        if isinstance(value, yaml.ScalarNode) and value.tag == "tag:yaml.org,2002:str":
            # Ansible reads "hosts: web1" as "hosts: {web1: }".
            value = yaml.MappingNode(
                "tag:yaml.org,2002:map",
                [(value, yaml.ScalarNode(NULL_TAG, "", value.start_mark, value.end_mark))],
                value.start_mark,
                value.end_mark,
            )
        if not isinstance(value, yaml.MappingNode):
            raise InventoryError(
                f"'{section}' of group '{group}' must be a mapping, found {describe(value)}",
                path=self.path,
                line=node_line(key),
            )
        for item_key, item_value in mapping_items(value, self.path):
            if section == "vars":
                self.group_var(group, item_key, item_value)
            elif section == "children":
                child = self.group(item_key, item_value)
                with located(self.path, node_line(item_key)):
                    self.inventory.add_child(group, child)
            else:
                self.hosts(group, item_key, item_value)

    def group_var(self, group: str, key: yaml.Node, value: yaml.Node) -> None:
        name, data = self.variable(key, value)
        with located(self.path, node_line(key)):
            self.inventory.set_group_var(group, name, data)

    def hosts(self, group: str, key: yaml.Node, value: yaml.Node) -> None:
        entry = construct(key, self.path)
        line = node_line(key)
        if not isinstance(entry, str):
            raise InventoryError(
                f"host pattern {entry!r} must be a string: enclose numbers in quotation marks",
                path=self.path,
                line=line,
            )
        if not (is_null(value) or isinstance(value, yaml.MappingNode)):
            raise InventoryError(
                f"host '{entry}' in group '{group}' must have a mapping of variables (or "
                f"nothing), found {describe(value)}",
                path=self.path,
                line=line,
            )
        variables = (
            [self.variable(k, v) for k, v in mapping_items(value, self.path)]
            if isinstance(value, yaml.MappingNode)
            else []
        )
        with located(self.path, line):
            names, port = expand_host_entry(entry)
            for name in names:
                self.inventory.add_host(name, group=group, port=port, source=self.path)
                for var, data in variables:
                    self.inventory.set_host_var(name, var, data)

    def variable(self, key: yaml.Node, value: yaml.Node) -> tuple[str, object]:
        name = construct(key, self.path)
        with located(self.path, node_line(key)):
            if not isinstance(name, str):
                raise InventoryError(f"variable name {name!r} must be a string")
            data = construct(value, self.path)
            check_not_clear_text(name, data)
        return name, data
