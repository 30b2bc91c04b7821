"""`plantsweep`: a thin command line over the orchestrator library.

Every error a user can cause becomes one line on stderr and a documented exit code; a
traceback is shown only for a bug, and only with PLANTSWEEP_DEBUG=1.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from orchestrator import __version__, exit_codes
from orchestrator.assets.cli import add_parser as add_assets_parser
from orchestrator.audit.cli import add_parser as add_audit_parser
from orchestrator.bundle_args import add_check_parsers
from orchestrator.checkpoint.cli import add_parser as add_checkpoint_parser
from orchestrator.detection import add_detection_args
from orchestrator.detection import from_args as detection_from_args
from orchestrator.errors import PlantsweepError, UsageError
from orchestrator.inspection.cli import add_parsers as add_inspection_parsers
from orchestrator.kit.cli import add_parsers as add_kit_parsers
from orchestrator.knowledge.cli import add_parser as add_data_parser
from orchestrator.quarantine.cli import add_parser as add_quarantine_parser
from orchestrator.siem.cli import add_parser as add_export_parser
from orchestrator.store.cli import add_parsers as add_store_parsers
from orchestrator.users.cli import COMMANDS as USER_COMMANDS
from orchestrator.users.cli import add_parsers as add_user_parsers
from orchestrator.web.cli import add_parser as add_serve_parser

if TYPE_CHECKING:
    from orchestrator.connections import Timeouts

# Plant hosts' interpreters and machines the wheel cache is filled for by default (no wheel
# exists for 3.6: those hosts scan with hash IOCs only).
WHEEL_PYTHONS = ["3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]
WHEEL_PLATFORMS = ["linux_x86_64", "linux_aarch64"]


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on bad usage; ours is 4, with the same one-line message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise UsageError(message)


def parse_extra_vars(values: Sequence[str]) -> dict[str, Any]:
    """`-e` as Ansible takes it: key=value pairs, a JSON/YAML mapping, or @file."""
    merged: dict[str, Any] = {}
    for value in values:
        if value.startswith("@"):
            path = Path(value[1:])
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except OSError as exc:
                raise UsageError(
                    f"cannot read extra vars file: {exc.strerror}", path=str(path)
                ) from None
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                raise UsageError(
                    f"extra vars file is not valid YAML/JSON: {getattr(exc, 'problem', exc)}",
                    path=str(path),
                    line=mark.line + 1 if mark else None,
                ) from None
            if not isinstance(data, dict):
                raise UsageError("extra vars file must hold a mapping", path=str(path))
            merged.update(data)
        elif value.lstrip().startswith("{"):
            try:
                data = json.loads(value)
            except ValueError as exc:
                raise UsageError(f"-e {value!r} is not valid JSON: {exc}") from None
            merged.update(data)
        else:
            for pair in value.split():
                key, sep, val = pair.partition("=")
                if not sep or not key:
                    raise UsageError(f"-e expects key=value, JSON or @file, got {pair!r}")
                merged[key] = val
    return merged


def _add_inventory_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-i",
        "--inventory",
        action="append",
        required=True,
        metavar="INV",
        help="inventory file or directory (YAML or INI, Ansible format); repeatable",
    )
    p.add_argument(
        "-e",
        "--extra-vars",
        action="append",
        default=[],
        metavar="VARS",
        help="extra variables: key=value, JSON, or @file; they win over inventory vars",
    )


def _add_connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--known-hosts", metavar="FILE", help="known_hosts (~/.ssh/known_hosts)")
    p.add_argument(
        "--trust-on-first-use",
        action="store_true",
        help="accept and record unknown host keys (a changed key is still refused)",
    )
    p.add_argument("-k", "--ask-pass", action="store_true", help="prompt for the SSH password once")
    p.add_argument(
        "--connect-timeout", type=float, default=10.0, metavar="S", help="TCP + SSH banner (10)"
    )
    p.add_argument(
        "--command-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="each probe/cleanup command (60); transfers get max(S, 120)",
    )
    p.add_argument(
        "--scan-timeout",
        type=float,
        default=3600.0,
        metavar="S",
        help="the scanner run (3600); the scanner stops itself 10 s earlier",
    )
    p.add_argument(
        "--wheel-dir",
        metavar="DIR",
        help="cache of yara-python wheels for plant hosts (default: ~/.cache/plantsweep/wheels)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="plantsweep",
        description="Installation-free malware scanning and asset inspection for industrial "
        "plants, driven like Ansible.",
    )
    parser.add_argument("--version", action="version", version=f"plantsweep {__version__}")
    parser.add_argument(
        "--store",
        metavar="URL",
        help="the central store: sqlite:///PATH or postgresql://USER@HOST/DB "
        "(default: $PLANTSWEEP_STORE, else store.sqlite in $PLANTSWEEP_HOME)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    inv = sub.add_parser("inventory", help="show an inventory as ansible-inventory does")
    _add_inventory_args(inv)
    mode = inv.add_mutually_exclusive_group(required=True)
    mode.add_argument("--list", action="store_true", help="all groups and host vars as JSON")
    mode.add_argument(
        "--graph", nargs="?", const="all", metavar="GROUP", help="group tree (default: all)"
    )
    mode.add_argument("--host", metavar="NAME", help="one host's variables as JSON")
    inv.add_argument("--vars", action="store_true", help="with --graph: show variables")
    inv.add_argument("--limit", metavar="PATTERN", help="only hosts matching the pattern")

    scan = sub.add_parser("scan", help="scan hosts and collect one JSON scan log per host")
    _add_inventory_args(scan)
    scan.add_argument("-l", "--limit", metavar="PATTERN", help="host pattern, or @file")
    scan.add_argument(
        "-t",
        "--type",
        dest="scan_type",
        default="quick",
        choices=("quick", "full", "folders", "asset"),
        help="quick (default), full (all local folders), folders (--path), asset (no file scan)",
    )
    scan.add_argument(
        "--path", action="append", default=[], metavar="P", help="folder for --type folders"
    )
    scan.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="P",
        help="folder on the hosts never to walk (repeatable)",
    )
    scan.add_argument(
        "--include-mounts",
        metavar="TYPES",
        help="with --type full: also walk these mounts, e.g. nfs4,vfat or network,removable,fuse",
    )
    scan.add_argument(
        "--patterns",
        metavar="DIR",
        help="folder of .yar rules and hash lists, or bundle:NAME (default: shipped)",
    )
    scan.add_argument("-f", "--forks", type=int, default=20, help="hosts in parallel (20)")
    scan.add_argument("--out", default="results", metavar="DIR", help="results folder (./results)")
    scan.add_argument("--max-size", type=int, metavar="BYTES", help="skip larger files")
    add_detection_args(scan)
    scan.add_argument(
        "--action",
        choices=("log-only", "quarantine"),
        default="log-only",
        help="log-only (default), or quarantine findings at or above --min-level into the "
        "controller's vault (never on mission-critical hosts)",
    )
    _add_connection_args(scan)

    play = sub.add_parser("run", help="run a playbook (plays of built-in actions) on hosts")
    play.add_argument("playbook", metavar="PLAYBOOK")
    _add_inventory_args(play)
    play.add_argument("-l", "--limit", metavar="PATTERN", help="host pattern, or @file")
    play.add_argument("-t", "--tags", action="append", default=[], metavar="TAGS")
    play.add_argument("--skip-tags", action="append", default=[], metavar="TAGS")
    play.add_argument("-f", "--forks", type=int, default=20, help="hosts in parallel (20)")
    play.add_argument(
        "-C",
        "--check",
        action="store_true",
        help="connect and say what would be done, write nothing",
    )
    play.add_argument("--list-hosts", action="store_true", help="the hosts each play would run on")
    play.add_argument("--list-tasks", action="store_true", help="the tasks that would run")
    play.add_argument("--syntax-check", action="store_true", help="check the playbook only")
    play.add_argument("--json", action="store_true", help="one JSON event per line on stdout")
    play.add_argument(
        "-D",
        "--diff",
        action="store_true",
        help="show what changed on each host (findings, packages, OS) since the previous run "
        "in the same --out folder",
    )
    play.add_argument(
        "--step", action="store_true", help="confirm each task before it runs (once for all hosts)"
    )
    play.add_argument("--out", default="results", metavar="DIR", help="results folder (./results)")
    _add_connection_args(play)

    pat = sub.add_parser("patterns", help="signed pattern bundles: keys, build, import, list")
    psub = pat.add_subparsers(dest="patterns_command", metavar="ACTION", parser_class=_Parser)
    psub.required = True
    keygen = psub.add_parser("keygen", help="make an Ed25519 signing key pair")
    keygen.add_argument("--secret", required=True, metavar="FILE", help="secret key (0600)")
    keygen.add_argument("--public", required=True, metavar="FILE", help="public key (minisign)")
    build = psub.add_parser("build", help="sign a folder of rules and hash lists into a bundle")
    build.add_argument("src", metavar="SRC_DIR")
    build.add_argument("--key", required=True, metavar="SECRET_KEY")
    build.add_argument("--name", required=True)
    build.add_argument("--version", required=True, type=int, help="greater than the last one")
    build.add_argument("--released", metavar="YYYY-MM-DD", help="default: today")
    build.add_argument("--expires", required=True, metavar="YYYY-MM-DD")
    build.add_argument("--out", required=True, metavar="BUNDLE")
    build.add_argument(
        "--skip-broken",
        action="store_true",
        help="leave out rule files that do not compile (listed in the manifest), not fail",
    )
    add_check_parsers(psub, "a bundle")
    psub.add_parser("list", help="installed bundles")
    show = psub.add_parser("show", help="the manifest of an installed bundle")
    show.add_argument("name")

    add_data_parser(sub, _Parser)
    add_assets_parser(sub, _Parser)
    add_quarantine_parser(sub, _add_inventory_args, _Parser)
    add_kit_parsers(sub, _Parser)
    add_store_parsers(sub, _add_inventory_args, _Parser)
    add_checkpoint_parser(sub, _add_inventory_args, _Parser)
    add_user_parsers(sub, _Parser)
    add_audit_parser(sub, _Parser)
    add_inspection_parsers(sub, _Parser)
    add_serve_parser(sub)
    add_export_parser(sub, _Parser)

    clean = sub.add_parser(
        "cleanup", help="remove temp dirs a crashed or killed run left on hosts (from its journal)"
    )
    which = clean.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", metavar="RUN_ID", help="one run (its id is in the results path)")
    which.add_argument("--all", action="store_true", help="every run in the journal")
    clean.add_argument("-f", "--forks", type=int, default=20, help="hosts in parallel (20)")
    clean.add_argument("--known-hosts", metavar="FILE", help="known_hosts (~/.ssh/known_hosts)")
    clean.add_argument("-k", "--ask-pass", action="store_true", help="prompt for the SSH password")
    clean.add_argument("--connect-timeout", type=float, default=10.0, metavar="S")

    wheels = sub.add_parser("wheels", help="fill the cache of yara-python wheels for hosts")
    wheels.add_argument("--wheel-dir", metavar="DIR")
    wheels.add_argument(
        "--python",
        action="append",
        metavar="X.Y",
        help="host Python versions (default: 3.7 to 3.13); repeatable",
    )
    wheels.add_argument(
        "--platform",
        action="append",
        metavar="NAME",
        help="linux_x86_64, linux_aarch64, linux_i686, musllinux_x86_64, win_amd64, ... "
        "(default: linux_x86_64 linux_aarch64); repeatable",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        code = _dispatch(args)
        if args.command in STORE_COMMANDS:
            _checkpoint_trail(args)
        return code
    except PlantsweepError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ERROR: interrupted by the user", file=sys.stderr)
        return exit_codes.INTERRUPTED
    except Exception as exc:  # a bug, not a user error: say so, keep the trace for -debug
        if os.environ.get("PLANTSWEEP_DEBUG"):
            traceback.print_exc()
        print(
            f"ERROR: internal error ({type(exc).__name__}: {exc}); "
            "rerun with PLANTSWEEP_DEBUG=1 for details",
            file=sys.stderr,
        )
        return exit_codes.INTERNAL


# Commands that write to the store (and so to its audit trail).
STORE_COMMANDS = frozenset(
    {
        "scan",
        "run",
        "logs",
        "status",
        "checkpoint",
        "user",
        "login",
        "logout",
        "inspect",
        "audit",
        "quarantine",
        "patterns",
        "cleanup",
        "data",
        "export",
    }
)


def _checkpoint_trail(args: argparse.Namespace) -> None:
    """A signed checkpoint of the audit trail when one is due (every 100 entries, and the
    first), so a later edit or truncation is caught by `audit verify`."""
    from orchestrator.audit.checkpoint import checkpoint_if_due
    from orchestrator.store import open_store
    from orchestrator.users.sessions import current_actor

    try:
        store = open_store(args.store)
        try:
            checkpoint_if_due(store, actor=current_actor(store))
        finally:
            store.dispose()
    except PlantsweepError as exc:
        print(f"WARNING: no audit checkpoint made now: {exc}", file=sys.stderr)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "inventory":
        return _cmd_inventory(args)
    if args.command == "scan":
        return _cmd_scan(args)
    if args.command == "wheels":
        return _cmd_wheels(args)
    if args.command == "cleanup":
        return _cmd_cleanup(args)
    if args.command == "run":
        return _cmd_run(args)
    if args.command == "patterns":
        from orchestrator.patterns_cli import patterns_command

        return patterns_command(args)
    if args.command == "assets":
        from orchestrator.assets.cli import assets_command

        return assets_command(args)
    if args.command == "data":
        from orchestrator.knowledge.cli import data_command

        return data_command(args)
    if args.command == "quarantine":
        from orchestrator.quarantine.cli import quarantine_command

        extra = parse_extra_vars(getattr(args, "extra_vars", []))
        return quarantine_command(args, extra)
    if args.command == "kit":
        from orchestrator.kit.cli import kit_command

        return kit_command(args)
    if args.command in USER_COMMANDS:
        from orchestrator.users.cli import command as user_command

        return user_command(args)
    if args.command == "audit":
        from orchestrator.audit.cli import audit_command

        return audit_command(args)
    if args.command == "inspect":
        from orchestrator.inspection.cli import command as inspection_command

        return inspection_command(args)
    if args.command == "export":
        from orchestrator.siem.cli import export_command

        return export_command(args)
    if args.command == "checkpoint":
        from orchestrator.checkpoint.cli import checkpoint_command

        return checkpoint_command(args)
    if args.command == "serve":
        from orchestrator.web.cli import serve_command

        return serve_command(args)
    if args.command in ("logs", "status"):
        from orchestrator.store.cli import logs_command, status_command

        return logs_command(args) if args.command == "logs" else status_command(args)
    raise UsageError(f"unknown command {args.command}")


def _cmd_inventory(args: argparse.Namespace) -> int:
    from orchestrator.inventory import (
        dumps,
        load_inventory,
        render_graph,
        render_host,
        render_list,
    )

    inv = load_inventory(args.inventory, extra_vars=parse_extra_vars(args.extra_vars))
    if args.list:
        print(dumps(render_list(inv, limit=args.limit)))
    elif args.host:
        print(dumps(render_host(inv, args.host)))
    else:
        print(render_graph(inv, args.graph, show_vars=args.vars))
    return exit_codes.OK


def _split_tags(values: list[str]) -> set[str] | None:
    tags = {t.strip() for value in values for t in value.split(",") if t.strip()}
    return tags or None


def _cmd_run(args: argparse.Namespace) -> int:
    from orchestrator.actions import SPECS
    from orchestrator.connections import SSHOptions
    from orchestrator.inventory import load_inventory
    from orchestrator.playbook.engine import PlaybookRun, RunOptions
    from orchestrator.playbook.listing import describe
    from orchestrator.playbook.loader import load_playbook
    from orchestrator.playbook.output import Output

    if args.forks < 1:
        raise UsageError("--forks must be at least 1")
    playbook = load_playbook(args.playbook, SPECS)
    tags, skip_tags = _split_tags(args.tags), _split_tags(args.skip_tags)
    if args.syntax_check:
        print(f"playbook: {playbook.path}")
        return exit_codes.OK
    inventory = load_inventory(args.inventory, extra_vars=parse_extra_vars(args.extra_vars))
    if args.list_tasks:
        print(describe(playbook, tags=tags, skip_tags=skip_tags))
        return exit_codes.OK
    if args.list_hosts:
        print(f"\nplaybook: {playbook.path}")
        for number, play in enumerate(playbook.plays, start=1):
            hosts = _play_hosts(inventory, play, args.limit)
            print(f"\n  play #{number} ({play.hosts}): {play.name}\tTAGS: [{','.join(play.tags)}]")
            print(f"    pattern: ['{play.hosts}']")
            print(f"    hosts ({len(hosts)}):")
            for host in hosts:
                print(f"      {host.name}")
        return exit_codes.OK
    if not args.check:  # a dry run changes nothing and stores nothing
        _may(args, "run")
    password = getpass.getpass("SSH password: ") if args.ask_pass else None
    options = RunOptions(
        store=args.store,
        check=args.check,
        limit=args.limit,
        tags=tags,
        skip_tags=skip_tags,
        extra_vars=parse_extra_vars(args.extra_vars),
        forks=args.forks,
        out=Path(args.out),
        ssh=SSHOptions(
            known_hosts=Path(args.known_hosts) if args.known_hosts else None,
            trust_on_first_use=args.trust_on_first_use,
            banner_timeout=args.connect_timeout,
        ),
        timeouts=_timeouts(args),
        password=password,
        wheel_dir=Path(args.wheel_dir) if args.wheel_dir else None,
        step=args.step,
        ask=_ask_on_stderr,
        diff=args.diff,
    )
    # Resolve every selected host's connection settings first: input errors before any host.
    from orchestrator.targets import target_for

    for play in playbook.plays:
        for host in _play_hosts(inventory, play, args.limit):
            target_for(host.name, inventory.host_vars(host.name), password)
    return PlaybookRun(playbook, inventory, options, Output(as_json=args.json)).run_all()


def _ask_on_stderr(prompt: str) -> str:
    """Prompts go to stderr so stdout stays clean for --json events."""
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line


def _play_hosts(inventory: Any, play: Any, limit: str | None) -> list[Any]:
    """The play's hosts; a pattern matching nothing is named with the play's file and line."""
    from orchestrator.errors import HostPatternError, PlaybookError

    try:
        return list(inventory.select(play.hosts, limit=limit))
    except HostPatternError as exc:
        raise PlaybookError(
            f"play '{play.name}': {exc.message}", path=play.path, line=play.line
        ) from None


def _timeouts(args: argparse.Namespace) -> Timeouts:
    from orchestrator.connections import Timeouts

    return Timeouts(
        connect=args.connect_timeout,
        command=args.command_timeout,
        transfer=max(args.command_timeout, 120.0),
        scan=args.scan_timeout,
    )


def _cmd_cleanup(args: argparse.Namespace) -> int:
    from orchestrator.audit import record
    from orchestrator.connections import SSHOptions, Timeouts
    from orchestrator.journal import journal_dir, run_journals
    from orchestrator.recovery import clean_leftovers

    directory = journal_dir()
    journals = run_journals(directory, args.run)
    # Removing our own leftovers must not wait for the store: optional, audited if it answers.
    actor = record.authorise(args.store, "run", optional=True)
    password = getpass.getpass("SSH password: ") if args.ask_pass else None
    outcomes = clean_leftovers(
        journals,
        SSHOptions(
            known_hosts=Path(args.known_hosts) if args.known_hosts else None,
            banner_timeout=args.connect_timeout,
        ),
        Timeouts(connect=args.connect_timeout),
        max(1, args.forks),
        password,
    )
    for o in outcomes:
        state = "removed" if o.removed else f"NOT REMOVED ({o.message})"
        print(f"{o.leftover.run_id} {o.leftover.target.name} {o.leftover.temp_dir}: {state}")
        record.record(
            args.store,
            actor,
            "cleanup",
            "run",
            o.leftover.run_id,
            new={
                "host": o.leftover.target.name,
                "temp_dir": o.leftover.temp_dir,
                "removed": o.removed,
                "message": None if o.removed else o.message,
            },
        )
    failed = sum(not o.removed for o in outcomes)
    print(
        f"cleanup: {len(outcomes) - failed} removed, {failed} not removed "
        f"({len(journals)} run journal(s) in {directory})"
    )
    return exit_codes.HOST_FAILED if failed else exit_codes.OK


def _cmd_wheels(args: argparse.Namespace) -> int:
    from orchestrator import payload

    wheel_dir = Path(args.wheel_dir) if args.wheel_dir else payload.default_wheel_dir()
    got = payload.download_wheels(
        wheel_dir, args.python or WHEEL_PYTHONS, args.platform or WHEEL_PLATFORMS
    )
    for w in got:
        target = f"cp{w.python_version[0]}{w.python_version[1]} {w.platform}"
        line = f"{target:<24} {w.path.name if w.path else 'none: ' + str(w.error)}"
        print(line + (f"  ({w.note})" if w.note else ""))
    print(f"wheel cache: {wheel_dir}")
    return exit_codes.OK


def _may(args: argparse.Namespace, permission: str) -> None:
    """Refuse a scan or run the acting user's role does not allow (a store requiring login
    refuses an anonymous one). A store that cannot be reached does not stop the work: the run
    is kept on disk and stored later, as after_run says."""
    from orchestrator.audit import record

    record.authorise(args.store, permission, optional=True)


def _cmd_scan(args: argparse.Namespace) -> int:
    from orchestrator.campaign import ScanRequest, run_scan

    if args.forks < 1:
        raise UsageError("--forks must be at least 1")
    if args.scan_type == "folders" and not args.path:
        raise UsageError("--type folders needs at least one --path")
    if args.path and args.scan_type != "folders":
        raise UsageError("--path is only used with --type folders")
    _may(args, "scan")
    password = getpass.getpass("SSH password: ") if args.ask_pass else None
    request = ScanRequest(
        store=args.store,
        inventories=args.inventory,
        extra_vars=parse_extra_vars(args.extra_vars),
        limit=args.limit,
        scan_type=args.scan_type,
        paths=tuple(args.path),
        excludes=tuple(args.exclude),
        include_mounts=args.include_mounts,
        patterns=args.patterns,
        forks=args.forks,
        out=Path(args.out),
        max_size=args.max_size,
        known_hosts=Path(args.known_hosts) if args.known_hosts else None,
        trust_on_first_use=args.trust_on_first_use,
        password=password,
        connect_timeout=args.connect_timeout,
        command_timeout=args.command_timeout,
        scan_timeout=args.scan_timeout,
        wheel_dir=Path(args.wheel_dir) if args.wheel_dir else None,
        detection=detection_from_args(args),
        action=args.action,
    )
    return run_scan(request)


if __name__ == "__main__":
    sys.exit(main())
