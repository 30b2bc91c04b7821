"""From a host's inventory variables to the Target a connection needs."""

from __future__ import annotations

import sys
from typing import Any

from orchestrator.connections import SUPPORTED, Target
from orchestrator.connections.winrm_settings import winrm_settings
from orchestrator.errors import InventoryError
from orchestrator.hostside_windows import DEFAULT_TEMP_ROOT
from orchestrator.inventory import connection_settings


def target_for(name: str, hostvars: dict[str, Any], password: str | None = None) -> Target:
    """`password` (from --ask-pass) is used only where the inventory gives none."""
    s = connection_settings(hostvars, name)
    connection = s.get("connection") or "ssh"
    if connection not in SUPPORTED:
        raise InventoryError(
            f"host {name}: ansible_connection {connection!r} is not supported "
            f"(supported: {', '.join(SUPPORTED)})"
        )
    winrm = winrm_settings(hostvars, s.get("port"), name) if connection == "winrm" else None
    return Target(
        name=name,
        address=s.get("host") or name,
        connection=connection,
        port=s.get("port"),
        user=s.get("user"),
        private_key_file=s.get("private_key_file"),
        password=s.get("password") or password,
        # Locally the controller's own interpreter runs the payload (it has yara-python).
        python_interpreter=s.get("python_interpreter")
        or (sys.executable if connection == "local" else None),
        known_hosts=hostvars.get("plantsweep_known_hosts"),
        remote_tmp=str(
            hostvars.get("ansible_remote_tmp")
            or hostvars.get("remote_tmp")
            or (DEFAULT_TEMP_ROOT if winrm and winrm.shell_type != "sh" else "/tmp")
        ),
        winrm=winrm,
    )
