"""The run journal: every temp dir on every host, recorded before it exists, marked when gone.

One append-only JSON-lines file per run, flushed and fsynced per line, so even a controller
killed with SIGKILL leaves an exact list of what may remain on which host;
`plantsweep cleanup --run RUN_ID` (or `--all`) reconnects and removes it.

    journal = Journal.open(journal_dir(), run_id, inventories)
    journal.creating(target, "/tmp/plantsweep-3f9a1c0d2e")   # before the probe makes it
    journal.removed(host, "/tmp/plantsweep-3f9a1c0d2e", proof) # after the proof says gone
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from orchestrator.connections import Target
from orchestrator.errors import UsageError
from orchestrator.results import utc_now


def journal_dir() -> Path:
    """`$PLANTSWEEP_HOME/journal`, else `~/.local/state/plantsweep/journal`."""
    home = os.environ.get("PLANTSWEEP_HOME")
    if home:
        return Path(home) / "journal"
    return Path.home() / ".local" / "state" / "plantsweep" / "journal"


@dataclass(frozen=True)
class Leftover:
    """A temp dir the journal says was created and never proven removed."""

    run_id: str
    target: Target
    temp_dir: str


class Journal:
    """Thread-safe appender for one run; workers call it concurrently."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    @classmethod
    def open(cls, directory: Path, run_id: str, inventories: list[str]) -> Journal:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"cannot create the run journal folder: {exc.strerror}", path=str(directory)
            ) from None
        journal = cls(directory / f"{run_id}.jsonl")
        journal._append(
            {"event": "run", "run_id": run_id, "inventories": inventories, "pid": os.getpid()}
        )
        return journal

    def _append(self, record: dict[str, Any]) -> None:
        line = json.dumps({"time": utc_now(), **record}) + "\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)

    def creating(self, target: Target, temp_dir: str) -> None:
        # Everything needed to reconnect, except the password (never written to disk).
        fields = {k: v for k, v in asdict(target).items() if k != "password"}
        self._append(
            {"event": "create", "host": target.name, "target": fields, "temp_dir": temp_dir}
        )

    def removed(self, host: str, temp_dir: str) -> None:
        self._append({"event": "removed", "host": host, "temp_dir": temp_dir})

    def finished(self) -> None:
        self._append({"event": "end"})


def leftovers(path: Path) -> list[Leftover]:
    """Temp dirs created in the run of `path` and not marked removed, in creation order."""
    created: dict[tuple[str, str], Leftover] = {}
    run_id = path.stem
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except ValueError:
                # A SIGKILL can cut the last line short; everything before it is intact.
                continue
            key = (record.get("host", ""), record.get("temp_dir", ""))
            if record.get("event") == "create":
                fields = dict(record["target"])
                created[key] = Leftover(run_id, Target(**fields), record["temp_dir"])
            elif record.get("event") == "removed":
                created.pop(key, None)
    return list(created.values())


def run_journals(directory: Path, run_id: str | None) -> list[Path]:
    """The journal of one run, or of every run (`run_id` None)."""
    if run_id is not None:
        path = directory / f"{run_id}.jsonl"
        if not path.is_file():
            raise UsageError(f"no journal for run {run_id!r} in {directory}")
        return [path]
    return sorted(directory.glob("*.jsonl")) if directory.is_dir() else []
