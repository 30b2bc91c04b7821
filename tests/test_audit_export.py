"""Reading the audit trail back: filters, `audit show`, CSV/JSON/PDF exports (on SQLite and
PostgreSQL)."""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from orchestrator.audit import checkpoint, trail
from orchestrator.audit.cli import audit_command
from orchestrator.audit.export import CSV_COLUMNS, entries, export, make_filter
from orchestrator.audit.identity import Actor, Where
from orchestrator.audit.verify import verify
from orchestrator.errors import UsageError
from orchestrator.store import schema

ALICE = Actor(user_id="alice", full_name="Alice Example", auth="password")
BOB = Actor(user_id="bob", full_name="Bob Reviewer", auth="session")
CTL = Where("ctl-1", "basel")


@pytest.fixture(autouse=True)
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("PLANTSWEEP_HOME", str(home))
    monkeypatch.delenv("PLANTSWEEP_AUDIT_KEY", raising=False)
    return home


@pytest.fixture
def filled(store: Any) -> Any:
    """12 entries: 1-5 scan_start by alice, 6 a checkpoint, 7 quarantine by bob,
    8 a modify with a reason, 9-12 logins by bob."""
    with store.begin() as conn:
        for i in range(5):
            trail.append(conn, ALICE, "scan_start", "run", f"run{i}", new={"hosts": i}, where=CTL)
    checkpoint.make_checkpoint(store, actor=ALICE, where=CTL)
    with store.begin() as conn:
        trail.append(conn, BOB, "quarantine", "file", "vault-77", new={"path": "/tmp/evil"},
                     where=CTL)
        trail.append(conn, ALICE, "modify", "inspection_record", "41", old={"remarks": ""},
                     new={"remarks": "checked, älles gut"}, reason="typo in the remark",
                     where=CTL)
        for _ in range(4):
            trail.append(conn, BOB, "login", "user", "bob", where=CTL)
    return store


def seqs(store: Any, **kw: Any) -> list[int]:
    return [r.seq for r in entries(store, make_filter(**kw), newest=True)]


def test_filters(filled: Any) -> None:
    assert seqs(filled) == list(range(1, 13))
    assert seqs(filled, user="bob") == [7, 9, 10, 11, 12]
    assert seqs(filled, action="scan_start") == [1, 2, 3, 4, 5]
    assert seqs(filled, obj="file:vault-77") == [7]
    assert seqs(filled, obj="run") == [1, 2, 3, 4, 5]
    assert seqs(filled, obj="run:run3") == [4]
    assert seqs(filled, from_seq=10) == [10, 11, 12]
    assert seqs(filled, limit=3) == [10, 11, 12]  # the newest, shown newest last
    assert seqs(filled, from_seq=2, limit=2) == [2, 3]  # from a seq: the first ones
    today = datetime.now(UTC).date()
    assert seqs(filled, since=str(today), until=str(today)) == list(range(1, 13))
    assert seqs(filled, since=str(today + timedelta(days=1))) == []
    assert seqs(filled, until=str(today - timedelta(days=1))) == []
    assert seqs(filled, user="bob", action="login", limit=2) == [11, 12]
    with pytest.raises(UsageError, match="not a date"):
        make_filter(since="last tuesday")


def test_csv_export(filled: Any, tmp_path: Path) -> None:
    out = tmp_path / "trail.csv"
    result = export(filled, "csv", out, actor=BOB, where=CTL)
    assert result.entries == 12 and result.report.ok
    assert result.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    with out.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == CSV_COLUMNS
        got = list(reader)
    assert [int(r["seq"]) for r in got] == list(range(1, 13))
    modify = got[7]
    assert (modify["action"], modify["object_type"], modify["object_id"]) == (
        "modify", "inspection_record", "41")
    assert modify["reason"] == "typo in the remark"
    assert json.loads(modify["old"]) == {"remarks": ""}
    assert json.loads(modify["new"]) == {"remarks": "checked, älles gut"}
    assert (modify["full_name"], modify["auth"], modify["site"]) == (
        "Alice Example", "password", "basel")
    assert modify["ts"].endswith("+00:00") and modify["tz_offset"][0] in "+-"
    with filled.connect() as conn:
        stored = conn.execute(select(schema.audit_entries).where(
            schema.audit_entries.c.seq == 8)).one()
    assert modify["leaf_hash"] == stored.leaf_hash
    assert got[6]["user_id"] == "bob" and got[6]["old"] == ""
    # The export is itself audited, with the file's hash.
    with filled.connect() as conn:
        last = conn.execute(select(schema.audit_entries).order_by(
            schema.audit_entries.c.seq.desc()).limit(1)).one()
    assert (last.seq, last.action, last.user_id) == (13, "export", "bob")
    new = json.loads(last.entry)["what"]["new"]
    assert (new["format"], new["entries"], new["sha256"]) == ("csv", 12, result.sha256)


