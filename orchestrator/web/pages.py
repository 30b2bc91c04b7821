"""The web view's reads: one function per page, each paged and on indexed columns.

Per-page lookups (a host's latest scan, latest asset) are one indexed query per row of the
page (at most PER_PAGE), never a scan over all logs; the company and site pages reuse
`queries.status` (one grouped pass over the host/finished index). The audit trail pages by
seq (its primary key), newest first.
"""

from __future__ import annotations

import importlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, select

from orchestrator.store import schema
from orchestrator.store.queries import LineStatus, status

PER_PAGE = 50
MAX_PAGE = 10_000  # offsets beyond this are refused (use a narrower page)
OVERDUE_DAYS = 30  # default "scanned recently" window when a host sets no interval
OPEN_LEVEL = "notice"  # findings at or above this level count as open
LEVELS = ("alert", "warning", "notice", "info")  # shown in this order


def host_assessment(asset: dict[str, Any]) -> dict[str, Any] | None:
    """EOL and patch status of one asset record (the log's `asset` object), or None.

    The hook to orchestrator.assessment: None when that package (or its knowledge data) is
    not importable or usable, so the web view works without it. Returns
    {"eol": text, "eol_status": ..., "patch": text, "risk": level, "reasons": [...]}."""
    try:
        assessment = importlib.import_module("orchestrator.assessment")
    except ImportError:
        return None
    knowledge = _knowledge()
    if knowledge is None:
        return None
    try:
        report = assessment.assess(asset, knowledge)
    except Exception:  # an assessment bug or odd asset data must not take the page down
        return None
    if not isinstance(report, dict):
        return None
    eol = report.get("eol") or {}
    patch = report.get("patch_level") or {}
    vulns = report.get("vulnerabilities") or []
    if patch.get("missing_required"):
        patch_text = "missing " + ", ".join(patch["missing_required"])
    elif patch.get("months_behind") is not None:
        patch_text = f"{patch['months_behind']} months behind"
    elif vulns:
        patch_text = f"{len(vulns)} open vulnerabilities"
    elif (report.get("risk") or {}).get("level") == "unknown":
        patch_text = "not assessed"
    elif "packages" in asset:
        patch_text = "no known vulnerable packages"
    else:
        patch_text = "see the host page"
    status = str(eol.get("status") or "unknown")
    eol_text = status
    if eol.get("product"):
        eol_text = f"{status} ({eol['product']})"
    risk = report.get("risk") or {}
    return {
        "eol": eol_text,
        "eol_status": status,
        "eol_reason": eol.get("reason") or "",
        "patch": patch_text,
        "risk": risk.get("level"),
        "reasons": list(risk.get("reasons") or []),
    }


_KNOWLEDGE: dict[str, Any] = {}
_KNOWLEDGE_SECONDS = 300.0


def _knowledge() -> Any:
    """The assessment's knowledge data, loaded once per few minutes (it is verified on load)."""
    cached = _KNOWLEDGE.get("value")
    if cached is not None and time.monotonic() - _KNOWLEDGE["at"] < _KNOWLEDGE_SECONDS:
        return cached
    try:
        knowledge = importlib.import_module("orchestrator.knowledge").load_knowledge()
    except Exception:  # not installed, refused bundle: no assessment column
        return None
    _KNOWLEDGE.update(value=knowledge, at=time.monotonic())
    return knowledge


def assessment_available() -> bool:
    try:
        importlib.import_module("orchestrator.assessment")
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class Page:
    number: int
    per_page: int
    total: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.per_page

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    @property
    def has_prev(self) -> bool:
        return self.number > 1


def page_number(value: str | None) -> int:
    try:
        number = int(value or 1)
    except ValueError:
        return 1
    return min(max(number, 1), MAX_PAGE)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- company, site ------------------------------------------------------------------------------


@dataclass
class SiteSummary:
    site: str
    lines: int = 0
    hosts: int = 0
    scanned: int = 0
    overdue: int = 0
    never: int = 0
    open_findings: int = 0
    hosts_with_findings: int = 0
    newest_scan: str | None = None

    @property
    def current(self) -> int:
        """Hosts with a scan inside their interval."""
        return self.scanned - self.overdue


