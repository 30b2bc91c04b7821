"""Transports behind one interface: `connect(target)` picks the right one."""

from __future__ import annotations

from orchestrator.connections.base import CommandResult, Connection, Timeouts
from orchestrator.connections.local import LocalConnection
from orchestrator.connections.ssh import SSHConnection
from orchestrator.connections.target import SSHOptions, Target
from orchestrator.connections.winrm_settings import WinRMSettings
from orchestrator.errors import HostError

__all__ = [
    "CommandResult",
    "Connection",
    "LocalConnection",
    "SSHConnection",
    "SUPPORTED",
    "SSHOptions",
    "Target",
    "Timeouts",
    "WinRMSettings",
    "make_connection",
]

# ssh aliases Ansible users write (paramiko, smart) all mean our paramiko transport.
SUPPORTED = ("ssh", "paramiko", "smart", "local", "winrm")


def make_connection(target: Target, ssh: SSHOptions, timeouts: Timeouts) -> Connection:
    """The transport named by the host's `ansible_connection` (ssh by default)."""
    kind = target.connection
    if kind in ("ssh", "paramiko", "smart"):
        return SSHConnection(target, ssh, timeouts)
    if kind == "local":
        return LocalConnection(target)
    if kind == "winrm" and target.winrm is not None:
        from orchestrator.connections.winrm import WinRMConnection  # pywinrm only when needed

        return WinRMConnection(target, target.winrm, timeouts)
    raise HostError(
        target.name,
        f"connection type {kind!r} is not supported (supported: {', '.join(SUPPORTED)})",
    )
