"""The export engine: walk the audit trail from the destination's cursor, turn entries into
events, send them in batches, and move the cursor after each batch the receiver accepted.

    dest = Destination(type="leef", target="tcp://qradar:514")
    result = export(store, dest, actor)

At-least-once: the cursor (cursor.py) is saved only after a batch was accepted, so a failed
batch is sent again, whole, by the next export (receivers deduplicate by `event_id`); a down
receiver stops the export with DeliveryError and nothing after the cursor is skipped. The
export ends at the trail's head as it was when it started, and writes one audit entry
("export": destination without secrets, event count, seq range, outcome).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select

from orchestrator.audit import trail
from orchestrator.audit.identity import Actor
from orchestrator.errors import UsageError
from orchestrator.siem import cef, cursor, leef
from orchestrator.siem.events import KINDS, Event, events_of, read_entries, seq_before
from orchestrator.siem.syslog import (
    DEFAULT_SD_ID,
    DeliveryError,
    SyslogTransport,
    parse_endpoint,
    rfc5424,
)
from orchestrator.store import schema
from orchestrator.store.database import Store
from orchestrator.store.queries import parse_when

TYPES = ("splunk", "cef", "leef", "jsonl")
PAGE = 500  # audit entries read per query


@dataclass
class Destination:
    """Where and how to export. `target`: the HEC URL (splunk), tcp|tls|udp://HOST:PORT
    (cef, leef) or a file path (jsonl)."""

    type: str
    target: str
    name: str | None = None
    kinds: frozenset[str] = frozenset(KINDS)
    ca: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    token_file: str | None = None
    ack: bool = False
    index: str | None = None
    sourcetype: str | None = None
    delimiter: str = "^"
    bom: str = "auto"
    framing: str = "octet-counting"
    sd_id: str = DEFAULT_SD_ID
    batch_size: int = 100
    retries: int = 5
    backoff: float = 1.0
    ack_timeout: float = 60.0
    timeout: float = 10.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise UsageError(f"unknown export type {self.type!r}: use {', '.join(TYPES)}")
        if self.batch_size < 1:
            raise UsageError("the batch size must be at least 1")
        if self.bom not in ("auto", "always", "never"):
            raise UsageError(f"bom: use auto, always or never, not {self.bom!r}")
        if self.framing not in ("octet-counting", "lf"):
            raise UsageError(f"framing: use octet-counting or lf, not {self.framing!r}")
        if self.type in ("cef", "leef"):
            parse_endpoint(self.target)
        if self.type == "leef":
            self.delimiter = leef.parse_delimiter(self.delimiter)

    @property
    def shown(self) -> str:
        """The destination as logged and audited: no token, no user or password."""
        if self.type == "splunk":
            from urllib.parse import urlsplit

            parts = urlsplit(self.target)
            port = f":{parts.port}" if parts.port else ""
            return f"splunk {parts.scheme}://{parts.hostname}{port}"
        if self.type == "jsonl":
            return f"jsonl {Path(self.target).resolve()}"
        return f"{self.type} {parse_endpoint(self.target)}"

    @property
    def cursor_name(self) -> str:
        if self.name:
            return self.name
        return re.sub(r"[^A-Za-z0-9._:/@-]+", "-", self.shown)[:128]


class Transport(Protocol):
    def send_batch(self, items: Any) -> None: ...
    def close(self) -> None: ...


@dataclass
class ExportResult:
    name: str
    destination: str
    events: int = 0
    batches: int = 0
    first_seq: int | None = None  # the first audit seq exported in this run
    last_seq: int = 0  # the cursor afterwards
    error: str | None = None


def _transport(
    dest: Destination, controller: str, token: str | None
) -> tuple[Transport, Callable[[list[Event]], Any]]:
    """(the transport, how a batch of events becomes what it sends)."""
    if dest.type == "splunk":
        from orchestrator.siem.hec import HecClient, load_token

        client = HecClient(
            dest.target,
            token=token or load_token(dest.token_file),
            ca=dest.ca,
            ack=dest.ack,
            index=dest.index,
            sourcetype=dest.sourcetype,
            retries=dest.retries,
            backoff=dest.backoff,
            ack_timeout=dest.ack_timeout,
            controller=controller,
        )
        return client, lambda events: events
    if dest.type == "jsonl":
        from orchestrator.siem.jsonl import JsonlWriter

        return JsonlWriter(Path(dest.target)), lambda events: events
    transport = SyslogTransport(
        parse_endpoint(dest.target),
        ca=dest.ca,
        client_cert=dest.client_cert,
        client_key=dest.client_key,
        timeout=dest.timeout,
        framing=dest.framing,
    )

    def render(events: list[Event]) -> list[bytes]:
        out = []
        for e in events:
            body = (
                cef.format_event(e, controller)
                if dest.type == "cef"
                else leef.format_event(e, controller, dest.delimiter)
            )
            out.append(rfc5424(e, body, hostname=controller, sd_id=dest.sd_id, bom=dest.bom))
        return out

    return transport, render


def export(
    store: Store,
    dest: Destination,
    actor: Actor,
    *,
    since: str | None = None,
    from_start: bool = False,
    token: str | None = None,
    on_batch: Callable[[ExportResult], None] | None = None,
) -> ExportResult:
    """Export everything after the destination's cursor (or from the start / `since`).
    Raises DeliveryError when the receiver fails; what was accepted before stays counted."""
    name = dest.cursor_name
    result = ExportResult(name, dest.shown)
    with store.connect() as conn:
        stored = cursor.position(conn, name)
        if from_start:
            start = 0
        elif since:
            start = seq_before(conn, parse_when(since))
        else:
            start = stored or 0
        head = int(
            conn.execute(
                select(func.coalesce(func.max(schema.audit_entries.c.seq), 0))
            ).scalar_one()
        )
    result.last_seq = start
    if head <= start:
        return result
    transport, render = _transport(dest, store.controller, token)
    try:
        _run(store, dest, transport, render, result, head, on_batch)
    except DeliveryError as exc:
        result.error = str(exc)
        raise
    finally:
        transport.close()
        _audit(store, dest, actor, result, start)
    return result


def _run(
    store: Store,
    dest: Destination,
    transport: Transport,
    render: Callable[[list[Event]], Any],
    result: ExportResult,
    head: int,
    on_batch: Callable[[ExportResult], None] | None,
) -> None:
    batch: list[Event] = []
    batch_end = result.last_seq

    def flush() -> None:
        nonlocal batch
        if batch:
            transport.send_batch(render(batch))
            result.events += len(batch)
            result.batches += 1
            if result.first_seq is None:
                result.first_seq = batch[0].seq
        # Accepted (or nothing to send): only now may the cursor move.
        with store.begin() as conn:
            cursor.save(conn, result.name, dest.shown, batch_end)
        result.last_seq = batch_end
        sent, batch = bool(batch), []
        if sent and on_batch:
            on_batch(result)

    position = result.last_seq
    while position < head:
        # Read a page, then send outside the read: on SQLite every transaction takes the
        # write lock (BEGIN IMMEDIATE), and the cursor is written between batches.
        with store.connect() as conn:
            entries = read_entries(conn, position, min(PAGE, head - position))
            page = [(int(e.seq), events_of(conn, e, dest.kinds)) for e in entries]
        if not page:
            break
        for seq, events in page:
            batch.extend(events)
            batch_end = position = seq
            # Batches end on an entry boundary: the cursor is an audit seq.
            if len(batch) >= dest.batch_size:
                flush()
    flush()


def _audit(store: Store, dest: Destination, actor: Actor, result: ExportResult, start: int) -> None:
    if not result.events and not result.error:
        return  # nothing sent: not worth a trail entry at every run
    with store.begin() as conn:
        trail.append(
            conn,
            actor,
            "export",
            "siem_destination",
            result.name,
            new={
                "destination": result.destination,
                "type": dest.type,
                "kinds": sorted(dest.kinds),
                "events": result.events,
                "batches": result.batches,
                "from_seq": start + 1 if result.events else None,
                "to_seq": result.last_seq,
                "complete": result.error is None,
                "error": result.error,
            },
        )
