"""`plantsweep patterns ...`: the command line over orchestrator.bundles.

`build` compiles the YARA rules with this controller's yara-python (pinned, see
agentless_scanner.yara_engine.YARA_PYTHON_VERSION) and prints the rule counts; rule files that
do not compile are listed one per line on stderr ("broken rule: FILE: rule NAME, line N:
REASON") before the one-line error, or, with --skip-broken, left out and listed on stdout.

Trusted keys live in `$PLANTSWEEP_HOME/trusted-keys/*.pub` (else
`~/.config/plantsweep/trusted-keys`), installed bundles in `$PLANTSWEEP_HOME/patterns` (else
`~/.local/share/plantsweep/patterns`).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path

from agentless_scanner.yara_engine import YARA_PYTHON_VERSION
from orchestrator import bundles
from orchestrator.errors import UsageError


def _home(env_sub: str, default: Path) -> Path:
    home = os.environ.get("PLANTSWEEP_HOME")
    return Path(home) / env_sub if home else default


def trusted_keys_dir() -> Path:
    return _home("trusted-keys", Path.home() / ".config" / "plantsweep" / "trusted-keys")


def store_dir() -> Path:
    return _home("patterns", Path.home() / ".local" / "share" / "plantsweep" / "patterns")


def _date(text: str | None, what: str) -> date:
    if text is None:
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{what} must be a date like 2026-12-31, got {text!r}") from None


def _trusted(args: argparse.Namespace) -> list[Path]:
    keys = (
        [Path(k) for k in args.trusted]
        if args.trusted
        else sorted(trusted_keys_dir().glob("*.pub"))
    )
    if not keys:
        raise UsageError(
            f"no trusted public keys: pass --trusted KEY.pub or put keys in {trusted_keys_dir()}"
        )
    return keys


def patterns_command(args: argparse.Namespace) -> int:
    verb = args.patterns_command
    if verb == "keygen":
        key = bundles.generate_keypair(Path(args.secret), Path(args.public))
        print(f"key id {key.key_id_hex}: secret {args.secret}, public {args.public}")
    elif verb == "build":
        _build(args)
    elif verb in ("import", "verify"):
        bundle = Path(args.bundle)
        if verb == "verify":
            current = bundles.installed(store_dir(), _peek_name(bundle, _trusted(args)))
            m = bundles.verify_bundle(bundle, _trusted(args), current[0] if current else None)
            print(f"OK {m.name} version {m.version}, released {m.released}, expires {m.expires}")
        else:
            _import(args, bundle)
    elif verb == "list":
        for b in bundles.list_bundles(store_dir()):
            print(f"{b.name}\tversion {b.version}\t{b.path}")
    elif verb == "show":
        found = bundles.installed(store_dir(), args.name)
        if found is None:
            raise UsageError(f"no bundle named {args.name!r} is installed in {store_dir()}")
        print((found[1] / "manifest.json").read_text(encoding="utf-8"))
    return 0


def _import(args: argparse.Namespace, bundle: Path) -> None:
    """Verify and install; refused before anything is installed if the trail cannot say who
    imported which bundle."""
    import hashlib
    import json

    from orchestrator.audit import record

    actor = record.authorise(getattr(args, "store", None), "import")
    path = bundles.import_bundle(bundle, store_dir(), _trusted(args))
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    record.record(
        getattr(args, "store", None),
        actor,
        "patterns_import",
        "pattern_bundle",
        str(manifest.get("name")),
        new={
            "version": manifest.get("version"),
            "released": manifest.get("released"),
            "expires": manifest.get("expires"),
            "bundle_sha256": hashlib.sha256(bundle.read_bytes()).hexdigest(),
            "installed": str(path),
        },
    )
    print(f"installed {path}")


def _build(args: argparse.Namespace) -> None:
    try:
        out, manifest = bundles.build_bundle_manifest(
            Path(args.src),
            Path(args.out),
            Path(args.key),
            args.name,
            args.version,
            _date(args.released, "--released"),
            _date(args.expires, "--expires"),
            skip_broken=getattr(args, "skip_broken", False),
        )
    except bundles.RuleCompileError as exc:
        # The full report first (one line per broken rule), then the one-line error.
        for broken in exc.broken:
            print(f"broken rule: {broken.describe()}", file=sys.stderr)
        raise
    print(f"built {out}: {args.name} version {args.version}")
    if manifest.yara is not None:
        y = manifest.yara
        print(
            f"YARA: {y.content_rules + y.path_rules} rules compiled with libyara {y.libyara} "
            f"({y.content_rules} content, {y.path_rules} path)"
        )
        if y.libyara != YARA_PYTHON_VERSION:
            print(
                f"warning: plantsweep pins yara-python {YARA_PYTHON_VERSION}, this controller "
                f"has libyara {y.libyara}: hosts given the pinned wheel will compile the rules "
                "themselves (pip install -e '.[yara]' to get the pinned one)",
                file=sys.stderr,
            )
    for left in manifest.excluded:
        broken = bundles.BrokenRule(left.path, left.rule, left.line, left.reason)
        print(f"excluded (--skip-broken): {broken.describe()}")


def _peek_name(bundle: Path, trusted: list[Path]) -> str:
    """The bundle's name, from a verification that ignores the installed version."""
    return bundles.verify_bundle(bundle, trusted).name


__all__ = ["patterns_command", "store_dir", "trusted_keys_dir"]
