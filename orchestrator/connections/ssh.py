"""SSH transport (paramiko): one connection per host, reused for every command and transfer."""

from __future__ import annotations

import logging
import select
import threading
import time
from pathlib import Path

import paramiko

from orchestrator.connections.base import CommandResult, Connection, Timeouts
from orchestrator.connections.target import SSHOptions, Target
from orchestrator.errors import HostUnreachable, StepFailed

DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")

# paramiko logs tracebacks for failures we already turn into one clear line per host.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False

# Trust-on-first-use writes to one known_hosts file from many worker threads.
_known_hosts_lock = threading.Lock()


class _TrustOnFirstUse(paramiko.MissingHostKeyPolicy):
    """Accept an unknown key once and record it, so the next run verifies it strictly."""

    def __init__(self, known_hosts: Path):
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey):
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        with _known_hosts_lock:
            self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
            with self.known_hosts.open("a") as fh:
                fh.write(line)
        client.get_host_keys().add(hostname, key.get_name(), key)


CONNECT_RETRIES = 2
RETRY_BACKOFF = 0.5  # seconds, doubled per attempt


class _Transient(HostUnreachable):
    """A connect failure worth another try."""


def is_transient(exc: BaseException) -> bool:
    """A handshake cut short by the server or the network: the connection was reset or closed
    before the SSH banner (paramiko keeps the cause as the exception's context). A timeout is
    not transient: a hung host must not be waited for three times."""
    cause = exc.__context__
    if isinstance(cause, (EOFError, ConnectionResetError, BrokenPipeError)):
        return True
    text = str(exc).lower()
    return "reset by peer" in text or "no existing session" in text


