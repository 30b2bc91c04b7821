"""Commands that move a file's bytes through a command's stdin and stdout, per host dialect.

Used by the WinRM connection when SMB cannot be used (port 445 closed, admin share refused):
the file is streamed into a command's stdin, and back from its stdout, and its SHA-256 is
then computed on the host and compared. A POSIX shell passes bytes through as they are; on
Windows, WinRM's console stdin is text, so the bytes travel as base64 lines, written to a
file by `findstr "^"` and decoded by `certutil -decode`; back, `certutil -encode` and `type`.
Only cmd.exe built-ins and tools on every Windows since XP / Server 2003: no PowerShell.
"""

from __future__ import annotations

import base64
import re
import shlex
from abc import ABC, abstractmethod

_HEX64 = re.compile(rb"\b([0-9a-fA-F]{64})\b")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/=]")


def parse_sha256(stdout: bytes) -> str | None:
    """The first 64-hex-digit word of a command's output, lower case."""
    found = _HEX64.search(stdout)
    return found.group(1).decode("ascii").lower() if found else None


class RemoteFiles(ABC):
    """One dialect. ``chunk`` is how many file bytes go into one stdin message."""

    @abstractmethod
    def receive(self, path: str) -> str:
        """A command that creates ``path`` (it must not exist) from its stdin."""

    @abstractmethod
    def send(self, path: str) -> str:
        """A command that writes the file at ``path`` to its stdout."""

    def parse_sha256(self, stdout: bytes) -> str | None:
        """The digest in what the `sha256` command printed."""
        return parse_sha256(stdout)

    @abstractmethod
    def sha256(self, path: str) -> str:
        """A command that prints the SHA-256 of the file at ``path`` in hex."""

    @abstractmethod
    def encode(self, data: bytes) -> bytes:
        """File bytes as the receiving command reads them from stdin."""

    @abstractmethod
    def decoder(self) -> StreamDecoder:
        """Turns what ``send`` prints back into file bytes, piece by piece."""


class StreamDecoder:
    """Identity: POSIX ``cat`` prints the bytes themselves."""

    def feed(self, data: bytes) -> bytes:
        return data

    def end(self) -> bytes:
        return b""


class _Base64Lines(StreamDecoder):
    """Base64 text in lines that may arrive split anywhere; certutil's
    ``-----BEGIN CERTIFICATE-----`` / ``-----END CERTIFICATE-----`` lines are skipped."""

    def __init__(self) -> None:
        self.pending = b""  # an incomplete line
        self.text = b""  # base64 characters not yet decoded (fewer than 4, or 4n)

    def _decode(self, lines: bytes, final: bool) -> bytes:
        for line in lines.split(b"\n"):
            if not line.strip().startswith(b"-----"):
                self.text += _NOT_BASE64.sub(b"", line)
        cut = len(self.text) if final else len(self.text) - len(self.text) % 4
        block, self.text = self.text[:cut], self.text[cut:]
        return base64.b64decode(block) if block else b""

    def feed(self, data: bytes) -> bytes:
        self.pending += data
        complete, _, self.pending = self.pending.rpartition(b"\n")
        return self._decode(complete, False) if complete else b""

    def end(self) -> bytes:
        rest, self.pending = self.pending, b""
        return self._decode(rest, True)


class PosixFiles(RemoteFiles):
    def receive(self, path: str) -> str:
        # noclobber: never write into something that already exists (a planted symlink).
        return f"umask 077 && set -C && cat > {shlex.quote(path)}"

    def send(self, path: str) -> str:
        return f"cat -- {shlex.quote(path)}"

    def sha256(self, path: str) -> str:
        return f"sha256sum -- {shlex.quote(path)}"

    def encode(self, data: bytes) -> bytes:
        return data

    def decoder(self) -> StreamDecoder:
        return StreamDecoder()


