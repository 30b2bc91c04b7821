"""``group_vars/`` and ``host_vars/`` next to an inventory source, as Ansible's host_group_vars.

For a source file they sit in its directory; for a source directory, in that directory. For an
entity (group or host) named N the first of ``N``, ``N.yml``, ``N.yaml``, ``N.json`` that exists
is used, and only that one. If it is a directory, all files in it (and in subdirectories
without an extension) with no extension or one of those extensions are read in lexical order
and merged, later files winning; hidden files and ``*~`` backups are skipped.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from orchestrator.errors import InventoryError

from .location import located
from .model import Inventory, SourceVars
from .password_refs import check_not_clear_text
from .yaml_loading import (
    compose,
    construct,
    describe,
    is_null,
    mapping_items,
    node_line,
    read_text,
)

VARS_EXTENSIONS = (".yml", ".yaml", ".json")


def source_basedir(source: str) -> str:
    return os.path.abspath(source if os.path.isdir(source) else os.path.dirname(source) or ".")


def load_source_vars(source: str, inventory: Inventory) -> SourceVars:
    """Read the group_vars/ and host_vars/ of one source for every known group and host."""
    basedir = source_basedir(source)
    found = SourceVars(basedir)
    group_dir = os.path.join(basedir, "group_vars")
    host_dir = os.path.join(basedir, "host_vars")
    for name in inventory.groups:
        data = _load_entity(group_dir, name)
        if data:
            found.group_vars[name] = data
    for name in inventory.hosts:
        if not name.startswith(os.sep):  # Ansible skips path-like (chroot) host names
            data = _load_entity(host_dir, name)
            if data:
                found.host_vars[name] = data
    inventory.warnings.extend(_unmatched(group_dir, inventory.groups, "group"))
    inventory.warnings.extend(_unmatched(host_dir, inventory.hosts, "host"))
    return found


def find_vars_files(directory: str, name: str) -> list[str]:
    """The files that hold variables for ``name`` in ``directory`` (see module docstring)."""
    if not os.path.isdir(directory):
        return []
    for ext in ("", *VARS_EXTENSIONS):
        candidate = os.path.join(directory, name + ext)
        if os.path.isdir(candidate):
            return _directory_files(candidate)
        if os.path.exists(candidate):
            return [candidate]
    return []


def _directory_files(directory: str) -> list[str]:
    files: list[str] = []
    for entry in sorted(os.listdir(directory)):
        if entry.startswith(".") or entry.endswith("~"):
            continue
        full = os.path.join(directory, entry)
        ext = os.path.splitext(entry)[1]
        if os.path.isdir(full) and not ext:
            files.extend(_directory_files(full))
        elif os.path.isfile(full) and (not ext or ext in VARS_EXTENSIONS):
            files.append(full)
    return files


def _load_entity(directory: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for path in find_vars_files(directory, name):
        data.update(load_vars_file(path))
    return data


def load_vars_file(path: str) -> dict[str, Any]:
    """A YAML/JSON mapping of variables; an empty file is an empty mapping."""
    text = read_text(path)
    root = compose(text, path, json_fallback=path.endswith(".json"))
    if root is None or is_null(root):
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise InventoryError(
            f"a variables file must be a mapping of names to values, found {describe(root)}",
            path=path,
            line=node_line(root),
        )
    result: dict[str, Any] = {}
    for key_node, value_node in mapping_items(root, path):
        key = construct(key_node, path)
        with located(path, node_line(key_node)):
            if not isinstance(key, str):
                raise InventoryError(f"variable name {key!r} must be a string")
            value = construct(value_node, path)
            check_not_clear_text(key, value)
        result[key] = value
    return result


def _unmatched(directory: str, names: Any, kind: str) -> list[str]:
    """Warnings for group_vars/host_vars entries that name no group/host (likely typos)."""
    if not os.path.isdir(directory):
        return []
    warnings = []
    for entry in sorted(os.listdir(directory)):
        if entry.startswith(".") or entry.endswith("~"):
            continue
        stem, ext = os.path.splitext(entry)
        name = stem if ext in VARS_EXTENSIONS else entry
        if name not in names and entry not in names:
            where = os.path.join(directory, entry)
            warnings.append(f"{where} does not match any {kind} in the inventory")
    return warnings
