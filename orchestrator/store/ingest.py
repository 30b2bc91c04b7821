"""Scan logs into the store: one transaction per log, idempotent, audited.

    result = ingest_log(store, data, actor, source="run")  # data: the log file's exact bytes

The same bytes (by SHA-256) or the same scan_id are stored once: a second import says
"already stored" and changes nothing. A log brings its host (site, area, line from the
inventory variables it carries), its findings, its asset record, the quarantine actions taken
on it and its inspection record (practice 2: one per host per scan, whatever was found). Every
stored log is an audit entry.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, or_, select

from orchestrator.audit import trail
from orchestrator.audit.identity import Actor, Where, here
from orchestrator.errors import PlantsweepError
from orchestrator.results import utc_now
from orchestrator.store import schema
from orchestrator.store.database import Store
from orchestrator.store.hosts import upsert_host

LEVELS = ("info", "notice", "warning", "alert")


class BadLog(PlantsweepError):
    """A file is not a scan log the store can take; the message says why."""


@dataclass(frozen=True)
class Ingested:
    scan_log_id: int
    scan_id: str
    host: str
    created: bool  # False: the same log was stored before


def parse_log(data: bytes, name: str = "log") -> dict[str, Any]:
    try:
        log = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadLog(f"not a JSON scan log ({exc})", path=name) from None
    missing = [k for k in ("scan_id", "host", "scan_type", "started", "finished") if k not in log]
    if not isinstance(log, dict) or missing:
        raise BadLog(f"not a scan log (missing {', '.join(missing) or 'an object'})", path=name)
    return log


def normal_time(value: Any) -> str:
    """Scan times as stored: RFC 3339 UTC with milliseconds, so that text order is time order
    whatever precision or offset the log used."""
    text = str(value)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadLog(f"not a time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _level(finding: dict[str, Any]) -> str:
    level = finding.get("level")
    return level if level in LEVELS else "info"


def _summary(log: dict[str, Any]) -> dict[str, Any]:
    findings = log.get("findings") or []
    top = max(findings, key=lambda f: int(f.get("score") or 0), default=None)
    max_level = _level(top) if top else "none"
    patterns = log.get("patterns") or {}
    stats = log.get("stats") or {}
    inventory = log.get("inventory") or {}
    return {
        "scan_id": str(log["scan_id"]),
        "run_id": log.get("run_id"),
        "host": str(log["host"]),
        "site": str(inventory.get("site") or ""),
        "area": str(inventory.get("area") or ""),
        "line": str(inventory.get("line") or ""),
        "scan_type": str(log["scan_type"]),
        "action": str(log.get("action") or "log-only"),
        "complete": bool(log.get("complete", False)),
        "started": normal_time(log["started"]),
        "finished": normal_time(log["finished"]),
        "bundle_name": patterns.get("name"),
        "bundle_version": None if patterns.get("version") is None else str(patterns["version"]),
        "bundle_date": patterns.get("date"),
        "files": int(stats.get("files_scanned") or 0),
        "findings": len(findings),
        "max_score": int(top.get("score") or 0) if top else 0,
        "max_level": max_level,
        "max_rank": schema.LEVEL_RANKS[max_level],
        "errors": int(stats.get("errors") or 0),
    }


def _host_id(conn: Connection, log: dict[str, Any], summary: dict[str, Any], now: str,
             actor: Actor, where: Where) -> int:
    """The host's row, created on its first log; a changed place in the inventory variables
    the log carries is recorded and audited (store/hosts.py)."""
    inventory = log.get("inventory") or {}
    values = {
        "area": summary["area"],
        "line": summary["line"],
        "cell": str(inventory.get("cell") or ""),
        "criticality": str(inventory.get("criticality") or ""),
    }
    host_id, _ = upsert_host(conn, actor, where, summary["site"], summary["host"], values, now,
                             seen=True)
    return host_id


def _finding_rows(scan_log_id: int, host_id: int, log: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for f in log.get("findings") or []:
        level = _level(f)
        path = str(f.get("path", ""))
        if f.get("archive_member"):
            path = f"{path}!{f['archive_member']}"
        rows.append({
            "scan_log_id": scan_log_id, "host_id": host_id, "path": path,
            "sha256": f.get("sha256"), "score": int(f.get("score") or 0), "level": level,
            "rank": schema.LEVEL_RANKS[level], "engine": f.get("engine"), "rule": f.get("rule"),
            "action": f.get("action"),
        })
    return rows


def _quarantine_rows(scan_log_id: int, host_id: int, log: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for a in log.get("actions") or []:
        if not isinstance(a, dict) or a.get("action") != "quarantine":
            continue
        rows.append({
            "scan_log_id": scan_log_id, "host_id": host_id, "path": str(a.get("path", "")),
            "sha256": a.get("sha256"), "vault_id": a.get("vault_id"),
            "outcome": str(a.get("result") or "unknown"),
            "detail": json.dumps(a, sort_keys=True), "recorded": str(a.get("time") or utc_now()),
        })
    return rows


def _asset_row(scan_log_id: int, host_id: int, log: dict[str, Any]) -> dict[str, Any] | None:
    asset = log.get("asset")
    if not isinstance(asset, dict) or not asset:
        return None
    os_info = asset.get("os") if isinstance(asset.get("os"), dict) else {}
    return {
        "scan_log_id": scan_log_id, "host_id": host_id, "collected": normal_time(log["finished"]),
        "os_name": os_info.get("name") or os_info.get("pretty_name"),
        "os_version": os_info.get("version") or os_info.get("release"),
        "data": json.dumps(asset, sort_keys=True),
        "os": json.dumps(os_info, sort_keys=True) if os_info else None,
    }


def store_log(
    conn: Connection,
    data: bytes,
    log: dict[str, Any],
    actor: Actor,
    *,
    source: str,
    where: Where | None = None,
) -> Ingested:
    """Store one parsed log in `conn`'s transaction (see ingest_log)."""
    sha256 = hashlib.sha256(data).hexdigest()
    summary = _summary(log)
    logs = schema.scan_logs
    existing = conn.execute(
        select(logs.c.id, logs.c.sha256).where(
            or_(logs.c.sha256 == sha256, logs.c.scan_id == summary["scan_id"])
        )
    ).first()
    if existing is not None:
        if existing.sha256 != sha256:
            raise BadLog(
                f"scan {summary['scan_id']} is stored already with other content "
                f"(stored {existing.sha256[:12]}, this file {sha256[:12]}): not replaced"
            )
        return Ingested(int(existing.id), summary["scan_id"], summary["host"], created=False)
    now = utc_now()
    where = where or here(summary["site"])
    host_id = _host_id(conn, log, summary, now, actor, where)
    scan_log_id = int(conn.execute(
        insert(logs).values(sha256=sha256, host_id=host_id, source=source, stored_at=now,
                            body=zlib.compress(data, 6), **summary)
    ).inserted_primary_key[0])
    finding_rows = _finding_rows(scan_log_id, host_id, log)
    if finding_rows:
        conn.execute(insert(schema.findings), finding_rows)
    asset = _asset_row(scan_log_id, host_id, log)
    if asset:
        conn.execute(insert(schema.assets).values(**asset))
    quarantined = _quarantine_rows(scan_log_id, host_id, log)
    if quarantined:
        conn.execute(insert(schema.quarantine_records), quarantined)
    conn.execute(
        insert(schema.inspection_records).values(scan_log_id=scan_log_id, host_id=host_id,
                                                 created=now)
    )
    trail.append(
        conn, actor, "scan_log_store", "scan_log", summary["scan_id"],
        new={"sha256": sha256, "host": summary["host"], "source": source,
             "findings": summary["findings"], "max_level": summary["max_level"],
             "complete": summary["complete"]},
        where=where,
    )
    for row in quarantined:
        trail.append(
            conn, actor, "quarantine", "file", row["vault_id"] or row["path"],
            new={"host": summary["host"], "path": row["path"], "sha256": row["sha256"],
                 "outcome": row["outcome"], "scan_id": summary["scan_id"]},
            where=where,
        )
    return Ingested(scan_log_id, summary["scan_id"], summary["host"], created=True)


