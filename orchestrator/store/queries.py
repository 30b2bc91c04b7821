"""Reading the store: scan logs with filters, one log, and the company-wide status.

Every query filters and sorts in SQL on indexed columns and returns at most `limit` rows, so
they stay fast at 100,000 scan logs and 10 million findings (bench/store_bench.py).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, select

from orchestrator.errors import UsageError
from orchestrator.store import schema


@dataclass(frozen=True)
class LogFilter:
    site: str | None = None
    area: str | None = None
    line: str | None = None
    host: str | None = None
    since: str | None = None  # RFC 3339 or a date; compared with the scan's finish time
    until: str | None = None
    min_level: str | None = None  # logs with a finding at or above this level
    limit: int = 50


def parse_when(value: str, *, end_of_day: bool = False) -> str:
    """'2026-11-25', '2026-11-25T10:00', '2026-11-25T10:00:00Z', '3d' (3 days ago) -> UTC text."""
    text = value.strip()
    if text[:-1].isdigit() and text[-1:] in ("d", "h"):
        delta = timedelta(days=int(text[:-1])) if text[-1] == "d" else timedelta(
            hours=int(text[:-1]))
        return _utc_text(datetime.now(UTC) - delta)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"not a date or time: {value!r} (use 2026-11-25, 2026-11-25T10:00Z or 3d)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if end_of_day and len(text) == 10:
        parsed += timedelta(days=1) - timedelta(milliseconds=1)
    return _utc_text(parsed)


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def list_logs(conn: Connection, f: LogFilter) -> list[Any]:
    logs = schema.scan_logs
    query = select(
        logs.c.id, logs.c.scan_id, logs.c.finished, logs.c.site, logs.c.area, logs.c.line,
        logs.c.host, logs.c.scan_type, logs.c.action, logs.c.complete, logs.c.files,
        logs.c.findings, logs.c.max_level, logs.c.bundle_name, logs.c.bundle_version,
        logs.c.source,
    )
    conditions = []
    for column, value in (("site", f.site), ("area", f.area), ("line", f.line),
                          ("host", f.host)):
        if value is not None:
            conditions.append(logs.c[column] == value)
    if f.since:
        conditions.append(logs.c.finished >= parse_when(f.since))
    if f.until:
        conditions.append(logs.c.finished <= parse_when(f.until, end_of_day=True))
    if f.min_level:
        conditions.append(logs.c.max_rank >= schema.LEVEL_RANKS[f.min_level])
    if conditions:
        query = query.where(and_(*conditions))
    # Newest first in SQL (the index), shown oldest first.
    rows = conn.execute(query.order_by(logs.c.finished.desc(), logs.c.id.desc())
                        .limit(f.limit)).all()
    return list(reversed(rows))


def find_log(conn: Connection, ref: str) -> Any:
    """A log by its store id or its scan_id."""
    logs = schema.scan_logs
    condition = logs.c.scan_id == ref
    if ref.isdigit():
        condition = logs.c.id == int(ref)
    row = conn.execute(select(logs).where(condition)).first()
    if row is None:
        raise UsageError(f"no scan log {ref!r} in the store (see `plantsweep logs list`)")
    return row


def log_bytes(row: Any) -> bytes:
    return zlib.decompress(row.body)


def log_findings(conn: Connection, scan_log_id: int, limit: int | None = None) -> list[Any]:
    f = schema.findings
    query = (select(f.c.path, f.c.score, f.c.level, f.c.engine, f.c.rule, f.c.action, f.c.sha256)
             .where(f.c.scan_log_id == scan_log_id).order_by(f.c.score.desc(), f.c.id))
    return conn.execute(query.limit(limit) if limit else query).all()


@dataclass
class LineStatus:
    site: str
    area: str
    line: str
    hosts: int = 0
    scanned: int = 0
    never_scanned: list[str] = field(default_factory=list)
    overdue: list[str] = field(default_factory=list)
    oldest_last_scan: str | None = None  # the host whose last scan is oldest
    newest_scan: str | None = None
    open_findings: int = 0  # at or above the level, in each host's latest scan
    hosts_with_findings: int = 0
    incomplete: int = 0  # hosts whose latest scan did not finish
    end_of_life: list[str] = field(default_factory=list)  # by the newest asset record
    extended_support: list[str] = field(default_factory=list)


def status(conn: Connection, *, overdue_days: int, min_level: str,
           now: datetime | None = None) -> list[LineStatus]:
    """Per site, area and line: hosts, scan coverage and age, open findings."""
    hosts, logs, fnd = schema.hosts, schema.scan_logs, schema.findings
    now = now or datetime.now(UTC)
    latest = (select(logs.c.host_id, func.max(logs.c.finished).label("finished"))
              .group_by(logs.c.host_id).subquery())
    rows = conn.execute(
        select(hosts.c.id, hosts.c.site, hosts.c.area, hosts.c.line, hosts.c.name,
               hosts.c.scan_interval_days, latest.c.finished)
        .select_from(hosts.outerjoin(latest, latest.c.host_id == hosts.c.id))
    ).all()
    # The latest log of each scanned host, and its open findings (one grouped query).
    latest_logs = (
        select(logs.c.id, logs.c.host_id, logs.c.complete)
        .join(latest, and_(latest.c.host_id == logs.c.host_id,
                           latest.c.finished == logs.c.finished))
    ).subquery()
    rank = schema.LEVEL_RANKS[min_level]
    open_counts = dict(conn.execute(
        select(latest_logs.c.host_id, func.count(fnd.c.id))
        .select_from(latest_logs.join(fnd, fnd.c.scan_log_id == latest_logs.c.id))
        .where(fnd.c.rank >= rank).group_by(latest_logs.c.host_id)
    ).all())
    incomplete = {r.host_id for r in conn.execute(
        select(latest_logs.c.host_id).where(latest_logs.c.complete.is_(False))).all()}
    lines: dict[tuple[str, str, str], LineStatus] = {}
    for r in rows:
        key = (r.site, r.area, r.line)
        line = lines.setdefault(key, LineStatus(*key))
        line.hosts += 1
        if r.finished is None:
            line.never_scanned.append(r.name)
            continue
        line.scanned += 1
        if line.oldest_last_scan is None or r.finished < line.oldest_last_scan:
            line.oldest_last_scan = r.finished
        if line.newest_scan is None or r.finished > line.newest_scan:
            line.newest_scan = r.finished
        limit = r.scan_interval_days or overdue_days
        if r.finished < _utc_text(now - timedelta(days=limit)):
            line.overdue.append(r.name)
        found = open_counts.get(r.id, 0)
        line.open_findings += found
        line.hosts_with_findings += 1 if found else 0
        line.incomplete += 1 if r.id in incomplete else 0
    return [lines[k] for k in sorted(lines)]


def age_text(when: str | None, now: datetime | None = None) -> str:
    """'3d 4h', '25m', 'never'."""
    if not when:
        return "never"
    try:
        moment = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        return when
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 0:
        return "in the future"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {rest // 60}m" if hours else f"{rest // 60}m"
