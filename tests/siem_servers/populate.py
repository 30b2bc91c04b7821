"""A real store to export: real scanner logs (tests/store_logs.py) as several hosts' scans,
one finding path and one audit reason full of characters every format must escape, an asset
change, and a signed audit checkpoint."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from orchestrator.audit import trail
from orchestrator.audit.checkpoint import make_checkpoint
from orchestrator.audit.identity import Actor, os_actor
from orchestrator.siem.events import KINDS, events_of, read_entries
from orchestrator.store.database import Store
from orchestrator.store.ingest import ingest_log
from tests.store_logs import variant

ACTOR = os_actor()
# `|`, `=`, `\`, a newline, a tab, `^`, `"`, `]` and non-ASCII: every escaping rule at once.
NASTY_PATH = 'C:\\Temp\\a|b=c\nd\te^f"g]h ü€.exe'
NASTY_REASON = "typo | key=value \\ fixed\nsecond line: Grüße"


def nasty_log(dirty: dict[str, Any]) -> dict[str, Any]:
    log = copy.deepcopy(dirty)
    log["findings"][0]["path"] = NASTY_PATH
    return log


def populate(store: Store, dirty: dict[str, Any], clean: dict[str, Any], hosts: int = 6) -> None:
    """`hosts` dirty scans (one with the nasty path), a clean rescan of host 1 with changed
    asset data, a `modify` audit entry with the nasty reason, and a checkpoint."""
    for n in range(hosts):
        log = nasty_log(dirty) if n == 0 else dirty
        ingest_log(
            store,
            variant(
                log,
                scan_id=f"scan-{n}",
                host=f"hmi-{n:02d}",
                finished=f"2026-11-2{n % 5}T10:00:00Z",
            ),
            ACTOR,
            source="import",
        )
    changed = copy.deepcopy(clean)
    changed["asset"] = {**(changed.get("asset") or {}), "hostname": "renamed-hmi"}
    ingest_log(
        store,
        variant(changed, scan_id="rescan-0", host="hmi-00", finished="2026-11-25T12:00:00Z"),
        ACTOR,
        source="import",
    )
    with store.begin() as conn:
        trail.append(
            conn,
            Actor("alice", "Alice Ängström", "session"),
            "modify",
            "inspection_record",
            "1",
            old={"remarks": ""},
            new={"remarks": "ok | fine=yes"},
            reason=NASTY_REASON,
        )
    make_checkpoint(store, actor=ACTOR)


def all_event_ids(
    store: Store, kinds: frozenset[str] = frozenset(KINDS), upto: int | None = None
) -> list[str]:
    """Every event id the store holds (what a complete export must deliver)."""
    with store.connect() as conn:
        entries = read_entries(conn, 0, 10**9)
        return [
            e.event_id
            for entry in entries
            if upto is None or entry.seq <= upto
            for e in events_of(conn, entry, kinds)
        ]


def load_json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
