"""`plantsweep cleanup`: remove what a crashed or killed run left on hosts, from its journal.

outcomes = clean_leftovers(run_journals(journal_dir(), "20261125T192233Z-3f9a1c"), ...)
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from orchestrator import hostside
from orchestrator.connections import SSHOptions, Timeouts, make_connection
from orchestrator.errors import HostError, HostUnreachable, PlantsweepError
from orchestrator.journal import Journal, Leftover, leftovers
from orchestrator.runner import run_hosts
from orchestrator.session import json_answer


@dataclass
class CleanupOutcome:
    leftover: Leftover
    removed: bool
    message: str = ""


def _password_from_inventory(journal: Path, host: str) -> str | None:
    """Passwords are never journaled: re-read them the way the run did, from its inventories."""
    from orchestrator.inventory import load_inventory
    from orchestrator.targets import target_for

    try:
        first = json.loads(journal.open(encoding="utf-8").readline())
        inventory = load_inventory(first["inventories"])
        return target_for(host, inventory.host_vars(host)).password
    except (PlantsweepError, OSError, ValueError, KeyError):
        return None


def _clean_one(
    item: tuple[Path, Leftover],
    cancel: threading.Event,
    ssh: SSHOptions,
    timeouts: Timeouts,
    password: str | None,
) -> CleanupOutcome:
    path, left = item
    target = left.target
    if target.password is None:
        target = replace(target, password=password or _password_from_inventory(path, target.name))
    try:
        with make_connection(target, ssh, timeouts) as conn:
            parent = str(PurePosixPath(left.temp_dir).parent)
            command = hostside.cleanup_command(target.python_interpreter, left.temp_dir, parent, "")
            result = conn.run(command, timeouts.command)
            data = json_answer(result, target.name, "the cleanup command")
    except HostUnreachable as exc:
        return CleanupOutcome(left, False, f"unreachable: {exc.message}")
    except HostError as exc:
        return CleanupOutcome(left, False, exc.message)
    if data.get("removed") is not True:
        return CleanupOutcome(left, False, "; ".join(data.get("errors") or ["still present"]))
    Journal(path).removed(target.name, left.temp_dir)
    return CleanupOutcome(left, True)


def clean_leftovers(
    journals: list[Path],
    ssh: SSHOptions,
    timeouts: Timeouts,
    forks: int,
    password: str | None = None,
) -> list[CleanupOutcome]:
    """Reconnect to every host with a leftover temp dir and remove it (processes included)."""
    items = [(path, left) for path in journals for left in leftovers(path)]
    outcome = run_hosts(
        items, lambda item, cancel: _clean_one(item, cancel, ssh, timeouts, password), forks
    )
    return outcome.results
