"""`plantsweep data build|import|verify|show|list`: the offline knowledge data on the command line.

    plantsweep data build --source DIR --key SECRET --version 3 --out knowledge-3.bundle
    plantsweep data build --default --source DIR      (regenerate orchestrator/data/knowledge)
    plantsweep data verify knowledge-3.bundle         (signature, hashes, kind, dates, version)
    plantsweep data import knowledge-3.bundle         (verify, install, audit entry "data_import")
    plantsweep data show [--json]                     (version, date, sources, age)
    plantsweep data list

Exit codes as for `patterns`: 0 ok, 4 for a refused bundle or bad input (one line on stderr).
`--max-data-age DAYS` (else $PLANTSWEEP_MAX_DATA_AGE, else 90) sets when the data is stale.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tarfile
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.bundle_args import add_check_parsers
from orchestrator.errors import PlantsweepError, UsageError

if TYPE_CHECKING:
    from orchestrator.knowledge.data import Knowledge

# The library (bundles, cryptography, plyara) is imported when a `data` action runs, not when
# the top-level parser is built for every other command.


def add_max_age_arg(parser: argparse.ArgumentParser) -> None:
    """`--max-data-age DAYS`, for every command that uses the knowledge data."""
    parser.add_argument(
        "--max-data-age",
        type=int,
        metavar="DAYS",
        help="warn when the knowledge data is older (default: $PLANTSWEEP_MAX_DATA_AGE or 90)",
    )


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add `data` and its actions to the top-level subparsers `sub`."""
    data = sub.add_parser(
        "data", help="offline knowledge data: EOL dates, Windows builds, KEV, OSV"
    )
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", parser_class=parser_class)
    dsub.required = True

    build = dsub.add_parser("build", help="turn public source files into a signed data bundle")
    build.add_argument(
        "--source",
        required=True,
        metavar="DIR",
        help="folder with endoflife/, msrc/, kev/, osv/ (see the data README)",
    )
    build.add_argument(
        "--default",
        action="store_true",
        help="write the unsigned default data shipped with plantsweep instead",
    )
    build.add_argument("--key", metavar="SECRET_KEY")
    build.add_argument("--version", type=int, help="greater than the installed one")
    build.add_argument("--released", metavar="YYYY-MM-DD", help="default: today")
    build.add_argument("--expires", metavar="YYYY-MM-DD", help="default: released + 1 year")
    build.add_argument(
        "--out",
        metavar="FILE|DIR",
        help="the bundle file (with --default: the folder, default the package's)",
    )

    add_check_parsers(dsub, "a data bundle", reason=True)

    show = dsub.add_parser("show", help="the data in use: version, date, sources, age")
    show.add_argument("--json", action="store_true")
    add_max_age_arg(show)
    dsub.add_parser("list", help="installed data bundles and the shipped default")
    return data


