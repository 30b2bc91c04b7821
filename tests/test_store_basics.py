"""The store opens, migrates once and keeps its audit tables append-only, on SQLite and on a
real PostgreSQL (the `store` fixture runs each test on both)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text

from orchestrator.audit import trail
from orchestrator.audit.identity import Actor, Where
from orchestrator.errors import UsageError
from orchestrator.store import StoreError, open_store, schema
from orchestrator.store.database import SCHEMA_VERSION

ALICE = Actor(user_id="alice", full_name="Alice Example", auth="password")


def test_opens_and_migrates_once(store_url: str) -> None:
    first = open_store(store_url)
    install_id = first.meta("install_id")
    assert first.meta("schema_version") == str(SCHEMA_VERSION)
    first.dispose()
    again = open_store(store_url)
    assert again.meta("install_id") == install_id  # not re-created
    again.dispose()


def test_a_schema_2_store_gains_the_asset_os_column_filled_in(store, tmp_path) -> None:
    from orchestrator.audit.identity import os_actor
    from orchestrator.store.ingest import ingest_log
    from tests.store_logs import real_logs, variant

    _, clean = real_logs(tmp_path / "logs")
    ingest_log(store, variant(clean, scan_id="v2-1", host="hmi-1"), os_actor(), source="run")
    with store.begin() as conn:  # back to what schema 2 had: no os column
        conn.execute(text("ALTER TABLE assets DROP COLUMN os"))
        store.set_meta(conn, "schema_version", "2")
    store.dispose()
    migrated = open_store(store.url)
    try:
        assert migrated.meta("schema_version") == str(SCHEMA_VERSION) == "3"
        with migrated.connect() as conn:
            os_text, data = conn.execute(select(schema.assets.c.os, schema.assets.c.data)).one()
        assert json.loads(os_text) == json.loads(data)["os"] and json.loads(os_text)["name"]
    finally:
        migrated.dispose()


def test_newer_schema_is_refused(store) -> None:
    with store.begin() as conn:
        store.set_meta(conn, "schema_version", str(SCHEMA_VERSION + 1))
    with pytest.raises(StoreError, match="upgrade plantsweep"):
        open_store(store.url)


def test_append_chains_entries(store) -> None:
    with store.begin() as conn:
        one = trail.append(conn, ALICE, "login", "user", "alice", where=Where("ctl-1", "basel"))
        two = trail.append(conn, ALICE, "scan_start", "run", "r1", new={"hosts": 3})
    assert (one, two) == (1, 2)
    with store.connect() as conn:
        rows = conn.execute(select(schema.audit_entries).order_by(schema.audit_entries.c.seq)).all()
    previous = trail.GENESIS
    for row in rows:
        assert trail.leaf_hash(row.entry.encode()) == row.leaf_hash
        assert trail.chain_hash(previous, row.leaf_hash) == row.chain_hash
        previous = row.chain_hash
    entry = json.loads(rows[0].entry)
    assert entry["who"] == {"user_id": "alice", "full_name": "Alice Example", "auth": "password"}
    assert entry["where"]["site"] == "basel" and entry["ts"].endswith("+00:00")


def test_changes_need_a_reason(store) -> None:
    with pytest.raises(UsageError, match="reason"), store.begin() as conn:
        trail.append(conn, ALICE, "modify", "inspection_record", "7", old="a", new="b")


@pytest.mark.parametrize("statement", ["UPDATE audit_entries SET action = 'x'",
                                       "DELETE FROM audit_entries"])
def test_audit_entries_refuse_update_and_delete(store, statement: str) -> None:
    with store.begin() as conn:
        trail.append(conn, ALICE, "login", "user", "alice")
    with pytest.raises(StoreError, match="append-only"), store.begin() as conn:
        conn.execute(text(statement))
    with store.connect() as conn:
        assert conn.execute(select(schema.audit_entries.c.action)).scalars().all() == ["login"]
