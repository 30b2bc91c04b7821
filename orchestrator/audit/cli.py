"""`plantsweep audit ...`: verify, show, export, checkpoints, key.

plantsweep audit verify [--checkpoint FILE] [--json]
plantsweep audit show [FILTERS] [--json]
plantsweep audit export --format csv|json|pdf --out FILE [FILTERS]
plantsweep audit checkpoints [--export FILE] [--now]
plantsweep audit key [--rotate --reason TEXT]

FILTERS: [--from-seq N] [--user U] [--action A] [--object TYPE[:ID]] [--since DATE]
         [--until DATE] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import exit_codes

if TYPE_CHECKING:
    from orchestrator.audit.identity import Actor
    from orchestrator.store import Store

SHOW_LIMIT = 100


def _add_filters(p: argparse.ArgumentParser, default_limit: int | None) -> None:
    p.add_argument("--from-seq", type=int, metavar="N", help="entries from seq N on")
    p.add_argument("--user", metavar="U", help="entries by this user id")
    p.add_argument("--action", metavar="A", help="entries of this action (e.g. quarantine)")
    p.add_argument("--object", metavar="TYPE[:ID]", help="entries about this object")
    p.add_argument("--since", metavar="DATE", help="entries at or after DATE (UTC)")
    p.add_argument("--until", metavar="DATE", help="entries before DATE, a day included (UTC)")
    p.add_argument("--limit", type=int, metavar="N", default=default_limit,
                   help=f"at most N entries (0: all; default {default_limit or 'all'})")


def add_parser(sub: Any, parser_class: type) -> None:
    """`audit` with its sub-commands (parser_class: the CLI's)."""
    a = sub.add_parser("audit", help="the audit trail: verify, show, export, checkpoints, key")
    asub = a.add_subparsers(dest="audit_command", metavar="ACTION", parser_class=parser_class)
    asub.required = True
    v = asub.add_parser("verify", help="recompute hashes, chain and signed checkpoints; "
                                       "name the first bad entry")
    v.add_argument("--checkpoint", metavar="FILE",
                   help="checkpoints exported earlier (audit checkpoints --export, or a JSON "
                        "export): also checked, so a truncated or rewritten trail is caught "
                        "even if its stored checkpoints were deleted")
    v.add_argument("--json", action="store_true", help="the report as JSON")
    s = asub.add_parser("show", help="entries as a table (newest last)")
    _add_filters(s, SHOW_LIMIT)
    s.add_argument("--json", action="store_true", help="the entries as JSON, one per line")
    e = asub.add_parser("export", help="entries as CSV, JSON or PDF (with the verify result "
                                       "and the signed checkpoints); prints the SHA-256")
    e.add_argument("--format", required=True, choices=["csv", "json", "pdf"])
    e.add_argument("--out", required=True, metavar="FILE")
    _add_filters(e, None)
    c = asub.add_parser("checkpoints", help="the signed checkpoints: list, export, make one")
    c.add_argument("--export", metavar="FILE",
                   help="write every signed note to FILE (copy it off this machine / to the SIEM)")
    c.add_argument("--now", action="store_true", help="make a checkpoint now")
    k = asub.add_parser("key", help="the trail's signing key: public key and key id; rotate")
    k.add_argument("--rotate", action="store_true", help="replace the signing key (audited)")
    k.add_argument("--reason", metavar="TEXT", help="why (required with --rotate)")


def _open(args: argparse.Namespace) -> Store:
    from orchestrator.store import open_store

    return open_store(getattr(args, "store", None))


def _actor(args: argparse.Namespace) -> Actor:
    from orchestrator.audit.identity import os_actor

    return getattr(args, "actor", None) or os_actor()


# The permission each action needs (orchestrator/users/accounts.py).
PERMISSIONS = {
    "verify": "audit.verify",
    "show": "audit.show",
    "export": "audit.export",
    "checkpoints": "audit.verify",
    "key": "view",
}


def audit_command(args: argparse.Namespace) -> int:
    from orchestrator.users.sessions import acting

    store = _open(args)
    try:
        command = args.audit_command
        if getattr(args, "actor", None) is None:
            rotate = command == "key" and getattr(args, "rotate", False)
            args.actor = acting(store, "key.rotate" if rotate else PERMISSIONS[command])
        if command == "verify":
            return _verify(store, args)
        if command == "show":
            return _show(store, args)
        if command == "export":
            return _export(store, args)
        if command == "checkpoints":
            return _checkpoints(store, args)
        if command == "key":
            return _key(store, args)
        raise AssertionError(command)
    finally:
        store.dispose()


def _verify(store: Store, args: argparse.Namespace) -> int:
    from orchestrator.audit.verify import AUDIT_FAILED, verify

    report = verify(store, getattr(args, "checkpoint", None), actor=_actor(args))
    if getattr(args, "json", False):
        print(json.dumps(report.as_json(), indent=2))
    else:
        print(report.summary())
        for extra in report.problems[1:10]:
            print(f"  also: {extra}")
        for warning in report.warnings:
            print(f"  warning: {warning}")
        if report.fingerprints:
            print(f"  signing keys: {', '.join(report.fingerprints)}")
    return exit_codes.OK if report.ok else AUDIT_FAILED


def _filter(args: argparse.Namespace) -> Any:
    from orchestrator.audit.export import make_filter

    return make_filter(
        from_seq=getattr(args, "from_seq", None), user=getattr(args, "user", None),
        action=getattr(args, "action", None), obj=getattr(args, "object", None),
        since=getattr(args, "since", None), until=getattr(args, "until", None),
        limit=getattr(args, "limit", None),
    )


def _show(store: Store, args: argparse.Namespace) -> int:
    from orchestrator.audit.export import entries, flat

    rows = entries(store, _filter(args), newest=True)
    if getattr(args, "json", False):
        for row in rows:
            print(json.dumps(row.entry, ensure_ascii=False, sort_keys=True))
        return exit_codes.OK
    if not getattr(args, "limit", None):  # everything: streamed as lines, never one table
        for row in rows:
            print("\t".join(_cells(flat(row))))
        return exit_codes.OK
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False, header_style="bold")
    for column in ("SEQ", "TIME (UTC)", "USER", "ACTION", "OBJECT", "DETAIL", "REASON"):
        table.add_column(column, overflow="fold")
    count = 0
    for row in rows:
        table.add_row(*_cells(flat(row)))
        count += 1
    console = Console(soft_wrap=False)
    if count:
        console.print(table)
    else:
        print("no audit entries match", file=sys.stderr)
    return exit_codes.OK


