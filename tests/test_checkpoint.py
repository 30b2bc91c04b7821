"""The site-gate checkpoint (practice 4), on SQLite and on a real PostgreSQL: real local scans
of a folder through the ordinary scanner, crafted logs (from one real log) for the age rules,
every verdict in the audit trail."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from orchestrator.audit.identity import Actor
from orchestrator.checkpoint import gate
from orchestrator.checkpoint.policy import load_policy, parse_duration, set_policy
from orchestrator.errors import UsageError
from orchestrator.store import schema
from tests.harness.files import EICAR

GATE = Actor(user_id="gatekeeper", full_name="Gate Keeper", auth="password")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _scan_folder(store: Any, tmp_path: Path, device_id: str, files: dict[str, bytes],
                 direction: str = "entry") -> gate.DeviceScan:
    folder = tmp_path / f"stick-{device_id}-{direction}"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    recorded = gate.checkpoint_scan(
        store, str(folder), device_id=device_id, owner="Vendor Ltd / A. Smith",
        reason="firmware update line 3", direction=direction, site="basel",
        out=tmp_path / "results", actor=GATE,
    )
    assert len(recorded) == 1
    return recorded[0]


def _audit(store: Any, action: str, device_id: str) -> list[dict[str, Any]]:
    a = schema.audit_entries
    with store.connect() as conn:
        rows = conn.execute(
            select(a.c.entry).where(a.c.action == action, a.c.object_id == device_id)
            .order_by(a.c.seq)
        ).scalars().all()
    return [json.loads(r) for r in rows]


@pytest.fixture(scope="module")
def real_log(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real, clean scan log of a local folder, made by the real scanner (SQLite store)."""
    from orchestrator.store import open_store

    tmp = tmp_path_factory.mktemp("reallog")
    store = open_store(f"sqlite:///{tmp / 'store.sqlite'}")
    try:
        scan = _scan_folder(store, tmp, "seed", {"readme.txt": b"hello plant\n"})
    finally:
        store.dispose()
    assert scan.run_dir is not None
    return json.loads(next(scan.run_dir.glob("seed.json")).read_text())


def _crafted(real_log: dict[str, Any], name: str, *, finished: datetime,
             pattern_date: str | None = None, findings: list[dict[str, Any]] | None = None,
             complete: bool = True) -> bytes:
    log = json.loads(json.dumps(real_log))
    log["scan_id"] = f"crafted-{name}"
    log["host"] = name
    log["started"] = (finished - timedelta(minutes=3)).isoformat().replace("+00:00", "Z")
    log["finished"] = finished.isoformat().replace("+00:00", "Z")
    log["patterns"]["date"] = pattern_date or (finished - timedelta(days=1)).date().isoformat()
    log["complete"] = complete
    if findings is not None:
        log["findings"] = findings
    return json.dumps(log).encode()


def _record(store: Any, data: bytes, device_id: str, direction: str = "entry") -> gate.DeviceScan:
    return gate.record_scan(store, data, device_id=device_id, owner="Vendor Ltd / B. Jones",
                            reason="commissioning", direction=direction, site="basel",
                            actor=GATE)


def test_real_scan_of_a_dirty_folder_is_stored_and_refused(store, tmp_path: Path) -> None:
    scan = _scan_folder(store, tmp_path, "USB-0042", {"eicar.com": EICAR, "notes.txt": b"ok\n"})
    assert (scan.dirty, scan.complete, scan.new_device) == (1, True, True)
    with store.connect() as conn:
        row = conn.execute(select(schema.scan_logs).where(
            schema.scan_logs.c.id == scan.scan_log_id)).one()
        device = conn.execute(select(schema.devices)).one()
    assert row.max_level == "alert" and row.findings == 1
    assert (device.device_id, device.owner, device.site) == (
        "USB-0042", "Vendor Ltd / A. Smith", "basel")
    verdict = gate.verify(store, "USB-0042", actor=GATE)
    assert not verdict.admitted
    assert verdict.reasons == ["1 finding at warning or above"]
    assert [e["what"]["new"]["verdict"] for e in _audit(store, "admission", "USB-0042")] == [
        "refused"]
    assert len(_audit(store, "device_register", "USB-0042")) == 1
    assert _audit(store, "checkpoint_scan", "USB-0042")[0]["why"] == "firmware update line 3"


