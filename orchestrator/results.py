"""Where scan logs land on the controller: one folder per run, one JSON file per host.

Every write is atomic (temp file + rename in the same folder), so a crash never leaves a
half-written log, and a host's log is on disk before its temp dir is removed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def new_run_id() -> str:
    """Sortable and unique: 20261125T192233Z-3f9a1c."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def safe_file_name(host: str) -> str:
    """Inventory names may hold characters a file name cannot; keep them readable."""
    name = re.sub(r"[^A-Za-z0-9._@+-]", "_", host)
    return name.lstrip(".") or "_"


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)  # ASCII escapes: any path survives
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunFolder:
    """`<out>/<run-id>/`: `<host>.json` per scanned host and `run.json` for the whole run."""

    def __init__(self, out: Path, run_id: str):
        self.run_id = run_id
        self.path = out / run_id

    def host_log(self, host: str) -> Path:
        return self.path / f"{safe_file_name(host)}.json"

    def summary(self) -> Path:
        return self.path / "run.json"
