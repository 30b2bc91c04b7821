"""Reading the audit trail back: filtered queries, `audit show`, and exports (CSV, JSON, PDF).

Filters become SQL WHERE clauses on the entry columns (seq is the primary key; ts and
object_type/object_id are indexed), rows are streamed, and `show` asks for at most `--limit`
rows, so a trail of millions of entries stays quick. Every export file gets its SHA-256, and the
export is itself an audit entry (action `export`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, select

from orchestrator import __version__
from orchestrator.audit import trail
from orchestrator.audit.identity import Actor, Where, os_actor
from orchestrator.audit.verify import VerifyReport, verify
from orchestrator.errors import UsageError
from orchestrator.store import Store, schema

E = schema.audit_entries
FORMATS = ("csv", "json", "pdf")
CSV_COLUMNS = ["seq", "ts", "tz_offset", "user_id", "full_name", "auth", "action",
               "object_type", "object_id", "old", "new", "reason", "controller", "site",
               "app_version", "leaf_hash"]
TEMPLATES = Path(__file__).resolve().parents[1] / "data" / "templates"


@dataclass(frozen=True)
class AuditFilter:
    from_seq: int | None = None
    user: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    since: str | None = None  # UTC text comparable with the ts column
    until: str | None = None  # exclusive
    limit: int | None = None

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def parse_time(text: str, *, end: bool = False) -> str:
    """A date (YYYY-MM-DD, UTC) or an RFC 3339 time (UTC if no offset), as the UTC text the ts
    column holds. `end`: a bare date means the end of that day (an exclusive bound)."""
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"not a date or time: {text!r} (use YYYY-MM-DD or "
                         "YYYY-MM-DDTHH:MM[:SS][+HH:MM])") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if end and len(value) == 10:
        parsed += timedelta(days=1)
    return parsed.astimezone(UTC).isoformat(timespec="milliseconds")


def make_filter(
    *,
    from_seq: int | None = None,
    user: str | None = None,
    action: str | None = None,
    obj: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int | None = None,
) -> AuditFilter:
    """From command-line values (`obj` is TYPE or TYPE:ID)."""
    object_type = object_id = None
    if obj:
        object_type, _, rest = obj.partition(":")
        object_id = rest if ":" in obj else None
    if limit is not None and limit < 0:
        raise UsageError("--limit must be 0 (no limit) or more")
    return AuditFilter(
        from_seq=from_seq, user=user, action=action, object_type=object_type or None,
        object_id=object_id, since=parse_time(since) if since else None,
        until=parse_time(until, end=True) if until else None, limit=limit or None,
    )


def _where(stmt: Select[Any], f: AuditFilter) -> Select[Any]:
    if f.from_seq is not None:
        stmt = stmt.where(E.c.seq >= f.from_seq)
    if f.user:
        stmt = stmt.where(E.c.user_id == f.user)
    if f.action:
        stmt = stmt.where(E.c.action == f.action)
    if f.object_type:
        stmt = stmt.where(E.c.object_type == f.object_type)
    if f.object_id is not None:
        stmt = stmt.where(E.c.object_id == f.object_id)
    if f.since:
        stmt = stmt.where(E.c.ts >= f.since)
    if f.until:
        stmt = stmt.where(E.c.ts < f.until)
    return stmt


@dataclass(frozen=True)
class Row:
    seq: int
    entry: dict[str, Any]
    text: str  # the canonical JSON as stored
    leaf_hash: str
    chain_hash: str


def entries(store: Store, f: AuditFilter, *, newest: bool = False) -> Iterator[Row]:
    """Matching entries, oldest first, streamed. `newest`: with a limit, the newest `limit`
    matches (still returned oldest first); else the first `limit` from the start."""
    stmt = _where(select(E.c.seq, E.c.entry, E.c.leaf_hash, E.c.chain_hash), f)
    if f.limit and newest and f.from_seq is None:
        stmt = stmt.order_by(E.c.seq.desc()).limit(f.limit)
        with store.connect() as conn:
            found = conn.execute(stmt).all()
        for r in reversed(found):  # at most `limit` rows in memory
            yield _row(r)
        return
    stmt = stmt.order_by(E.c.seq)
    if f.limit:
        stmt = stmt.limit(f.limit)
    with store.connect() as conn:
        for r in conn.execution_options(yield_per=2000).execute(stmt):
            yield _row(r)


def _row(r: Any) -> Row:
    try:
        data = json.loads(r.entry)
    except ValueError:
        data = {"seq": r.seq, "unreadable": r.entry}
    return Row(int(r.seq), data if isinstance(data, dict) else {"seq": r.seq}, r.entry,
               r.leaf_hash, r.chain_hash)


def _get(data: Any, *path: str) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _value(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else trail.canonical(value).decode("utf-8")


def flat(row: Row) -> dict[str, Any]:
    """One entry as the CSV/PDF columns."""
    e = row.entry
    return {
        "seq": row.seq, "ts": e.get("ts", ""), "tz_offset": e.get("tz_offset", ""),
        "user_id": _get(e, "who", "user_id") or "", "full_name": _get(e, "who", "full_name") or "",
        "auth": _get(e, "who", "auth") or "", "action": _get(e, "what", "action") or "",
        "object_type": _get(e, "what", "object_type") or "",
        "object_id": _get(e, "what", "object_id") or "",
        "old": _value(_get(e, "what", "old")), "new": _value(_get(e, "what", "new")),
        "reason": e.get("why") or "", "controller": _get(e, "where", "controller") or "",
        "site": _get(e, "where", "site") or "",
        "app_version": _get(e, "where", "app_version") or "",
        "leaf_hash": row.leaf_hash,
    }


# -- exports ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    entries: int
    sha256: str
    report: VerifyReport
    audit_seq: int


def _checkpoint_notes(store: Store) -> list[dict[str, Any]]:
    t = schema.audit_checkpoints
    with store.connect() as conn:
        return [{"id": r.id, "size": int(r.size), "created": r.created, "note": r.note}
                for r in conn.execute(select(t.c.id, t.c.size, t.c.created, t.c.note)
                                      .order_by(t.c.id))]


def _header(f: AuditFilter, report: VerifyReport, actor: Actor,
            notes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "origin": report.origin,
        "generated_at": trail.now_with_offset()[0],
        "generated_by": actor.as_json(),
        "app_version": __version__,
        "filters": f.describe(),
        "verify": report.as_json(),
        "last_checkpoint": notes[-1]["note"] if notes else None,
        "checkpoints": notes,
    }


def _write_csv(path: Path, rows: Iterator[Row]) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(flat(row))
            count += 1
    return count


def _write_json(path: Path, header: dict[str, Any], rows: Iterator[Row]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as fh:
        fh.write('{"header": ')
        fh.write(json.dumps(header, indent=2, ensure_ascii=False))
        fh.write(',\n"entries": [')
        for row in rows:
            fh.write(",\n" if count else "\n")
            fh.write(json.dumps({"entry": row.entry, "leaf_hash": row.leaf_hash,
                                 "chain_hash": row.chain_hash}, ensure_ascii=False,
                                sort_keys=True))
            count += 1
        fh.write("\n]}\n")
    return count


def render_html(header: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("audit_report.html").render(header=header, rows=rows)


def _write_pdf(path: Path, header: dict[str, Any], rows: Iterator[Row]) -> int:
    flat_rows = [flat(r) for r in rows]  # a PDF is rendered whole anyway
    html = render_html(header, flat_rows)
    from weasyprint import HTML

    HTML(string=html, base_url=str(TEMPLATES)).write_pdf(str(path))
    return len(flat_rows)


def export(
    store: Store,
    fmt: str,
    out: Path,
    f: AuditFilter | None = None,
    *,
    actor: Actor | None = None,
    where: Where | None = None,
    report: VerifyReport | None = None,
) -> ExportResult:
    """Write the matching entries to `out` as csv, json or pdf; record the export."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r} (use {', '.join(FORMATS)})")
    f = f or AuditFilter()
    actor = actor or os_actor()
    out = Path(out)
    report = report or verify(store, record=False)
    notes = _checkpoint_notes(store)
    header = _header(f, report, actor, notes)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed: no half-written export under the final name.
    with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", delete=False) as t:
        tmp = Path(t.name)
    try:
        rows = entries(store, f)
        if fmt == "csv":
            count = _write_csv(tmp, rows)
        elif fmt == "json":
            count = _write_json(tmp, header, rows)
        else:
            count = _write_pdf(tmp, header, rows)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    digest = sha256_file(out)
    with store.begin() as conn:
        seq = trail.append(
            conn, actor, "export", "audit_trail", report.origin or "-",
            new={"format": fmt, "entries": count, "sha256": digest, "file": out.name,
                 "filters": f.describe(), "verify": report.result},
            where=where,
        )
    return ExportResult(out, fmt, count, digest, report, seq)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def csv_text(rows: list[Row]) -> str:
    """The CSV of some rows as a string (tests, previews)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow(flat(row))
    return buf.getvalue()
