"""Continuous forwarding: after every stored run, export to each destination listed in
`$PLANTSWEEP_HOME/forward.yml` (else ~/.local/share/plantsweep/forward.yml).

    destinations:
      - name: soc-splunk                # the cursor's name (default: derived from the target)
        type: splunk                    # splunk | cef | leef | jsonl
        url: https://splunk.example:8088
        token_file: /etc/plantsweep/hec.token   # mode 0600; or $PLANTSWEEP_HEC_TOKEN
        ca: /etc/plantsweep/splunk-ca.pem
        ack: true
      - type: leef
        to: tls://qradar.example:6514   # tcp:// tls:// udp://
        ca: /etc/plantsweep/qradar-ca.pem
        kinds: [finding, scan, audit, checkpoint]

A receiver that is down never fails the run: it is one warning, the cursor stays, and the
next run (or `plantsweep export ...`) delivers the backlog. Secrets are never in this file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from orchestrator.audit.identity import Actor
from orchestrator.errors import PlantsweepError, UsageError
from orchestrator.siem.events import parse_kinds
from orchestrator.siem.export import Destination, export
from orchestrator.store.database import Store

TARGET_KEYS = {"splunk": "url", "cef": "to", "leef": "to", "jsonl": "out"}
OPTION_KEYS = {
    "name",
    "ca",
    "client_cert",
    "client_key",
    "token_file",
    "ack",
    "index",
    "sourcetype",
    "delimiter",
    "bom",
    "framing",
    "sd_id",
    "batch_size",
    "retries",
    "backoff",
    "ack_timeout",
    "timeout",
}


def config_path() -> Path:
    home = os.environ.get("PLANTSWEEP_HOME")
    base = Path(home) if home else Path.home() / ".local" / "share" / "plantsweep"
    return base / "forward.yml"


def load_destinations(path: Path | None = None) -> list[Destination]:
    """The destinations of forward.yml; [] when there is no file."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise UsageError(f"cannot read: {exc.strerror}", path=str(path)) from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UsageError(
            f"not valid YAML: {getattr(exc, 'problem', exc)}",
            path=str(path),
            line=mark.line + 1 if mark else None,
        ) from None
    items = data.get("destinations") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise UsageError("expected a mapping with a `destinations:` list", path=str(path))
    return [_destination(item, n, path) for n, item in enumerate(items, 1)]


def _destination(item: Any, n: int, path: Path) -> Destination:
    where = f"destination {n}"
    if not isinstance(item, dict):
        raise UsageError(f"{where}: expected a mapping", path=str(path))
    if "token" in item:
        raise UsageError(
            f"{where}: a token does not belong in this file: use token_file "
            "(mode 0600) or $PLANTSWEEP_HEC_TOKEN",
            path=str(path),
        )
    kind = item.get("type")
    if kind not in TARGET_KEYS:
        raise UsageError(f"{where}: type must be one of {', '.join(TARGET_KEYS)}", path=str(path))
    target_key = TARGET_KEYS[kind]
    if not item.get(target_key):
        raise UsageError(f"{where}: {kind} needs `{target_key}:`", path=str(path))
    unknown = sorted(set(item) - OPTION_KEYS - {"type", target_key, "kinds"})
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}", path=str(path))
    kinds = item.get("kinds")
    options = {k: v for k, v in item.items() if k in OPTION_KEYS}
    options.setdefault("retries", 2)  # a run waits for a down receiver only briefly
    try:
        return Destination(
            type=kind,
            target=str(item[target_key]),
            kinds=parse_kinds(",".join(kinds) if isinstance(kinds, list) else kinds),
            **options,
        )
    except PlantsweepError as exc:
        raise UsageError(f"{where}: {exc.message}", path=str(path)) from None
    except TypeError as exc:
        raise UsageError(f"{where}: {exc}", path=str(path)) from None


def forward_after_run(store: Store, actor: Actor, console: Console | None = None) -> int:
    """Export to every configured destination; print one line each. Never raises: returns
    the number of destinations that failed."""
    err = console or Console(stderr=True, highlight=False)
    try:
        destinations = load_destinations()
    except PlantsweepError as exc:
        err.print(f"WARNING: SIEM forwarding skipped: {exc}", markup=False, soft_wrap=True)
        return 1
    failed = 0
    for dest in destinations:
        try:
            result = export(store, dest, actor)
        except PlantsweepError as exc:
            failed += 1
            err.print(
                f"WARNING: SIEM forwarding to {dest.cursor_name} failed ({exc}); the "
                "backlog stays and is delivered by the next run or `plantsweep export`",
                markup=False,
                soft_wrap=True,
            )
            continue
        except Exception as exc:  # a bug must not fail a stored run either
            failed += 1
            err.print(
                f"WARNING: SIEM forwarding to {dest.cursor_name} failed "
                f"({type(exc).__name__}: {exc})",
                markup=False,
                soft_wrap=True,
            )
            continue
        err.print(
            f"siem: {result.events} event(s) forwarded to {dest.cursor_name}",
            markup=False,
            soft_wrap=True,
        )
    return failed
