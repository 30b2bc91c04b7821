"""WinRMServer: a WS-Management listener on this machine for tests of WinRM client code.

It speaks to the real pywinrm client (winrm.protocol.Protocol) and runs what it is asked to
run in local processes: with /bin/sh (shell="sh", the default), or with the cmd.exe emulator
(shell="cmd", cmd_shell.py) on a folder that plays C:\\ (drive_c). Defaults are the Windows
ones: MaxShellsPerUser 30, MaxProcessesPerShell 25, MaxConcurrentOperationsPerUser 1500,
MaxEnvelopeSizekb 500, AllowUnencrypted false (MS-WSMV 2.2.4.10, 2.2.4.36, 2.2.4.42). Bind to
loopback (the default) or to an address the caller owns.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import os
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any

from . import faults
from .auth import Authenticator, tls_channel_bindings
from .cmd_shell import windows_to_linux
from .handler import DropConnection, WSManHandler
from .process import SHELLS
from .service import ShellService
from .shells import Quotas, ShellTable
from .soap import MalformedRequest, parse_request

log = logging.getLogger(__name__)

DEFAULT_USER = "plantsweep"
DEFAULT_PASSWORD = "Plant-Sweep-1"


class ListenerHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: WinRMServer, ssl_context: Any):
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        self.app = app
        self.ssl_context = ssl_context
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, WSManHandler)

    def track(self, conn: socket.socket) -> None:
        with self._conn_lock:
            self._connections.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._conn_lock:
            self._connections.discard(conn)

    def close_connections(self) -> None:
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(conn, socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that reject our certificate or vanish are part of the tests, not errors.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class WinRMServer:
    """A WS-Management (Windows Remote Shell) listener.

    users maps "user" or "DOMAIN\\user" to a password; auth is any of "ntlm", "basic".
    certfile/keyfile switch the listener to HTTPS. fail_mid_command (settable at any time)
    makes the server drop the TCP connection of any request to a shell while one of its
    commands runs, like a Windows host that goes away mid-command.

    shell="cmd" runs each command line with the cmd.exe emulator (cmd_shell.py) instead of
    /bin/sh; drive_c is the folder it uses as C:\\ (else WINRM_TEST_DRIVE_C from the
    environment). Shells then start in %USERPROFILE% (as WinRS does) when that folder exists,
    and a shell's WorkingDirectory is a Windows path. environment adds variables every command
    sees (USERPROFILE, SystemRoot, TEMP, ...: tests/harness/winrm_host.py sets them).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        users: dict[str, str] | None = None,
        auth: tuple[str, ...] | list[str] = ("ntlm", "basic"),
        certfile: str | os.PathLike[str] | None = None,
        keyfile: str | os.PathLike[str] | None = None,
        allow_unencrypted: bool = False,
        max_shells_per_user: int = 30,
        max_processes_per_shell: int = 25,
        max_operations_per_user: int = 1500,
        max_envelope_size_kb: int = 500,
        working_directory: str | os.PathLike[str] | None = None,
        machine_name: str | None = None,
        fail_mid_command: bool = False,
        shell: str = "sh",
        drive_c: str | os.PathLike[str] | None = None,
        environment: dict[str, str] | None = None,
    ):
        if (certfile is None) != (keyfile is None):
            raise ValueError("certfile and keyfile go together")
        if shell not in SHELLS:
            raise ValueError(f"shell must be one of {', '.join(SHELLS)}, not {shell!r}")
        self.shell = shell
        self.host = host
        self._port = port
        self.tls = certfile is not None
        self.allow_unencrypted = allow_unencrypted
        self.max_envelope_bytes = max_envelope_size_kb * 1024
        self.machine_name = machine_name or socket.gethostname()
        self.fail_mid_command = fail_mid_command
        self._ssl_context: ssl.SSLContext | None = None
        if certfile is not None:
            self._ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ssl_context.load_cert_chain(os.fspath(certfile), os.fspath(keyfile or ""))
        self.authenticator = Authenticator(
            users if users is not None else {DEFAULT_USER: DEFAULT_PASSWORD},
            frozenset(m.lower() for m in auth),
            allow_unencrypted,
            self.tls,
            tls_channel_bindings(os.fspath(certfile)) if certfile is not None else None,
        )
        self._workdir = tempfile.TemporaryDirectory(prefix="winrm-shell-")
        # Not NTLM_USER_FILE: auth.py sets it only briefly, for pyspnego.
        base_env = {k: v for k, v in os.environ.items() if k != "NTLM_USER_FILE"}
        base_env.update(environment or {})
        if drive_c is not None:
            base_env["WINRM_TEST_DRIVE_C"] = os.fspath(drive_c)
        default_directory = os.fspath(working_directory) if working_directory else ""
        map_directory: Callable[[str], str | None] | None = None
        drive = base_env.get("WINRM_TEST_DRIVE_C")
        if shell == "cmd":
            if not drive:
                raise ValueError("shell='cmd' needs drive_c (or WINRM_TEST_DRIVE_C)")
            map_directory = functools.partial(windows_to_linux, drive_c=drive)
            if not default_directory:
                profile = windows_to_linux(base_env.get("USERPROFILE", "C:\\"), drive)
                default_directory = profile if profile and os.path.isdir(profile) else drive
        self.shells = ShellTable(
            Quotas(max_shells_per_user, max_processes_per_shell, max_operations_per_user),
            default_directory or self._workdir.name,
            base_env,
            shell,
            map_directory,
        )
        self._service: ShellService | None = None
        self._httpd: ListenerHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._sealed = 0
        self._dropped = 0

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> WinRMServer:
        if self._httpd is not None:
            raise RuntimeError("already started")
        self._httpd = ListenerHTTPServer((self.host, self._port), self, self._ssl_context)
        self._port = self._httpd.server_address[1]
        self._service = ShellService(self.shells, self.endpoint, self.max_envelope_bytes)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"winrm-server-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening, end every connection and every process of every shell."""
        if self._httpd is None:
            return
        assert self._service is not None and self._thread is not None
        self._service.stopping.set()  # ends Receive long-polls
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.close_connections()
        self.shells.close_all()
        self._thread.join(timeout=5)
        self.authenticator.close()
        self._workdir.cleanup()
        self._httpd = None

    def __enter__(self) -> WinRMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- where it listens --------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def endpoint(self) -> str:
        host = self.host
        try:
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        except ValueError:
            pass
        return f"{'https' if self.tls else 'http'}://{host}:{self._port}/wsman"

    # -- what tests look at -------------------------------------------------------------------

    @property
    def action_counts(self) -> dict[str, int]:
        """Requests handled per action ("Create", "Command", "Send", "Receive", ...)."""
        return dict(self._service.action_counts) if self._service else {}

    @property
    def fault_counts(self) -> dict[int, int]:
        """SOAP faults sent, per WSManFault code (e.g. 2150858793 for Receive time-outs)."""
        return dict(self._service.fault_counts) if self._service else {}

    @property
    def open_shells(self) -> int:
        return self.shells.count()

    @property
    def sealed_requests(self) -> int:
        """Requests that arrived NTLM-encrypted (MS-WSMV 2.2.9.1.1)."""
        return self._sealed

    @property
    def dropped_connections(self) -> int:
        return self._dropped

    def process_ids(self) -> list[int]:
        return self.shells.pids()

    # -- used by the handler ----------------------------------------------------------------

    def count_sealed(self) -> None:
        with self._lock:
            self._sealed += 1

    def count_dropped(self) -> None:
        with self._lock:
            self._dropped += 1

    def process(self, body: bytes, user: str) -> tuple[int, str]:
        """(HTTP status, response envelope) for one decoded SOAP request."""
        assert self._service is not None
        try:
            request = parse_request(body)
        except MalformedRequest as exc:
            fault = faults.schema_validation(str(exc))
            self._service.count_fault(fault)
            return 500, fault.to_xml(None, self.machine_name)
        if self.fail_mid_command and self.shells.has_running_command(
            request.selectors.get("ShellId")
        ):
            raise DropConnection
        try:
            return 200, self._service.handle(request, user)
        except faults.WSManFault as fault:
            self._service.count_fault(fault)
            return 500, fault.to_xml(request.message_id, self.machine_name)
