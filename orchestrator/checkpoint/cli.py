"""`plantsweep checkpoint scan|verify|policy|list`: the site gate on the command line.

Exit codes: `scan` 0 clean, 1 findings at or above the policy level or an incomplete scan
(the scan is recorded either way); `verify` 0 ADMITTED, 1 REFUSED; `policy` and `list` 0;
4 for a usage or store error (one line, no traceback).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.checkpoint import DIRECTIONS, LEVELS
from orchestrator.errors import UsageError


def add_parser(
    sub: Any,
    add_inventory_args: Callable[[argparse.ArgumentParser], None],
    parser_class: type[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add `checkpoint` and its actions to the top-level subparsers `sub`."""
    cp = sub.add_parser("checkpoint", help="site-gate checkpoint: scan and admit devices")
    csub = cp.add_subparsers(dest="checkpoint_command", metavar="ACTION", parser_class=parser_class)
    csub.required = True

    scan = csub.add_parser("scan", help="scan a device at the gate and record the scan")
    scan.add_argument("target", metavar="TARGET",
                      help="a local path (mounted USB stick, laptop disk) or, with -i, a host")
    scan.add_argument("--device-id", required=True, metavar="ID", help="the device's label/id")
    scan.add_argument("--owner", required=True, help='who brings it: "Vendor Ltd / name"')
    scan.add_argument("--reason", required=True, help="why the device enters or leaves")
    scan.add_argument("--direction", choices=DIRECTIONS, default="entry")
    scan.add_argument("--description", default="", help="what the device is (first scan)")
    scan.add_argument("--site", default="", help="this gate's site (policy and records)")
    scan.add_argument("--patterns", metavar="DIR|bundle:NAME",
                      help="pattern set (default: the shipped demo set)")
    scan.add_argument("--out", default="results", metavar="DIR", help="run folders (results)")
    scan.add_argument("--scan-timeout", type=float, default=3600.0, metavar="S")
    scan.add_argument("--wheel-dir", metavar="DIR", help="cache of yara-python wheels")
    add_inventory_args(scan)
    for action in scan._actions:  # here -i is optional: without it TARGET is a local path
        if action.dest == "inventory":
            action.required = False

    pol = csub.add_parser("policy", help="show or set a site's admission policy")
    pol.add_argument("--site", default="")
    pol.add_argument("--max-age", metavar="DURATION", help="max scan age, e.g. 2d, 36h")
    pol.add_argument("--max-pattern-age", metavar="DURATION",
                     help="max age of the patterns at scan time, e.g. 7d")
    pol.add_argument("--min-level", choices=LEVELS, help="findings from this level are dirty")
    complete = pol.add_mutually_exclusive_group()
    complete.add_argument("--require-complete", dest="require_complete", action="store_true",
                          default=None, help="refuse incomplete scans (default)")
    complete.add_argument("--allow-incomplete", dest="require_complete", action="store_false",
                          help="admit a clean scan that stopped early")
    pol.add_argument("--reason", help="why the policy changes (required to change it)")
    pol.add_argument("--json", action="store_true")

    ver = csub.add_parser("verify", help="admit or refuse a device by its last entry scan")
    ver.add_argument("device_id", metavar="ID")
    ver.add_argument("--site", default=None, help="policy of this site (default: the device's)")
    ver.add_argument("--pass-out", metavar="FILE", help="write a printable pass (.html or .pdf)")
    ver.add_argument("--json", action="store_true")

    lst = csub.add_parser("list", help="devices with their last scan and last verdict")
    lst.add_argument("--device", metavar="ID")
    lst.add_argument("--json", action="store_true")
    return cp


def checkpoint_command(args: argparse.Namespace) -> int:
    from orchestrator.store.database import open_store

    store = open_store(getattr(args, "store", None))
    try:
        action = args.checkpoint_command
        if action == "scan":
            return _scan(store, args)
        if action == "policy":
            return _policy(store, args)
        if action == "verify":
            return _verify(store, args)
        if action == "list":
            return _list(store, args)
        raise UsageError(f"unknown checkpoint action {action}")
    finally:
        store.dispose()


