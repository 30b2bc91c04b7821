"""Passwords in inventories: refuse clear text, accept and resolve environment references.

A plant inventory gets copied, committed and attached to audit reports, so it must never hold
a password. The two accepted forms both name an environment variable of the controller:

    ansible_password: env:HMI_PASSWORD
    ansible_password: "{{ lookup('env', 'HMI_PASSWORD') }}"     # Ansible's own spelling

The second keeps an inventory usable by Ansible itself. No other Jinja is evaluated.
"""

from __future__ import annotations

import os
import re
from typing import Any

from orchestrator.errors import InventoryError

# Variables that carry a password (connection or privilege escalation).
PASSWORD_VARS = frozenset(
    {
        "ansible_password",
        "ansible_ssh_pass",
        "ansible_ssh_password",
        "ansible_become_password",
        "ansible_become_pass",
        "password",
    }
)

_ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_ENV_PREFIX_RE = re.compile(rf"^env:({_ENV_NAME})$")
_ENV_LOOKUP_RE = re.compile(
    rf"""^\{{\{{\s*lookup\(\s*(['"])(?:ansible\.builtin\.)?env\1\s*,\s*(['"])({_ENV_NAME})\2\s*\)\s*\}}\}}$"""
)


def env_reference(value: Any) -> str | None:
    """The environment variable a value refers to, or None if it is not a reference."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = _ENV_PREFIX_RE.match(text)
    if match:
        return match.group(1)
    match = _ENV_LOOKUP_RE.match(text)
    return match.group(3) if match else None


def check_not_clear_text(key: Any, value: Any) -> None:
    """Raise if an inventory file sets a password variable to anything but an env reference.

    An empty value (no password) is fine. The message never repeats the value.
    """
    if key not in PASSWORD_VARS or value is None or value == "":
        return
    if env_reference(value) is not None:
        return
    raise InventoryError(
        f"{key} must not hold a clear-text password in an inventory file: "
        f"put the password in an environment variable and write "
        f"{key}: env:HMI_PASSWORD (or \"{{{{ lookup('env', 'HMI_PASSWORD') }}}}\")"
    )


def resolve_password(value: Any, host: str, key: str) -> str | None:
    """The password a variable stands for; env references are read from the environment."""
    if value is None:
        return None
    name = env_reference(value)
    if name is None:
        if isinstance(value, str) and "{{" in value:
            raise InventoryError(
                f"host {host}: {key} uses a Jinja expression; only env:NAME or "
                f"lookup('env', 'NAME') are supported for passwords"
            )
        # Not from an inventory file (those are checked on load): -e or code gave it as is.
        return str(value)
    secret = os.environ.get(name)
    if secret is None:
        raise InventoryError(f"host {host}: environment variable {name} (for {key}) is not set")
    return secret
