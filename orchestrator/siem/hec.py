"""Splunk HTTP Event Collector: JSON events, batched, over TLS, with indexer acknowledgement.

    client = HecClient("https://splunk:8088", token=load_token(None), ca="ca.pem", ack=True)
    client.send_batch(events)     # returns once Splunk accepted (and, with ack, indexed) them

A batch is the events' JSON objects concatenated in one POST to /services/collector/event
(HEC's batch format is not a JSON array). Status 200 is acceptance; with `ack` the response
carries an ackId, polled with POST /services/collector/ack?channel=GUID until it says true.
503 (server busy) and connection errors are retried with exponential backoff; 400, 401, 403
are hard errors (bad data, missing or invalid token, disabled token) with HEC's own text.

The token comes from $PLANTSWEEP_HEC_TOKEN or a 0600 file; it is only ever put in the
Authorization header: never in a message, a log, the audit trail or the store.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import stat
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from orchestrator.errors import UsageError
from orchestrator.siem.events import Event, epoch_ms
from orchestrator.siem.syslog import DeliveryError, tls_context

TOKEN_ENV = "PLANTSWEEP_HEC_TOKEN"
EVENT_PATH = "/services/collector/event"
ACK_PATH = "/services/collector/ack"


def load_token(token_file: str | None) -> str:
    """The HEC token from `token_file` (mode 0600 or stricter) or $PLANTSWEEP_HEC_TOKEN."""
    if token_file:
        path = Path(token_file)
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise UsageError(
                    f"the token file is readable by others (mode "
                    f"{stat.S_IMODE(mode):04o}): chmod 600 it",
                    path=token_file,
                )
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(
                f"cannot read the token file: {exc.strerror}", path=token_file
            ) from None
        if not token:
            raise UsageError("the token file is empty", path=token_file)
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(f"no HEC token: set {TOKEN_ENV} or give --token-file FILE (mode 0600)")
    return token


def envelope(
    event: Event, controller: str, *, index: str | None = None, sourcetype: str | None = None
) -> dict[str, Any]:
    """The HEC JSON object of one event (see docs/siem-export.md)."""
    body: dict[str, Any] = {
        "time": epoch_ms(event.time) / 1000,
        "host": event.data.get("host") or event.data.get("controller") or controller,
        "source": "plantsweep",
        "sourcetype": sourcetype or f"plantsweep:{event.kind}",
        "event": event.as_json(),
        # Indexed fields: flat strings, for fast `tstats` and dedup by event_id.
        "fields": {
            k: str(v)
            for k, v in (
                ("event_id", event.event_id),
                ("kind", event.kind),
                ("site", event.data.get("site")),
                ("controller", controller),
            )
            if v
        },
    }
    if index:
        body["index"] = index
    return body


class HecClient:
    def __init__(
        self,
        url: str,
        *,
        token: str,
        ca: str | None = None,
        ack: bool = False,
        index: str | None = None,
        sourcetype: str | None = None,
        retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        ack_timeout: float = 60.0,
        timeout: float = 30.0,
        controller: str | None = None,
    ):
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise UsageError(f"--url {url!r}: use https://HOST:8088")
        self.scheme, self.host = parts.scheme, parts.hostname
        try:
            self.port = parts.port or 8088
        except ValueError:
            raise UsageError(f"--url {url!r}: bad port") from None
        self.path = parts.path.rstrip("/") if parts.path.startswith("/services/") else EVENT_PATH
        self.shown = f"{self.scheme}://{self.host}:{self.port}"  # never user:pass or ?token
        self._token = token
        self._context = tls_context(ca) if self.scheme == "https" else None
        self.ack, self.index, self.sourcetype = ack, index, sourcetype
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self.ack_timeout, self.timeout = ack_timeout, timeout
        self.controller = controller or socket.gethostname()
        # One channel per client: Splunk tracks ackIds per channel.
        self.channel = str(uuid.uuid4())
        self._conn: http.client.HTTPConnection | None = None

    def __repr__(self) -> str:
        return f"HecClient({self.shown}, ack={self.ack})"  # no token

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._context is not None:
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=self._context
                )
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _post(self, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Splunk {self._token}", "Content-Type": "application/json"}
        if self.ack:
            headers["X-Splunk-Request-Channel"] = self.channel
        conn = self._connection()
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except ssl.SSLCertVerificationError as exc:
            self.close()
            raise DeliveryError(
                f"{self.shown}: TLS certificate not trusted: {exc.verify_message or exc.reason}"
            ) from None
        except (OSError, http.client.HTTPException, ssl.SSLError):
            self.close()
            raise
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            data = json.loads(raw.decode("utf-8")) if raw else {}
        except (UnicodeDecodeError, ValueError):
            data = {"text": raw[:200].decode("utf-8", "replace")}
        return response.status, data if isinstance(data, dict) else {}

    def _post_retrying(self, path: str, body: bytes) -> dict[str, Any]:
        """POST with retries on 503 and connection errors; hard errors raise at once."""
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(self.backoff * 2 ** (attempt - 1), self.max_backoff))
            try:
                status, data = self._post(path, body)
            except DeliveryError:
                raise
            except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
                why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
                last = f"cannot reach it ({why})"
                continue
            if status == 200:
                return data
            text = f"{status} {data.get('text') or 'no text'} (HEC code {data.get('code', '?')})"
            if status == 503:
                last = f"server busy: {text}"
                continue
            if status in (401, 403):
                raise DeliveryError(f"{self.shown}: HEC refused the token: {text}")
            raise DeliveryError(f"{self.shown}: HEC refused the batch: {text}")
        raise DeliveryError(
            f"{self.shown}: {last}; gave up after {self.retries + 1} attempt(s), "
            "the batch is sent again by the next export"
        )

    def send_batch(self, events: list[Event]) -> None:
        """Deliver `events` in one request; return once accepted (and acknowledged)."""
        if not events:
            return
        body = "".join(
            json.dumps(
                envelope(e, self.controller, index=self.index, sourcetype=self.sourcetype),
                ensure_ascii=False,
                separators=(",", ":"),
                sort_keys=True,
            )
            for e in events
        ).encode("utf-8")
        data = self._post_retrying(self.path, body)
        if self.ack:
            if "ackId" not in data:
                raise DeliveryError(
                    f"{self.shown}: indexer acknowledgement is not enabled for "
                    "this token (no ackId in the response): drop --ack or "
                    "enable it in Splunk"
                )
            self._wait_for_ack(int(data["ackId"]))

    def _wait_for_ack(self, ack_id: int) -> None:
        deadline = time.monotonic() + self.ack_timeout
        pause = 0.1
        body = json.dumps({"acks": [ack_id]}).encode()
        path = f"{ACK_PATH}?channel={self.channel}"
        while True:
            data = self._post_retrying(path, body)
            if (data.get("acks") or {}).get(str(ack_id)) is True:
                return
            if time.monotonic() + pause > deadline:
                raise DeliveryError(
                    f"{self.shown}: the batch was not acknowledged as indexed within "
                    f"{self.ack_timeout:g} s; it is sent again by the next export"
                )
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
