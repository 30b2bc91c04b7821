"""`--diff`: what changed on a host since the previous run that wrote into the same results
folder: findings that appeared or went away, packages added, removed or upgraded, a new OS.

Nothing plantsweep does changes a host, so Ansible's "before and after this task" would always
be empty; "since the last campaign" is the difference a plant engineer asks about.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def previous_log(out: Path, current_run: str, file_name: str) -> dict[str, Any] | None:
    """The host's log from the most recent other run in `out` (by when the log was written:
    run ids only resolve seconds, and two runs can start within one)."""
    candidates = [p / file_name for p in out.iterdir() if p.is_dir() and p.name != current_run]
    written = [(c.stat().st_mtime_ns, c) for c in candidates if c.is_file()]
    if not written:
        return None
    try:
        return json.loads(max(written)[1].read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def findings_diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    def keys(log: dict[str, Any]) -> set[tuple[str, str]]:
        # Every match of every finding (logs of schema 1.0 had one finding per match).
        return {
            (f["path"], m["rule"])
            for f in log.get("findings") or []
            for m in f.get("matches") or [f]
        }

    old, new = keys(before), keys(after)
    return [f"+ finding {p} ({r})" for p, r in sorted(new - old)] + [
        f"- finding {p} ({r})" for p, r in sorted(old - new)
    ]


def asset_diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    from orchestrator.assets.diff import diff_assets

    return diff_assets(before.get("asset") or {}, after.get("asset") or {}).lines()
