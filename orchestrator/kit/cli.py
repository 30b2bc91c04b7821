"""`plantsweep kit build|list`: the command line of the USB kit (its logs come back with
`plantsweep logs import`, orchestrator/store/cli.py).

plantsweep kit build --usb DIR [--patterns SPEC] [--name NAME] [--wheel-dir DIR]
                     [--windows PLATFORM[,PLATFORM]]
plantsweep kit list
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from orchestrator import exit_codes
from orchestrator.errors import UsageError


def add_parsers(sub: Any, parser_class: type) -> None:
    """`kit` with its sub-commands (parser_class: the CLI's)."""
    kit = sub.add_parser(
        "kit", help="the offline USB kit (Linux and Windows hosts) and the Windows scanner kit"
    )
    ksub = kit.add_subparsers(dest="kit_command", metavar="ACTION", parser_class=parser_class)
    ksub.required = True
    build = ksub.add_parser(
        "build", help="write a scan kit onto a stick (--usb), or the Windows kit (--platform)"
    )
    what = build.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--usb",
        metavar="DIR",
        help="the mounted stick (the kit goes to DIR/plantsweep-kit/)",
    )
    what.add_argument(
        "--platform",
        choices=("win_amd64", "win32"),
        help="the Windows scanner kit for this platform (with --python-runtime)",
    )
    build.add_argument(
        "--python-runtime",
        metavar="FILE.zip",
        help="CPython's embeddable package for Windows (e.g. python-3.8.10-embed-amd64.zip)",
    )
    build.add_argument(
        "--patterns",
        metavar="SPEC",
        help="folder of .yar rules and hash lists, or bundle:NAME (default: shipped)",
    )
    build.add_argument("--name", help="a name for the kit, shown on the stick and in kit list")
    build.add_argument(
        "--wheel-dir",
        metavar="DIR",
        help="cache of yara-python wheels (default: the one `plantsweep wheels` fills)",
    )
    build.add_argument(
        "--windows",
        metavar="PLATFORM[,PLATFORM]",
        help="with --usb: also for Windows hosts, with the cached Windows kit of each platform "
        "(win_amd64, win32; win_amd64-py38 picks a Python) and run.cmd (default: Linux only)",
    )
    ksub.add_parser("list", help="kits this controller built (their logs can be imported)")


def kit_command(args: argparse.Namespace) -> int:
    from orchestrator.kit import registry, usb_windows
    from orchestrator.kit.usb import build_kit

    if args.kit_command == "build" and args.platform:
        return _windows_kit(args)
    if args.kit_command == "build" and args.python_runtime:
        raise UsageError("--python-runtime goes with --platform (the Windows scanner kit)")
    if args.kit_command == "list":
        for r in registry.all_kits():
            patterns = f"{r.patterns.get('name')} v{r.patterns.get('version')}"
            hosts = "+".join(["linux", *sorted(_windows_platforms(r.files))])
            print(f"{r.kit_id}  {r.created}  {patterns}  {hosts}  {r.name or '-'}  {r.usb}")
        print(f"kit registry: {registry.kits_dir()}")
        return exit_codes.OK
    built = build_kit(
        Path(args.usb),
        patterns=args.patterns,
        name=args.name,
        wheel_dir=Path(args.wheel_dir) if args.wheel_dir else None,
        windows=args.windows,
    )
    record = built.record
    print(f"kit {record.kit_id} written to {built.path}")
    print(
        f"patterns: {record.patterns.get('name')} version {record.patterns.get('version')} "
        f"of {record.patterns.get('date')}"
    )
    if built.has_yara and not built.wheels:
        print(
            "warning: no yara-python wheels in the cache: hosts will be scanned with hash IOCs "
            "only (run `plantsweep wheels` first)"
        )
    elif built.wheels:
        print(f"yara-python wheels: {len(built.wheels)}")
    for platform, info in built.windows.items():
        wheel = info["yara_wheel"] or "no yara wheel: hash and filename IOCs only"
        print(f"windows {platform}: Python {info['python']}, runs on {info['runs_on']}; {wheel}")
    if not built.windows:
        cached = usb_windows.cached_platforms()
        if cached:
            print(f"no Windows part (cached Windows kits: {', '.join(cached)}; add --windows)")
    print(f"on a Linux host: sh {built.path}/run.sh")
    if built.windows:
        print(rf"on a Windows host: E:\{built.path.name}\run.cmd (the stick's drive letter)")
    print(f"then: plantsweep logs import {built.path}")
    return exit_codes.OK


def _windows_platforms(files: dict[str, str]) -> set[str]:
    """The Windows runtimes a kit carries, from its file list (windows/<platform>/...)."""
    from orchestrator.kit.run_cmd import WINDOWS_DIR

    return {p.split("/")[1] for p in files if p.startswith(WINDOWS_DIR + "/") and p.count("/") > 1}


def _windows_kit(args: argparse.Namespace) -> int:
    from orchestrator.kit.windows import build_windows_kit

    if args.patterns or args.name or args.windows:
        raise UsageError(
            "--patterns, --name and --windows are for --usb kits: build the Windows kit first, "
            "then the stick with --usb DIR --windows PLATFORM"
        )
    if not args.python_runtime:
        raise UsageError("--platform needs --python-runtime FILE.zip (CPython embeddable package)")
    kit = build_windows_kit(
        args.platform,
        Path(args.python_runtime),
        wheel_dir=Path(args.wheel_dir) if args.wheel_dir else None,
    )
    manifest = kit.manifest
    print(f"Windows kit {'reused' if kit.reused else 'built'}: {kit.path}")
    print(f"Python {manifest['python']} for {kit.platform}: runs on {manifest['runs_on']}")
    if kit.wheel:
        print(f"yara-python: {kit.wheel}")
    else:
        print(
            "warning: no yara-python wheel for this Python and platform: such hosts are "
            "scanned with hash and filename IOCs only"
        )
    return exit_codes.OK
