"""Real scan logs for store tests: the scanner payload run once on this machine on a folder
with the EICAR test file and on a clean one; tests derive per-host variants from them."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from orchestrator.payload import default_patterns_dir
from tests.harness.files import EICAR

ROOT = Path(__file__).resolve().parents[1]


def run_scanner(folder: Path, out: Path, host: str = "scanned-host") -> dict[str, Any]:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "agentless_scanner",
            "--type",
            "folders",
            "--path",
            str(folder),
            "--patterns",
            str(default_patterns_dir()),
            "--out",
            str(out),
            "--host-name",
            host,
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    return json.loads(out.read_text())


def real_logs(base: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(a log with an EICAR finding at alert, a clean log)."""
    dirty, clean = base / "dirty", base / "clean"
    dirty.mkdir(parents=True)
    clean.mkdir(parents=True)
    (dirty / "eicar.com").write_bytes(EICAR)
    (clean / "notes.txt").write_text("nothing to see\n")
    return run_scanner(dirty, base / "dirty.json"), run_scanner(clean, base / "clean.json")


def variant(
    log: dict[str, Any],
    *,
    scan_id: str,
    host: str,
    site: str = "basel",
    area: str = "fill-finish",
    line: str = "packaging-1",
    finished: str | None = None,
) -> bytes:
    """The log as another host's scan (its exact bytes, as a file would hold them)."""
    new = copy.deepcopy(log)
    new.update(scan_id=scan_id, host=host)
    new["inventory"] = {"site": site, "area": area, "line": line, "criticality": "standard"}
    if finished:
        new["started"] = new["finished"] = finished
    return json.dumps(new, indent=2).encode()


def audit_entries(action: str, store_url: str | None = None) -> list[dict[str, Any]]:
    """The audit entries of `action` in a store (default: $PLANTSWEEP_HOME's), oldest first."""
    from sqlalchemy import select

    from orchestrator.store import open_store, schema

    store = open_store(store_url)
    try:
        with store.connect() as conn:
            rows = conn.execute(
                select(schema.audit_entries.c.entry)
                .where(schema.audit_entries.c.action == action)
                .order_by(schema.audit_entries.c.seq)
            ).all()
    finally:
        store.dispose()
    return [json.loads(r.entry) for r in rows]