class SSHConnection(Connection):
    """Key or password auth; host keys checked against known_hosts unless TOFU is asked for."""

    def __init__(self, target: Target, options: SSHOptions, timeouts: Timeouts):
        self.name = target.name
        self.target = target
        self.options = options
        self.timeouts = timeouts
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    def open(self) -> None:
        """Connect, retrying with backoff only on errors that say "try again" (a reset during
        the handshake, e.g. sshd's MaxStartups under a burst); never on a refusal, a timeout,
        a host key or an authentication failure."""
        for attempt in range(CONNECT_RETRIES + 1):
            try:
                self._open_once()
                return
            except _Transient as exc:
                if attempt == CONNECT_RETRIES:
                    raise HostUnreachable(
                        self.name, f"{exc.message} (after {attempt + 1} attempts)"
                    ) from None
                time.sleep(RETRY_BACKOFF * 2**attempt)

    def _open_once(self) -> None:
        client = paramiko.SSHClient()
        # As in Ansible, the host's inventory variable wins over the command-line option.
        chosen = self.target.known_hosts or self.options.known_hosts or DEFAULT_KNOWN_HOSTS
        known_hosts = Path(chosen).expanduser()
        if known_hosts.exists():
            try:
                client.load_host_keys(str(known_hosts))
            except (OSError, paramiko.SSHException) as exc:
                raise HostUnreachable(
                    self.name, f"cannot read known_hosts {known_hosts}: {exc}"
                ) from None
        if self.options.trust_on_first_use:
            client.set_missing_host_key_policy(_TrustOnFirstUse(known_hosts))
        else:
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        t = self.target
        where = f"{t.address}:{t.port or 22}"
        try:
            client.connect(
                t.address,
                port=t.port or 22,
                username=t.user,
                password=t.password,
                key_filename=str(Path(t.private_key_file).expanduser())
                if t.private_key_file
                else None,
                # paramiko's `timeout` also bounds the handshake: it must exceed the banner
                # timeout, or a hung host fails with a confusing "No existing session".
                timeout=self.timeouts.connect + 1,
                banner_timeout=self.options.banner_timeout,
                auth_timeout=self.timeouts.connect,
                channel_timeout=self.timeouts.connect,
                allow_agent=False,
                look_for_keys=t.private_key_file is None and t.password is None,
            )
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostUnreachable(
                self.name,
                f"HOST KEY CHANGED for {where} (got {exc.key.get_name()} "
                f"{exc.key.fingerprint}); refusing to connect — check the host, then fix "
                f"{known_hosts}",
            ) from None
        except paramiko.AuthenticationException:
            client.close()
            raise HostUnreachable(
                self.name, f"authentication failed for user {t.user or '(default)'} at {where}"
            ) from None
        except (ConnectionResetError, EOFError) as exc:
            client.close()
            raise _Transient(self.name, f"connection to {where} reset: {exc}") from None
        except paramiko.SSHException as exc:
            client.close()
            text = str(exc)
            if is_transient(exc):
                raise _Transient(self.name, f"{where}: {text}") from None
            if "not found in known_hosts" in text:
                text = (
                    f"host key for {where} is not in {known_hosts}; add it "
                    "(ssh-keyscan) or pass --trust-on-first-use"
                )
            elif "banner" in text.lower():
                text = f"no SSH banner from {where} within {self.options.banner_timeout:g}s"
            raise HostUnreachable(self.name, text) from None
        except paramiko.ssh_exception.NoValidConnectionsError as exc:
            client.close()
            reasons = sorted({e.strerror or str(e) for e in exc.errors.values()})
            raise HostUnreachable(
                self.name, f"cannot connect to {where}: {'; '.join(reasons)}"
            ) from None
        except TimeoutError:
            client.close()
            raise HostUnreachable(
                self.name, f"connection to {where} timed out after {self.timeouts.connect:g}s"
            ) from None
        except OSError as exc:
            client.close()
            raise HostUnreachable(
                self.name, f"cannot connect to {where}: {exc.strerror or exc}"
            ) from None
        self._client = client

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
            self._sftp = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def _transport(self) -> paramiko.Transport:
        transport = self._client.get_transport() if self._client else None
        if transport is None or not transport.is_active():
            raise HostUnreachable(self.name, "connection lost")
        return transport

    def run(
        self, command: str, timeout: float, cancel: threading.Event | None = None
    ) -> CommandResult:
        deadline = time.monotonic() + timeout
        try:
            channel = self._transport().open_session(timeout=self.timeouts.connect)
            channel.exec_command(command)
        except (paramiko.SSHException, OSError) as exc:
            raise HostUnreachable(self.name, f"cannot start a command: {exc}") from None
        out, err = bytearray(), bytearray()
        try:
            # One pipe wakes us for stdout, stderr and EOF; the deadline bounds the whole command.
            while True:
                while channel.recv_ready():
                    out += channel.recv(65536)
                while channel.recv_stderr_ready():
                    err += channel.recv_stderr(65536)
                drained = not channel.recv_ready() and not channel.recv_stderr_ready()
                if channel.exit_status_ready() and channel.eof_received and drained:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StepFailed(self.name, f"command timed out after {timeout:g}s")
                if cancel is not None and cancel.is_set():
                    raise StepFailed(self.name, "cancelled")
                if channel.eof_received:
                    # Output is complete; the exit status follows in its own message.
                    channel.status_event.wait(min(remaining, 0.25))
                else:
                    select.select([channel], [], [], min(remaining, 0.25))
                if not self._transport().is_active():
                    raise HostUnreachable(self.name, "connection lost during a command")
            return CommandResult(channel.recv_exit_status(), bytes(out), bytes(err))
        finally:
            channel.close()

    def _sftp_client(self, timeout: float) -> paramiko.SFTPClient:
        if self._sftp is None:
            try:
                self._sftp = paramiko.SFTPClient.from_transport(self._transport())
            except (paramiko.SSHException, OSError) as exc:
                raise StepFailed(self.name, f"SFTP is not available: {exc}") from None
        self._sftp.get_channel().settimeout(timeout)
        return self._sftp

    def put(self, local: Path, remote: str, timeout: float) -> None:
        try:
            self._sftp_client(timeout).put(str(local), remote)
        except TimeoutError:
            raise StepFailed(
                self.name, f"upload of {local.name} timed out after {timeout:g}s"
            ) from None
        except (OSError, paramiko.SSHException) as exc:
            raise StepFailed(
                self.name, f"upload of {local.name} to {remote} failed: {exc}"
            ) from None

    def get(self, remote: str, local: Path, timeout: float) -> None:
        try:
            self._sftp_client(timeout).get(remote, str(local))
        except TimeoutError:
            raise StepFailed(
                self.name, f"download of {remote} timed out after {timeout:g}s"
            ) from None
        except (OSError, paramiko.SSHException) as exc:
            raise StepFailed(self.name, f"download of {remote} failed: {exc}") from None