def _scan(store: Any, args: argparse.Namespace) -> int:
    from orchestrator.checkpoint import gate

    extra: dict[str, Any] = {}
    if getattr(args, "extra_vars", None):
        from orchestrator.cli import parse_extra_vars

        extra = parse_extra_vars(args.extra_vars)
    recorded = gate.checkpoint_scan(
        store, args.target, device_id=args.device_id, owner=args.owner, reason=args.reason,
        direction=args.direction, description=args.description, site=args.site,
        inventories=args.inventory or None, extra_vars=extra, patterns=args.patterns,
        out=Path(args.out), scan_timeout=args.scan_timeout,
        wheel_dir=Path(args.wheel_dir) if args.wheel_dir else None,
    )
    code = 0
    for scan in recorded:
        patterns = scan.patterns
        print(f"device:   {scan.device_id}{' (registered now)' if scan.new_device else ''}")
        print(f"owner:    {scan.owner}")
        print(f"scan:     {scan.direction}, {scan.result} ({scan.findings} finding(s) in all)")
        print(f"patterns: {patterns.get('name')} {patterns.get('version')}, "
              f"dated {patterns.get('date')}")
        print(f"log:      {scan.scan_id} (store id {scan.scan_log_id})")
        if scan.dirty or not scan.complete:
            code = 1
    return code


def _policy(store: Any, args: argparse.Namespace) -> int:
    from orchestrator.checkpoint import gate
    from orchestrator.checkpoint.policy import load_policy, parse_duration, set_policy

    changes = {
        "max_scan_age": parse_duration(args.max_age) if args.max_age else None,
        "max_pattern_age": (parse_duration(args.max_pattern_age)
                            if args.max_pattern_age else None),
        "min_level": args.min_level,
        "require_complete": args.require_complete,
    }
    if any(v is not None for v in changes.values()):
        old, policy = set_policy(store, gate._actor(store), args.reason or "", site=args.site,
                                 **changes)
        if old == policy:
            print("policy unchanged (the change is still in the audit trail)")
    else:
        policy = load_policy(store, args.site)
    if args.json:
        print(json.dumps(policy.as_json(), indent=2, sort_keys=True))
    else:
        print("\n".join(policy.describe()))
    return 0


def _verify(store: Any, args: argparse.Namespace) -> int:
    from orchestrator.checkpoint import gate

    verdict = gate.verify(store, args.device_id, site=args.site)
    if args.pass_out:
        gate.write_pass(verdict, Path(args.pass_out))
    if args.json:
        print(json.dumps(verdict.as_json(), indent=2, sort_keys=True))
    elif verdict.admitted:
        print(f"ADMITTED: {verdict.device_id} ({verdict.owner}), valid until "
              f"{verdict.valid_until}")
    else:
        print(f"REFUSED: {verdict.device_id}" + (f" ({verdict.owner})" if verdict.owner else ""))
        for reason in verdict.reasons:
            print(f"  - {reason}")
    if args.pass_out:
        print(f"pass: {args.pass_out}")
    return 0 if verdict.admitted else 1


def _list(store: Any, args: argparse.Namespace) -> int:
    from orchestrator.checkpoint import gate

    devices = gate.list_devices(store, args.device)
    if args.device and not devices:
        raise UsageError(f"no device {args.device!r} is registered")
    if args.json:
        print(json.dumps(devices, indent=2, sort_keys=True))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="CHECKPOINT DEVICES", title_justify="left")
    for column in ("device", "owner", "last scan", "result", "last verdict", "valid until"):
        table.add_column(column)
    for d in devices:
        scan, verdict = d["last_scan"], d["last_verdict"]
        result = "-"
        if scan:
            result = "clean" if not scan["findings"] else (
                f"{scan['findings']} finding(s), {scan['max_level']}")
            result += "" if scan["complete"] else ", incomplete"
        table.add_row(
            d["device_id"], d["owner"],
            f"{scan['finished']} ({scan['direction']})" if scan else "-", result,
            f"{verdict['verdict']} {verdict['decided']}" if verdict else "-",
            (verdict or {}).get("valid_until") or "-",
        )
    Console(highlight=False).print(table)
    return 0
