"""What the controller needs to know to reach one host, read from its inventory variables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.connections.winrm_settings import WinRMSettings


@dataclass(frozen=True)
class Target:
    """One host as a connection sees it. The password never appears in repr or logs."""

    name: str
    address: str
    connection: str = "ssh"
    port: int | None = None
    user: str | None = None
    private_key_file: str | None = None
    password: str | None = field(default=None, repr=False)
    python_interpreter: str | None = None
    remote_tmp: str = "/tmp"
    known_hosts: str | None = None
    winrm: WinRMSettings | None = None  # for ansible_connection: winrm


@dataclass(frozen=True)
class SSHOptions:
    """Run-wide SSH policy. Host keys are verified unless the user trusts on first use."""

    known_hosts: Path | None = None
    trust_on_first_use: bool = False
    banner_timeout: float = 10.0