def _date(text: str | None, what: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{what} must be a date like 2026-12-31, got {text!r}") from None


def _trusted(args: argparse.Namespace) -> list[Path]:
    from orchestrator.patterns_cli import trusted_keys_dir

    if args.trusted:
        return [Path(k) for k in args.trusted]
    keys = sorted(trusted_keys_dir().glob("*.pub"))
    if not keys:
        raise UsageError(
            f"no trusted public keys: pass --trusted KEY.pub or put keys in {trusted_keys_dir()}"
        )
    return keys


def data_command(args: argparse.Namespace) -> int:
    from orchestrator import bundles
    from orchestrator.knowledge import bundle as kbundle
    from orchestrator.knowledge.data import DEFAULT_DIR, store_dir

    verb = args.data_command
    if verb == "build":
        _build(args)
    elif verb == "verify":
        m = kbundle.verify_data_bundle(Path(args.bundle), _trusted(args))
        print(f"OK {m.name} version {m.version}, released {m.released}, expires {m.expires}")
    elif verb == "import":
        _import(args)
    elif verb == "show":
        _show(args)
    elif verb == "list":
        for b in bundles.list_bundles(store_dir()):
            print(f"{b.name}\tversion {b.version}\t{b.path}")
        print(f"default\t(shipped)\t{DEFAULT_DIR}")
    return 0


def _build(args: argparse.Namespace) -> None:
    from orchestrator.knowledge import bundle as kbundle
    from orchestrator.knowledge.data import DEFAULT_DIR

    if args.default:
        folder = Path(args.out) if args.out else DEFAULT_DIR
        sizes = kbundle.write_default(Path(args.source), folder, args.version or 1)
        for name, size in sorted(sizes.items()):
            print(f"wrote {folder / name} ({size} bytes)")
        return
    missing = [
        o
        for o, v in (("--key", args.key), ("--version", args.version), ("--out", args.out))
        if v is None
    ]
    if missing:
        raise UsageError(f"data build needs {', '.join(missing)} (or --default)")
    out, manifest = kbundle.build_data_bundle(
        Path(args.source),
        Path(args.key),
        args.version,
        Path(args.out),
        _date(args.released, "--released"),
        _date(args.expires, "--expires"),
    )
    sources = json.loads(_member(out, "sources.json") or b"{}")
    print(
        f"built {out}: {manifest.name} version {manifest.version}, data date "
        f"{sources.get('date')}, expires {manifest.expires}"
    )


def _member(bundle: Path, name: str) -> bytes:
    """One data file of a bundle just built (to print its data date)."""
    with tarfile.open(bundle) as tar:
        fh = tar.extractfile(f"patterns/{name}")
        return fh.read() if fh else b""


def _import(args: argparse.Namespace) -> None:
    """Verify and install; refused before anything is installed if the audit trail cannot say
    who imported which data (as `patterns import`). A refused bundle is recorded too."""
    from orchestrator.audit import record
    from orchestrator.knowledge import bundle as kbundle
    from orchestrator.knowledge.data import BUNDLE_NAME

    bundle = Path(args.bundle)
    store = getattr(args, "store", None)
    actor = record.authorise(store, "import")
    trusted = _trusted(args)
    try:
        digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    except OSError as exc:
        raise UsageError(f"cannot read bundle: {exc.strerror}", path=str(bundle)) from None
    try:
        manifest, knowledge = kbundle.import_data_bundle(bundle, trusted)
    except PlantsweepError as exc:
        # Someone offered a bad or older bundle: evidence for the trail as well.
        record.record(
            store,
            actor,
            "data_import",
            "knowledge_data",
            BUNDLE_NAME,
            new={"result": "refused", "bundle_sha256": digest, "error": str(exc)},
            reason=args.reason,
        )
        raise
    record.record(
        store,
        actor,
        "data_import",
        "knowledge_data",
        BUNDLE_NAME,
        new={
            "result": "installed",
            "version": manifest.version,
            "data_date": _iso(knowledge.date),
            "bundle_sha256": digest,
            "released": manifest.released.isoformat(),
            "expires": manifest.expires.isoformat(),
            "installed": str(knowledge.path),
        },
        reason=args.reason,
    )
    print(
        f"installed knowledge data version {manifest.version}, dated {_iso(knowledge.date)} "
        f"({knowledge.path})"
    )


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def describe(knowledge: Knowledge, today: date | None = None) -> dict[str, Any]:
    """What `data show --json` prints."""
    return {
        **knowledge.stamp(),
        "path": str(knowledge.path),
        "age_days": knowledge.age_days(today),
        "sources": knowledge.sources,
    }


def _show(args: argparse.Namespace) -> None:
    from orchestrator.knowledge.data import load_knowledge, max_age_days, warn_if_stale

    knowledge = load_knowledge()
    limit = max_age_days(args.max_data_age)
    info = describe(knowledge)
    if args.json:
        print(json.dumps({**info, "max_age_days": limit}, indent=2))
    else:
        where = "imported bundle" if knowledge.origin == "bundle" else "shipped default"
        print(f"knowledge data version {knowledge.version} ({where}, {knowledge.path})")
        print(f"date: {_iso(knowledge.date)} ({info['age_days']} days old, limit {limit})")
        print("sources:")
        for s in knowledge.sources:
            print(
                f"  {s['name']:<10} {s.get('date')}  {s.get('records')} records  {s.get('license')}"
            )
    warn_if_stale(knowledge, limit)
