"""`plantsweep assets`: the plant's asset inventory from the store, assessed offline.

plantsweep assets [-i INVENTORY] [--group G] [--site S] [--status supported|extended|eol|unknown]
    [--format table|csv|json] [--out FILE] [--max-data-age DAYS]
plantsweep assets show HOST [--site S] [--json]
plantsweep assets diff HOST [--site S] [--from SCAN_ID] [--to SCAN_ID] [--json]

With -i, the inventory's hosts are listed (those never collected too) and each host's
`required_patches` variable is the baseline of KBs it must have. The knowledge data's date is
printed with every assessment.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
from collections.abc import Iterator
from typing import Any

from orchestrator import exit_codes
from orchestrator.errors import UsageError

FORMATS = ("table", "csv", "json")
CSV_COLUMNS = [
    "site", "area", "line", "host", "os", "eol_status", "eol_date", "extended_until",
    "patch_level", "months_behind", "missing_required", "vulnerabilities", "kev", "risk",
    "collected", "scan_id",
]  # fmt: skip


def add_parser(sub: Any, parser_class: type) -> None:
    assets = sub.add_parser(
        "assets", help="asset inventory: OS, end of life, patch level, vulnerabilities per host"
    )
    assets.add_argument(
        "-i",
        "--inventory",
        action="append",
        default=[],
        metavar="INV",
        help="list the hosts of this inventory and use its required_patches",
    )
    assets.add_argument("--group", metavar="G", help="only the hosts of this inventory group")
    assets.add_argument("--site", metavar="S", help="only hosts of this site")
    assets.add_argument(
        "--status",
        choices=("supported", "extended", "eol", "unknown"),
        help="only hosts with this end-of-life status",
    )
    assets.add_argument("--format", choices=FORMATS, default="table")
    assets.add_argument("--out", metavar="FILE", help="write the CSV or JSON here, not stdout")
    _age(assets)
    asub = assets.add_subparsers(dest="assets_command", metavar="ACTION", parser_class=parser_class)
    show = asub.add_parser("show", help="one host: asset record and full assessment")
    show.add_argument("host", metavar="HOST")
    show.add_argument("--site", dest="host_site", metavar="S")
    show.add_argument("--json", action="store_true")
    show.add_argument(
        "-i",
        "--inventory",
        dest="host_inventory",
        action="append",
        default=[],
        metavar="INV",
        help="take the host's required_patches from here",
    )
    _age(show)
    diff = asub.add_parser("diff", help="what changed on a host between two scans")
    diff.add_argument("host", metavar="HOST")
    diff.add_argument("--site", dest="host_site", metavar="S")
    diff.add_argument(
        "--from",
        dest="from_scan",
        metavar="SCAN_ID",
        help="the older scan (default: the one before --to)",
    )
    diff.add_argument(
        "--to", dest="to_scan", metavar="SCAN_ID", help="the newer scan (default: the newest)"
    )
    diff.add_argument("--json", action="store_true")


def _age(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-data-age", type=int, metavar="DAYS",
                   help="warn when the knowledge data is older (default 90, or "
                   "$PLANTSWEEP_MAX_DATA_AGE)")  # fmt: skip


def assets_command(args: argparse.Namespace) -> int:
    from orchestrator.store import open_store
    from orchestrator.users.sessions import acting

    store = open_store(getattr(args, "store", None))
    try:
        acting(store, "view")
        with store.connect() as conn:
            if args.assets_command == "show":
                return _show(conn, args)
            if args.assets_command == "diff":
                return _diff(conn, args)
            return _list(conn, args)
    finally:
        store.dispose()


def _inventory_selection(
    paths: list[str], group: str | None
) -> tuple[set[str] | None, dict[str, list[str]]]:
    """(host names or None for all, required KBs per host) from the inventories."""
    if not paths:
        if group:
            raise UsageError("--group needs an inventory (-i)")
        return None, {}
    from orchestrator.assets.report import required_patches
    from orchestrator.inventory import load_inventory

    inventory = load_inventory(paths)
    hosts = inventory.select(group or "all")
    required = {h.name: required_patches(inventory.host_vars(h.name), h.name) for h in hosts}
    return {h.name for h in hosts}, required


def _list(conn: Any, args: argparse.Namespace) -> int:
    from orchestrator.assets import records
    from orchestrator.assets.report import assess_hosts
    from orchestrator.knowledge import use_knowledge

    names, required = _inventory_selection(args.inventory, args.group)
    knowledge = use_knowledge(args.max_data_age)
    collected: set[str] = set()
    as_json = args.format == "json"

    def rows() -> Iterator[Any]:  # one host at a time: a plant does not fit in memory at once
        found = records.latest(conn, site=args.site, names=names)
        for row in assess_hosts(found, knowledge, required, keep_asset=as_json):
            collected.add(row.record.name)
            if not args.status or row.eol_status == args.status:
                yield row

    def missing() -> list[str]:
        return [] if args.status else sorted((names or set()) - collected)

    data = {"version": knowledge.version, "date": knowledge.date, "origin": knowledge.origin}
    stamp = f"knowledge data {knowledge.version} of {knowledge.date} ({knowledge.origin})"
    if args.format == "table":
        shown = list(rows())
        _table(shown, missing(), stamp)
        return exit_codes.OK
    with _output(args.out) as out:
        if as_json:  # written host by host
            out.write('{"data": ' + json.dumps(data, sort_keys=True, default=str)
                      + ', "hosts": [\n')  # fmt: skip
            for index, row in enumerate(rows()):
                out.write((",\n" if index else "")
                          + json.dumps(row.as_json(), sort_keys=True, default=str))  # fmt: skip
            out.write('\n], "never_collected": ' + json.dumps(missing()) + "}\n")
        else:
            writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
            writer.writeheader()
            for row in rows():
                writer.writerow(row.as_row())
            out.write(f"# {stamp}\n")
    return exit_codes.OK


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[Any]:
    if not path:
        yield sys.stdout
        return
    with open(path, "w", encoding="utf-8", newline="") as handle:
        yield handle
    print(f"written to {path}", file=sys.stderr)


def _table(rows: list[Any], missing: list[str], stamp: str) -> None:
    from rich.table import Table

    from orchestrator.store.cli import _console
    from orchestrator.store.queries import age_text

    table = Table(title=f"assets ({stamp})", title_justify="left")
    for col in (
        "host",
        "place",
        "OS",
        "end of life",
        "patch level",
        "vulns (KEV)",
        "risk",
        "collected",
    ):
        table.add_column(col)
    for r in rows:
        vulns, kev = r.vuln_counts()
        table.add_row(
            r.record.name, r.record.place, r.os_text(), r.eol_text(), r.patch_text(),
            f"{vulns} ({kev})", (r.assessment.get("risk") or {}).get("level", "unknown"),
            age_text(r.record.collected) + " ago",
        )  # fmt: skip
    for name in missing:
        table.add_row(name, "-", "no asset record", "-", "-", "-", "-", "never")
    _console().print(table)
    print(f"{len(rows)} host(s) assessed" + (f", {len(missing)} never collected" if missing
                                              else ""))  # fmt: skip


def _record(conn: Any, args: argparse.Namespace, scan_id: str | None = None) -> Any:
    from orchestrator.assets import records

    history = records.history(conn, args.host, site=args.host_site)
    if scan_id is None:
        return history, history[-1]
    for h in history:
        if h.scan_id == scan_id:
            return history, h
    raise UsageError(f"host {args.host!r} has no asset record from scan {scan_id!r}")


def _show(conn: Any, args: argparse.Namespace) -> int:
    from orchestrator.assets.report import assess_hosts
    from orchestrator.knowledge import use_knowledge

    _, record = _record(conn, args)
    _, required = _inventory_selection(args.host_inventory, None)
    knowledge = use_knowledge(args.max_data_age)
    row = next(assess_hosts([record], knowledge, required, keep_asset=True))
    if args.json:
        print(json.dumps(row.as_json(), indent=2, sort_keys=True, default=str))
        return exit_codes.OK
    a, asset = row.assessment, record.asset
    print(f"{record.name} ({record.place}), collected {record.collected}, scan {record.scan_id}")
    print(f"  OS:           {row.os_text()}")
    print(f"  end of life:  {row.eol_text()}  [{(a.get('eol') or {}).get('reason') or ''}]")
    print(f"  patch level:  {row.patch_text()}")
    risk = a.get("risk") or {}
    print(f"  risk:         {risk.get('level', 'unknown')}: " + "; ".join(risk.get("reasons", [])))
    hardware = asset.get("hardware") or {}
    if hardware.get("cpu_model"):
        print(f"  hardware:     {hardware.get('cpu_model')}, {asset.get('cpu_count')} CPU(s), "
              f"{_gib(asset.get('memory_bytes'))} memory")  # fmt: skip
    for section in ("packages", "patches", "services", "autostart", "users", "usb_devices"):
        value = asset.get(section) or {}
        count = value.get("count", len(value.get("items") or []))
        why = f" ({value['reason']})" if value.get("reason") else ""
        print(f"  {section + ':':<14}{count}{why}")
    listening = (asset.get("network") or {}).get("listening") or []
    if listening:
        ports = sorted({f"{p.get('proto')}/{p.get('port')}" for p in listening})
        print(f"  listening:    {', '.join(ports[:20])}" + (" ..." if len(ports) > 20 else ""))
    vulns = a.get("vulnerabilities") or []
    print(f"  vulnerabilities: {len(vulns)}")
    for v in vulns[:50]:
        kev = " KEV" if v.get("kev") else ""
        print(f"    {v.get('cve')} {v.get('severity') or '-'}{kev} {v.get('package') or ''} "
              f"{v.get('installed') or ''} -> fixed {v.get('fixed') or '?'}")  # fmt: skip
    if len(vulns) > 50:
        print(f"    ... and {len(vulns) - 50} more (--json lists all)")
    for note in a.get("not_assessed") or []:
        print(f"  not assessed: {note}")
    data = a.get("data") or {}
    print(f"  knowledge data {data.get('version')} of {data.get('date')} ({data.get('origin')})")
    return exit_codes.OK


def _gib(value: Any) -> str:
    return f"{value / 2**30:.1f} GiB" if isinstance(value, int | float) else "?"


def _diff(conn: Any, args: argparse.Namespace) -> int:
    from orchestrator.assets.diff import diff_assets

    history, newer = _record(conn, args, args.to_scan)
    if args.from_scan:
        _, older = _record(conn, args, args.from_scan)
    else:
        before = [h for h in history if h.collected < newer.collected]
        if not before:
            raise UsageError(f"host {args.host!r} has only one asset record before "
                             f"{newer.collected}: nothing to compare")  # fmt: skip
        older = before[-1]
    changes = diff_assets(older.asset, newer.asset)
    if args.json:
        doc = {"host": newer.name, "from": {"scan_id": older.scan_id, "collected": older.collected},
               "to": {"scan_id": newer.scan_id, "collected": newer.collected},
               "changes": changes.as_json()}  # fmt: skip
        print(json.dumps(doc, indent=2, sort_keys=True))
        return exit_codes.OK
    print(f"{newer.name}: {older.collected} (scan {older.scan_id}) -> {newer.collected} "
          f"(scan {newer.scan_id})")  # fmt: skip
    for line in changes.lines() or ["no change"]:
        print(f"  {line}")
    return exit_codes.OK