def ingest_log(store: Store, data: bytes, actor: Actor, *, source: str,
               name: str = "log") -> Ingested:
    """Parse and store one log's exact bytes in a transaction of its own."""
    log = parse_log(data, name)
    with store.begin() as conn:
        return store_log(conn, data, log, actor, source=source)


def ingest_run(store: Store, run_dir: Path, actor: Actor, *, kind: str) -> list[Ingested]:
    """Store a run folder (`run.json` and one log per host) written by scan, run or import.

    The run row and its audit entry go in one transaction, each log in its own, so one bad
    file does not keep the others out."""
    summary_path = run_dir / "run.json"
    try:
        summary_bytes = summary_path.read_bytes()
        summary = json.loads(summary_bytes.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BadLog(f"unreadable run summary ({exc})", path=str(summary_path)) from None
    run_id = str(summary.get("run_id") or run_dir.name)
    stored: list[Ingested] = []
    for path in sorted(run_dir.glob("*.json")):
        if path.name == "run.json" or path.name.endswith(".asset.json"):
            continue
        data = path.read_bytes()
        try:
            log = parse_log(data, str(path))
        except BadLog:
            continue  # not a host log (e.g. a playbook's report): the run summary names hosts
        with store.begin() as conn:
            stored.append(store_log(conn, data, log, actor, source=kind))
    with store.begin() as conn:
        runs = schema.runs
        if conn.execute(select(runs.c.id).where(runs.c.run_id == run_id)).first() is None:
            conn.execute(insert(runs).values(
                run_id=run_id, kind=kind, started=summary.get("started"),
                finished=summary.get("finished"), controller=store.controller,
                user_id=actor.user_id, exit_code=summary.get("exit_code"),
                summary=summary_bytes.decode("utf-8"),
            ))
            trail.append(
                conn, actor, "run", "run", run_id,
                new={"kind": kind, "hosts": [s.host for s in stored],
                     "exit_code": summary.get("exit_code"),
                     "logs": [s.scan_id for s in stored]},
            )
    return stored
