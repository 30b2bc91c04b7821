"""The one interface every transport implements (after pyinfra's connector).

A connection serves one host for a whole session: run a command with a timeout, put a file,
get a file. Temp dirs and cleanup proofs are built on these by `orchestrator.session`, so a
transport only moves bytes and runs commands; nothing else imports paramiko.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType


@dataclass(frozen=True)
class CommandResult:
    rc: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def stderr_tail(self, lines: int = 3) -> str:
        text = self.stderr.decode("utf-8", "replace").strip().splitlines()
        return " | ".join(text[-lines:])


@dataclass(frozen=True)
class Timeouts:
    """Seconds allowed per step, so a hung host never stalls a run."""

    connect: float = 10.0
    command: float = 60.0
    transfer: float = 120.0
    scan: float = 3600.0


class Connection(ABC):
    """One host, one connection, reused by every step of a session.

    with SSHConnection(settings) as conn:
        print(conn.run("uname -a", timeout=5).stdout)
    """

    #: The name the user knows the host by (inventory name), used in every message.
    name: str

    @abstractmethod
    def open(self) -> None:
        """Connect and authenticate; raise HostUnreachable with a clear reason."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection; safe to call twice."""

    @abstractmethod
    def run(
        self, command: str, timeout: float, cancel: threading.Event | None = None
    ) -> CommandResult:
        """Run a POSIX shell command; raise StepFailed when it outlives `timeout` or when
        `cancel` is set (Ctrl-C), so a long scan step never holds up a stop."""

    @abstractmethod
    def put(self, local: Path, remote: str, timeout: float) -> None:
        """Copy a controller file to `remote` (an absolute path on the host)."""

    @abstractmethod
    def get(self, remote: str, local: Path, timeout: float) -> None:
        """Copy a host file to `local` on the controller."""

    def describe_transfer(self) -> str | None:
        """How files travel, where a transport has a choice (WinRM: SMB or the shell)."""
        return None

    def __enter__(self) -> Connection:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