def _cmd_quote(path: str) -> str:
    """``path`` in double quotes for cmd.exe, refusing what quotes do not protect."""
    if any(c in path for c in '"%\r\n') or not path:
        raise ValueError(f"refusing a path cmd.exe would change: {path!r}")
    return f'"{path}"'


class WindowsFiles(RemoteFiles):
    """cmd.exe command lines using only built-ins, findstr and certutil (on every Windows
    since XP / Server 2003). Not run against a real Windows host here (there is none): they
    run against the cmd.exe emulator of the tests (tests/winrm_server/cmd_shell.py).

    Each line is cmd syntax with its traps in mind: an IF takes the rest of the line, so
    every IF is in parentheses; ``&`` < ``||`` < ``&&`` in precedence; every failure ends the
    line with ``exit N`` (N > 0), the success path with ``exit 0``. The temporary
    ``PATH.b64`` is next to ``PATH`` (so inside the session's temp dir) and removed on
    failure too.
    """

    def receive(self, path: str) -> str:
        """stdin's base64 lines -> ``PATH.b64`` (``findstr "^"`` prints every line of its
        stdin) -> ``certutil -decode`` -> ``PATH``, never overwriting: PATH or PATH.b64
        existing ends the line with 80 (ERROR_FILE_EXISTS), and certutil -decode itself
        refuses an existing output file (no -f).

        An empty file: certutil -decode fails on empty input, so when ``PATH.b64`` has no line
        (``findstr "^" PATH.b64`` finds none; findstr also fails on its empty stdin, which is
        why that failure counts only when PATH.b64 was not created) ``type nul > PATH``
        creates it, after the `if exist` check above (cmd's `>` cannot refuse an existing
        file itself)."""
        p, b = _cmd_quote(path), _cmd_quote(path + ".b64")
        return (
            f"(if exist {p} (1>&2 echo {p} already exists& exit 80))"
            f" & (if exist {b} (1>&2 echo {b} already exists& exit 80))"
            f' & (findstr "^" > {b} || if not exist {b} exit 1)'
            f' & (findstr "^" {b} > nul && (certutil -decode {b} {p} 1>&2 || (del {b} & exit 1))'
            f" || (type nul > {p} || (del {b} & exit 1)))"
            f" & del {b} & (if exist {b} exit 1) & exit 0"
        )

    def send(self, path: str) -> str:
        """``certutil -encode PATH PATH.b64`` (its messages to stderr), ``type PATH.b64``
        (BEGIN/END CERTIFICATE lines around 64-character lines, which the decoder skips),
        then PATH.b64 removed, on failure too."""
        p, b = _cmd_quote(path), _cmd_quote(path + ".b64")
        return (
            f"(if exist {b} (1>&2 echo {b} already exists& exit 80))"
            f" & (certutil -encode {p} {b} 1>&2 || (del {b} 2>nul & exit 1))"
            f" & (type {b} || (del {b} & exit 1))"
            f" & del {b} & (if exist {b} exit 1) & exit 0"
        )

    def sha256(self, path: str) -> str:
        # certutil: it is on every Windows since XP, and a pushed file can be checked on
        # hosts that block PowerShell.
        return f"certutil -hashfile {_cmd_quote(path)} SHA256"

    def parse_sha256(self, stdout: bytes) -> str | None:
        """certutil prints a header line naming the file, then the digest: as 32 hex bytes
        apart on Windows 7 / 2008 R2, as one word on later versions."""
        for line in stdout.decode("utf-8", "replace").splitlines():
            digest = line.replace(" ", "").strip().lower()
            if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
                return digest
        return None

    def encode(self, data: bytes) -> bytes:
        # 76-character CRLF lines, as base64(1) writes them: far below findstr's line limit.
        text = base64.b64encode(data)
        return b"".join(text[i : i + 76] + b"\r\n" for i in range(0, len(text), 76))

    def decoder(self) -> StreamDecoder:
        return _Base64Lines()


def for_shell(shell_type: str) -> RemoteFiles:
    return PosixFiles() if shell_type == "sh" else WindowsFiles()
