"""How to reach a Windows host over WinRM (and SMB), read from its inventory variables.

The names are Ansible's (``ansible_winrm_*``, ``ansible_shell_type``) so an Ansible inventory
works unchanged; the SMB ones are ours (``plantsweep_smb_*``). Defaults are the safe ones:
HTTPS on 5986 with certificate validation, NTLM, message encryption where the transport has
it, SMB signing always and SMB3 encryption when the server offers it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import InventoryError

TRANSPORTS = ("ntlm", "kerberos", "credssp", "basic", "certificate", "ssl")
# Transports that can encrypt the message itself, so plain HTTP is not plain text.
ENCRYPTING = ("ntlm", "kerberos", "credssp")
SHELL_TYPES = ("cmd", "powershell", "sh")
SMB_ENCRYPT = ("auto", "required", "off")


@dataclass(frozen=True)
class WinRMSettings:
    scheme: str = "https"
    port: int = 5986
    path: str = "/wsman"
    transport: str = "ntlm"
    server_cert_validation: str = "validate"
    ca_trust_path: str | None = None
    message_encryption: str = "auto"
    operation_timeout_sec: int = 20
    read_timeout_sec: int = 30
    # The host's command dialect. "sh" is for a WinRM endpoint whose commands run under a
    # POSIX shell: the test fleet's WinRM test server (tests/winrm_server) is one.
    shell_type: str = "cmd"
    smb: bool = True  # try SMB for file transfer first; fall back to the WinRM shell
    smb_port: int = 445
    smb_share: str = "ADMIN$"
    smb_share_path: str = "C:\\Windows"  # the host path the share exposes
    smb_encrypt: str = "auto"

    def endpoint(self, address: str) -> str:
        host = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def _choice(hostvars: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = hostvars.get(name, default)
    if value not in allowed:
        raise InventoryError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return str(value)


def _number(hostvars: Mapping[str, Any], name: str, default: int) -> int:
    value = hostvars.get(name, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InventoryError(f"{name} must be a whole number, not {value!r}") from None
    if number < 1:
        raise InventoryError(f"{name} must be at least 1, not {number}")
    return number


def _flag(hostvars: Mapping[str, Any], name: str, default: bool) -> bool:
    value = hostvars.get(name, default)
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("yes", "true", "1", "on"):
        return True
    if text in ("no", "false", "0", "off"):
        return False
    raise InventoryError(f"{name} must be true or false, not {value!r}")


def winrm_settings(hostvars: Mapping[str, Any], port: int | None, name: str) -> WinRMSettings:
    """The WinRM settings of host ``name``; ``port`` is its ``ansible_port`` if set."""
    scheme = hostvars.get("ansible_winrm_scheme") or ("http" if port == 5985 else "https")
    if scheme not in ("http", "https"):
        raise InventoryError(f"host {name}: ansible_winrm_scheme must be http or https")
    transport = _choice(hostvars, "ansible_winrm_transport", TRANSPORTS, "ntlm")
    encryption = _choice(
        hostvars, "ansible_winrm_message_encryption", ("auto", "always", "never"), "auto"
    )
    if scheme == "http" and (transport not in ENCRYPTING or encryption == "never"):
        # WinRM's own default (AllowUnencrypted=false) refuses this too: credentials and scan
        # data would cross the plant network in clear.
        raise InventoryError(
            f"host {name}: WinRM over plain HTTP needs message encryption (transport ntlm, "
            "kerberos or credssp with ansible_winrm_message_encryption auto or always); "
            "use HTTPS (port 5986) otherwise"
        )
    validation = _choice(
        hostvars, "ansible_winrm_server_cert_validation", ("validate", "ignore"), "validate"
    )
    operation = _number(hostvars, "ansible_winrm_operation_timeout_sec", 20)
    read = _number(hostvars, "ansible_winrm_read_timeout_sec", max(30, operation + 10))
    if read <= operation:
        raise InventoryError(
            f"host {name}: ansible_winrm_read_timeout_sec ({read}) must exceed "
            f"ansible_winrm_operation_timeout_sec ({operation})"
        )
    shell_type = _choice(hostvars, "ansible_shell_type", SHELL_TYPES, "cmd")
    return WinRMSettings(
        scheme=scheme,
        port=port or (5985 if scheme == "http" else 5986),
        path=str(hostvars.get("ansible_winrm_path") or "/wsman"),
        transport=transport,
        server_cert_validation=validation,
        ca_trust_path=hostvars.get("ansible_winrm_ca_trust_path"),
        message_encryption=encryption,
        operation_timeout_sec=operation,
        read_timeout_sec=read,
        shell_type=shell_type,
        smb=_flag(hostvars, "plantsweep_smb", True),
        smb_port=_number(hostvars, "plantsweep_smb_port", 445),
        smb_share=str(hostvars.get("plantsweep_smb_share") or "ADMIN$"),
        smb_share_path=str(
            hostvars.get("plantsweep_smb_share_path")
            or ("/" if shell_type == "sh" else "C:\\Windows")
        ),
        smb_encrypt=_choice(hostvars, "plantsweep_smb_encrypt", SMB_ENCRYPT, "auto"),
    )