def line_statuses(conn: Connection, now: datetime | None = None) -> list[LineStatus]:
    return status(conn, overdue_days=OVERDUE_DAYS, min_level=OPEN_LEVEL, now=now)


def sites(lines: list[LineStatus]) -> list[SiteSummary]:
    out: dict[str, SiteSummary] = {}
    for line in lines:
        s = out.setdefault(line.site, SiteSummary(line.site))
        s.lines += 1
        s.hosts += line.hosts
        s.scanned += line.scanned
        s.overdue += len(line.overdue)
        s.never += len(line.never_scanned)
        s.open_findings += line.open_findings
        s.hosts_with_findings += line.hosts_with_findings
        if line.newest_scan and (s.newest_scan is None or line.newest_scan > s.newest_scan):
            s.newest_scan = line.newest_scan
    return [out[k] for k in sorted(out)]


def scans_per_day(
    conn: Connection, days: int = 30, now: datetime | None = None
) -> tuple[list[str], dict[str, list[int]]]:
    """(the days, oldest first; per highest level incl. "none", the scans finished that day).
    One range read of the finished index, grouped in SQL."""
    now = now or datetime.now(UTC)
    first = (now - timedelta(days=days - 1)).date()
    day_list = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    logs = schema.scan_logs
    day = func.substr(logs.c.finished, 1, 10)
    rows = conn.execute(
        select(day.label("day"), logs.c.max_level, func.count())
        .where(logs.c.finished >= first.isoformat())
        .group_by(day, logs.c.max_level)
    ).all()
    series: dict[str, list[int]] = {lvl: [0] * days for lvl in ("none", *reversed(LEVELS))}
    index = {d: i for i, d in enumerate(day_list)}
    for d, level, count in rows:
        if d in index:
            series.setdefault(level, [0] * days)[index[d]] += int(count)
    return day_list, series


# -- line: its hosts ---------------------------------------------------------------------------


def line_hosts(
    conn: Connection, site: str, area: str, line: str, page: int, *, with_asset_data: bool = False
) -> tuple[list[dict[str, Any]], Page]:
    hosts = schema.hosts
    where = and_(hosts.c.site == site, hosts.c.area == area, hosts.c.line == line)
    total = int(conn.execute(select(func.count()).select_from(hosts).where(where)).scalar() or 0)
    pg = Page(page, PER_PAGE, total)
    rows = conn.execute(
        select(hosts).where(where).order_by(hosts.c.name).limit(PER_PAGE).offset(pg.offset)
    ).all()
    return [host_summary(conn, h, with_asset_data=with_asset_data) for h in rows], pg


def latest_scan(conn: Connection, host_id: int) -> Any:
    logs = schema.scan_logs
    return conn.execute(
        select(*(c for c in logs.c if c.name != "body"))
        .where(logs.c.host_id == host_id)
        .order_by(logs.c.finished.desc(), logs.c.id.desc())
        .limit(1)
    ).first()


def level_counts(conn: Connection, scan_log_id: int) -> dict[str, int]:
    f = schema.findings
    rows = conn.execute(
        select(f.c.level, func.count()).where(f.c.scan_log_id == scan_log_id).group_by(f.c.level)
    ).all()
    return {level: int(n) for level, n in rows}


