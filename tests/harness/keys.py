"""SSH keys for the fleet: host keys, the controller's client key, known_hosts.

Keys are generated in-process with `cryptography` (a paramiko dependency): about
1000x faster than forking ssh-keygen per host. They are kept in the state folder
and reused between runs so host identities stay stable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path

    @property
    def public_line(self) -> str:
        """`ssh-ed25519 AAAA...` without a comment."""
        return " ".join(self.public.read_text().split()[:2])


def _write_private(path: Path, data: bytes) -> None:
    # sshd and ssh refuse private keys readable by others.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def ensure_ed25519(private: Path, comment: str) -> KeyPair:
    """Load or create an ed25519 key pair at `private` (+ `.pub`)."""
    public = private.with_name(private.name + ".pub")
    if private.is_file() and public.is_file():
        return KeyPair(private, public)
    private.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    _write_private(
        private,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ),
    )
    pub = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    public.write_text(pub.decode() + f" {comment}\n")
    return KeyPair(private, public)


def write_known_hosts(path: Path, entries: list[tuple[str, str, KeyPair]]) -> Path:
    """One line per host: `ADDR,NAME ssh-ed25519 KEY` (port 22, so no brackets)."""
    lines = [f"{addr},{name} {pair.public_line}" for addr, name, pair in entries]
    path.write_text("\n".join(lines) + "\n")
    return path