def _cells(r: dict[str, Any]) -> list[str]:
    detail = r["new"] if not r["old"] else f"{r['old']} -> {r['new']}"
    return [str(r["seq"]), r["ts"].replace("+00:00", "Z"), r["user_id"], r["action"],
            f"{r['object_type']}:{r['object_id']}", detail[:120], r["reason"]]


def _export(store: Store, args: argparse.Namespace) -> int:
    from orchestrator.audit.export import export

    result = export(store, args.format, Path(args.out), _filter(args), actor=_actor(args))
    print(f"{result.sha256}  {result.path}")
    print(f"{result.entries} entries, {result.format}, verify {result.report.result} "
          f"(audit entry {result.audit_seq})")
    return exit_codes.OK


def _checkpoints(store: Store, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from orchestrator.audit import checkpoint
    from orchestrator.store import schema

    if getattr(args, "now", False):
        made = checkpoint.make_checkpoint(store, actor=_actor(args))
        if made is not None:
            print(f"checkpoint {made.id}: covers {made.size} entries, root {made.root_hash}")
    target = getattr(args, "export", None)
    if target:
        n = checkpoint.export_checkpoints(store, Path(target))
        print(f"{n} signed checkpoints written to {target}")
        return exit_codes.OK
    t = schema.audit_checkpoints
    with store.connect() as conn:
        found = conn.execute(select(t.c.id, t.c.created, t.c.size, t.c.root_hash, t.c.note)
                             .order_by(t.c.id)).all()
    for row in found:
        kid = ",".join(checkpoint.parse_note(row.note).key_ids())
        print(f"{row.id:>5}  {row.created}  size {row.size:<8}  root {row.root_hash[:16]}…  "
              f"key id {kid}")
    if not found:
        print("no checkpoint yet", file=sys.stderr)
    return exit_codes.OK


def _key(store: Store, args: argparse.Namespace) -> int:
    from orchestrator.audit import checkpoint

    origin = store.meta("install_id") or ""
    if getattr(args, "rotate", False):
        old, new = checkpoint.rotate_key(store, getattr(args, "reason", None) or "",
                                         actor=_actor(args))
        print(f"rotated: old key {checkpoint.fingerprint(old)} (kept for verifying), "
              f"new key {checkpoint.fingerprint(new)}")
    key = checkpoint.load_key(create=True).public_key()
    print(f"key file:     {checkpoint.key_path()}")
    print(f"fingerprint:  {checkpoint.fingerprint(key)}")
    print(f"key id:       {checkpoint.key_id(origin, key).hex()}  (key name {origin})")
    print(f"verifier key: {checkpoint.verifier_key(origin, key)}")
    print(checkpoint.public_path().read_text(encoding="ascii").rstrip("\n"))
    return exit_codes.OK
