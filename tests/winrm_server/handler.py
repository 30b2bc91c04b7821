"""The HTTP side of the listener: one handler object per TCP connection.

HTTP behaviour taken from Windows WinRM (HTTP.sys) as documented or observed:
* Only POST to /wsman; responses name "Microsoft-HTTPAPI/2.0" as Server; SOAP faults are HTTP
  500 with Content-Type application/soap+xml;charset=UTF-8 (pywinrm conftest recordings).
* 401 with WWW-Authenticate offers when authentication is missing or wrong; HTTP/1.1
  keep-alive because NTLM authenticates the connection.
* MS-WSMV 3.1.4.1.20: a request body larger than MaxEnvelopeSizekb gets HTTP 413 and is not
  processed.
* MS-WSMV 2.2.9.1.1: NTLM-sealed bodies in, sealed responses (faults too) out. On plain HTTP an
  unsealed SOAP body is refused with 401 unless AllowUnencrypted (packer#6205). The empty POST
  pywinrm sends to set up encryption is answered 200 with an empty body.
"""

from __future__ import annotations

import logging
import socket
import struct
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING

from . import sealing
from .auth import ConnectionAuth

if TYPE_CHECKING:
    from .server import ListenerHTTPServer

log = logging.getLogger(__name__)
SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"


class DropConnection(Exception):
    """Close the TCP connection without an answer (a server that stops mid-command)."""


class WSManHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle's algorithm the body would wait for
    # the client's delayed ACK (40 ms per request). Windows' HTTP.sys has no such stall.
    disable_nagle_algorithm = True
    server: ListenerHTTPServer

    def setup(self) -> None:
        context = self.server.ssl_context
        if context is not None:
            # The TLS handshake runs here, in this connection's thread, not in accept().
            self.request = context.wrap_socket(self.request, server_side=True)
        super().setup()
        self.server.track(self.connection)
        self.auth = ConnectionAuth(self.server.app.authenticator)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.untrack(self.connection)

    def version_string(self) -> str:
        return "Microsoft-HTTPAPI/2.0"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._reply(405, extra=[("Allow", "POST")])

    def do_POST(self) -> None:
        app = self.server.app
        body, too_large = self._read_body(app.max_envelope_bytes)
        if body is None and not too_large:
            return  # already answered
        if self.path.split("?", 1)[0].rstrip("/").lower() != "/wsman":
            self._reply(404)
            return
        outcome = self.auth.authenticate(self.headers.get("Authorization"))
        if outcome.user is None:
            self._reply(401, extra=[("WWW-Authenticate", c) for c in outcome.challenges])
            return
        if too_large:
            self._reply(413)
            return
        assert body is not None
        sealed = sealing.is_sealed(self.headers.get("Content-Type"))
        if sealed:
            if self.auth.context is None:
                self._reply(401, extra=self._offers())
                return
            try:
                plain = sealing.unseal(self.auth.context, body)
            except sealing.SealingError as exc:
                log.info("bad sealed body: %s", exc)
                self._reply(400)
                return
            app.count_sealed()
        else:
            plain = body
            if plain and not app.tls and not app.allow_unencrypted:
                self._reply(401, extra=self._offers())
                return
        if not plain:
            self._reply(200)  # the authentication / encryption set-up probe
            return
        try:
            status, xml = app.process(plain, outcome.user)
        except DropConnection:
            self._drop()
            return
        except Exception:
            log.exception("internal error")
            self._reply(500)
            return
        payload = xml.encode("utf-8")
        if sealed:
            assert self.auth.context is not None
            self._reply(status, sealing.seal(self.auth.context, payload), sealing.CONTENT_TYPE)
        else:
            self._reply(status, payload, SOAP_CONTENT_TYPE)

    def _offers(self) -> list[tuple[str, str]]:
        offers = self.server.app.authenticator.rejection().challenges
        return [("WWW-Authenticate", c) for c in offers]

    def _read_body(self, limit: int) -> tuple[bytes | None, bool]:
        """(body, too_large). Always drains the body so the connection stays usable."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            self._reply(411)
            return None, False
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            self._reply(400)
            return None, False
        if length <= limit:
            return self.rfile.read(length), False
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                break
            left -= len(chunk)
        return None, True

    def _reply(
        self,
        status: int,
        payload: bytes = b"",
        content_type: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        self.send_response(status)
        for name, value in extra or []:
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def _drop(self) -> None:
        self.server.app.count_dropped()
        self.close_connection = True
        try:
            # Linger 0: the client sees the connection reset, not a clean end.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            socket.socket.shutdown(self.connection, socket.SHUT_RDWR)
        except OSError:
            pass