def test_real_scan_of_a_clean_folder_is_admitted(store, tmp_path: Path) -> None:
    scan = _scan_folder(store, tmp_path, "LAPTOP-7", {"manual.pdf": b"%PDF-1.4 nothing\n"})
    assert scan.dirty == 0 and scan.complete
    verdict = gate.verify(store, "LAPTOP-7", actor=GATE)
    assert verdict.admitted, verdict.reasons
    finished = datetime.fromisoformat(verdict.scan["finished"].replace("Z", "+00:00"))
    assert verdict.valid_until == (finished + timedelta(days=2)).isoformat().replace(
        "+00:00", "Z")
    with store.connect() as conn:
        admission = conn.execute(select(schema.admissions)).one()
    assert (admission.verdict, admission.user_id) == ("admitted", "gatekeeper")
    assert json.loads(admission.policy)["max_scan_age_s"] == 2 * 86400


def test_clean_scan_one_day_old_is_admitted(store, real_log) -> None:
    _record(store, _crafted(real_log, "d1", finished=NOW - timedelta(days=1)), "DEV-1")
    verdict = gate.verify(store, "DEV-1", now=NOW, actor=GATE)
    assert verdict.admitted, verdict.reasons
    assert verdict.valid_until == "2026-11-27T12:00:00Z"


def test_clean_scan_three_days_old_is_refused(store, real_log) -> None:
    _record(store, _crafted(real_log, "d3", finished=NOW - timedelta(days=3)), "DEV-3")
    verdict = gate.verify(store, "DEV-3", now=NOW, actor=GATE)
    assert not verdict.admitted
    assert verdict.reasons == ["last scan is 3 days old (limit 2 days)"]
    entry = _audit(store, "admission", "DEV-3")[-1]
    assert entry["what"]["new"]["verdict"] == "refused"
    assert entry["why"] == "last scan is 3 days old (limit 2 days)"


def test_outdated_patterns_are_refused(store, real_log) -> None:
    data = _crafted(real_log, "old-pat", finished=NOW - timedelta(hours=30),
                    pattern_date="2026-10-01")
    _record(store, data, "DEV-P")
    verdict = gate.verify(store, "DEV-P", now=NOW, actor=GATE)
    assert verdict.reasons == ["patterns dated 2026-10-01, older than 7 days at scan time"]
    # the age is judged at scan time: 7 days before the scan is fine, though 8 days before now
    fresh = _crafted(real_log, "ok-pat", finished=NOW - timedelta(hours=25),
                     pattern_date="2026-11-18")
    _record(store, fresh, "DEV-P")
    assert gate.verify(store, "DEV-P", now=NOW, actor=GATE).admitted


def test_dirty_crafted_scan_and_incomplete_scan_are_refused(store, real_log) -> None:
    eicar = {"path": "/media/stick/eicar.com", "sha256": "275a02" + "0" * 58, "score": 100,
             "level": "alert", "engine": "hash", "rule": "sha256:eicar", "matches": []}
    weak = {**eicar, "path": "/media/stick/odd.bin", "score": 45, "level": "notice"}
    _record(store, _crafted(real_log, "dirty", finished=NOW - timedelta(hours=2),
                            findings=[eicar, eicar | {"path": "/x"}, weak]), "DEV-D")
    verdict = gate.verify(store, "DEV-D", now=NOW, actor=GATE)
    assert verdict.reasons == ["2 findings at warning or above"]
    _record(store, _crafted(real_log, "notice", finished=NOW - timedelta(hours=1),
                            findings=[weak]), "DEV-N")
    assert gate.verify(store, "DEV-N", now=NOW, actor=GATE).admitted  # notice < warning
    _record(store, _crafted(real_log, "stopped", finished=NOW - timedelta(hours=1),
                            complete=False), "DEV-I")
    assert gate.verify(store, "DEV-I", now=NOW, actor=GATE).reasons == [
        "the last scan did not complete"]


def test_no_scan_is_refused_and_audited(store, real_log) -> None:
    verdict = gate.verify(store, "UNKNOWN-9", now=NOW, actor=GATE)
    assert not verdict.admitted and verdict.reasons[0].startswith("no scan recorded")
    assert _audit(store, "admission", "UNKNOWN-9")[0]["what"]["new"]["verdict"] == "refused"
    # a device with an exit scan only has no entry scan to admit it
    _record(store, _crafted(real_log, "exit-only", finished=NOW - timedelta(hours=1)),
            "DEV-X", direction="exit")
    assert gate.verify(store, "DEV-X", now=NOW, actor=GATE).reasons == ["no scan recorded"]


def test_entry_and_exit_scans_are_both_kept_and_last_entry_decides(store, real_log) -> None:
    _record(store, _crafted(real_log, "in", finished=NOW - timedelta(hours=30)), "DEV-E")
    _record(store, _crafted(real_log, "out", finished=NOW - timedelta(hours=2)), "DEV-E",
            direction="exit")
    with store.connect() as conn:
        directions = conn.execute(
            select(schema.device_scans.c.direction).order_by(schema.device_scans.c.id)
        ).scalars().all()
    assert directions == ["entry", "exit"]
    verdict = gate.verify(store, "DEV-E", now=NOW, actor=GATE)
    assert verdict.scan["scan_id"] == "crafted-in"  # the entry scan, not the later exit one
    assert verdict.admitted
    listed = gate.list_devices(store, "DEV-E")
    assert listed[0]["last_scan"]["direction"] == "exit"
    assert listed[0]["last_verdict"]["verdict"] == "admitted"


