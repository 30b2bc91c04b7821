"""`plantsweep logs import` of files and folders that are not a USB kit: run folders, a
results folder holding run folders, and single scan log files.

Every file is checked against the scan-log schema and stored in its own transaction; a refused
file is named with the reason and the others still go in. A log stored before is reported as
such and not stored twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from orchestrator import exit_codes
from orchestrator.audit.identity import Actor
from orchestrator.store.database import Store, redacted
from orchestrator.store.ingest import BadLog, ingest_run, parse_log, store_log


def _log_files(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    for found in sorted(path.rglob("*.json")):
        if found.name == "run.json" or found.name.endswith(".asset.json"):
            continue
        if found.is_file():
            yield found


def import_paths(
    store: Store, paths: list[Path], actor: Actor, console: Console | None = None
) -> int:
    """Store every log under `paths`; returns 0, or 2 when a file was refused."""
    from orchestrator.logs_import import _schema_validator

    out = console or Console(stderr=True, highlight=False)
    check = _schema_validator()
    new = old = refused = 0
    for path in paths:
        runs = (
            [path]
            if (path / "run.json").is_file()
            else (sorted(p.parent for p in path.glob("*/run.json")) if path.is_dir() else [])
        )
        for run_dir in runs:
            stored = ingest_run(store, run_dir, actor, kind="import")
            new += sum(1 for s in stored if s.created)
            old += sum(1 for s in stored if not s.created)
        in_runs = {p for r in runs for p in r.glob("*.json")}
        for file in _log_files(path):
            if file in in_runs:
                continue
            try:
                data = file.read_bytes()
                log = parse_log(data, str(file))
                problem = check(log)
                if problem:
                    raise BadLog(f"does not match the scan-log schema: {problem}", path=str(file))
                with store.begin() as conn:
                    result = store_log(conn, data, log, actor, source="import")
            except OSError as exc:
                out.print(f"REFUSED: {file}: {exc.strerror or exc}", markup=False, soft_wrap=True)
                refused += 1
                continue
            except BadLog as exc:
                out.print(
                    f"REFUSED: {exc}" if exc.path else f"REFUSED: {file}: {exc}",
                    markup=False,
                    soft_wrap=True,
                )
                refused += 1
                continue
            if result.created:
                new += 1
            else:
                old += 1
                out.print(
                    f"already stored: {file} (scan {result.scan_id})", markup=False, soft_wrap=True
                )
    out.print(
        f"store: {new} new log(s), {old} already stored, {refused} refused, in "
        f"{redacted(store.url)}",
        markup=False,
        soft_wrap=True,
    )
    return exit_codes.HOST_FAILED if refused else exit_codes.OK
