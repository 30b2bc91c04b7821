"""Commands that move a file's bytes through a command's stdin and stdout, per host dialect.

Used by the WinRM connection when SMB cannot be used (port 445 closed, admin share refused):
the file is streamed into a command's stdin, and back from its stdout, and its SHA-256 is
then computed on the host and compared. A POSIX shell passes bytes through as they are; on
Windows, WinRM's console stdin is text, so the bytes travel as base64 lines, decoded by a
PowerShell 2.0-safe script (Windows 7 / Server 2008 R2 have PowerShell 2.0).
"""

from __future__ import annotations

import base64
import re
import shlex
from abc import ABC, abstractmethod

_HEX64 = re.compile(rb"\b([0-9a-fA-F]{64})\b")


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
    """Base64 text in lines that may arrive split anywhere."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> bytes:
        self.pending += data
        complete, _, self.pending = self.pending.rpartition(b"\n")
        return base64.b64decode(b"".join(complete.split())) if complete else b""

    def end(self) -> bytes:
        rest, self.pending = self.pending, b""
        return base64.b64decode(b"".join(rest.split())) if rest.strip() else b""


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


def _ps_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _powershell(script: str) -> str:
    # -EncodedCommand (UTF-16LE base64) keeps cmd.exe's quoting rules out of the script.
    encoded = base64.b64encode(script.encode("utf-16-le")).decode("ascii")
    return (
        "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass "
        f"-EncodedCommand {encoded}"
    )


class WindowsFiles(RemoteFiles):
    """PowerShell 2.0-safe scripts (.NET 2.0 APIs only). Not run against a real Windows host
    here (there is none): see the README's Windows section for what was tested."""

    def receive(self, path: str) -> str:
        return _powershell(
            "$ErrorActionPreference = 'Stop'\n"
            f"$f = [IO.File]::Open({_ps_quote(path)}, 'CreateNew', 'Write', 'None')\n"
            "try {\n"
            "  while (($l = [Console]::In.ReadLine()) -ne $null) {\n"
            "    if ($l.Length) { $b = [Convert]::FromBase64String($l); "
            "$f.Write($b, 0, $b.Length) }\n"
            "  }\n"
            "} finally { $f.Close() }\n"
        )

    def send(self, path: str) -> str:
        return _powershell(
            "$ErrorActionPreference = 'Stop'\n"
            f"$f = [IO.File]::OpenRead({_ps_quote(path)})\n"
            "$buf = New-Object byte[] 196608\n"
            "try {\n"
            "  while (($n = $f.Read($buf, 0, $buf.Length)) -gt 0) {\n"
            "    [Console]::Out.WriteLine([Convert]::ToBase64String($buf, 0, $n))\n"
            "  }\n"
            "} finally { $f.Close() }\n"
        )

    def sha256(self, path: str) -> str:
        # certutil, not PowerShell: it is on every Windows since XP, and a pushed file can be
        # checked on hosts that block PowerShell (files then go over SMB).
        if '"' in path or "%" in path:
            raise ValueError(f"refusing a path cmd.exe would change: {path!r}")
        return f'certutil -hashfile "{path}" SHA256'

    def parse_sha256(self, stdout: bytes) -> str | None:
        """certutil prints a header line naming the file, then the digest: as 32 hex bytes
        apart on Windows 7 / 2008 R2, as one word on later versions."""
        for line in stdout.decode("utf-8", "replace").splitlines():
            digest = line.replace(" ", "").strip().lower()
            if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
                return digest
        return None

    def encode(self, data: bytes) -> bytes:
        # 76-character lines, as certutil and base64(1) write them.
        text = base64.b64encode(data)
        return b"".join(text[i : i + 76] + b"\r\n" for i in range(0, len(text), 76))

    def decoder(self) -> StreamDecoder:
        return _Base64Lines()


def for_shell(shell_type: str) -> RemoteFiles:
    return PosixFiles() if shell_type == "sh" else WindowsFiles()
