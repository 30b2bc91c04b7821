"""Helpers for end-to-end tests: run `plantsweep scan` in-process and read what it wrote."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.cli import main

# The prefix of every temp dir the controller makes on a host.
TEMP_PREFIX = "plantsweep-"


@dataclass
class ScanRun:
    code: int
    run_dir: Path
    summary: dict[str, Any]

    def log(self, host: str) -> dict[str, Any]:
        return json.loads((self.run_dir / f"{host}.json").read_text())

    def status(self, host: str) -> str:
        return next(h["status"] for h in self.summary["hosts"] if h["host"] == host)

    def host_summary(self, host: str) -> dict[str, Any]:
        return next(h for h in self.summary["hosts"] if h["host"] == host)


def run_scan_cli(out: Path, *args: str) -> ScanRun:
    """`plantsweep scan --out OUT ARGS...`; returns the exit code and the run's files."""
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.iterdir())
    code = main(["scan", "--out", str(out), *args])
    new = sorted(set(out.iterdir()) - before)
    assert len(new) == 1, f"expected one new run folder, got {new} (exit {code})"
    summary = json.loads((new[0] / "run.json").read_text())
    return ScanRun(code, new[0], summary)


def finding_keys(log: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(path, sha256, indicator) per finding, indicators spelled as the harness spells them."""
    keys = set()
    for f in log["findings"]:
        for m in f["matches"]:
            if m["engine"] == "yara":
                keys.add((f["path"], f["sha256"], f"yara:{m['rule']}"))
            elif m["engine"] == "hash":
                keys.add((f["path"], f["sha256"], f"hash:{m.get('description')}"))
    return keys
