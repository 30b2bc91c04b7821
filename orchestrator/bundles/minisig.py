"""minisign-compatible keys and signatures (Ed25519, prehashed "ED" signatures).

Formats (https://jedisct1.github.io/minisign/), all base64 lines after a comment line:

    public key:  "untrusted comment: ..." / b64(b"Ed" + key_id[8] + public_key[32])
    signature:   "untrusted comment: ..." / b64(b"ED" + key_id[8] + sig[64])
                 "trusted comment: <text>" / b64(global_sig[64])

``sig`` is Ed25519 over BLAKE2b-512(file) and ``global_sig`` is Ed25519 over
``sig + <text>``, so the trusted comment is authenticated too. The key id is 8 random bytes;
minisign prints it as the little-endian 64-bit integer in upper-case hex (``key_id_hex``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

UNTRUSTED = "untrusted comment: "
TRUSTED = "trusted comment: "
PK_ALG = b"Ed"
SIG_ALG_PREHASHED = b"ED"
KEY_ID_LEN = 8
MAX_COMMENT = 1024  # minisign's own limit on a comment line


class SignatureFormatError(ValueError):
    """The text is not a well-formed minisign key or signature."""


def key_id_hex(key_id: bytes) -> str:
    """The key id as minisign prints it (``minisign -V`` errors, ``.pub`` comments)."""
    return f"{int.from_bytes(key_id, 'little'):016X}"


@dataclass(frozen=True)
class Signature:
    key_id: bytes
    signature: bytes  # Ed25519 over BLAKE2b-512(message)
    trusted_comment: str
    global_signature: bytes  # Ed25519 over signature + trusted_comment


def _b64(line: str, expected_len: int, what: str) -> bytes:
    try:
        raw = base64.b64decode(line.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureFormatError(f"{what}: not base64") from exc
    if len(raw) != expected_len:
        raise SignatureFormatError(f"{what}: {len(raw)} bytes, expected {expected_len}")
    return raw


def _comment_line(text: str) -> str:
    # A newline would end the comment early and shift every following line.
    if "\n" in text or "\r" in text or len(text) > MAX_COMMENT:
        raise ValueError("comment must be one line of at most 1024 characters")
    return text


def format_public_key(key_id: bytes, raw_public: bytes, comment: str) -> str:
    body = base64.b64encode(PK_ALG + key_id + raw_public).decode("ascii")
    return f"{UNTRUSTED}{_comment_line(comment)}\n{body}\n"


def parse_public_key(text: str) -> tuple[bytes, bytes]:
    """``(key_id, raw_public_key)`` from minisign's public-key file text."""
    lines = text.splitlines()
    # minisign also accepts the bare base64 line (``-P``); a file always has the comment.
    if len(lines) < 2 or not lines[0].startswith(UNTRUSTED):
        raise SignatureFormatError("not a minisign public key (no untrusted comment line)")
    raw = _b64(lines[1], 2 + KEY_ID_LEN + 32, "public key")
    if raw[:2] != PK_ALG:
        raise SignatureFormatError("public key: unsupported algorithm")
    return raw[2 : 2 + KEY_ID_LEN], raw[2 + KEY_ID_LEN :]


def sign(message: bytes, private: Ed25519PrivateKey, key_id: bytes, trusted_comment: str) -> str:
    """The text of a ``.minisig`` file for ``message`` (prehashed, as ``minisign -S``)."""
    trusted_comment = _comment_line(trusted_comment)
    sig = private.sign(hashlib.blake2b(message, digest_size=64).digest())
    global_sig = private.sign(sig + trusted_comment.encode("utf-8"))
    return (
        f"{UNTRUSTED}signature from plantsweep secret key {key_id_hex(key_id)}\n"
        f"{base64.b64encode(SIG_ALG_PREHASHED + key_id + sig).decode('ascii')}\n"
        f"{TRUSTED}{trusted_comment}\n"
        f"{base64.b64encode(global_sig).decode('ascii')}\n"
    )


def parse_signature(text: str) -> Signature:
    lines = text.splitlines()
    if len(lines) != 4 or not lines[0].startswith(UNTRUSTED) or not lines[2].startswith(TRUSTED):
        raise SignatureFormatError("not a minisign signature (expected 4 lines with comments)")
    raw = _b64(lines[1], 2 + KEY_ID_LEN + 64, "signature")
    if raw[:2] != SIG_ALG_PREHASHED:
        # Legacy non-prehashed "Ed" signatures are valid minisign but never made by us.
        raise SignatureFormatError("signature: only prehashed (ED) signatures are accepted")
    return Signature(
        key_id=raw[2 : 2 + KEY_ID_LEN],
        signature=raw[2 + KEY_ID_LEN :],
        trusted_comment=lines[2][len(TRUSTED) :],
        global_signature=_b64(lines[3], 64, "global signature"),
    )


def verify(message: bytes, sig: Signature, raw_public: bytes) -> bool:
    """True if both the message signature and the trusted-comment signature verify."""
    key = Ed25519PublicKey.from_public_bytes(raw_public)
    try:
        key.verify(sig.signature, hashlib.blake2b(message, digest_size=64).digest())
        key.verify(sig.global_signature, sig.signature + sig.trusted_comment.encode("utf-8"))
    except InvalidSignature:
        return False
    return True
