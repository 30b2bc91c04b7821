"""NTLM message encryption of WinRM over HTTP (MS-WSMV 2.2.9.1.1 NegotiateEncryptedMessage).

The body is a two-part MIME-like payload with the boundary "Encrypted Boundary":

    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/HTTP-SPNEGO-session-encrypted\\r\\n
    \\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=<plain length>\\r\\n
    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/octet-stream\\r\\n
    <4-byte little-endian signature length><signature><sealed message>--Encrypted Boundary--\\r\\n

and the HTTP Content-Type is multipart/encrypted;protocol="application/HTTP-SPNEGO-session-
encrypted";boundary="Encrypted Boundary". This mirrors pywinrm 0.5.0 winrm/encryption.py
(_encrypt_message / _decrypt_response, the client side) with pyspnego's server-side
wrap_winrm/unwrap_winrm doing the NTLM sealing (16-byte signature header).
"""

from __future__ import annotations

import re
import struct

import spnego

PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
BOUNDARY = b"--Encrypted Boundary"
CONTENT_TYPE = f'multipart/encrypted;protocol="{PROTOCOL}";boundary="Encrypted Boundary"'
_OCTETS = b"\tContent-Type: application/octet-stream\r\n"
_LENGTH = re.compile(rb"Length=(\d+)")


class SealingError(ValueError):
    """The encrypted body is malformed or does not decrypt."""


def is_sealed(content_type: str | None) -> bool:
    text = (content_type or "").lower()
    return text.startswith("multipart/encrypted") and PROTOCOL.lower() in text


def unseal(context: spnego.ContextProxy, body: bytes) -> bytes:
    parts = [p for p in body.split(BOUNDARY + b"\r\n") if p]
    if len(parts) != 2:
        raise SealingError("expected one header part and one encrypted part")
    header, payload = parts
    match = _LENGTH.search(header)
    if not match:
        raise SealingError("no OriginalContent length")
    if payload.endswith(BOUNDARY + b"--\r\n"):
        payload = payload[: -len(BOUNDARY + b"--\r\n")]
    if not payload.startswith(_OCTETS):
        raise SealingError("no application/octet-stream part")
    payload = payload[len(_OCTETS) :]
    (sig_len,) = struct.unpack("<I", payload[:4])
    signature, sealed = payload[4 : 4 + sig_len], payload[4 + sig_len :]
    try:
        plain = context.unwrap_winrm(signature, sealed)
    except spnego.exceptions.SpnegoError as exc:
        raise SealingError(f"cannot unseal: {exc}") from exc
    if len(plain) != int(match.group(1)):
        raise SealingError("decrypted length differs from OriginalContent")
    return plain


def seal(context: spnego.ContextProxy, plain: bytes) -> bytes:
    wrapped = context.wrap_winrm(plain)
    return (
        BOUNDARY + b"\r\n"
        b"\tContent-Type: " + PROTOCOL.encode() + b"\r\n"
        b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
        + str(len(plain)).encode()
        + b"\r\n"
        + BOUNDARY
        + b"\r\n"
        + _OCTETS
        + struct.pack("<I", len(wrapped.header))
        + wrapped.header
        + wrapped.data
        + BOUNDARY
        + b"--\r\n"
    )
