"""RFC 5424 syslog messages and their transports: TCP and TLS with RFC 6587/5425 octet-counted
framing (`LEN SP MSG`), or one UDP datagram per message.

    msg = rfc5424(event, cef_line, hostname="ctl-01")
    with SyslogTransport.open("tls://siem:6514", ca="ca.pem") as t:
        t.send_batch([msg, ...])

What "delivered" means here: TCP and TLS have no application acknowledgement, so a batch
counts as accepted once it is written and the socket flushed, and the connection was still up
before it was written (a receiver that closed the connection fails the next batch instead of
swallowing it). A receiver that dies after reading but before writing to disk can still lose
the last batch: that is the limit of plain syslog (RELP would close it). UDP gives no
guarantee at all; use it only where the SIEM offers nothing else.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

from orchestrator.errors import PlantsweepError, UsageError
from orchestrator.siem.events import Event

FACILITY_LOG_AUDIT = 13  # RFC 5424 "log audit": <110> = audit, informational
BOM = "\ufeff"
DEFAULT_SD_ID = "plantsweep@32473"  # 32473 is IANA's example PEN: set your own (--sd-id)


class DeliveryError(PlantsweepError):
    """A receiver is unreachable, refused us, or failed in the middle of an export."""

    exit_code = 2


def _ascii_field(value: str, limit: int) -> str:
    """HOSTNAME/APP-NAME/PROCID/MSGID: printable US-ASCII without spaces, or '-'."""
    cleaned = "".join(c if 33 <= ord(c) <= 126 else "_" for c in value)[:limit]
    return cleaned or "-"


def sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def rfc5424(
    event: Event,
    body: str,
    *,
    hostname: str,
    app_name: str = "plantsweep",
    procid: str | None = None,
    sd_id: str = DEFAULT_SD_ID,
    facility: int = FACILITY_LOG_AUDIT,
    bom: str = "auto",
) -> bytes:
    """`<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG` as UTF-8 bytes.

    `bom`: "always" puts the UTF-8 BOM before MSG (RFC 5424 MSG-UTF8), "never" sends MSG-ANY,
    "auto" (default) only when MSG holds non-ASCII text, since some CEF/LEEF parsers expect
    "CEF:" as the first bytes."""
    pri = facility * 8 + event.syslog_severity
    sd = (
        f'[{sd_id} eventId="{sd_escape(event.event_id)}" kind="{event.kind}" '
        f'auditSeq="{event.seq}"]'
    )
    header = " ".join(
        [
            f"<{pri}>1",
            event.time,
            _ascii_field(hostname, 255),
            _ascii_field(app_name, 48),
            _ascii_field(procid or str(os.getpid()), 128),
            _ascii_field(event.kind, 32),
            sd,
        ]
    )
    use_bom = bom == "always" or (bom == "auto" and not body.isascii())
    return f"{header} {BOM if use_bom else ''}{body}".encode()


def frame(message: bytes) -> bytes:
    """RFC 6587 octet counting: the byte length, a space, the message."""
    return f"{len(message)} ".encode("ascii") + message


@dataclass(frozen=True)
class Endpoint:
    scheme: str  # tcp, tls, udp
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_endpoint(url: str) -> Endpoint:
    """'tcp://host:514', 'tls://host:6514', 'udp://host:514' -> Endpoint."""
    parts = urlsplit(url)
    if parts.scheme not in ("tcp", "tls", "udp") or not parts.hostname:
        raise UsageError(f"--to {url!r}: use tcp://HOST:PORT, tls://HOST:PORT or udp://HOST:PORT")
    try:
        port = parts.port or (6514 if parts.scheme == "tls" else 514)
    except ValueError:
        raise UsageError(f"--to {url!r}: bad port") from None
    return Endpoint(parts.scheme, parts.hostname, port)


def tls_context(
    ca: str | None, client_cert: str | None = None, client_key: str | None = None
) -> ssl.SSLContext:
    """Verifying context: the given CA file (else the system's), hostname checked."""
    try:
        context = ssl.create_default_context(cafile=ca)
        if client_cert:
            context.load_cert_chain(client_cert, client_key)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(
            f"cannot load TLS files ({ca or ''} {client_cert or ''}): "
            f"{getattr(exc, 'strerror', None) or exc}"
        ) from None
    return context


class SyslogTransport:
    """One connection to a syslog receiver; send_batch writes framed messages."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        ca: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        timeout: float = 10.0,
        framing: str = "octet-counting",
    ):
        self.endpoint = endpoint
        self.timeout = timeout
        self.framing = framing
        self._context = (
            tls_context(ca, client_cert, client_key) if endpoint.scheme == "tls" else None
        )
        self._sock: socket.socket | None = None

    def connect(self) -> None:
        ep = self.endpoint
        try:
            if ep.scheme == "udp":
                family = socket.getaddrinfo(ep.host, ep.port, type=socket.SOCK_DGRAM)[0]
                self._sock = socket.socket(family[0], socket.SOCK_DGRAM)
                self._sock.connect(family[4])
                return
            raw = socket.create_connection((ep.host, ep.port), timeout=self.timeout)
            if self._context is not None:
                try:
                    raw = self._context.wrap_socket(raw, server_hostname=ep.host)
                except BaseException:
                    raw.close()
                    raise
            self._sock = raw
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(
                f"{ep}: TLS certificate not trusted: {exc.verify_message or exc.reason}"
            ) from None
        except (OSError, ssl.SSLError) as exc:
            raise DeliveryError(f"{ep}: cannot connect: {_reason(exc)}") from None

    def _peer_closed(self) -> bool:
        """True when the receiver has closed (or reset) the connection."""
        sock = self._sock
        if sock is None or self.endpoint.scheme == "udp":
            return False
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        sock.setblocking(False)
        try:
            return sock.recv(4096) == b""  # a receiver sends nothing else: EOF = closed
        except (ssl.SSLWantReadError, BlockingIOError):
            return False  # a TLS record in pieces (e.g. a session ticket)
        except (OSError, ssl.SSLError):
            return True
        finally:
            sock.settimeout(self.timeout)

    def send_batch(self, messages: list[bytes]) -> None:
        if self._sock is None:
            self.connect()
        assert self._sock is not None
        ep = self.endpoint
        if self._peer_closed():
            self.close()
            raise DeliveryError(
                f"{ep}: the receiver closed the connection; the batch was "
                "not sent (it is sent again by the next export)"
            )
        try:
            if ep.scheme == "udp":
                for message in messages:
                    self._sock.send(message)
                return
            if self.framing == "octet-counting":
                data = b"".join(frame(m) for m in messages)
            else:  # non-transparent framing for legacy receivers: LF ends a message
                data = b"".join(m + b"\n" for m in messages)
            self._sock.sendall(data)
        except (OSError, ssl.SSLError) as exc:
            self.close()
            raise DeliveryError(f"{ep}: sending failed: {_reason(exc)}") from None

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            if isinstance(sock, ssl.SSLSocket):
                sock.settimeout(2.0)
                sock.unwrap()  # close_notify: the receiver sees a clean end of stream
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            sock.close()

    def __enter__(self) -> SyslogTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