def test_csv_export_with_filters(filled: Any, tmp_path: Path) -> None:
    out = tmp_path / "bob.csv"
    result = export(filled, "csv", out, make_filter(user="bob", action="login"))
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert result.entries == 4 and [r["seq"] for r in rows] == ["9", "10", "11", "12"]


def test_json_export(filled: Any, tmp_path: Path) -> None:
    out = tmp_path / "trail.json"
    result = export(filled, "json", out, actor=ALICE)
    data = json.loads(out.read_text(encoding="utf-8"))
    header = data["header"]
    assert header["verify"]["result"] == "PASS" and header["verify"]["entries"] == 12
    assert header["origin"] == filled.meta("install_id")
    assert header["generated_by"]["user_id"] == "alice"
    with filled.connect() as conn:
        note = conn.execute(select(schema.audit_checkpoints.c.note)).scalar_one()
    assert header["last_checkpoint"] == note
    assert len(data["entries"]) == 12 == result.entries
    for item in data["entries"]:  # anyone can recompute the leaf hashes from the export
        assert trail.leaf_hash(trail.canonical(item["entry"])) == item["leaf_hash"]
    assert data["entries"][6]["entry"]["what"]["object_id"] == "vault-77"
    # A JSON export serves as --checkpoint FILE for a later verify.
    report = verify(filled, out, record=False)
    assert report.ok and report.external_checkpoints == 1


def test_pdf_export(filled: Any, tmp_path: Path) -> None:
    out = tmp_path / "trail.pdf"
    result = export(filled, "pdf", out, actor=ALICE)
    assert out.read_bytes().startswith(b"%PDF") and result.entries == 12
    assert result.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    textual = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True,
                             text=True, check=True, cwd=tmp_path).stdout
    assert "PASS" in textual and "vault-77" in textual
    assert filled.meta("install_id") in textual
    assert "typo in the" in textual  # the reason (wrapped in its cell)
    assert "Alice Example" in textual
    assert "page 1 / " in textual
    assert "\u2014 " + filled.meta("install_id") in textual  # the signed checkpoint note


def test_pdf_shows_a_failed_verification(filled: Any, tmp_path: Path) -> None:
    with filled.begin() as conn:  # an administrator edits a column behind the trail's back
        if filled.dialect == "sqlite":
            conn.execute(text("DROP TRIGGER audit_entries_no_update"))
        else:
            conn.execute(text("DROP TRIGGER audit_entries_append_only ON audit_entries"))
        conn.execute(schema.audit_entries.update().where(schema.audit_entries.c.seq == 3)
                     .values(user_id="mallory"))
    out = tmp_path / "bad.pdf"
    result = export(filled, "pdf", out, make_filter(action="quarantine"))
    assert not result.report.ok and result.entries == 1
    textual = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True,
                             check=True, cwd=tmp_path).stdout
    assert "FAIL" in textual and "PASS" not in textual
    assert "entry 3: column user_id is 'mallory'" in textual
    assert "vault-77" in textual and "run2" not in textual


def _ns(store: Any, command: str, **kw: Any) -> argparse.Namespace:
    base = {"store": store.url, "audit_command": command, "from_seq": None, "user": None,
            "action": None, "object": None, "since": None, "until": None, "limit": 100,
            "json": False}
    base.update(kw)
    return argparse.Namespace(**base)


def test_show_command(filled: Any, capsys: Any) -> None:
    assert audit_command(_ns(filled, "show", user="bob", limit=2)) == 0
    out = capsys.readouterr().out
    assert "login" in out and "quarantine" not in out
    assert out.index(" 11 ") < out.index(" 12 ")  # newest last
    assert audit_command(_ns(filled, "show", object="file", json=True)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["what"]["object_id"] for line in lines] == ["vault-77"]


def test_export_command_prints_the_hash(filled: Any, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "x.json"
    assert audit_command(_ns(filled, "export", format="json", out=str(out), limit=None)) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"{hashlib.sha256(out.read_bytes()).hexdigest()}  {out}"
