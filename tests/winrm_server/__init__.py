"""A WS-Management (WinRM, Windows Remote Shell) test server that runs commands locally.

The real pywinrm client (winrm.protocol.Protocol) talks to it end to end: NTLM with message
encryption over HTTP, Basic (or NTLM) over HTTPS, shells, commands, stdin, long-polled output,
signals, quotas and the faults Windows returns. Commands run on this machine with /bin/sh -c
(shell="sh", the default) or, with shell="cmd", with an emulation of the cmd.exe subset a
controller needs (cmd_shell.py: built-ins, reg, schtasks, certutil and python.exe, Windows 7
output formats) on a folder that plays the C: drive.

    from tests.winrm_server import WinRMServer

    with WinRMServer(users={"PLANT\\\\scanner": "pw"}) as server:
        p = Protocol(server.endpoint, transport="ntlm", username="PLANT\\\\scanner",
                     password="pw")  # message_encryption="auto": sealed over HTTP

Module map, each with the documents it follows in its docstring:
    server.py   WinRMServer (lifecycle, counters, test switches)
    handler.py  HTTP: auth, 401/413, sealing, dropped connections
    auth.py     Basic and NTLM (pyspnego acceptor), AllowUnencrypted rules
    sealing.py  MS-WSMV 2.2.9.1.1 encrypted message framing
    soap.py     request parsing and response envelopes
    service.py  Create/Command/Send/Receive/Signal/Delete
    shells.py   shell table and WinRS quotas
    process.py  one command: a local process group with pipes
    cmd_shell.py  cmd.exe emulated: `python -m tests.winrm_server.cmd_shell "<line>"`
    faults.py   the SOAP faults, with their Windows codes and sources
    pki.py      a test CA and server certificates for HTTPS

Where it differs from Windows (also listed in tests/test_winrm_server.py's docstring): no
Kerberos, CredSSP or certificate auth; no IdleTimeout/MaxShellRunTime/MaxMemoryPerShellMB
timers; commands run under /bin/sh or the cmd emulator (whatever WINRS_SKIP_CMD_SHELL says)
as the server's own user; output is raw bytes (no code page: the emulator writes UTF-8, as
codepage 65001 would); a killed process reports 128+signal.

The names below are imported on first use, so that `python -m tests.winrm_server.cmd_shell`
(one process per command) does not load the server's TLS and NTLM stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .faults import (
        QUOTA_MAX_OPERATIONS,
        QUOTA_MAX_SHELLS,
        SCHEMA_VALIDATION_ERROR,
        TIMED_OUT,
        UNEXPECTED_SELECTORS,
        WSManFault,
    )
    from .pki import CertAuthority, ServerCert, make_test_ca
    from .server import DEFAULT_PASSWORD, DEFAULT_USER, WinRMServer

_HOME = {
    "QUOTA_MAX_OPERATIONS": "faults",
    "QUOTA_MAX_SHELLS": "faults",
    "SCHEMA_VALIDATION_ERROR": "faults",
    "TIMED_OUT": "faults",
    "UNEXPECTED_SELECTORS": "faults",
    "WSManFault": "faults",
    "CertAuthority": "pki",
    "ServerCert": "pki",
    "make_test_ca": "pki",
    "DEFAULT_PASSWORD": "server",
    "DEFAULT_USER": "server",
    "WinRMServer": "server",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_PASSWORD",
    "DEFAULT_USER",
    "QUOTA_MAX_OPERATIONS",
    "QUOTA_MAX_SHELLS",
    "SCHEMA_VALIDATION_ERROR",
    "TIMED_OUT",
    "UNEXPECTED_SELECTORS",
    "CertAuthority",
    "ServerCert",
    "WSManFault",
    "WinRMServer",
    "make_test_ca",
]