def latest_asset(conn: Connection, host_id: int, *, with_data: bool) -> dict[str, Any] | None:
    """The host's newest asset record: os name/version, and the whole `asset` object when
    `with_data` (only then is the large JSON read)."""
    a = schema.assets
    columns = [a.c.collected, a.c.os_name, a.c.os_version, a.c.scan_log_id]
    if with_data:
        columns.append(a.c.data)
    row = conn.execute(
        select(*columns)
        .where(a.c.host_id == host_id)
        .order_by(a.c.collected.desc(), a.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    asset: dict[str, Any] = {"os": {"name": row.os_name, "version": row.os_version}}
    if with_data:
        try:
            loaded = json.loads(row.data)
        except ValueError:
            loaded = None
        if isinstance(loaded, dict):
            asset = loaded
    return {
        "collected": row.collected,
        "os_name": row.os_name,
        "os_version": row.os_version,
        "scan_log_id": int(row.scan_log_id),
        "asset": asset,
    }


def host_summary(
    conn: Connection, h: Any, *, with_asset_data: bool = False, full_assessment: bool = False
) -> dict[str, Any]:
    scan = latest_scan(conn, int(h.id))
    asset = latest_asset(conn, int(h.id), with_data=with_asset_data)
    return {
        "id": int(h.id),
        "name": h.name,
        "site": h.site,
        "area": h.area,
        "line": h.line,
        "cell": h.cell,
        "criticality": h.criticality,
        "scan_interval_days": h.scan_interval_days,
        "last_scan": scan,
        "levels": level_counts(conn, int(scan.id)) if scan is not None else {},
        "os": asset_os_text(asset),
        "assessment": host_assessment(_light(asset["asset"], full_assessment)) if asset else None,
    }


def _light(asset: dict[str, Any], full: bool) -> dict[str, Any]:
    # The line page assesses 50 hosts: OS and patches only, not every package (the host
    # page assesses everything).
    return asset if full else {k: v for k, v in asset.items() if k != "packages"}


def asset_os_text(asset: dict[str, Any] | None) -> str:
    if not asset:
        return ""
    return " ".join(str(x) for x in (asset["os_name"], asset["os_version"]) if x)


# -- host, scan, finding -------------------------------------------------------------------------


def get_host(conn: Connection, host_id: int) -> Any:
    return conn.execute(select(schema.hosts).where(schema.hosts.c.id == host_id)).first()


def host_scans(conn: Connection, host_id: int, page: int) -> tuple[list[Any], Page]:
    logs = schema.scan_logs
    total = int(
        conn.execute(
            select(func.count()).select_from(logs).where(logs.c.host_id == host_id)
        ).scalar()
        or 0
    )
    pg = Page(page, PER_PAGE, total)
    rows = conn.execute(
        select(
            logs.c.id,
            logs.c.scan_id,
            logs.c.scan_type,
            logs.c.action,
            logs.c.complete,
            logs.c.started,
            logs.c.finished,
            logs.c.files,
            logs.c.findings,
            logs.c.max_level,
            logs.c.errors,
            logs.c.bundle_version,
            logs.c.source,
        )
        .where(logs.c.host_id == host_id)
        .order_by(logs.c.finished.desc(), logs.c.id.desc())
        .limit(PER_PAGE)
        .offset(pg.offset)
    ).all()
    return rows, pg


def scan_findings(conn: Connection, scan_log_id: int, limit: int = 500) -> list[Any]:
    f = schema.findings
    return conn.execute(
        select(f.c.id, f.c.path, f.c.sha256, f.c.score, f.c.level, f.c.engine, f.c.rule, f.c.action)
        .where(f.c.scan_log_id == scan_log_id)
        .order_by(f.c.score.desc(), f.c.id)
        .limit(limit)
    ).all()


def get_scan(conn: Connection, scan_log_id: int) -> Any:
    logs = schema.scan_logs
    return conn.execute(
        select(*(c for c in logs.c if c.name != "body")).where(logs.c.id == scan_log_id)
    ).first()


def inspection_id_of(conn: Connection, scan_log_id: int) -> int | None:
    r = schema.inspection_records
    found = conn.execute(select(r.c.id).where(r.c.scan_log_id == scan_log_id)).scalar()
    return None if found is None else int(found)


def scan_log_of_record(conn: Connection, record_id: int) -> int | None:
    r = schema.inspection_records
    found = conn.execute(select(r.c.scan_log_id).where(r.c.id == record_id)).scalar()
    return None if found is None else int(found)


def get_finding(conn: Connection, finding_id: int) -> Any:
    f = schema.findings
    return conn.execute(select(f).where(f.c.id == finding_id)).first()


def same_hash_elsewhere(
    conn: Connection, sha256: str | None, finding_id: int, limit: int = 20
) -> list[Any]:
    """Other findings of the same file (by SHA-256), newest first: where else it was seen."""
    if not sha256:
        return []
    f, logs = schema.findings, schema.scan_logs
    return conn.execute(
        select(f.c.id, f.c.path, f.c.level, logs.c.host, logs.c.site, logs.c.finished)
        .join(logs, logs.c.id == f.c.scan_log_id)
        .where(f.c.sha256 == sha256, f.c.id != finding_id)
        .order_by(f.c.id.desc())
        .limit(limit)
    ).all()


def asset_summary(asset: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(label, value) rows of an asset object for the host page."""
    if not asset:
        return []
    os_info = asset.get("os") if isinstance(asset.get("os"), dict) else {}
    rows: list[tuple[str, str]] = []

    def add(label: str, value: Any) -> None:
        if value not in (None, "", [], {}):
            rows.append((label, str(value)))

    add("hostname", asset.get("hostname"))
    add("FQDN", asset.get("fqdn"))
    add("operating system", os_info.get("pretty_name") or os_info.get("name"))
    add("OS version", os_info.get("version") or os_info.get("release"))
    add("kernel", os_info.get("kernel"))
    add("architecture", asset.get("architecture"))
    add("CPUs", asset.get("cpu_count"))
    memory = asset.get("memory_bytes")
    if isinstance(memory, int):
        add("memory", f"{memory / 2**30:.1f} GiB")
    addresses = []
    for iface in asset.get("interfaces") or []:
        if isinstance(iface, dict):
            for addr in iface.get("addresses") or []:
                if not str(addr).startswith(("127.", "::1", "fe80:")):
                    addresses.append(f"{addr} ({iface.get('name', '?')})")
    add("addresses", ", ".join(addresses))
    packages = asset.get("packages")
    if isinstance(packages, dict):
        add("packages", f"{packages.get('count')} ({packages.get('manager')})")
    for key in ("patches", "hotfixes"):
        value = asset.get(key)
        if isinstance(value, dict):
            add("patches", f"{value.get('count')}")
        elif isinstance(value, list):
            add("patches", str(len(value)))
    apps = asset.get("applications")
    if isinstance(apps, dict | list):
        add("applications", str(apps.get("count") if isinstance(apps, dict) else len(apps)))
    return rows


# -- checkpoint -----------------------------------------------------------------------------------


def open_admissions(conn: Connection, page: int, now: str) -> tuple[list[Any], Page]:
    """Admissions still valid (admitted, valid_until in the future), soonest to expire first;
    each is the device's latest decision (a later refusal closes it)."""
    adm, dev, logs = schema.admissions, schema.devices, schema.scan_logs
    later = schema.admissions.alias("later")
    newer_exists = (
        select(later.c.id)
        .where(
            later.c.device_id == adm.c.device_id,
            (later.c.decided > adm.c.decided)
            | and_(later.c.decided == adm.c.decided, later.c.id > adm.c.id),
        )
        .exists()
    )
    where = and_(adm.c.verdict == "admitted", adm.c.valid_until > now, ~newer_exists)
    total = int(conn.execute(select(func.count()).select_from(adm).where(where)).scalar() or 0)
    pg = Page(page, PER_PAGE, total)
    rows = conn.execute(
        select(
            adm.c.id,
            adm.c.decided,
            adm.c.valid_until,
            adm.c.reason,
            adm.c.user_id,
            dev.c.device_id,
            dev.c.owner,
            dev.c.site,
            dev.c.description,
            logs.c.id.label("scan_log_id"),
            logs.c.finished,
            logs.c.bundle_version,
        )
        .join(dev, dev.c.id == adm.c.device_id)
        .outerjoin(logs, logs.c.id == adm.c.scan_log_id)
        .where(where)
        .order_by(adm.c.valid_until, adm.c.id)
        .limit(PER_PAGE)
        .offset(pg.offset)
    ).all()
    return rows, pg


def recent_decisions(conn: Connection, limit: int = 20) -> list[Any]:
    adm, dev = schema.admissions, schema.devices
    return conn.execute(
        select(
            adm.c.id,
            adm.c.verdict,
            adm.c.decided,
            adm.c.valid_until,
            adm.c.reason,
            adm.c.user_id,
            dev.c.device_id,
            dev.c.owner,
        )
        .join(dev, dev.c.id == adm.c.device_id)
        .order_by(adm.c.id.desc())
        .limit(limit)
    ).all()


def devices_page(conn: Connection, page: int) -> tuple[list[Any], Page]:
    dev = schema.devices
    total = int(conn.execute(select(func.count()).select_from(dev)).scalar() or 0)
    pg = Page(page, PER_PAGE, total)
    rows = conn.execute(
        select(dev.c.device_id, dev.c.owner, dev.c.description, dev.c.site, dev.c.registered)
        .order_by(dev.c.device_id)
        .limit(PER_PAGE)
        .offset(pg.offset)
    ).all()
    return rows, pg


# -- audit trail ---------------------------------------------------------------------------------


def audit_entries(
    conn: Connection, before: int | None, per_page: int | None = None
) -> tuple[list[dict[str, Any]], int]:
    """Entries with seq < `before` (all when None), newest first, and the head seq."""
    per_page = per_page or PER_PAGE
    table = schema.audit_entries
    head = int(
        conn.execute(select(schema.audit_head.c.seq).where(schema.audit_head.c.id == 1)).scalar()
        or 0
    )
    query = select(table.c.seq, table.c.entry).order_by(table.c.seq.desc()).limit(per_page)
    if before is not None:
        query = query.where(table.c.seq < before)
    out = []
    for seq, text in conn.execute(query).all():
        try:
            entry = json.loads(text)
        except ValueError:
            entry = {}
        who, what = entry.get("who") or {}, entry.get("what") or {}
        out.append(
            {
                "seq": int(seq),
                "ts": entry.get("ts", ""),
                "tz_offset": entry.get("tz_offset", ""),
                "user_id": who.get("user_id", ""),
                "full_name": who.get("full_name", ""),
                "auth": who.get("auth", ""),
                "action": what.get("action", ""),
                "object": f"{what.get('object_type', '')} {what.get('object_id', '')}".strip(),
                "old": _short(what.get("old")),
                "new": _short(what.get("new")),
                "where": " / ".join(
                    str(v)
                    for k, v in (entry.get("where") or {}).items()
                    if k in ("controller", "site") and v
                ),
                "why": entry.get("why") or "",
            }
        )
    return out, head


def _short(value: Any, limit: int = 300) -> str:
    if value is None:
        return ""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- inspection records --------------------------------------------------------------------------


def inspection_records(
    conn: Connection, page: int, status_filter: str | None
) -> tuple[list[Any], Page]:
    r, logs, hosts = schema.inspection_records, schema.scan_logs, schema.hosts
    count = select(func.count()).select_from(r)
    query = (
        select(
            r.c.id,
            r.c.status,
            r.c.created,
            hosts.c.name,
            hosts.c.site,
            hosts.c.line,
            logs.c.scan_type,
            logs.c.finished,
            logs.c.findings,
            logs.c.max_level,
            logs.c.complete,
        )
        .join(logs, logs.c.id == r.c.scan_log_id)
        .join(hosts, hosts.c.id == r.c.host_id)
    )
    if status_filter:
        count = count.where(r.c.status == status_filter)
        query = query.where(r.c.status == status_filter)
    pg = Page(page, PER_PAGE, int(conn.execute(count).scalar() or 0))
    rows = conn.execute(
        # scan_logs' own id as the tie-break: the whole order comes from ix_scan_logs_finished.
        query.order_by(logs.c.finished.desc(), logs.c.id.desc()).limit(PER_PAGE).offset(pg.offset)
    ).all()
    return rows, pg


def signature_counts(conn: Connection, record_ids: list[int]) -> dict[int, int]:
    if not record_ids:
        return {}
    s = schema.signatures
    rows = conn.execute(
        select(s.c.record_id, func.count())
        .where(s.c.record_type == "inspection_record", s.c.record_id.in_(record_ids))
        .group_by(s.c.record_id)
    ).all()
    return {int(rid): int(n) for rid, n in rows}


def now_text() -> str:
    return _utc(datetime.now(UTC))
