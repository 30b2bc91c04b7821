"""Store rows -> neutral events, in audit-trail order.

Every record the store keeps is written in one transaction with its audit entry
(`scan_log_store` for a scan log with its findings and asset data, `audit_checkpoint` for a
signed checkpoint), and audit seqs are gapless and commit in order (trail.py). So the export
walks the trail by seq and derives the other events from it:

    audit entry seq N            -> audit event "audit:N"
      action scan_log_store      -> scan event "scan:<scan_id>", one finding event
                                    "finding:<findings.id>" per finding, and an asset event
                                    "asset:<assets.id>" when the host's asset data is new or changed
      action audit_checkpoint    -> checkpoint event "checkpoint:<id>"

An event is a flat dict of JSON scalars (strings, numbers, booleans, None); the formats map
its keys (docs/siem-export.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from orchestrator.errors import UsageError
from orchestrator.store import schema

KINDS = ("finding", "scan", "asset", "audit", "checkpoint")

# Finding levels (store LEVEL_RANKS) -> CEF severity 0-10 (0-3 Low, 4-6 Medium, 7-8 High,
# 9-10 Very-High); LEEF `sev` uses the same numbers (1-10, so at least 1).
LEVEL_SEVERITY = {"none": 0, "info": 1, "notice": 3, "warning": 6, "alert": 9}
# ... and -> syslog severity (RFC 5424: 1 alert, 4 warning, 5 notice, 6 informational).
LEVEL_SYSLOG = {"none": 6, "info": 6, "notice": 5, "warning": 4, "alert": 1}
# Audit actions a SOC wants to see above the noise: failed logins, lockouts, changes.
AUDIT_SEVERITY = {
    "login_failed": 5,
    "lockout": 7,
    "delete": 5,
    "role_change": 5,
    "deactivate": 4,
    "password_reset": 4,
    "config_change": 4,
    "key_rotate": 4,
    "modify": 3,
    "restore": 4,
    "quarantine": 6,
}


# Asset keys that change at every scan without the asset changing.
VOLATILE_ASSET_KEYS = frozenset({"uptime_s", "boot_time", "errors"})


@dataclass
class Event:
    kind: str  # one of KINDS
    event_id: str  # stable across exports: receivers deduplicate with it
    seq: int  # the audit seq it derives from (the cursor position)
    time: str  # RFC 3339 UTC
    severity: int  # 0-10 (CEF scale)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def level(self) -> str:
        return str(self.data.get("level") or self.data.get("max_level") or "info")

    @property
    def syslog_severity(self) -> int:
        if self.kind in ("finding", "scan"):
            return LEVEL_SYSLOG.get(self.level, 6)
        return 4 if self.severity >= 7 else 5 if self.severity >= 4 else 6

    def as_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "kind": self.kind,
            "time": self.time,
            "audit_seq": self.seq,
            "severity": self.severity,
            **self.data,
        }


def parse_kinds(text: str | None) -> frozenset[str]:
    """'finding,scan' -> the set; None or 'all' -> every kind."""
    if not text or text.strip() == "all":
        return frozenset(KINDS)
    kinds = {k.strip() for k in text.split(",") if k.strip()}
    unknown = sorted(kinds - set(KINDS))
    if unknown or not kinds:
        raise UsageError(
            f"unknown event kind(s) {', '.join(unknown) or '(none)'}: use {','.join(KINDS)}"
        )
    return frozenset(kinds)


def epoch_ms(when: str) -> int:
    """RFC 3339 text -> epoch milliseconds (CEF `rt`, LEEF `devTime`)."""
    moment = datetime.fromisoformat(when.replace("Z", "+00:00"))
    return int(round(moment.timestamp() * 1000))


def utc_text(when: str) -> str:
    """Any stored time -> '2026-11-26T03:07:17.123Z' (what RFC 5424 and the events carry)."""
    moment = datetime.fromisoformat(when.replace("Z", "+00:00"))
    text = moment.isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def read_entries(conn: Connection, after: int, limit: int) -> list[Any]:
    a = schema.audit_entries
    return conn.execute(
        select(a.c.seq, a.c.ts, a.c.action, a.c.object_type, a.c.object_id, a.c.entry)
        .where(a.c.seq > after)
        .order_by(a.c.seq)
        .limit(limit)
    ).all()


def seq_before(conn: Connection, when: str) -> int:
    """The last seq written before `when` (for --since): the export starts after it."""
    a = schema.audit_entries
    found = conn.execute(
        select(a.c.seq).where(a.c.ts < when).order_by(a.c.seq.desc()).limit(1)
    ).scalar()
    return int(found or 0)


def events_of(conn: Connection, entry: Any, kinds: Iterable[str]) -> list[Event]:
    """The events one audit entry stands for, restricted to `kinds`."""
    wanted = set(kinds)
    body = json.loads(entry.entry)
    out: list[Event] = []
    if entry.action == "scan_log_store" and wanted & {"scan", "finding", "asset"}:
        out.extend(_scan_events(conn, entry.seq, entry.object_id, wanted))
    if entry.action == "audit_checkpoint" and "checkpoint" in wanted:
        checkpoint = _checkpoint_event(conn, entry.seq, entry.object_id, body)
        if checkpoint:
            out.append(checkpoint)
    if "audit" in wanted:
        out.append(_audit_event(entry.seq, body))
    return out


def _audit_event(seq: int, body: dict[str, Any]) -> Event:
    who, what, where = body.get("who") or {}, body.get("what") or {}, body.get("where") or {}
    action = str(what.get("action") or "")
    return Event(
        kind="audit",
        event_id=f"audit:{seq}",
        seq=seq,
        time=utc_text(body["ts"]),
        severity=AUDIT_SEVERITY.get(action, 1),
        data={
            "action": action,
            "object_type": what.get("object_type"),
            "object_id": what.get("object_id"),
            "user": who.get("user_id"),
            "user_name": who.get("full_name"),
            "auth": who.get("auth"),
            "controller": where.get("controller"),
            "site": where.get("site") or "",
            "app_version": where.get("app_version"),
            "reason": body.get("why"),
            "tz_offset": body.get("tz_offset"),
            # Old and new values as compact JSON text: the formats are flat key=value.
            "old": _json_text(what.get("old")),
            "new": _json_text(what.get("new")),
        },
    )


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _scan_events(conn: Connection, seq: int, scan_id: str, wanted: set[str]) -> list[Event]:
    logs = schema.scan_logs
    log = conn.execute(
        select(
            logs.c.id,
            logs.c.scan_id,
            logs.c.run_id,
            logs.c.host_id,
            logs.c.host,
            logs.c.site,
            logs.c.area,
            logs.c.line,
            logs.c.scan_type,
            logs.c.action,
            logs.c.complete,
            logs.c.started,
            logs.c.finished,
            logs.c.bundle_name,
            logs.c.bundle_version,
            logs.c.bundle_date,
            logs.c.files,
            logs.c.findings,
            logs.c.max_score,
            logs.c.max_level,
            logs.c.errors,
            logs.c.source,
        ).where(logs.c.scan_id == scan_id)
    ).first()
    if log is None:  # the entry names a log the store no longer has: nothing to derive
        return []
    place = {
        "host": log.host,
        "site": log.site,
        "area": log.area,
        "line": log.line,
        "scan_id": log.scan_id,
    }
    when = utc_text(log.finished)
    out: list[Event] = []
    if "scan" in wanted:
        severity = LEVEL_SEVERITY.get(log.max_level, 0)
        if not log.complete:
            severity = max(severity, 5)  # a scan that stopped early proves nothing
        out.append(
            Event(
                kind="scan",
                event_id=f"scan:{log.scan_id}",
                seq=seq,
                time=when,
                severity=severity,
                data={
                    **place,
                    "run_id": log.run_id,
                    "scan_type": log.scan_type,
                    "action": log.action,
                    "complete": bool(log.complete),
                    "started": utc_text(log.started),
                    "finished": when,
                    "files": int(log.files),
                    "findings": int(log.findings),
                    "max_score": int(log.max_score),
                    "max_level": log.max_level,
                    "errors": int(log.errors),
                    "bundle_name": log.bundle_name,
                    "bundle_version": log.bundle_version,
                    "bundle_date": log.bundle_date,
                    "source": log.source,
                },
            )
        )
    if "finding" in wanted:
        f = schema.findings
        for row in conn.execute(
            select(
                f.c.id, f.c.path, f.c.sha256, f.c.score, f.c.level, f.c.engine, f.c.rule, f.c.action
            )
            .where(f.c.scan_log_id == log.id)
            .order_by(f.c.id)
        ).all():
            out.append(
                Event(
                    kind="finding",
                    event_id=f"finding:{row.id}",
                    seq=seq,
                    time=when,
                    severity=LEVEL_SEVERITY.get(row.level, 0),
                    data={
                        **place,
                        "path": row.path,
                        "sha256": row.sha256,
                        "score": int(row.score),
                        "level": row.level,
                        "engine": row.engine,
                        "rule": row.rule,
                        "action": row.action or "log-only",
                        "scan_type": log.scan_type,
                    },
                )
            )
    if "asset" in wanted:
        asset = _asset_event(conn, seq, log, place)
        if asset:
            out.append(asset)
    return out


def _asset_event(conn: Connection, seq: int, log: Any, place: dict[str, Any]) -> Event | None:
    a = schema.assets
    row = conn.execute(
        select(a.c.id, a.c.collected, a.c.os_name, a.c.os_version, a.c.data).where(
            a.c.scan_log_id == log.id
        )
    ).first()
    if row is None:
        return None
    # The host's asset record stored just before this one (store order, not collection time:
    # an imported old log must not hide a change).
    previous = conn.execute(
        select(a.c.data)
        .where(a.c.host_id == log.host_id, a.c.id < row.id)
        .order_by(a.c.id.desc())
        .limit(1)
    ).scalar()
    new = json.loads(row.data)
    if previous is None:
        change, changed = "new", sorted(set(new) - VOLATILE_ASSET_KEYS)
    else:
        old = json.loads(previous)
        changed = sorted(
            k for k in (set(old) | set(new)) - VOLATILE_ASSET_KEYS if old.get(k) != new.get(k)
        )
        if not changed:
            return None  # same asset data as last time: no event
        change = "changed"
    return Event(
        kind="asset",
        event_id=f"asset:{row.id}",
        seq=seq,
        time=utc_text(row.collected),
        severity=3 if change == "changed" else 1,
        data={
            **place,
            "change": change,
            "changed": ",".join(changed),
            "os_name": row.os_name,
            "os_version": row.os_version,
        },
    )


def _checkpoint_event(
    conn: Connection, seq: int, checkpoint_id: str, body: dict[str, Any]
) -> Event | None:
    c = schema.audit_checkpoints
    if not checkpoint_id.isdigit():
        return None
    row = conn.execute(
        select(c.c.id, c.c.size, c.c.root_hash, c.c.created, c.c.note).where(
            c.c.id == int(checkpoint_id)
        )
    ).first()
    if row is None:
        return None
    new = (body.get("what") or {}).get("new") or {}
    return Event(
        kind="checkpoint",
        event_id=f"checkpoint:{row.id}",
        seq=seq,
        time=utc_text(row.created),
        severity=1,
        data={
            "checkpoint_id": int(row.id),
            "size": int(row.size),
            "root_hash": row.root_hash,
            "key_fingerprint": new.get("fingerprint"),
            "controller": (body.get("where") or {}).get("controller"),
            # The signed note itself: a SIEM copy of it is what makes truncation of the
            # trail on the controller detectable (audit verify --checkpoint).
            "note": row.note,
        },
    )
