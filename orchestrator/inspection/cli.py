"""`plantsweep inspect`: inspection records (one per host per scan).

plantsweep inspect list [--host H] [--status open|reviewed|approved] [--json]
plantsweep inspect show ID [--json]
plantsweep inspect remark ID --text "..." [--reason "..."]
plantsweep inspect sign ID --meaning reviewed|approved [--user NAME] [--password-stdin]
plantsweep inspect verify ID [--json]
plantsweep inspect render ID --format html|pdf --out FILE

`sign` always asks the signer's username and password (even when logged in); `verify` exits 1
when a signature no longer matches the record or the stored scan log is damaged.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from orchestrator import exit_codes
from orchestrator.audit.identity import here
from orchestrator.errors import UsageError

COMMANDS = ("inspect",)


def add_parsers(sub: Any, parser_class: type) -> None:
    """`inspect` with its sub-commands (parser_class: the CLI's)."""
    ins = sub.add_parser(
        "inspect", help="inspection records: list, show, remark, sign, verify, render"
    )
    isub = ins.add_subparsers(dest="inspect_command", metavar="ACTION", parser_class=parser_class)
    isub.required = True
    ls = isub.add_parser("list", help="inspection records (newest scan first)")
    ls.add_argument("--host", metavar="NAME", help="only this host's records")
    ls.add_argument("--status", choices=("open", "reviewed", "approved"))
    ls.add_argument("--json", action="store_true", help="as JSON")
    show = isub.add_parser("show", help="one record with its findings and signatures")
    show.add_argument("id", metavar="ID", type=int)
    show.add_argument("--json", action="store_true", help="as JSON")
    remark = isub.add_parser("remark", help="write the engineer's remarks")
    remark.add_argument("id", metavar="ID", type=int)
    remark.add_argument("--text", required=True, help="the remarks (replace any earlier ones)")
    remark.add_argument("--reason", help="required to change remarks or a signed record")
    sign = isub.add_parser("sign", help="e-sign a record (asks username and password)")
    sign.add_argument("id", metavar="ID", type=int)
    sign.add_argument("--meaning", required=True, choices=("reviewed", "approved"))
    sign.add_argument("--user", metavar="NAME", help="the signer's username (else asked)")
    sign.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    verify = isub.add_parser("verify", help="check the record's signatures against its content")
    verify.add_argument("id", metavar="ID", type=int)
    verify.add_argument("--json", action="store_true", help="as JSON")
    render = isub.add_parser("render", help="print a record as HTML or PDF")
    render.add_argument("id", metavar="ID", type=int)
    render.add_argument("--format", choices=("html", "pdf"), default="pdf")
    render.add_argument("--out", required=True, metavar="FILE")


def command(args: argparse.Namespace) -> int:
    """Run `inspect ACTION`."""
    from orchestrator.store import open_store

    store = open_store(getattr(args, "store", None))
    try:
        handler = {"list": _list, "show": _show, "remark": _remark, "sign": _sign,
                   "verify": _verify, "render": _render}[args.inspect_command]
        return handler(store, args)
    finally:
        store.dispose()


def _list(store: Any, args: argparse.Namespace) -> int:
    from orchestrator.inspection import records
    from orchestrator.users.sessions import acting

    acting(store, "view")
    with store.connect() as conn:
        rows = records.list_records(conn, host=args.host, status=args.status)
    if args.json:
        print(json.dumps(rows, indent=2))
        return exit_codes.OK
    table = [("ID", "STATUS", "HOST", "SITE/AREA/LINE", "SCAN", "FINISHED", "FINDINGS", "LEVEL")]
    for r in rows:
        place = "/".join(x or "-" for x in (r["site"], r["area"], r["line"]))
        scan = r["scan_type"] + ("" if r["complete"] else " (incomplete)")
        table.append((str(r["id"]), r["status"], r["host"], place, scan, r["finished"],
                      str(r["findings"]), r["max_level"]))
    widths = [max(len(t[i]) for t in table) for i in range(len(table[0]))]
    for t in table:
        print("  ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)).rstrip())
    return exit_codes.OK


def _sig_line(s: dict[str, Any]) -> str:
    verdict = "valid" if s["valid"] else "INVALID (record changed after signing)"
    return f"{s['meaning']:9} {s['printed_name']} ({s['username']}), {s['signed_at']}: {verdict}"


def _show(store: Any, args: argparse.Namespace) -> int:
    from orchestrator.inspection import records
    from orchestrator.users.sessions import acting

    acting(store, "view")
    with store.connect() as conn:
        view = records.record_view(conn, args.id)
    if args.json:
        print(json.dumps(view, indent=2))
        return exit_codes.OK
    h, s, b = view["host"], view["scan"], view["bundle"]
    print(f"Inspection record {view['id']}  status {view['status']}  created {view['created']}")
    print(f"host      {h['name']}  site {h['site'] or '-'}  area {h['area'] or '-'}  "
          f"line {h['line'] or '-'}")
    print(f"scan      {s['type']} / {s['action']}  {s['started']} .. {s['finished']}  "
          f"files {s['files']}  {'complete' if s['complete'] else 'INCOMPLETE'}")
    print(f"bundle    {b['name'] or '-'} {b['version'] or ''} {b['date'] or ''}".rstrip())
    print(f"log       sha256 {s['log_sha256']}")
    if view["asset"]:
        a = view["asset"]
        print(f"asset     {a['hostname'] or '-'}  {a['os'] or '-'}  "
              f"{', '.join(a['addresses']) or '-'}")
    print(f"findings  {len(view['findings']) or 'none'}")
    for f in view["findings"]:
        print(f"  {f['level']:8} {f['score']:4}  {f['path']}  {f['rule'] or ''}  "
              f"{f['action'] or ''}".rstrip())
    for a in view["actions"]:
        print(f"  action {a['outcome']}: {a['path']} {a['vault_id'] or ''}".rstrip())
    print(f"remarks   {view['remarks'] or '-'}")
    print(f"hash      {view['record_hash']}")
    print("signatures" + ("" if view["signatures"] else "  none"))
    for sig in view["signatures"]:
        print(f"  {_sig_line(sig)}")
    return exit_codes.OK


def _remark(store: Any, args: argparse.Namespace) -> int:
    from orchestrator.inspection import records
    from orchestrator.users.sessions import acting

    actor = acting(store, "remark")
    with store.begin() as conn:
        before = records.record_view(conn, args.id)
        after = records.set_remarks(conn, actor, args.id, args.text, reason=args.reason,
                                    where=here(before["host"]["site"]))
    print(f"record {args.id}: remarks saved")
    stale = [s for s in before["signatures"] if s["valid"]]
    if stale:
        names = ", ".join(f"{s['printed_name']} ({s['meaning']})" for s in stale)
        print(f"note: the record changed after it was signed by {names}; those signatures now "
              f"show as INVALID and the record is {after['status']} again: sign it again")
    return exit_codes.OK


def _sign(store: Any, args: argparse.Namespace) -> int:
    from orchestrator.inspection import records
    from orchestrator.users import passwords

    print(f"Signing inspection record {args.id} as {args.meaning!r}: "
          "enter your username and password.")
    username = passwords.read_username(given=args.user)
    password = passwords.read_password(from_stdin=args.password_stdin)
    sig = records.sign_record(store, args.id, username, password, args.meaning, where=here())
    print(f"record {args.id} signed: {sig['printed_name']}, {sig['signed_at']}, "
          f"{sig['meaning']} (record hash {sig['record_hash'][:16]}...), status {sig['status']}")
    return exit_codes.OK


def _verify(store: Any, args: argparse.Namespace) -> int:
    from orchestrator.audit import trail
    from orchestrator.inspection import records
    from orchestrator.users.sessions import acting

    actor = acting(store, "view")
    with store.begin() as conn:
        result = records.verify_record(conn, args.id)
        trail.append(conn, actor, "verify", records.RECORD_TYPE, str(args.id),
                     new={"record_hash": result["record_hash"], "ok": result["ok"],
                          "scan_log_intact": result["scan_log_intact"],
                          "invalid_signatures": [s["id"] for s in result["signatures"]
                                                 if not s["valid"]]},
                     where=here())
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"record {args.id}: hash {result['record_hash']}")
        print(f"scan log: {'intact' if result['scan_log_intact'] else 'DAMAGED (hash differs)'}")
        if not result["signatures"]:
            print("no signatures")
        for sig in result["signatures"]:
            print(f"  {_sig_line(sig)}")
        print("PASS" if result["ok"] else "FAIL")
    return exit_codes.OK if result["ok"] else exit_codes.FINDINGS


def _render(store: Any, args: argparse.Namespace) -> int:
    from orchestrator.audit import trail
    from orchestrator.inspection import records, render
    from orchestrator.users.sessions import acting

    actor = acting(store, "render")
    out = Path(args.out)
    if out.is_dir():
        raise UsageError(f"--out is a folder: give a file name ({out}/record-{args.id}."
                         f"{args.format})")
    with store.connect() as conn:
        view = records.record_view(conn, args.id)
    by = f"{actor.full_name} ({actor.user_id})"
    if args.format == "pdf":
        render.render_pdf(view, out, generated_by=by)
    else:
        render.write_html(view, out, generated_by=by)
    import hashlib

    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    with store.begin() as conn:
        trail.append(conn, actor, "export", records.RECORD_TYPE, str(args.id),
                     new={"format": args.format, "file": str(out.resolve()), "sha256": digest,
                          "record_hash": view["record_hash"]},
                     where=here(view["host"]["site"]))
    print(f"record {args.id} written to {out} ({args.format}, sha256 {digest[:16]}...)")
    return exit_codes.OK