def test_every_verdict_is_in_the_audit_trail(store, real_log) -> None:
    _record(store, _crafted(real_log, "a1", finished=NOW - timedelta(days=1)), "DEV-A")
    first = gate.verify(store, "DEV-A", now=NOW, actor=GATE)
    second = gate.verify(store, "DEV-A", now=NOW + timedelta(days=2), actor=GATE)
    assert (first.verdict, second.verdict) == ("admitted", "refused")
    entries = _audit(store, "admission", "DEV-A")
    assert [e["what"]["new"]["verdict"] for e in entries] == ["admitted", "refused"]
    assert all(e["who"]["user_id"] == "gatekeeper" for e in entries)
    assert entries[0]["what"]["new"]["policy"]["max_scan_age_s"] == 2 * 86400
    with store.connect() as conn:
        verdicts = conn.execute(
            select(schema.admissions.c.verdict).order_by(schema.admissions.c.id)
        ).scalars().all()
    assert verdicts == ["admitted", "refused"]


def test_policy_change_is_audited_and_applied(store, real_log) -> None:
    with pytest.raises(UsageError, match="reason"):
        set_policy(store, GATE, "", site="basel", max_scan_age=parse_duration("1d"))
    old, new = set_policy(store, GATE, "QA decision 12", site="basel",
                          max_scan_age=parse_duration("36h"))
    assert (old.max_scan_age, new.max_scan_age) == (timedelta(days=2), timedelta(hours=36))
    assert load_policy(store, "basel").max_scan_age == timedelta(hours=36)
    assert load_policy(store, "zurich").max_scan_age == timedelta(days=2)  # per site
    entry = _audit(store, "config_change", "basel")[0]
    assert entry["why"] == "QA decision 12"
    assert (entry["what"]["old"]["max_scan_age_s"], entry["what"]["new"]["max_scan_age_s"]) == (
        2 * 86400, 36 * 3600)
    _record(store, _crafted(real_log, "p40", finished=NOW - timedelta(hours=40)), "DEV-Q")
    assert gate.verify(store, "DEV-Q", now=NOW, actor=GATE).reasons == [
        "last scan is 1.7 days old (limit 36 hours)"]


def test_pass_html_and_pdf(store, real_log, tmp_path: Path) -> None:
    _record(store, _crafted(real_log, "pass", finished=NOW - timedelta(hours=3)), "DEV-PASS")
    verdict = gate.verify(store, "DEV-PASS", now=NOW, actor=GATE)
    html = gate.write_pass(verdict, tmp_path / "pass.html").read_text()
    assert "ADMITTED" in html and "DEV-PASS" in html and "Vendor Ltd / B. Jones" in html
    assert verdict.valid_until in html and "Gate Keeper" in html
    pdf = gate.write_pass(verdict, tmp_path / "pass.pdf").read_bytes()
    assert pdf.startswith(b"%PDF")
    with pytest.raises(UsageError, match="html or .pdf"):
        gate.write_pass(verdict, tmp_path / "pass.txt")


def test_cli_verify_exit_codes(store, real_log, tmp_path: Path, capsys) -> None:
    import argparse

    from orchestrator.checkpoint.cli import add_parser, checkpoint_command

    def add_inventory_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("-i", "--inventory", action="append", required=True)
        p.add_argument("-e", "--extra-vars", action="append", default=[])

    parser = argparse.ArgumentParser()
    parser.add_argument("--store")
    add_parser(parser.add_subparsers(dest="command"), add_inventory_args, argparse.ArgumentParser)
    now = datetime.now(UTC)
    _record(store, _crafted(real_log, "cli-ok", finished=now - timedelta(hours=1),
                            pattern_date=now.date().isoformat()), "DEV-C")
    ok = parser.parse_args(["--store", store.url, "checkpoint", "verify", "DEV-C"])
    assert checkpoint_command(ok) == 0
    assert "ADMITTED: DEV-C" in capsys.readouterr().out
    bad = parser.parse_args(["--store", store.url, "checkpoint", "verify", "NOPE"])
    assert checkpoint_command(bad) == 1
    assert "REFUSED: NOPE" in capsys.readouterr().out
    scan = parser.parse_args(["checkpoint", "scan", "/x", "--device-id", "D", "--owner", "O",
                              "--reason", "R"])
    assert scan.inventory is None  # -i is optional for a checkpoint scan
