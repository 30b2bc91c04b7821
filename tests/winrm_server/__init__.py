"""A WS-Management (WinRM, Windows Remote Shell) test server that runs commands locally.

The real pywinrm client (winrm.protocol.Protocol) talks to it end to end: NTLM with message
encryption over HTTP, Basic (or NTLM) over HTTPS, shells, commands, stdin, long-polled output,
signals, quotas and the faults Windows returns. Commands run with /bin/sh -c on this machine.

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
    faults.py   the SOAP faults, with their Windows codes and sources
    pki.py      a test CA and server certificates for HTTPS

Where it differs from Windows (also listed in tests/test_winrm_server.py's docstring): no
Kerberos, CredSSP or certificate auth; no IdleTimeout/MaxShellRunTime/MaxMemoryPerShellMB
timers; commands run under /bin/sh (not cmd.exe, even with WINRS_SKIP_CMD_SHELL) as the
server's own user; output is raw bytes (no code page); a killed process reports 128+signal.
"""

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
