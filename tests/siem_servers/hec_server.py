"""A Splunk HTTP Event Collector on loopback: real HTTP(S), HEC's documented endpoints, status
codes and JSON bodies, and its indexer acknowledgement protocol.

    POST /services/collector/event   Authorization: Splunk TOKEN; body: concatenated JSON events
                                     200 {"text":"Success","code":0[,"ackId":N]}
                                     401 code 2 (token required) / 3 (invalid authorization)
                                     403 code 4 (invalid token); 400 code 5 (no data),
                                     6 (invalid data format), 12/13 (event field required/blank),
                                     10 (channel missing, ack on); 503 code 9 (server busy)
    POST /services/collector/ack?channel=GUID  {"acks":[N]} -> {"acks":{"N":true|false}}
                                     400 code 14 when ack is disabled
    GET  /services/collector/health  {"text":"HEC is healthy","code":17}

Switches for outage tests: `busy` (every event POST gets 503), `busy_next` (the next N do),
`fail_after` (after N accepted event POSTs, run `on_fail`, e.g. `stop`: handlers run in
threads of their own),
`stop()` / `start()` (the port refuses connections, then listens again on the same port),
`ack_delay` (polls answered false before true).
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.siem_servers.certs import TestPKI


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    hec: HecServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client gone mid-request (outage tests stop the server under it)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        self.server.hec.connections.add(self.connection)

    def finish(self) -> None:
        self.server.hec.connections.discard(self.connection)
        super().finish()

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/services/collector/health":
            self._reply(200, {"text": "HEC is healthy", "code": 17})
        else:
            self._reply(
                404, {"text": "The requested URL was not found on this server.", "code": 404}
            )

    def do_POST(self) -> None:
        hec = self.server.hec
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        parts = urlsplit(self.path)
        auth = self.headers.get("Authorization")
        hec.requests.append((parts.path, dict(self.headers)))
        if auth is None:
            return self._reply(401, {"text": "Token is required", "code": 2})
        scheme, _, token = auth.partition(" ")
        if scheme != "Splunk" or not token:
            return self._reply(401, {"text": "Invalid authorization", "code": 3})
        if token != hec.token:
            return self._reply(403, {"text": "Invalid token", "code": 4})
        if parts.path == "/services/collector/ack":
            return self._ack(body, parse_qs(parts.query).get("channel", [None])[0])
        if parts.path not in (
            "/services/collector/event",
            "/services/collector",
            "/services/collector/event/1.0",
        ):
            return self._reply(
                404, {"text": "The requested URL was not found on this server.", "code": 404}
            )
        channel = self.headers.get("X-Splunk-Request-Channel")
        with hec.lock:
            busy = hec.busy or hec.busy_next > 0
            hec.busy_next = max(0, hec.busy_next - 1)
            hec.busy_replies += busy
        if busy:
            return self._reply(503, {"text": "Server is busy", "code": 9})
        if hec.ack_enabled and not channel:
            return self._reply(400, {"text": "Data channel is missing", "code": 10})
        if not body.strip():
            return self._reply(400, {"text": "No data", "code": 5})
        events, error = _parse_events(body)
        if error is not None:
            return self._reply(400, error)
        if hec.indexes is not None and any(
            e.get("index", "main") not in hec.indexes for e in events
        ):
            return self._reply(400, {"text": "Incorrect index", "code": 7})
        with hec.lock:
            hec.events.extend(events)
            hec.batches.append(events)
            reply: dict[str, Any] = {"text": "Success", "code": 0}
            if hec.ack_enabled:
                ack_id = hec.next_ack
                hec.next_ack += 1
                hec.pending[(channel or "", ack_id)] = hec.ack_delay
                reply["ackId"] = ack_id
            accepted = len(hec.batches)
        self._reply(200, reply)
        if hec.fail_after is not None and accepted >= hec.fail_after and hec.on_fail:
            fail, hec.on_fail = hec.on_fail, None
            fail()

    def _ack(self, body: bytes, channel: str | None) -> None:
        hec = self.server.hec
        if not hec.ack_enabled:
            return self._reply(400, {"text": "ACK is disabled", "code": 14})
        if not channel:
            return self._reply(400, {"text": "Data channel is missing", "code": 10})
        try:
            wanted = json.loads(body)["acks"]
        except (ValueError, KeyError, TypeError):
            return self._reply(400, {"text": "Invalid data format", "code": 6})
        answer = {}
        with hec.lock:
            hec.ack_polls += 1
            for ack_id in wanted:
                key = (channel, int(ack_id))
                left = hec.pending.get(key)
                if left is None:
                    answer[str(ack_id)] = False  # unknown: Splunk says false too
                elif left <= 0:
                    answer[str(ack_id)] = True
                    del hec.pending[key]  # an ack is reported true once
                else:
                    hec.pending[key] = left - 1
                    answer[str(ack_id)] = False
        self._reply(200, {"acks": answer})


def _parse_events(body: bytes) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """HEC's batch format: JSON objects one after another (not an array)."""
    text = body.decode("utf-8")
    decoder = json.JSONDecoder()
    events: list[dict[str, Any]] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return events, None
        number = len(events)
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except ValueError:
            return [], {"text": "Invalid data format", "code": 6, "invalid-event-number": number}
        if not isinstance(obj, dict):
            return [], {"text": "Invalid data format", "code": 6, "invalid-event-number": number}
        if "event" not in obj:
            return [], {
                "text": "Event field is required",
                "code": 12,
                "invalid-event-number": number,
            }
        if obj["event"] in ("", None, {}):
            return [], {
                "text": "Event field cannot be blank",
                "code": 13,
                "invalid-event-number": number,
            }
        events.append(obj)


class HecServer:
    def __init__(self, token: str, *, pki: TestPKI | None = None, ack: bool = False, port: int = 0):
        self.token = token
        self.pki = pki
        self.ack_enabled = ack
        self.port = port
        self.busy = False
        self.busy_next = 0  # the next N event POSTs get 503
        self.busy_replies = 0
        self.indexes: set[str] | None = None  # the token's allowed indexes (None: any)
        self.ack_delay = 0
        self.fail_after: int | None = None
        self.on_fail: Callable[[], None] | None = None
        self.events: list[dict[str, Any]] = []
        self.batches: list[list[dict[str, Any]]] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.pending: dict[tuple[str, int], int] = {}
        self.next_ack = 0
        self.ack_polls = 0
        self.lock = threading.Lock()
        self.connections: set[Any] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.pki else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> HecServer:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.hec = self
        if self.pki:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(self.pki.cert), str(self.pki.key))
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (connections are refused) and drop open connections."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        for conn in list(self.connections):  # keep-alive connections end too
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> HecServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
