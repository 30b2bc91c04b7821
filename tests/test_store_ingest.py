"""Scan logs into the central store and back out: idempotent ingestion, filters, one log, the
company-wide status, `logs import` of files and run folders, and the automatic storing after a
run; each test on SQLite and on a real PostgreSQL (the `store` fixture)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from orchestrator import cli
from orchestrator.audit.identity import os_actor
from orchestrator.store import schema
from orchestrator.store.ingest import BadLog, ingest_log, ingest_run
from orchestrator.store.queries import LogFilter, find_log, list_logs, log_bytes, status
from tests.store_logs import real_logs, variant

ACTOR = os_actor()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    return real_logs(tmp_path_factory.mktemp("logs"))


def _count(store, table) -> int:
    with store.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def _audit_actions(store) -> list[str]:
    with store.connect() as conn:
        return conn.execute(select(schema.audit_entries.c.action)
                            .order_by(schema.audit_entries.c.seq)).scalars().all()


def test_the_same_log_is_stored_once(store, logs) -> None:
    dirty, _ = logs
    data = variant(dirty, scan_id="s-1", host="hmi-07")
    first = ingest_log(store, data, ACTOR, source="import")
    again = ingest_log(store, data, ACTOR, source="import")
    assert first.created and not again.created and again.scan_log_id == first.scan_log_id
    assert _count(store, schema.scan_logs) == 1
    assert _count(store, schema.findings) == 1
    assert _count(store, schema.inspection_records) == 1  # one per host per scan
    assert _audit_actions(store) == ["scan_log_store"]
    with store.connect() as conn:
        row = find_log(conn, "s-1")
    assert log_bytes(row) == data  # the exact bytes come back
    assert (row.host, row.site, row.line, row.max_level, row.findings) == (
        "hmi-07", "basel", "packaging-1", "alert", 1)


def test_other_content_under_a_stored_scan_id_is_refused(store, logs) -> None:
    dirty, clean = logs
    ingest_log(store, variant(dirty, scan_id="s-1", host="hmi-07"), ACTOR, source="import")
    with pytest.raises(BadLog, match="stored already with other content"):
        ingest_log(store, variant(clean, scan_id="s-1", host="hmi-07"), ACTOR, source="import")
    assert _count(store, schema.scan_logs) == 1


def test_filters(store, logs) -> None:
    dirty, clean = logs
    now = datetime.now(UTC)
    day = lambda n: (now - timedelta(days=n)).strftime("%Y-%m-%dT%H:%M:%S.000Z")  # noqa: E731
    ingest_log(store, variant(dirty, scan_id="a", host="hmi-1", finished=day(5)), ACTOR,
               source="run")
    ingest_log(store, variant(clean, scan_id="b", host="hmi-2", finished=day(1)), ACTOR,
               source="run")
    ingest_log(store, variant(clean, scan_id="c", host="gw-9", site="zug", line="bottling",
                              finished=day(0)), ACTOR, source="run")
    with store.connect() as conn:
        def ids(**kw: Any) -> list[str]:
            return [r.scan_id for r in list_logs(conn, LogFilter(**kw))]

        assert ids() == ["a", "b", "c"]  # oldest first
        assert ids(site="basel") == ["a", "b"]
        assert ids(line="bottling") == ["c"]
        assert ids(host="hmi-2") == ["b"]
        assert ids(min_level="warning") == ["a"]
        assert ids(since="2d") == ["b", "c"]
        assert ids(until=day(3)) == ["a"]
        assert ids(limit=1) == ["c"]  # the newest


def test_status_per_line(store, logs) -> None:
    dirty, clean = logs
    now = datetime.now(UTC)
    stamp = lambda n: (now - timedelta(days=n)).strftime("%Y-%m-%dT%H:%M:%S.000Z")  # noqa: E731
    # hmi-1: dirty 40 days ago, then clean yesterday (its finding is no longer open)
    ingest_log(store, variant(dirty, scan_id="1", host="hmi-1", finished=stamp(40)), ACTOR,
               source="run")
    ingest_log(store, variant(clean, scan_id="2", host="hmi-1", finished=stamp(1)), ACTOR,
               source="run")
    # hmi-2: dirty, 45 days ago: overdue with an open finding
    ingest_log(store, variant(dirty, scan_id="3", host="hmi-2", finished=stamp(45)), ACTOR,
               source="run")
    ingest_log(store, variant(clean, scan_id="4", host="gw-9", site="zug", line="bottling",
                              finished=stamp(2)), ACTOR, source="run")
    with store.connect() as conn:
        lines = status(conn, overdue_days=30, min_level="warning")
    by_line = {(s.site, s.line): s for s in lines}
    basel = by_line[("basel", "packaging-1")]
    assert (basel.hosts, basel.scanned, basel.overdue) == (2, 2, ["hmi-2"])
    assert (basel.open_findings, basel.hosts_with_findings) == (1, 1)
    assert basel.oldest_last_scan == stamp(45)
    zug = by_line[("zug", "bottling")]
    assert (zug.hosts, zug.overdue, zug.open_findings) == (1, [], 0)


def test_status_counts_inventory_hosts_never_scanned(store, logs, tmp_path, capsys) -> None:
    _, clean = logs
    ingest_log(store, variant(clean, scan_id="1", host="hmi-1"), ACTOR, source="run")
    inventory = tmp_path / "inv.yml"
    inventory.write_text(
        "all:\n  vars: {site: basel}\n  children:\n    line1:\n"
        "      vars: {area: fill-finish, line: packaging-1}\n"
        "      hosts: {hmi-1: {criticality: standard}, hmi-2: {}, hmi-3: {}}\n"
    )
    code = cli.main(["--store", store.url, "status", "-i", str(inventory), "--json"])
    assert code == 0
    lines = json.loads(capsys.readouterr().out)
    assert len(lines) == 1
    assert lines[0]["hosts"] == 3 and lines[0]["never_scanned"] == ["hmi-2", "hmi-3"]
    # New inventory hosts are an inventory change in the trail.
    assert _audit_actions(store).count("inventory_change") == 2


def test_logs_import_of_files_and_run_folders(store, logs, tmp_path, capsys) -> None:
    dirty, clean = logs
    run = tmp_path / "results" / "20261126T010000Z-abcdef"
    run.mkdir(parents=True)
    (run / "hmi-1.json").write_bytes(variant(dirty, scan_id="r/hmi-1", host="hmi-1"))
    (run / "hmi-2.json").write_bytes(variant(clean, scan_id="r/hmi-2", host="hmi-2"))
    (run / "run.json").write_text(json.dumps({"run_id": run.name, "exit_code": 1}))
    loose = tmp_path / "loose.json"
    loose.write_bytes(variant(clean, scan_id="loose", host="laptop-3"))
    broken = tmp_path / "broken.json"
    broken.write_text('{"scan_id": "x"')
    code = cli.main(["--store", store.url, "logs", "import", str(tmp_path / "results"),
                     str(loose), str(broken)])
    err = capsys.readouterr().err
    assert code == 2  # one file refused
    assert "REFUSED" in err and "broken.json" in err and "3 new log(s)" in err
    assert _count(store, schema.scan_logs) == 3 and _count(store, schema.runs) == 1
    code = cli.main(["--store", store.url, "logs", "import", str(tmp_path / "results"),
                     str(loose)])
    assert code == 0 and "0 new log(s), 3 already stored" in capsys.readouterr().err
    assert _count(store, schema.scan_logs) == 3


def test_a_log_failing_the_schema_is_refused(store, logs, tmp_path, capsys) -> None:
    _, clean = logs
    bad = json.loads(variant(clean, scan_id="bad", host="h"))
    bad["scan_type"] = "everything"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert cli.main(["--store", store.url, "logs", "import", str(path)]) == 2
    assert "scan-log schema" in capsys.readouterr().err
    assert _count(store, schema.scan_logs) == 0


def test_logs_list_and_show_cli(store, logs, capsys) -> None:
    dirty, _ = logs
    ingest_log(store, variant(dirty, scan_id="s-9", host="hmi-9"), ACTOR, source="run")
    assert cli.main(["--store", store.url, "logs", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["scan_id"], r["max_level"]) for r in listed] == [("s-9", "alert")]
    assert cli.main(["--store", store.url, "logs", "show", "s-9"]) == 0
    shown = capsys.readouterr().out
    assert "hmi-9" in shown and "eicar.com" in shown and "alert" in shown
    assert cli.main(["--store", store.url, "logs", "show", "nope"]) == 4
    assert "no scan log 'nope'" in capsys.readouterr().err


def test_ingest_run_records_the_run_and_its_place_changes(store, logs, tmp_path) -> None:
    _, clean = logs
    run = tmp_path / "run1"
    run.mkdir()
    (run / "hmi-1.json").write_bytes(variant(clean, scan_id="1", host="hmi-1"))
    (run / "run.json").write_text(json.dumps({"run_id": "run1", "exit_code": 0}))
    ingest_run(store, run, ACTOR, kind="scan")
    ingest_run(store, run, ACTOR, kind="scan")  # twice: stored once
    run2 = tmp_path / "run2"
    run2.mkdir()
    (run2 / "hmi-1.json").write_bytes(variant(clean, scan_id="2", host="hmi-1", line="packaging-2"))
    (run2 / "run.json").write_text(json.dumps({"run_id": "run2", "exit_code": 0}))
    ingest_run(store, run2, ACTOR, kind="scan")
    assert _audit_actions(store) == ["scan_log_store", "run", "inventory_change",
                                     "scan_log_store", "run"]
    with store.connect() as conn:
        line = conn.execute(select(schema.hosts.c.line)).scalar()
    assert line == "packaging-2"


def test_unreachable_store_keeps_the_run_and_says_how_to_store_it(tmp_path: Path, logs,
                                                                  capsys) -> None:
    from orchestrator.store.after_run import store_run

    _, clean = logs
    run = tmp_path / "run1"
    run.mkdir()
    (run / "hmi-1.json").write_bytes(variant(clean, scan_id="1", host="hmi-1"))
    (run / "run.json").write_text(json.dumps({"run_id": "run1", "exit_code": 0}))
    assert not store_run(run, "scan", "postgresql://nobody@/nodb?host=/nonexistent")
    err = capsys.readouterr().err
    assert "not stored" in err and f"plantsweep logs import {run}" in err
    assert (run / "hmi-1.json").is_file()
