"""`plantsweep export splunk|cef|leef|jsonl|forward|cursors`: the SIEM export on the command line.

Exit codes: 0 delivered; 2 the receiver failed (what it accepted before stays exported, the
rest is sent by the next export); 4 a usage or store error. One line, never a traceback.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a command runs: building the parser stays cheap
    from orchestrator.siem.export import Destination, ExportResult


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    ex = sub.add_parser("export", help="export store events to a SIEM (Splunk, QRadar, CEF)")
    esub = ex.add_subparsers(dest="export_command", metavar="TYPE", parser_class=parser_class)
    esub.required = True

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--kinds",
            default="all",
            metavar="LIST",
            help="finding,scan,asset,audit,checkpoint (default: all)",
        )
        start = p.add_mutually_exclusive_group()
        start.add_argument(
            "--since",
            metavar="WHEN",
            help="start at audit entries from this time (2026-11-25, 3d) instead of the cursor",
        )
        start.add_argument(
            "--from-start",
            action="store_true",
            help="start at the first audit entry instead of the cursor",
        )
        p.add_argument(
            "--name",
            metavar="DEST",
            help="the cursor's name (default: derived from the destination)",
        )
        p.add_argument("--batch-size", type=int, default=100, metavar="N")
        p.add_argument("--store", metavar="URL", help="store URL (default $PLANTSWEEP_STORE)")

    sp = esub.add_parser("splunk", help="Splunk HTTP Event Collector")
    sp.add_argument("--url", required=True, help="https://HOST:8088")
    sp.add_argument(
        "--token-file",
        metavar="FILE",
        help="file holding the HEC token, mode 0600 (else $PLANTSWEEP_HEC_TOKEN)",
    )
    sp.add_argument("--ca", metavar="FILE", help="CA certificate(s) to verify the server")
    sp.add_argument("--ack", action="store_true", help="wait for indexer acknowledgement")
    sp.add_argument("--index", help="Splunk index (must be allowed for the token)")
    sp.add_argument("--sourcetype", help="sourcetype (default plantsweep:KIND)")
    sp.add_argument(
        "--retries",
        type=int,
        default=5,
        metavar="N",
        help="retries on 503 and connection errors, with exponential backoff",
    )
    common(sp)

    for fmt, text in (
        ("cef", "ArcSight CEF over RFC 5424 syslog"),
        ("leef", "QRadar LEEF 2.0 over RFC 5424 syslog"),
    ):
        p = esub.add_parser(fmt, help=text)
        p.add_argument(
            "--to",
            required=True,
            metavar="URL",
            help="tcp://HOST:PORT, tls://HOST:PORT (6514) or udp://HOST:PORT",
        )
        p.add_argument("--ca", metavar="FILE", help="CA certificate(s) to verify the receiver")
        p.add_argument("--client-cert", metavar="FILE", help="client certificate (PEM)")
        p.add_argument("--client-key", metavar="FILE", help="its key (PEM, if not in the cert)")
        p.add_argument(
            "--framing",
            choices=("octet-counting", "lf"),
            default="octet-counting",
            help="TCP/TLS framing (RFC 6587; lf only for legacy receivers)",
        )
        p.add_argument(
            "--bom",
            choices=("auto", "always", "never"),
            default="auto",
            help="UTF-8 BOM before MSG (auto: only for non-ASCII messages)",
        )
        p.add_argument(
            "--sd-id", default="plantsweep@32473", help="RFC 5424 SD-ID (NAME@your IANA PEN)"
        )
        if fmt == "leef":
            p.add_argument("--delimiter", default="^", help="LEEF delimiter: ^, x5E, tab")
        common(p)

    js = esub.add_parser("jsonl", help="JSON lines file (one event per line)")
    js.add_argument("--out", required=True, metavar="FILE")
    common(js)

    fw = esub.add_parser("forward", help="export to every destination of forward.yml now")
    fw.add_argument("--store", metavar="URL", help="store URL (default $PLANTSWEEP_STORE)")
    cur = esub.add_parser("cursors", help="list the destinations' cursors")
    cur.add_argument("--store", metavar="URL", help="store URL (default $PLANTSWEEP_STORE)")
    return ex


def destination_from_args(args: argparse.Namespace) -> Destination:
    from orchestrator.siem.events import parse_kinds
    from orchestrator.siem.export import Destination
    from orchestrator.siem.forward import OPTION_KEYS, TARGET_KEYS

    kind = args.export_command
    target = TARGET_KEYS[kind]
    options: dict[str, Any] = {}
    for key in sorted(OPTION_KEYS - {"name", "batch_size"}):  # those two are set below
        value = getattr(args, key, None)
        if value is not None:
            options[key] = value
    return Destination(
        type=kind,
        target=getattr(args, target),
        name=args.name,
        kinds=parse_kinds(args.kinds),
        batch_size=args.batch_size,
        **options,
    )


def permission_for(dest: Destination) -> str:
    """Exporting the audit trail is the reviewer's `audit.export`; findings and scans `view`."""
    return "audit.export" if dest.kinds & {"audit", "checkpoint"} else "view"


def export_command(args: argparse.Namespace) -> int:
    from orchestrator.siem.export import export
    from orchestrator.store.database import open_store
    from orchestrator.users.sessions import acting, current_actor

    store = open_store(getattr(args, "store", None))
    try:
        if args.export_command == "cursors":
            from orchestrator.siem.cursor import list_cursors

            acting(store, "view")
            with store.connect() as conn:
                for name, shown, position, updated in list_cursors(conn):
                    print(f"{name}\t{shown}\tseq {position}\t{updated}")
            return 0
        if args.export_command == "forward":
            from orchestrator.siem.forward import forward_after_run, load_destinations

            destinations = load_destinations()
            for dest in destinations:
                acting(store, permission_for(dest))
            failed = forward_after_run(store, current_actor(store))
            return 2 if failed else 0
        dest = destination_from_args(args)
        actor = acting(store, permission_for(dest))
        result = export(store, dest, actor, since=args.since, from_start=args.from_start)
        print(_summary(result))
        return 0
    finally:
        store.dispose()


def _summary(result: ExportResult) -> str:
    span = (
        f", audit seq {result.first_seq}..{result.last_seq}"
        if result.events
        else f", cursor at seq {result.last_seq}"
    )
    return (
        f"exported {result.events} event(s) in {result.batches} batch(es) to "
        f"{result.destination} (cursor {result.name}{span})"
    )
