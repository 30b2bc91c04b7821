"""The effective connection settings of a host, read from its merged variables.

Connection variables are ordinary host variables (``ansible_host``, ``ansible_port``, ...).
For each setting the first name present wins: Ansible's ``ansible_*`` names, then its older
``ansible_ssh_*`` aliases, then bare names (``host``, ``port``, ``user``, ...) which some
inventories use and which therefore rank lowest.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from orchestrator.errors import InventoryError

from .password_refs import resolve_password

NAMES: dict[str, tuple[str, ...]] = {
    "host": ("ansible_host", "ansible_ssh_host", "host"),
    "port": ("ansible_port", "ansible_ssh_port", "port"),
    "user": ("ansible_user", "ansible_ssh_user", "user"),
    "connection": ("ansible_connection", "connection"),
    "private_key_file": (
        "ansible_private_key_file",
        "ansible_ssh_private_key_file",
        "private_key_file",
        "ssh_private_key_file",
    ),
    "password": ("ansible_password", "ansible_ssh_pass", "ansible_ssh_password", "password"),
    "python_interpreter": ("ansible_python_interpreter", "python_interpreter"),
}
DEFAULT_CONNECTION = "ssh"


def connection_settings(
    hostvars: Mapping[str, Any], inventory_hostname: str | None = None
) -> dict[str, Any]:
    """``{host, port, user, connection, private_key_file, password, python_interpreter}``.

    ``host`` falls back to the inventory name (from the argument, or an ``inventory_hostname``
    key when the caller merged in the magic variables). Passwords given as ``env:NAME`` or
    ``{{ lookup('env', 'NAME') }}`` are read from the environment here; a missing variable is
    an InventoryError naming the host and the variable.
    """
    name = inventory_hostname or hostvars.get("inventory_hostname")
    found = {setting: _first(hostvars, names) for setting, names in NAMES.items()}
    label = str(name or found["host"][1] or "?")

    host_key, host = found["host"]
    host = host if host not in (None, "") else name
    if host in (None, ""):
        raise InventoryError("cannot tell which host to connect to: no ansible_host and no name")

    connection = _text(found["connection"], label) or DEFAULT_CONNECTION
    if connection == "smart":
        connection = DEFAULT_CONNECTION  # Ansible's 'smart' means ssh nowadays
    key_file = _text(found["private_key_file"], label)
    password_key, password = found["password"]
    return {
        "host": _text((host_key or "ansible_host", host), label),
        "port": _port(found["port"], label),
        "user": _text(found["user"], label),
        "connection": connection,
        "private_key_file": os.path.expanduser(key_file) if key_file else None,
        "password": resolve_password(password, label, password_key or "ansible_password"),
        "python_interpreter": _text(found["python_interpreter"], label),
    }


def _first(hostvars: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str | None, Any]:
    for name in names:
        value = hostvars.get(name)
        if value is not None:
            return name, value
    return None, None


def _text(found: tuple[str | None, Any], host: str) -> str | None:
    key, value = found
    if value is None or value == "":
        return None
    text = str(value)
    if "{{" in text:
        # Inventory values are never templated; passing "{{ x }}" on as a host name or user
        # would only fail later with a confusing connection error.
        raise InventoryError(
            f"host {host}: {key} is a Jinja expression ({text}); inventory values are not "
            f"templated, give the value itself"
        )
    return text


def _port(found: tuple[str | None, Any], host: str) -> int | None:
    key, value = found
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        port = int(value)
    except (TypeError, ValueError):
        raise InventoryError(f"host {host}: {key} must be a port number, got {value!r}") from None
    if not 0 < port < 65536:
        raise InventoryError(f"host {host}: {key} must be between 1 and 65535, got {port}")
    return port
