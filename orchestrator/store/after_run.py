"""Every run's results go into the store automatically (scan, playbook, kit import).

The run folder stays on disk whatever happens here: if the store cannot be reached, the run
still succeeds and the user is told the one command that stores it later
(`plantsweep logs import RUN_DIR`), so nothing is lost.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from orchestrator.audit.identity import Actor
from orchestrator.errors import PlantsweepError
from orchestrator.store.database import Store, open_store, redacted


def acting_user(store: Store) -> Actor:
    """Who the store records as acting: the logged-in user, else the OS account (where the
    store allows that)."""
    from orchestrator.users.sessions import current_actor

    return current_actor(store)


def store_run(
    run_dir: Path, kind: str, store_url: str | None = None, console: Console | None = None
) -> bool:
    """Ingest `run_dir` into the store; print one line either way. True when stored."""
    err = console or Console(stderr=True, highlight=False)
    from orchestrator.store.ingest import ingest_run

    try:
        store = open_store(store_url)
        try:
            stored = ingest_run(store, run_dir, acting_user(store), kind=kind)
        finally:
            store.dispose()
    except PlantsweepError as exc:
        err.print(
            f"WARNING: the run was not stored in the central store ({exc}); its logs are in "
            f"{run_dir}: store them with `plantsweep logs import {run_dir}`",
            markup=False,
            soft_wrap=True,
        )
        return False
    new = sum(1 for s in stored if s.created)
    err.print(
        f"store: {new} new log(s) stored in {redacted(store.url)}", markup=False, soft_wrap=True
    )
    forward_to_siem(store_url, err)
    return True


def forward_to_siem(store_url: str | None, err: Console) -> None:
    """Forward the new events to the destinations of forward.yml (orchestrator/siem/forward.py).
    A receiver that is down is a warning: the run stays stored and the backlog waits."""
    from orchestrator.siem.forward import config_path, forward_after_run

    if not config_path().exists():
        return
    try:
        store = open_store(store_url)
        try:
            forward_after_run(store, acting_user(store), err)
        finally:
            store.dispose()
    except PlantsweepError as exc:
        err.print(f"WARNING: SIEM forwarding skipped: {exc}", markup=False, soft_wrap=True)
