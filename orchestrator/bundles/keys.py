"""Ed25519 signing keys: minisign public keys, and a simple secret-key file of ours.

Secret-key file (mode 0600, never encrypted: keep it on the offline build machine)::

    plantsweep secret key: <comment>
    key id: <16 hex digits, as minisign prints it>
    -----BEGIN PRIVATE KEY-----
    <PKCS#8 PEM of the Ed25519 key>
    -----END PRIVATE KEY-----

The public key file is minisign's own format, so ``minisign -V -p KEY.pub`` accepts it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from orchestrator.bundles import minisig
from orchestrator.bundles.errors import BundleError

SECRET_HEADER = "plantsweep secret key: "
KEY_ID_LINE = "key id: "


@dataclass(frozen=True)
class PublicKey:
    key_id: bytes  # 8 bytes, as in the minisign key and signatures
    raw: bytes  # 32-byte Ed25519 public key

    @property
    def key_id_hex(self) -> str:
        return minisig.key_id_hex(self.key_id)


@dataclass(frozen=True)
class SecretKey:
    key_id: bytes
    private: Ed25519PrivateKey

    @property
    def key_id_hex(self) -> str:
        return minisig.key_id_hex(self.key_id)


def _write_new(path: Path, text: str, mode: int) -> None:
    # O_EXCL: never overwrite a key (losing a signing key is not recoverable); O_NOFOLLOW so a
    # planted symlink cannot redirect the secret key elsewhere.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text)


def generate_keypair(
    secret_path: Path, public_path: Path, comment: str = "plantsweep pattern bundles"
) -> PublicKey:
    """Create a new key pair; refuses to overwrite existing files."""
    secret_path, public_path = Path(secret_path), Path(public_path)
    for path in (secret_path, public_path):
        if path.exists() or path.is_symlink():
            raise BundleError("refusing to overwrite an existing key file", path=str(path))
    if "\n" in comment or "\r" in comment:
        raise BundleError("key comment must be a single line")
    private = Ed25519PrivateKey.generate()
    key_id = os.urandom(minisig.KEY_ID_LEN)
    raw_public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    hex_id = minisig.key_id_hex(key_id)
    _write_new(secret_path, f"{SECRET_HEADER}{comment}\n{KEY_ID_LINE}{hex_id}\n{pem}", 0o600)
    _write_new(
        public_path,
        minisig.format_public_key(key_id, raw_public, f"minisign public key {hex_id} {comment}"),
        0o644,
    )
    return PublicKey(key_id, raw_public)


def _read_text(path: Path, what: str) -> str:
    try:
        return Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"cannot read {what}: {exc}", path=str(path)) from exc


def load_public_key(path: Path) -> PublicKey:
    text = _read_text(path, "public key")
    try:
        key_id, raw = minisig.parse_public_key(text)
    except minisig.SignatureFormatError as exc:
        raise BundleError(str(exc), path=str(path)) from exc
    return PublicKey(key_id, raw)


def load_secret_key(path: Path) -> SecretKey:
    text = _read_text(path, "secret key")
    header, _, rest = text.partition("\n")
    id_line, _, pem = rest.partition("\n")
    if not header.startswith(SECRET_HEADER) or not id_line.startswith(KEY_ID_LINE):
        raise BundleError("not a plantsweep secret key file", path=str(path))
    try:
        key_id = int(id_line[len(KEY_ID_LINE) :], 16).to_bytes(minisig.KEY_ID_LEN, "little")
        private = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, OverflowError) as exc:
        raise BundleError(f"malformed secret key: {exc}", path=str(path)) from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise BundleError("secret key is not an Ed25519 key", path=str(path))
    return SecretKey(key_id, private)
