"""WinRM transport (pywinrm's low-level Protocol) with file transfer over SMB.

One WinRM shell per host for the whole session (pywinrm's Session opens one per command).
Commands run in it; data for a command goes through its stdin, never its command line, so
cmd.exe's 8,191-character limit does not bite. Each Receive long-polls for at most the
operation timeout, so a timeout or Ctrl-C is noticed between polls and the command is then
stopped with a terminate Signal.

Files go over SMB (orchestrator/connections/smb.py) to the admin share when the host offers
it, else through a command's stdin/stdout in this shell (remote_files.py); either way the
file's SHA-256 on the host is checked against ours.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath

import requests
from winrm import exceptions as winrm_errors
from winrm.protocol import Protocol

from orchestrator.connections import remote_files
from orchestrator.connections.base import CommandResult, Connection, Timeouts
from orchestrator.connections.smb import SMBTransfer
from orchestrator.connections.target import Target
from orchestrator.connections.winrm_settings import WinRMSettings
from orchestrator.errors import HostError, HostUnreachable, StepFailed

# File bytes per stdin message: with pywinrm's base64 and the SOAP header this stays below
# the 150 KiB envelope that Windows Server 2008 R2 accepts (and pywinrm announces).
RAW_CHUNK = {"sh": 100_000, "windows": 72_000}  # multiples of 3: whole base64 lines

# WS-Management fault codes worth a hint (MS-WSMV; the Windows SDK's wsmerror.h).
FAULT_HINTS = {
    2150859173: "the user has too many shells open on the host (MaxShellsPerUser quota)",
    2150859174: "the user has run too many commands on the host (MaxConcurrentOperationsPerUser)",
    2150858843: "the shell is gone on the host (idle timeout, or WinRM was restarted)",
}


def _fault_text(exc: winrm_errors.WSManFaultError) -> str:
    code = exc.wsman_fault_code or exc.wmierror_code
    hint = FAULT_HINTS.get(code) if code is not None else None
    text = f"WinRM fault {code}: {exc.reason}" if code else f"WinRM fault: {exc.reason}"
    return f"{text} ({hint})" if hint else text


def certificate_rejected(exc: BaseException) -> bool:
    """True if the TLS certificate failed verification somewhere in `exc`'s causes. A
    handshake cut short (the server went away: SSLEOFError, a reset) is no certificate
    problem, although requests reports both as SSLError."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        e = todo.pop()
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ssl.SSLCertVerificationError):
            return True
        todo += [getattr(e, "reason", None), e.__cause__, e.__context__, *e.args]
    return False


