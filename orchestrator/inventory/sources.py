"""Turn one ``-i`` argument into parsed inventory: a file, a directory of files, or a host list.

Format detection follows the order Ansible tries its plugins in. A file named ``*.yml``,
``*.yaml``, ``*.json`` or without extension is read as YAML if it is a mapping of groups;
otherwise (and for any other extension) as INI. A directory is read file by file in sorted
(ASCII) order, recursively, skipping what Ansible's inventory ignore rules skip.
"""

from __future__ import annotations

import os
import re

import yaml

from orchestrator.errors import InventoryError

from .hostlist_source import is_host_list, parse_host_list
from .ini_source import parse_ini_inventory
from .model import Inventory
from .yaml_loading import compose, read_text
from .yaml_source import (
    is_group_mapping,
    parse_yaml_inventory,
    reject_plugin_config,
    structure_error,
)

YAML_EXTENSIONS = (".yml", ".yaml", ".json")
# Ansible's IGNORED_ALWAYS plus the default INVENTORY_IGNORE_EXTS (REJECT_EXTS + a few).
_IGNORED_NAME_RE = re.compile(r"^\.|^host_vars$|^group_vars$|^vars_plugins$")
IGNORED_EXTENSIONS = (
    ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry",
)  # fmt: skip
# First meaningful line of a YAML inventory: "---" or "name:" with nothing after it.
_YAML_START_RE = re.compile(r"^(---|[^\s=\[\]]+:\s*(#.*)?)$")


def is_ignored(entry: str) -> bool:
    """Directory entries Ansible does not read as inventory (README.md, *.retry, group_vars...)."""
    return bool(_IGNORED_NAME_RE.search(entry)) or entry.endswith(IGNORED_EXTENSIONS)


def parse_source(source: str, inventory: Inventory) -> None:
    if not os.path.exists(source):
        if is_host_list(source):
            parse_host_list(source, inventory)
            return
        raise InventoryError("inventory source not found", path=source)
    if os.path.isdir(source):
        for entry in sorted(os.listdir(source)):
            if not is_ignored(entry):
                parse_source(os.path.join(source, entry), inventory)
        return
    parse_inventory_file(source, inventory)


def parse_inventory_file(path: str, inventory: Inventory) -> None:
    ext = os.path.splitext(path)[1]
    if ext == ".toml":
        raise InventoryError("TOML inventories are not supported: use YAML or INI", path=path)
    text = read_text(path)
    if text.startswith("#!") and os.access(path, os.X_OK):
        raise InventoryError(
            "dynamic inventory scripts are not supported: use a YAML or INI file", path=path
        )
    yaml_error: InventoryError | None = None
    yaml_mapping = False
    if ext in ("", *YAML_EXTENSIONS):
        try:
            root = compose(text, path, json_fallback=ext == ".json")
        except InventoryError as exc:
            root, yaml_error = None, exc
        if isinstance(root, yaml.MappingNode):
            reject_plugin_config(root, path)
        if is_group_mapping(root, path):
            parse_yaml_inventory(root, path, inventory)
            return
        if root is not None and yaml_error is None:
            yaml_error = structure_error(root, path)
            yaml_mapping = isinstance(root, yaml.MappingNode)
    try:
        parse_ini_inventory(text, path, inventory)
    except InventoryError:
        # Neither format fits: report the error of the format the file was meant to be in.
        if yaml_error is not None and (
            ext in YAML_EXTENSIONS or yaml_mapping or _looks_like_yaml(text)
        ):
            raise yaml_error from None
        raise


def _looks_like_yaml(text: str) -> bool:
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            return bool(_YAML_START_RE.match(line))
    return False
