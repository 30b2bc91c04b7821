"""`plantsweep logs import|list|show` and `plantsweep status`: the store from the command line.

plantsweep logs import PATH [--host NAME] [--machine-id ID] [--out results] [--min-level L]
    PATH: a USB kit (its logs are checked against the kit's key first), a run folder, a
    results folder holding run folders, or scan log files.
plantsweep logs list [--site S] [--area A] [--line L] [--host H] [--since WHEN]
    [--until WHEN] [--level LEVEL] [--limit N] [--json]
plantsweep logs show ID|SCAN_ID [--json]
plantsweep status [-i INVENTORY] [--overdue DAYS] [--level LEVEL] [--max-data-age DAYS] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from orchestrator import exit_codes
from orchestrator.detection import DEFAULT_MIN_LEVEL, MIN_LEVELS
from orchestrator.errors import UsageError

LEVEL_CHOICES = ("info", "notice", "warning", "alert")


def add_parsers(
    sub: Any, add_inventory_args: Callable[[argparse.ArgumentParser], None], parser_class: type
) -> None:
    logs = sub.add_parser("logs", help="scan logs in the central store: import, list, show")
    lsub = logs.add_subparsers(dest="logs_command", metavar="ACTION", parser_class=parser_class)
    lsub.required = True
    imp = lsub.add_parser(
        "import",
        help="store scan logs: a USB kit's (checked against its key), a run folder, "
        "a results folder or log files",
    )
    imp.add_argument("paths", nargs="+", metavar="PATH")
    imp.add_argument(
        "--host", metavar="NAME",
        help="USB kit: the host the stick was used on (other hosts' logs are refused)",
    )
    imp.add_argument(
        "--machine-id", metavar="ID",
        help="USB kit: refuse logs of another machine id (/etc/machine-id)",
    )
    imp.add_argument("--out", default="results", metavar="DIR",
                     help="USB kit: results folder for the imported run (./results)")
    imp.add_argument(
        "--min-level", choices=MIN_LEVELS, default=DEFAULT_MIN_LEVEL,
        help="USB kit: findings at or above this level count in the recap and exit code",
    )
    ls = lsub.add_parser("list", help="stored scan logs, newest last")
    _add_place_filters(ls)
    ls.add_argument("--since", metavar="WHEN", help="finished at or after (2026-11-01, 7d, ...)")
    ls.add_argument("--until", metavar="WHEN", help="finished at or before")
    ls.add_argument("--level", choices=LEVEL_CHOICES,
                    help="only logs with a finding at or above this level")
    ls.add_argument("--limit", type=int, default=50, metavar="N", help="newest N (50)")
    ls.add_argument("--json", action="store_true")
    show = lsub.add_parser("show", help="one stored scan log: summary and findings")
    show.add_argument("ref", metavar="ID|SCAN_ID")
    show.add_argument("--json", action="store_true", help="the log's exact stored bytes")

    st = sub.add_parser("status", help="per site and line: coverage, scan age, open findings")
    st.add_argument(
        "-i", "--inventory", action="append", default=[], metavar="INVENTORY",
        help="also count this inventory's hosts (hosts never scanned show up); repeatable",
    )
    st.add_argument("--overdue", type=int, default=30, metavar="DAYS",
                    help="a host whose last scan is older is overdue (30; a host's "
                    "scan_interval_days variable overrides)")
    st.add_argument("--level", choices=LEVEL_CHOICES, default=DEFAULT_MIN_LEVEL,
                    help="open findings: those at or above this level in each host's latest "
                    "scan (warning)")
    st.add_argument("--max-data-age", type=int, metavar="DAYS",
                    help="warn when the end-of-life data is older (90, or "
                    "$PLANTSWEEP_MAX_DATA_AGE)")
    st.add_argument("--json", action="store_true")


def _add_place_filters(p: argparse.ArgumentParser) -> None:
    for name in ("site", "area", "line", "host"):
        p.add_argument(f"--{name}", metavar=name.upper())


def logs_command(args: argparse.Namespace) -> int:
    if args.logs_command == "import":
        return _import(args)
    from orchestrator.store import open_store
    from orchestrator.users.sessions import acting

    store = open_store(getattr(args, "store", None))
    try:
        acting(store, "view")
        if args.logs_command == "list":
            return _list(store, args)
        return _show(store, args)
    finally:
        store.dispose()


def _import(args: argparse.Namespace) -> int:
    from orchestrator.logs_import import ImportOptions, find_kit_or_none, import_logs
    from orchestrator.store import open_store
    from orchestrator.store.files_import import import_paths
    from orchestrator.users.sessions import acting

    code = exit_codes.OK
    plain: list[Path] = []
    for raw in args.paths:
        path = Path(raw)
        if not path.exists():
            raise UsageError("no such file or folder", path=raw)
        if path.is_dir() and find_kit_or_none(path) is not None:
            options = ImportOptions(
                out=Path(args.out), host=args.host, machine_id=args.machine_id,
                min_level=args.min_level, store=getattr(args, "store", None),
            )
            code |= import_logs(path, options)
        elif path.is_dir() and next(path.rglob("*.json"), None) is None:
            raise UsageError(
                "no plantsweep kit here (no kit.json in it or in plantsweep-kit/), and no run "
                "folder or scan log (.json) to import", path=raw,
            )
        else:
            plain.append(path)
    if plain:
        store = open_store(getattr(args, "store", None))
        try:
            code |= import_paths(store, plain, acting(store, "import"))
        finally:
            store.dispose()
    return code


def _list(store: Any, args: argparse.Namespace) -> int:
    from orchestrator.store.queries import LogFilter, list_logs

    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    f = LogFilter(site=args.site, area=args.area, line=args.line, host=args.host,
                  since=args.since, until=args.until, min_level=args.level, limit=args.limit)
    with store.connect() as conn:
        rows = list_logs(conn, f)
    if args.json:
        json.dump([dict(r._mapping) for r in rows], sys.stdout, indent=2)
        print()
        return exit_codes.OK
    table = Table(title=f"{len(rows)} scan log(s)", title_justify="left")
    for col in ("id", "finished (UTC)", "site", "line", "host", "type", "files", "findings",
                "max level", "complete", "patterns"):
        table.add_column(col, justify="right" if col in ("id", "files", "findings") else "left")
    for r in rows:
        table.add_row(
            str(r.id), r.finished, r.site, r.line or r.area, r.host, r.scan_type, str(r.files),
            str(r.findings), r.max_level, "yes" if r.complete else "NO",
            f"{r.bundle_name or ''} {r.bundle_version or ''}".strip(),
        )
    _console().print(table)
    return exit_codes.OK


def _show(store: Any, args: argparse.Namespace) -> int:
    from orchestrator.store.queries import find_log, log_bytes, log_findings

    with store.connect() as conn:
        row = find_log(conn, args.ref)
        if args.json:
            sys.stdout.buffer.write(log_bytes(row))
            return exit_codes.OK
        findings = log_findings(conn, row.id, limit=200)
    out = _console()
    out.print(f"scan log {row.id}: {row.scan_id}", markup=False)
    for label, value in (
        ("host", f"{row.host} (site {row.site or '-'}, area {row.area or '-'}, "
                 f"line {row.line or '-'})"),
        ("scan", f"{row.scan_type}, action {row.action}, "
                 f"{'complete' if row.complete else 'INCOMPLETE'}"),
        ("time", f"{row.started} to {row.finished}"),
        ("patterns", f"{row.bundle_name} version {row.bundle_version}, dated {row.bundle_date}"),
        ("files", str(row.files)),
        ("findings", f"{row.findings} (highest: {row.max_level}, score {row.max_score})"),
        ("stored", f"{row.stored_at} from {row.source}, sha256 {row.sha256}"),
    ):
        out.print(f"  {label:9} {value}", markup=False)
    if findings:
        table = Table(title="findings (highest score first)", title_justify="left")
        for col in ("score", "level", "path", "rule", "action"):
            table.add_column(col)
        for f in findings:
            table.add_row(str(f.score), f.level, f.path, f.rule or "", f.action or "")
        out.print(table)
        if row.findings > len(findings):
            out.print(f"  ... {row.findings - len(findings)} more: use --json")
    return exit_codes.OK


def status_command(args: argparse.Namespace) -> int:
    from orchestrator.store import open_store
    from orchestrator.store.queries import age_text, status
    from orchestrator.users.sessions import acting

    store = open_store(getattr(args, "store", None))
    try:
        actor = acting(store, "view")
        if args.inventory:
            from orchestrator.store.hosts import register_inventory_hosts

            register_inventory_hosts(store, args.inventory, actor)
        with store.connect() as conn:
            lines = status(conn, overdue_days=args.overdue, min_level=args.level)
            knowledge = _end_of_life(conn, lines, getattr(args, "max_data_age", None))
    finally:
        store.dispose()
    if args.json:
        json.dump([vars(line) for line in lines], sys.stdout, indent=2)
        print()
        return exit_codes.OK
    table = Table(title=f"plant status (open findings: {args.level} or above in each host's "
                  f"latest scan; overdue: no scan for {args.overdue} days; end of life: "
                  f"knowledge data of {knowledge.date})", title_justify="left")
    for col in ("site", "area", "line", "hosts", "scanned", "never scanned", "overdue",
                "oldest last scan", "open findings", "incomplete", "end of life"):
        table.add_column(col)
    for s in lines:
        table.add_row(
            s.site or "-", s.area or "-", s.line or "-", str(s.hosts), str(s.scanned),
            _names(s.never_scanned), _names(s.overdue), age_text(s.oldest_last_scan),
            f"{s.open_findings} on {s.hosts_with_findings} host(s)" if s.open_findings else "0",
            str(s.incomplete), _names(s.end_of_life),
        )
    _console().print(table)
    return exit_codes.OK


def _end_of_life(conn: Any, lines: list[Any], max_age: int | None) -> Any:
    """Mark end-of-life hosts on the status lines; the knowledge data used (for its date)."""
    from orchestrator.assets import records
    from orchestrator.assets.report import mark_end_of_life
    from orchestrator.knowledge import use_knowledge

    knowledge = use_knowledge(max_age)
    mark_end_of_life(lines, records.latest(conn, os_only=True), knowledge)
    return knowledge


def _console() -> Console:
    # Piped output is not cut to 80 columns: tables of logs are wide.
    return Console(highlight=False, width=shutil.get_terminal_size((160, 24)).columns)


def _names(names: list[str]) -> str:
    if not names:
        return "0"
    shown = ", ".join(names[:3])
    return f"{len(names)}: {shown}" + (", ..." if len(names) > 3 else "")