class WinRMConnection(Connection):
    def __init__(self, target: Target, settings: WinRMSettings, timeouts: Timeouts):
        self.name = target.name
        self.target = target
        self.settings = settings
        self.timeouts = timeouts
        self.files = remote_files.for_shell(settings.shell_type)
        self.chunk = RAW_CHUNK["sh" if settings.shell_type == "sh" else "windows"]
        self.protocol: Protocol | None = None
        self.shell_id: str | None = None
        self.smb: SMBTransfer | None = None  # when the host's admin share can be used
        self.transfer = "winrm"  # "smb" or "winrm": how files travel (said in the run log)
        self.transfer_note: str | None = None  # why not SMB
        self.shells_opened = 0

    # -- connecting --------------------------------------------------------------------------

    def open(self) -> None:
        s = self.settings
        endpoint = s.endpoint(self.target.address)
        if s.ca_trust_path and not os.path.isfile(s.ca_trust_path):
            raise HostUnreachable(
                self.name, f"ansible_winrm_ca_trust_path {s.ca_trust_path} is not a file"
            )
        try:
            self.protocol = Protocol(
                endpoint,
                transport=s.transport,
                username=self.target.user,
                password=self.target.password,
                server_cert_validation=s.server_cert_validation,
                # Only the CA file the inventory names (else the default store), never one
                # taken from the environment.
                ca_trust_path=s.ca_trust_path,
                message_encryption=s.message_encryption,
                operation_timeout_sec=s.operation_timeout_sec,
                read_timeout_sec=s.read_timeout_sec,
                proxy=None,  # plant networks: never an environment proxy
            )
            self.shell_id = self.protocol.open_shell(codepage=65001)
            self.shells_opened += 1
        except HostError:
            raise
        except Exception as exc:  # pywinrm and requests raise many kinds: classified below
            raise HostUnreachable(self.name, self._explain(exc, endpoint)) from None
        self._open_smb()

    def _explain(self, exc: BaseException, endpoint: str) -> str:
        if isinstance(exc, winrm_errors.BasicAuthDisabledError):
            return "Basic authentication is disabled on the host: use ansible_winrm_transport ntlm"
        if isinstance(exc, winrm_errors.InvalidCredentialsError):
            return (
                "WinRM authentication failed: wrong user or password (a local administrator "
                "other than the built-in one also needs LocalAccountTokenFilterPolicy=1)"
            )
        if isinstance(exc, requests.exceptions.SSLError) and certificate_rejected(exc):
            return (
                f"TLS certificate check of {endpoint} failed ({_first_line(exc)}): the "
                "certificate must name the host and be signed by a CA in "
                "ansible_winrm_ca_trust_path"
            )
        if isinstance(exc, requests.exceptions.SSLError):  # the handshake broke off
            return f"TLS handshake with WinRM at {endpoint} failed ({_first_line(exc)})"
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return f"WinRM at {endpoint} did not answer within the connect timeout"
        if isinstance(exc, requests.exceptions.ConnectionError):
            return (
                f"cannot reach WinRM at {endpoint} ({_first_line(exc)}): is WinRM enabled "
                "with a listener on that port (winrm quickconfig -transport:https)?"
            )
        if isinstance(exc, requests.exceptions.Timeout):
            return f"WinRM at {endpoint} stopped answering (read timeout)"
        if isinstance(exc, winrm_errors.WSManFaultError):
            return _fault_text(exc)
        if isinstance(exc, winrm_errors.WinRMTransportError):
            if exc.code == 413:
                return f"WinRM at {endpoint} refused a request larger than its MaxEnvelopeSizekb"
            return f"WinRM at {endpoint} answered HTTP {exc.code}: {_first_line(exc)}"
        return f"WinRM failed: {type(exc).__name__}: {_first_line(exc)}"

    def _open_smb(self) -> None:
        if not self.settings.smb:
            self.transfer_note = "SMB not enabled for this host (plantsweep_smb: false)"
            return
        session = SMBTransfer(
            self.target.address,
            self.target.user or "",
            self.target.password or "",
            host=self.name,
            port=self.settings.smb_port,
            share=self.settings.smb_share,
            encrypt=self.settings.smb_encrypt,
            connect_timeout=self.timeouts.connect,
            timeout=self.timeouts.transfer,
        )
        try:
            session.open()
        except HostError as exc:
            # Port 445 closed, admin share refused, ...: the WinRM shell carries the files.
            self.transfer_note = f"SMB not used: {exc.message}"
            return
        self.smb = session
        self.transfer = "smb"
        self.transfer_note = session.describe()

    def restart_shell(self) -> None:
        """Close the shell and open a new one. Windows ends every process the old shell
        started (its job object), so nothing keeps running or holds files open after this."""
        if self.protocol is None:
            raise StepFailed(self.name, "not connected")
        if self.shell_id is not None:
            with contextlib.suppress(Exception):
                self.protocol.close_shell(self.shell_id)
            self.shell_id = None
        try:
            self.shell_id = self.protocol.open_shell(codepage=65001)
        except Exception as exc:
            raise self._step_error(exc) from None
        self.shells_opened += 1

    def describe_transfer(self) -> str | None:
        return f"{self.transfer}: {self.transfer_note}" if self.transfer_note else self.transfer

    def close(self) -> None:
        if self.smb is not None:
            with contextlib.suppress(Exception):
                self.smb.close()
            self.smb = None
        if self.protocol is not None and self.shell_id is not None:
            # Closing the shell also ends whatever it still runs (a job object on Windows).
            with contextlib.suppress(Exception):
                self.protocol.close_shell(self.shell_id)
        self.shell_id = None
        self.protocol = None

    # -- commands ------------------------------------------------------------------------------

    def run(
        self,
        command: str,
        timeout: float,
        cancel: threading.Event | None = None,
        stdin: bytes | None = None,
    ) -> CommandResult:
        out: list[bytes] = []
        rc, err = self._execute(command, timeout, cancel, [stdin] if stdin else None, out.append)
        return CommandResult(rc, b"".join(out), err)

    def _execute(
        self,
        command: str,
        timeout: float,
        cancel: threading.Event | None,
        stdin: Iterable[bytes] | None,
        on_stdout: Callable[[bytes], None],
    ) -> tuple[int, bytes]:
        """Run ``command``, stream ``stdin`` into it, hand stdout to ``on_stdout`` as it
        arrives. Returns ``(exit code, stderr)``."""
        if self.protocol is None or self.shell_id is None:
            raise StepFailed(self.name, "not connected")
        deadline = time.monotonic() + timeout
        try:
            command_id = self.protocol.run_command(self.shell_id, command, console_mode_stdin=False)
        except Exception as exc:  # classified like the connect errors
            raise self._step_error(exc) from None
        err: list[bytes] = []
        try:
            if stdin is not None:
                for piece in stdin:
                    self._check(deadline, timeout, cancel)
                    self._call(self.protocol.send_command_input, command_id, piece, False)
                self._call(self.protocol.send_command_input, command_id, b"", True)
            while True:
                self._check(deadline, timeout, cancel)
                try:
                    stdout, stderr, rc, done = self.protocol.get_command_output_raw(
                        self.shell_id, command_id
                    )
                except winrm_errors.WinRMOperationTimeoutError:
                    continue  # no output within the long-poll: ask again
                except Exception as exc:
                    raise self._step_error(exc) from None
                if stdout:
                    on_stdout(stdout)
                err.append(stderr)
                if done:
                    return rc, b"".join(err)
        finally:
            # Ends the command if it still runs (timeout, cancel, an error) and frees it.
            with contextlib.suppress(Exception):
                self.protocol.cleanup_command(self.shell_id, command_id)

    def _call(self, method: Callable[..., object], command_id: str, data: bytes, end: bool) -> None:
        try:
            method(self.shell_id, command_id, data, end)
        except Exception as exc:
            raise self._step_error(exc) from None

    def _check(self, deadline: float, timeout: float, cancel: threading.Event | None) -> None:
        if cancel is not None and cancel.is_set():
            raise StepFailed(self.name, "cancelled")
        if time.monotonic() >= deadline:
            raise StepFailed(self.name, f"command timed out after {timeout:g}s")

    def _step_error(self, exc: BaseException) -> HostError:
        if isinstance(exc, HostError):
            return exc
        endpoint = self.settings.endpoint(self.target.address)
        broken = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)
        if isinstance(exc, broken) and not certificate_rejected(exc):
            # Connected before: the host or its WinRM service went away mid-session.
            return StepFailed(
                self.name, f"WinRM at {endpoint} stopped answering ({_first_line(exc)})"
            )
        return StepFailed(self.name, self._explain(exc, endpoint))

    # -- files ---------------------------------------------------------------------------------

    def share_path(self, remote: str) -> str | None:
        """The UNC path of ``remote`` on the SMB share, or None if the share does not hold it."""
        flavour = PurePosixPath if self.settings.shell_type == "sh" else PureWindowsPath
        path, root = flavour(remote), flavour(self.settings.smb_share_path)
        if not path.is_absolute() or ".." in path.parts or not path.is_relative_to(root):
            return None
        parts = path.relative_to(root).parts
        return "\\\\" + "\\".join([self.target.address, self.settings.smb_share, *parts])

    def put(self, local: Path, remote: str, timeout: float) -> None:
        unc = self.share_path(remote) if self.smb is not None else None
        if unc is not None:
            # Checked below on the host, as the host reads it: no read-back over SMB too.
            sent = self.smb.put(local, unc, verify=False)
        else:
            sent = self._put_through_shell(local, remote, timeout)
        self._verify(remote, sent, timeout, f"copy of {local.name}")

    def _put_through_shell(self, local: Path, remote: str, timeout: float) -> str:
        digest = hashlib.sha256()

        def pieces() -> Iterator[bytes]:
            with local.open("rb") as fh:
                while block := fh.read(self.chunk):
                    digest.update(block)
                    yield self.files.encode(block)

        try:
            rc, err = self._execute(self.files.receive(remote), timeout, None, pieces(), _drop)
        except OSError as exc:
            raise StepFailed(self.name, f"cannot read {local}: {exc.strerror}") from None
        if rc != 0:
            raise StepFailed(self.name, f"copy of {local.name} to {remote} failed: {_tail(err)}")
        return digest.hexdigest()

    def _verify(self, remote: str, expected: str, timeout: float, what: str) -> None:
        result = self.run(self.files.sha256(remote), timeout)
        found = self.files.parse_sha256(result.stdout)
        if result.rc != 0 or found is None:
            raise StepFailed(self.name, f"{what}: cannot hash {remote}: {_tail(result.stderr)}")
        if found != expected:
            raise StepFailed(
                self.name, f"{what}: SHA-256 on the host differs ({found} != {expected})"
            )

    def get(self, remote: str, local: Path, timeout: float) -> None:
        unc = self.share_path(remote) if self.smb is not None else None
        if unc is not None:
            received = self.smb.get(unc, local)
        else:
            received = self._get_through_shell(remote, local, timeout)
        try:
            self._verify(remote, received, timeout, f"fetch of {remote}")
        except StepFailed:
            local.unlink(missing_ok=True)
            raise

    def _get_through_shell(self, remote: str, local: Path, timeout: float) -> str:
        local.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{local.name}.", dir=local.parent)
        digest = hashlib.sha256()
        decoder = self.files.decoder()
        try:
            with os.fdopen(fd, "wb") as fh:

                def write(data: bytes) -> None:
                    block = decoder.feed(data)
                    digest.update(block)
                    fh.write(block)

                rc, err = self._execute(self.files.send(remote), timeout, None, None, write)
                write_end = decoder.end()
                digest.update(write_end)
                fh.write(write_end)
            if rc != 0:
                raise StepFailed(self.name, f"fetch of {remote} failed: {_tail(err)}")
            os.replace(tmp, local)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest.hexdigest()


def _drop(_data: bytes) -> None:
    """Output nobody reads (a receiving command prints nothing)."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _tail(err: bytes) -> str:
    lines = err.decode("utf-8", "replace").strip().splitlines()
    return " | ".join(lines[-3:]) or "no error output"
