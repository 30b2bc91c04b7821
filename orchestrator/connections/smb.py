r"""SMB2/3 file transfer to one Windows host (ADMIN$\Temp\<run> by default), via smbprotocol.

    with SMBTransfer("10.0.0.5", "PLANT\\scan", password, host="hmi-01", encrypt="auto") as smb:
        smb.makedirs(smb.unc("Temp", run_id))
        digest = smb.put(Path("scan.zip"), smb.unc("Temp", run_id, "scan.zip"))
        smb.get(smb.unc("Temp", run_id, "result.json"), Path("out/result.json"))
        smb.rmtree(smb.unc("Temp", run_id))

Why not smbclient.shutil.copyfile: it moves 64 KiB per request with one request in flight,
so throughput is bound by round trips. Here every read and write is as large as the server
negotiated (max_read_size / max_write_size, 8 MiB on Samba and current Windows), streamed
from and to disk, hashed on the way. Each SMBTransfer has its own connection cache (many
hosts are served by parallel threads; smbclient's default cache is process-global) and its
own watchdog, because smbprotocol waits for most responses without any timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import smbclient
from smbclient import shutil as smbshutil
from smbprotocol import MAX_PAYLOAD_SIZE
from smbprotocol.connection import Ciphers, Connection, Dialects
from smbprotocol.exceptions import (
    EndOfFile,
    SMBAuthenticationError,
    SMBConnectionClosed,
    SMBOSError,
    SMBResponseException,
)
from smbprotocol.header import NtStatus
from smbprotocol.tree import TreeConnect

from orchestrator.errors import HostError, HostUnreachable

EncryptMode = Literal["required", "auto", "off"]
ENCRYPT_MODES: tuple[str, ...] = ("required", "auto", "off")

# Logon statuses smbprotocol has no names for (MS-ERREF 2.3.1).
_LOGON_STATUSES = {
    NtStatus.STATUS_LOGON_FAILURE: "wrong user name or password",
    NtStatus.STATUS_WRONG_PASSWORD: "wrong password",
    NtStatus.STATUS_PASSWORD_EXPIRED: "the password has expired",
    0xC000006E: "account restriction (e.g. blank password not allowed)",
    0xC000006F: "logon not allowed at this time",
    0xC0000070: "logon not allowed from this workstation",
    0xC0000072: "the account is disabled",
    0xC0000193: "the account has expired",
    0xC0000224: "the password must be changed first",
    0xC0000234: "the account is locked out",
}
_NOT_FOUND = {
    NtStatus.STATUS_OBJECT_NAME_NOT_FOUND,
    NtStatus.STATUS_OBJECT_PATH_NOT_FOUND,
    NtStatus.STATUS_NO_SUCH_FILE,
    NtStatus.STATUS_NOT_FOUND,
}
_ACCESS_DENIED = {NtStatus.STATUS_ACCESS_DENIED, 0xC00000CA}  # + NETWORK_ACCESS_DENIED
_CIPHERS = {
    Ciphers.AES_128_CCM: "AES-128-CCM",
    Ciphers.AES_128_GCM: "AES-128-GCM",
    Ciphers.AES_256_CCM: "AES-256-CCM",
    Ciphers.AES_256_GCM: "AES-256-GCM",
}
_DIALECTS = {
    Dialects.SMB_2_0_2: "2.0.2",
    Dialects.SMB_2_1_0: "2.1",
    Dialects.SMB_3_0_0: "3.0",
    Dialects.SMB_3_0_2: "3.0.2",
    Dialects.SMB_3_1_1: "3.1.1",
}
_BAD_NAME_CHARS = set('<>:"|?*\0')  # ":" would also reach alternate data streams
UAC_HINT = (
    "for a local (non-domain) administrator account Windows filters the token of remote "
    "logons (UAC remote restrictions): use a domain account in the local Administrators "
    "group, or set HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System\\"
    "LocalAccountTokenFilterPolicy=1 on the host; or transfer over WinRM instead"
)

# The singleton holds the client GUID; create it once here, not racily from many threads.
smbclient.ClientConfig()


# -- errors ---------------------------------------------------------------------------


class SMBError(HostError):
    """An SMB step on one host failed."""


class SMBUnavailable(SMBError):
    """No TCP connection to the SMB port: refused (closed), filtered (no answer within the
    connect timeout) or unreachable. The caller falls back to transfer over WinRM."""

    def __init__(self, host: str, message: str, *, reason: str):
        super().__init__(host, message)
        self.reason = reason  # "refused" | "timeout" | "unreachable" | "error"


class SMBTimeout(SMBError):
    """The server accepted the connection but stopped answering (negotiate, logon or an
    operation exceeded its timeout). The connection is closed afterwards."""


class SMBLogonFailure(SMBError, HostUnreachable):
    """The server refused the credentials (wrong user or password, disabled account...)."""


class SMBAccessDenied(SMBError):
    """Logged on, but refused a share or a path (admin share: see UAC_HINT)."""


class SMBShareNotFound(SMBError):
    """The server has no share of that name."""


class SMBSecurityUnavailable(SMBError):
    """Signing or encryption was required but the server does not offer it."""

    def __init__(self, host: str, message: str, *, feature: str):
        super().__init__(host, message)
        self.feature = feature  # "encryption" | "signing"


class SMBNotFound(SMBError):
    """A remote file or folder does not exist."""


class SMBPathRefused(SMBError):
    """A remote path is not a UNC path on this server, or could leave its share (..)."""


class SMBVerifyFailed(SMBError):
    """The file read back from the host does not have the SHA-256 that was sent."""


# -- transfer -------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferStats:
    """What one put() or get() did; `largest_request` shows the chunk size really used."""

    direction: str  # "put" | "get"
    remote: str
    size: int
    sha256: str
    seconds: float  # the transfer itself, without verification
    requests: int  # SMB WRITE/READ requests sent
    largest_request: int  # bytes in the largest single request
    verified: bool = False
    verify_seconds: float = 0.0

    @property
    def mb_per_s(self) -> float:
        return self.size / 1e6 / self.seconds if self.seconds > 0 else 0.0


class _Watchdog:
    """Closes the connection's socket when an operation makes no progress for `seconds`.

    smbprotocol waits for most responses without a timeout; shutting the socket down wakes
    every waiter (and a send blocked on a full buffer) with an error.
    """

    def __init__(self, seconds: float, on_expire: Callable[[], None]) -> None:
        self.seconds = seconds
        self.expired = False
        self._on_expire = on_expire
        self._deadline = time.monotonic() + seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="smb-watchdog", daemon=True)

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def kick(self) -> None:
        self._deadline = time.monotonic() + self.seconds

    def _run(self) -> None:
        while not self._stop.wait(max(0.0, self._deadline - time.monotonic())):
            if time.monotonic() >= self._deadline:
                self.expired = True
                self._on_expire()
                return


class SMBTransfer:
    """Files to and from one Windows host over SMB2/3, signing always required. Use one
    instance per host and thread (its connection is its own, not shared).

    encrypt: "required" (fail unless SMB3 encryption is used), "auto" (use it when the server
    offers it; `encrypted` tells whether it was) or "off" (do not ask for it; a server that
    requires encryption still gets it). Remote paths are UNC paths on this server:
    \\\\server\\share\\dir\\file ("/" also accepted); `unc(...)` builds them in `share`.
    """

    def __init__(
        self,
        server: str,
        username: str,
        password: str,
        *,
        host: str | None = None,
        port: int = 445,
        share: str = "ADMIN$",
        encrypt: EncryptMode = "auto",
        connect_timeout: float = 10.0,
        timeout: float = 60.0,
        auth_protocol: Literal["negotiate", "ntlm", "kerberos"] = "negotiate",
        pipeline: int = 2,
    ) -> None:
        if encrypt not in ENCRYPT_MODES:
            raise ValueError(f"encrypt must be one of {', '.join(ENCRYPT_MODES)}, not {encrypt!r}")
        self.host = host or server  # inventory name, used in every message
        self.server = server
        self.username = username
        self.port = port
        self.share = share
        self.encrypt = encrypt
        self.connect_timeout = connect_timeout
        self.timeout = timeout  # seconds an operation may go without progress
        self.auth_protocol = auth_protocol
        # READ/WRITE requests in flight: the next chunk is prepared (hashed, signed or
        # encrypted) while the server still stores the previous one.
        self.pipeline = max(1, pipeline)
        self.last: TransferStats | None = None
        self.__password = password
        self._cache: dict[str, Connection] = {}
        self._connection: Connection | None = None
        self._session: Any = None
        self._trees: dict[str, TreeConnect] = {}

    def __repr__(self) -> str:  # never the password
        state = "open" if self._session is not None else "closed"
        return f"<SMBTransfer {self.host} {self.username}@{self.server}:{self.port} {state}>"

    def __enter__(self) -> SMBTransfer:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- connection --------------------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"{self.server}:{self.port}"

    def _kwargs(self) -> dict[str, Any]:
        """What every smbclient call needs to find our session in our private cache."""
        return {
            "username": self.username,
            "password": self.__password,
            "port": self.port,
            "connection_timeout": self.connect_timeout,
            "connection_cache": self._cache,
            "auth_protocol": self.auth_protocol,
            "require_signing": True,
        }

    def open(self) -> None:
        """Connect, negotiate, log on and connect to `share`; raise a classified SMBError."""
        if self._session is not None:
            return
        # smbprotocol would build the Connection inside register_session; building it here
        # first lets "auto" see whether the server offers encryption before the logon, and
        # lets us tell a closed port from a failed logon.
        # A client GUID of its own: Samba (multichannel, default since 4.15) hands every
        # connection with an already-known GUID over to the smbd process that owns it, so
        # parallel transfers sharing smbclient's global GUID were served by one process and
        # a new connect could hang while that process was ending.
        conn = Connection(uuid.uuid4(), self.server, self.port, require_signing=True)
        try:
            with self._guard("connect", self.connect_timeout, conn) as dog:
                try:
                    conn.connect(timeout=self.connect_timeout)
                except ValueError as exc:  # smbprotocol's wrapper of the socket error
                    raise self._unavailable(exc) from None
                self._cache[f"{self.server.lower()}:{self.port}"] = conn
                self._connection = conn
                if self.encrypt == "required" and not conn.supports_encryption:
                    raise SMBSecurityUnavailable(
                        self.host,
                        f"SMB encryption is required but {self._where} does not offer it "
                        f"(dialect {self.dialect}; needs SMB 3 with encryption enabled)",
                        feature="encryption",
                    )
                want_encryption = self.encrypt == "required" or (
                    self.encrypt == "auto" and bool(conn.supports_encryption)
                )
                dog.kick()
                self._session = smbclient.register_session(
                    self.server,
                    username=self.username,
                    password=self.__password,
                    port=self.port,
                    encrypt=want_encryption,
                    connection_timeout=self.connect_timeout,
                    connection_cache=self._cache,
                    auth_protocol=self.auth_protocol,
                    require_signing=True,
                )
                dog.kick()
                self._tree(self.share)
                self._prefetch_credits(conn)
        except BaseException:
            self.close()
            raise

    def _prefetch_credits(self, conn: Connection) -> None:
        """Ask for the credits of `pipeline` full-size requests now, with one ECHO: the logon
        leaves 64 (4 MiB), so the first requests of a transfer would otherwise be smaller."""
        if not conn.supports_multi_credit:
            return
        full = (max(conn.max_write_size, conn.max_read_size) - 1) // MAX_PAYLOAD_SIZE + 1
        want = self.pipeline * full + 1
        available = conn.sequence_window["high"] - conn.sequence_window["low"]
        if available < want:
            conn.echo(
                sid=self._session.session_id,
                timeout=self.connect_timeout,
                credit_request=want - available,
            )

    def close(self) -> None:
        """Log off and disconnect; never raises, never hangs on a dead server."""
        conn = self._connection
        self._session = None
        self._trees.clear()
        self._connection = None
        if conn is None:
            self._cache.clear()
            return
        try:
            with _Watchdog(min(self.connect_timeout, 5.0), lambda: _shutdown(conn)):
                smbclient.delete_session(
                    self.server, port=self.port, connection_cache=self._cache, timeout=5
                )
        except Exception:  # noqa: BLE001 - closing must not fail the step that ran before it
            pass
        with contextlib.suppress(Exception):
            conn.transport.close()
        self._cache.clear()

    @property
    def is_open(self) -> bool:
        return self._session is not None

    @property
    def dialect(self) -> str:
        conn = self._connection
        return _DIALECTS.get(conn.dialect, hex(conn.dialect)) if conn and conn.dialect else "?"

    @property
    def encrypted(self) -> bool:
        """True when messages on this session (or the share) are SMB3-encrypted."""
        if self._session is None:
            return False
        return bool(self._session.encrypt_data) or any(
            bool(t.encrypt_data) for t in self._trees.values()
        )

    @property
    def signed(self) -> bool:
        """True when every message is signed, or encrypted (which also authenticates it)."""
        if self._session is None:
            return False
        return self.encrypted or bool(self._session.signing_required and self._session.signing_key)

    @property
    def cipher(self) -> str | None:
        conn = self._connection
        if not self.encrypted or conn is None:
            return None
        if conn.dialect >= Dialects.SMB_3_1_1:
            return _CIPHERS.get(conn.cipher_id, str(conn.cipher_id))
        return "AES-128-CCM"  # the only cipher of SMB 3.0 / 3.0.2

    @property
    def max_write_size(self) -> int:
        return self._conn().max_write_size

    @property
    def max_read_size(self) -> int:
        return self._conn().max_read_size

    def describe(self) -> str:
        """One line for logs: dialect and protection, e.g. "SMB 3.1.1, encrypted AES-128-GCM"."""
        if self._session is None:
            return "not connected"
        if self.encrypted:
            return f"SMB {self.dialect}, encrypted {self.cipher}"
        return f"SMB {self.dialect}, signed" if self.signed else f"SMB {self.dialect}, unsigned"

    def _conn(self) -> Connection:
        if self._connection is None or self._session is None:
            raise SMBError(self.host, "SMB transfer is not open")
        return self._connection

    def _tree(self, share: str) -> TreeConnect:
        """Our own tree connect per share: smbclient would turn a missing share into a DFS
        lookup and report STATUS_NOT_FOUND; this reports BAD_NETWORK_NAME as such."""
        key = share.lower()
        tree = self._trees.get(key)
        if tree is not None:
            return tree
        self._conn()
        tree = TreeConnect(self._session, f"\\\\{self.server}\\{share}")
        try:
            tree.connect(require_secure_negotiate=True)
        except SMBResponseException as exc:
            raise self._classify(exc, "connect to share", f"\\\\{self.server}\\{share}") from None
        self._trees[key] = tree
        return tree

    # -- paths -------------------------------------------------------------------------

    def unc(self, *parts: str) -> str:
        r"""\\server\share\part\... in the configured share."""
        return "\\\\" + "\\".join([self.server, self.share, *parts])

    def _split(self, remote: str) -> tuple[str, list[str]]:
        text = str(remote).replace("/", "\\")
        if not text.startswith("\\\\"):
            raise SMBPathRefused(self.host, f"not a UNC path (\\\\server\\share\\...): {remote!r}")
        server, _, rest = text[2:].partition("\\")
        parts = [p for p in rest.split("\\") if p not in ("", ".")]
        if server.lower() != self.server.lower():
            raise SMBPathRefused(
                self.host, f"{remote!r} names server {server!r}, this transfer serves {self.server}"
            )
        if not parts:
            raise SMBPathRefused(self.host, f"no share in {remote!r}")
        if ".." in parts:
            raise SMBPathRefused(self.host, f"'..' could leave the share: {remote!r}")
        bad = [p for p in parts if _BAD_NAME_CHARS & set(p)]
        if bad:
            raise SMBPathRefused(self.host, f"invalid characters in {bad[0]!r} of {remote!r}")
        return parts[0], parts[1:]

    def _resolve(self, remote: str) -> str:
        """Checked, normalised UNC path, its share connected (so errors are classified)."""
        share, parts = self._split(remote)
        tree = self._tree(share)
        return "\\".join([tree.share_name, *parts])

    # -- errors ------------------------------------------------------------------------

    def _unavailable(self, exc: BaseException) -> SMBUnavailable:
        cause = exc.__cause__ or exc
        text = str(exc)
        if isinstance(cause, ConnectionRefusedError):
            reason, why = "refused", "connection refused (port closed)"
        elif isinstance(cause, TimeoutError) or "timed out" in text:
            reason = "timeout"
            why = f"no answer within {self.connect_timeout:g}s (filtered by a firewall?)"
        elif isinstance(cause, OSError) and cause.errno is not None:
            reason, why = "unreachable", cause.strerror or text
        else:
            reason, why = "error", text
        return SMBUnavailable(self.host, f"SMB port {self._where}: {why}", reason=reason)

    @contextlib.contextmanager
    def _guard(
        self, what: str, seconds: float | None = None, conn: Connection | None = None
    ) -> Iterator[_Watchdog]:
        """Run one operation under a watchdog and turn whatever smbprotocol raises into a
        classified SMBError naming the host and the operation."""
        conn = conn or self._connection
        dog = _Watchdog(seconds or self.timeout, lambda: _shutdown(conn))
        try:
            with dog:
                yield dog
        except SMBError:
            raise
        except Exception as exc:
            if dog.expired:
                self.close()
                raise SMBTimeout(
                    self.host,
                    f"{what}: {self._where} did not answer within {dog.seconds:g}s; "
                    "connection closed",
                ) from None
            if isinstance(exc, SMBConnectionClosed | ConnectionError):
                self.close()
                raise SMBError(self.host, f"{what}: connection to {self._where} lost") from None
            error = self._classify(exc, what)
            if conn is not None and not conn.transport.connected:
                self.close()  # e.g. after a bad signature smbprotocol dropped the connection
            raise error from None

    def _classify(self, exc: BaseException, what: str, path: str | None = None) -> SMBError:
        where = f"{what} {path}" if path else what
        status = getattr(exc, "ntstatus", None)
        if status is None and isinstance(exc, SMBResponseException):
            status = exc.status
        if status in _LOGON_STATUSES:
            return SMBLogonFailure(
                self.host,
                f"SMB logon as {self.username!r} at {self._where} failed: "
                f"{_LOGON_STATUSES[status]}",
            )
        if status in _ACCESS_DENIED:
            hint = ""
            share = (path or "").lstrip("\\").split("\\")[1:2]
            if share and share[0].endswith("$"):
                hint = f"; {UAC_HINT}"
            return SMBAccessDenied(self.host, f"{where}: access denied for {self.username!r}{hint}")
        if status == NtStatus.STATUS_BAD_NETWORK_NAME:
            return SMBShareNotFound(self.host, f"{where}: {self._where} has no such share")
        if status in _NOT_FOUND:
            return SMBNotFound(self.host, f"{where}: no such file or folder")
        if status == NtStatus.STATUS_DISK_FULL:
            return SMBError(self.host, f"{where}: the host's disk is full")
        if status == NtStatus.STATUS_SHARING_VIOLATION:
            return SMBError(self.host, f"{where}: the file is in use by another process")
        text = str(exc)
        if isinstance(exc, SMBAuthenticationError):
            return SMBLogonFailure(
                self.host, f"SMB logon as {self.username!r} at {self._where} failed: {text}"
            )
        if "encryption is required" in text:
            return SMBSecurityUnavailable(
                self.host,
                f"SMB encryption is required but {self._where} does not offer it",
                feature="encryption",
            )
        if "as a guest" in text or "without a session signing key" in text:
            return SMBSecurityUnavailable(
                self.host,
                f"SMB signing is required but {self._where} logged us on as guest "
                "(wrong user name?), which cannot sign",
                feature="signing",
            )
        if "signature could not be verified" in text:
            return SMBError(
                self.host,
                f"{where}: a message from {self._where} failed its signature check "
                "(altered on the network, or a faulty server); connection dropped",
            )
        if "Connection timeout" in text:
            return SMBTimeout(self.host, f"{where}: {self._where} did not answer in time")
        if status is not None:
            return SMBError(self.host, f"{where}: {_status_text(exc, status)}")
        return SMBError(self.host, f"{where}: {type(exc).__name__}: {text}")

    # -- file transfer -----------------------------------------------------------------

    def put(self, local: Path, remote: str, *, verify: bool = True) -> str:
        """Copy a local file to `remote` (overwritten); return the SHA-256 of what was sent.

        verify=True reads the file back over SMB and compares hashes (SMBVerifyFailed).
        """
        try:
            src = open(local, "rb")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            raise SMBError(self.host, f"put: cannot read {local}: {exc.strerror}") from None
        digest = hashlib.sha256()
        pipe = _Pipe()
        start = time.monotonic()
        with src, self._guard(f"put {remote}") as dog:
            unc = self._resolve(remote)
            raw = smbclient.open_file(unc, "wb", buffering=0, share_access="r", **self._kwargs())
            done = False
            try:
                fd = raw.fd
                conn = fd.connection
                # One buffer of the negotiated size: the file is streamed, never read whole.
                buf = bytearray(conn.max_write_size)
                view = memoryview(buf)
                offset = 0
                while n := src.readinto(buf):
                    digest.update(view[:n])
                    pos = 0
                    while pos < n:
                        if len(pipe.inflight) >= self.pipeline:
                            self._write_done(pipe, dog)
                        size, credits = _chunk(conn, n - pos, conn.max_write_size, self.pipeline)
                        if size < min(n - pos, conn.max_write_size) and pipe.inflight:
                            self._write_done(pipe, dog)  # its response brings more credits
                            continue
                        # bytes() copies the chunk, so the buffer can be refilled at once.
                        msg, receive = fd.write(bytes(view[pos : pos + size]), offset, send=False)
                        pipe.send(fd, msg, receive, size, credits)
                        pos += size
                        offset += size
                while pipe.inflight:
                    self._write_done(pipe, dog)
                done = True
            finally:
                _close_open(raw, done)
        sha = digest.hexdigest()
        stats = TransferStats(
            "put", unc, offset, sha, time.monotonic() - start, pipe.requests, pipe.largest
        )
        if verify:
            t0 = time.monotonic()
            remote_sha = self._read(unc, None)[1]
            stats = replace(stats, verified=True, verify_seconds=time.monotonic() - t0)
            if remote_sha != sha:
                self.last = stats
                raise SMBVerifyFailed(
                    self.host,
                    f"put {unc}: read back SHA-256 {remote_sha[:16]}... differs from the "
                    f"{sha[:16]}... sent",
                )
        self.last = stats
        return sha

    def _write_done(self, pipe: _Pipe, dog: _Watchdog) -> None:
        request, receive, size = pipe.inflight.popleft()
        written = receive(request)
        if written != size:  # SMB2 writes all or fail; a short write would leave a hole
            raise SMBError(self.host, f"write: the server wrote {written} of {size} bytes")
        dog.kick()

    def get(self, remote: str, local: Path) -> str:
        """Copy `remote` to `local` (written to a temp file, then renamed into place);
        return its SHA-256."""
        local = Path(local)
        start = time.monotonic()
        try:
            fd_tmp, tmp_name = tempfile.mkstemp(prefix=f".{local.name}.", dir=local.parent)
        except OSError as exc:
            raise SMBError(
                self.host, f"get: cannot write in {local.parent}: {exc.strerror}"
            ) from None
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd_tmp, "wb") as out:
                unc, sha, size, requests, largest = self._read(remote, out.write)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, local)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self.last = TransferStats(
            "get", unc, size, sha, time.monotonic() - start, requests, largest
        )
        return sha

    def sha256(self, remote: str) -> str:
        """SHA-256 of a remote file, read over SMB (nothing is written locally)."""
        return self._read(remote, None)[1]

    def _read(
        self, remote: str, sink: Callable[[bytes], object] | None
    ) -> tuple[str, str, int, int, int]:
        """Stream a remote file in max_read_size requests, `pipeline` in flight:
        (unc, sha256, size, requests, largest request)."""
        digest = hashlib.sha256()
        pipe = _Pipe()
        with self._guard(f"read {remote}") as dog:
            unc = self._resolve(remote)
            raw = smbclient.open_file(unc, "rb", buffering=0, share_access="r", **self._kwargs())
            done = False
            try:
                fd = raw.fd
                conn = fd.connection
                size = fd.end_of_file  # what is there now; a file still growing is cut here
                sent = received = 0
                while received < size:
                    while sent < size and len(pipe.inflight) < self.pipeline:
                        length, credits = _chunk(
                            conn, size - sent, conn.max_read_size, self.pipeline
                        )
                        if length < min(size - sent, conn.max_read_size) and pipe.inflight:
                            break  # wait for credits from the responses
                        msg, receive = fd.read(sent, length, send=False)
                        pipe.send(fd, msg, receive, length, credits)
                        sent += length
                    if not pipe.inflight:
                        break
                    request, receive, length = pipe.inflight.popleft()
                    try:
                        data = receive(request)
                    except EndOfFile:
                        data = b""
                    dog.kick()
                    digest.update(data)
                    if sink is not None:
                        sink(data)
                    received += len(data)
                    if len(data) < length:  # shrank or short read: re-ask from here, in order
                        for request, receive, _ in pipe.inflight:
                            with contextlib.suppress(SMBResponseException):
                                receive(request)
                        pipe.inflight.clear()
                        if not data:
                            break
                        sent = received
                done = True
            finally:
                _close_open(raw, done)
        return unc, digest.hexdigest(), received, pipe.requests, pipe.largest

    # -- folders -----------------------------------------------------------------------

    def makedirs(self, remote: str, exist_ok: bool = True) -> None:
        with self._guard(f"makedirs {remote}"):
            unc = self._resolve(remote)
            smbclient.makedirs(unc, exist_ok=exist_ok, **self._kwargs())

    def rmtree(self, remote: str, missing_ok: bool = True) -> None:
        """Remove a folder and everything in it."""
        with self._guard(f"rmtree {remote}"):
            unc = self._resolve(remote)
            if unc.count("\\") < 4:
                raise SMBPathRefused(self.host, f"refusing to remove a whole share: {unc}")
            try:
                smbshutil.rmtree(unc, **self._kwargs())
            except SMBOSError as exc:
                if not (missing_ok and exc.ntstatus in _NOT_FOUND):
                    raise

    def remove(self, remote: str, missing_ok: bool = False) -> None:
        """Remove one file."""
        with self._guard(f"remove {remote}"):
            unc = self._resolve(remote)
            try:
                smbclient.remove(unc, **self._kwargs())
            except SMBOSError as exc:
                if not (missing_ok and exc.ntstatus in _NOT_FOUND):
                    raise

    def exists(self, remote: str) -> bool:
        with self._guard(f"stat {remote}"):
            unc = self._resolve(remote)
            try:
                smbclient.stat(unc, **self._kwargs())
            except SMBOSError as exc:
                if exc.ntstatus in _NOT_FOUND:
                    return False
                raise
        return True

    def listdir(self, remote: str) -> list[str]:
        """Names in a remote folder, sorted."""
        with self._guard(f"listdir {remote}"):
            unc = self._resolve(remote)
            return sorted(smbclient.listdir(unc, **self._kwargs()))


class _Pipe:
    """READ or WRITE requests in flight, oldest first, and what they moved."""

    def __init__(self) -> None:
        self.inflight: deque[tuple[Any, Callable[[Any], Any], int]] = deque()
        self.requests = 0
        self.largest = 0

    def send(
        self, fd: Any, msg: Any, receive: Callable[[Any], Any], size: int, credits: int
    ) -> None:
        request = fd.connection.send(
            msg,
            sid=fd.tree_connect.session.session_id,
            tid=fd.tree_connect.tree_connect_id,
            credit_request=credits,
        )
        self.inflight.append((request, receive, size))
        self.requests += 1
        self.largest = max(self.largest, size)


def _chunk(conn: Connection, length: int, max_size: int, depth: int) -> tuple[int, int]:
    """Bytes for the next READ/WRITE (up to the negotiated maximum, within the credits we
    hold) and the credits to ask for, so that `depth` full-size requests stay possible."""
    if not conn.supports_multi_credit:  # SMB 2.0.2: one credit, max sizes of 64 KiB
        return min(length, max_size), 1
    available = conn.sequence_window["high"] - conn.sequence_window["low"]
    size = min(length, max_size, max(available, 1) * MAX_PAYLOAD_SIZE)
    charge = (size - 1) // MAX_PAYLOAD_SIZE + 1
    full = (max_size - 1) // MAX_PAYLOAD_SIZE + 1
    return size, charge + max(0, depth * full - (available - charge))


def _close_open(raw: Any, done: bool) -> None:
    """Close a file handle; after a failure quietly, so the first error is the one reported."""
    if done:
        raw.close()
    elif raw.fd.connected:
        with contextlib.suppress(Exception):
            raw.close()


def _shutdown(conn: Connection | None) -> None:
    """Wake everything waiting on this connection (called from the watchdog thread)."""
    if conn is None:
        return
    # Without a recorded failure smbprotocol's receive() would find a None response.
    conn._t_exc = SMBConnectionClosed("SMB operation timed out")
    sock = getattr(getattr(conn, "transport", None), "_sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _status_text(exc: BaseException, status: int) -> str:
    name = next((k for k, v in vars(NtStatus).items() if v == status), None)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({name or hex(status)})"
    return name or f"NTSTATUS {status:#010x}"


__all__ = [
    "ENCRYPT_MODES",
    "UAC_HINT",
    "EncryptMode",
    "SMBAccessDenied",
    "SMBError",
    "SMBLogonFailure",
    "SMBNotFound",
    "SMBPathRefused",
    "SMBSecurityUnavailable",
    "SMBShareNotFound",
    "SMBTimeout",
    "SMBTransfer",
    "SMBUnavailable",
    "SMBVerifyFailed",
    "TransferStats",
]
