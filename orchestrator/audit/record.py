"""Audit entries for commands whose records live outside the store: a quarantine restore
(the vault), a pattern bundle import (the pattern store), a cleanup of leftovers (hosts).

    actor = authorise(args.store, "restore")          # before anything is touched
    ...do the work...
    record(args.store, actor, "restore", "quarantine", entry_id, new={...}, reason=why)

`authorise` opens the store, finds who is acting and checks the role, so an action the trail
could not record, or the user may not do, is refused before it starts. `optional=True` is for
actions that must not wait for the store (removing our own leftovers from a host): the work
goes on with the OS account and a warning, and the entry is written if the store answers.
"""

from __future__ import annotations

import sys
from typing import Any

from orchestrator.audit import trail
from orchestrator.audit.identity import Actor, os_actor
from orchestrator.errors import PlantsweepError
from orchestrator.store.database import StoreError, open_store


def authorise(store_url: str | None, permission: str, *, optional: bool = False) -> Actor:
    """Who acts, allowed to do `permission`; StoreError/PermissionDenied otherwise (or, with
    `optional`, the OS account and a warning when the store cannot be reached)."""
    from orchestrator.users.sessions import acting

    try:
        store = open_store(store_url)
    except StoreError as exc:
        if not optional:
            raise StoreError(
                f"{exc}; nothing was done, because the audit trail must record it"
            ) from None
        print(f"WARNING: the store cannot record this action ({exc})", file=sys.stderr)
        return os_actor()
    try:
        return acting(store, permission)
    finally:
        store.dispose()


def record(
    store_url: str | None,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str,
    *,
    old: Any = None,
    new: Any = None,
    reason: str | None = None,
) -> int | None:
    """Append one entry; the seq, or None (with a warning on stderr) if the store failed after
    the action was done: the action cannot be undone, so it is said loudly, not raised."""
    try:
        store = open_store(store_url)
        try:
            with store.begin() as conn:
                return trail.append(
                    conn, actor, action, object_type, object_id, old=old, new=new, reason=reason
                )
        finally:
            store.dispose()
    except PlantsweepError as exc:
        print(
            f"WARNING: {action} of {object_type} {object_id} was done but NOT recorded in the "
            f"audit trail: {exc}",
            file=sys.stderr,
        )
        return None
