"""Inspection records: the view, remarks, e-signatures bound to the record hash (21 CFR Part 11
§11.50, §11.70, §11.200), verification, and the printed record (HTML, PDF checked with
pdftotext), on SQLite and PostgreSQL (the `store` fixture runs each test on both)."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update

from orchestrator.audit.identity import Actor, os_actor
from orchestrator.errors import UsageError
from orchestrator.inspection import records, render
from orchestrator.inspection.cli import add_parsers, command
from orchestrator.inspection.records import SignatureRefused
from orchestrator.store import schema
from orchestrator.store.ingest import ingest_log
from orchestrator.users import accounts, sessions
from orchestrator.users.accounts import AuthError, PermissionDenied

REVIEW_PW = "review-password-2"
APPROVE_PW = "approve-password-4"
OPER_PW = "operator-password-3"
EICAR = "/home/operator/Downloads/eicar.com"
EICAR_SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


@pytest.fixture(autouse=True)
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("PLANTSWEEP_HOME", str(home))
    return home


def scan_log(host: str = "ews-01", *, findings: bool = True, scan_id: str | None = None) -> bytes:
    """A scan log as the scanner writes it (cut down to what the store reads)."""
    found = [{
        "path": EICAR, "size": 68, "sha256": EICAR_SHA256,
        "engine": "yara", "rule": "EICAR_Test_File", "score": 80, "level": "alert",
        "description": "EICAR anti-virus test file", "action": "logged",
    }] if findings else []
    log = {
        "schema_version": "1.0",
        "scan_id": scan_id or f"20261125T210227Z-b0ee4d/{host}",
        "run_id": "20261125T210227Z-b0ee4d",
        "host": host, "scan_type": "quick", "action": "log-only", "complete": True,
        "started": "2026-11-25T21:02:28.551Z", "finished": "2026-11-25T21:02:32.293Z",
        "patterns": {"name": "demo", "version": "1", "date": "2026-11-20T10:00:00Z"},
        "asset": {
            "hostname": host, "fqdn": f"{host}.plant.example",
            "os": {"name": "Debian GNU/Linux", "version": "12",
                   "pretty_name": "Debian GNU/Linux 12 (bookworm)", "kernel": "6.1.0"},
            "architecture": "x86_64",
            "interfaces": [{"name": "eth0", "addresses": ["10.204.0.13/24"]},
                           {"name": "lo", "addresses": ["127.0.0.1/8", "::1/128"]}],
        },
        "stats": {"files_scanned": 1077, "errors": 0},
        "findings": found, "errors": [],
        "inventory": {"site": "basel", "area": "fill-finish", "line": "packaging-1"},
    }
    return json.dumps(log, indent=2).encode()


def add_users(store: Any) -> None:
    with store.begin() as conn:
        accounts.create_user(conn, os_actor(), "admin", "Ada Admin", "administrator",
                             "admin-password-1")
        admin = Actor("admin", "Ada Admin", "password")
        accounts.create_user(conn, admin, "rita", "Rita Reviewer", "reviewer", REVIEW_PW)
        accounts.create_user(conn, admin, "quinn", "Quinn Quality", "reviewer", APPROVE_PW)
        accounts.create_user(conn, admin, "otto", "Otto Operator", "operator", OPER_PW)


def record_id(store: Any, data: bytes | None = None) -> int:
    stored = ingest_log(store, data or scan_log(), os_actor(), source="run")
    with store.connect() as conn:
        return int(conn.execute(
            select(schema.inspection_records.c.id)
            .where(schema.inspection_records.c.scan_log_id == stored.scan_log_id)
        ).scalar_one())


def view(store: Any, rid: int) -> dict[str, Any]:
    with store.connect() as conn:
        return records.record_view(conn, rid)


def audit(store: Any, action: str) -> list[dict[str, Any]]:
    with store.connect() as conn:
        rows = conn.execute(
            select(schema.audit_entries.c.entry).where(schema.audit_entries.c.action == action)
            .order_by(schema.audit_entries.c.seq)
        ).scalars().all()
    return [json.loads(r) for r in rows]


def run_cli(store: Any, argv: list[str], monkeypatch: pytest.MonkeyPatch, stdin: str = "") -> int:
    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers(dest="command"), argparse.ArgumentParser)
    args = parser.parse_args(["inspect", *argv])
    args.store = store.url
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return command(args)


def test_record_view_assembles_the_record(store: Any) -> None:
    rid = record_id(store)
    v = view(store, rid)
    assert v["host"] == {"name": "ews-01", "site": "basel", "area": "fill-finish",
                         "line": "packaging-1", "cell": "", "criticality": ""}
    assert v["scan"]["type"] == "quick" and v["scan"]["complete"] is True
    assert v["scan"]["files"] == 1077 and len(v["scan"]["log_sha256"]) == 64
    assert v["bundle"] == {"name": "demo", "version": "1", "date": "2026-11-20T10:00:00Z"}
    assert [(f["path"], f["score"], f["level"], f["rule"], f["action"]) for f in v["findings"]] \
        == [(EICAR, 80, "alert", "EICAR_Test_File", "logged")]
    assert v["asset"]["os"] == "Debian GNU/Linux 12 (bookworm)"
    assert v["asset"]["addresses"] == ["10.204.0.13/24 (eth0)"]  # loopback left out
    assert v["status"] == "open" and v["remarks"] == "" and v["signatures"] == []
    assert v["record_hash"] == records.record_hash(v)
    # The hash covers the content only: signatures and status do not change it.
    assert records.record_hash({**v, "status": "approved", "signatures": [{"x": 1}]}) \
        == v["record_hash"]
    assert records.record_hash({**v, "remarks": "x"}) != v["record_hash"]
    with store.connect() as conn:
        listed = records.list_records(conn, host="ews-01", status="open")
        assert [r["id"] for r in listed] == [rid]
        assert records.list_records(conn, status="reviewed") == []
        with pytest.raises(UsageError, match="no inspection record"):
            records.record_view(conn, rid + 100)


def test_sign_needs_the_right_password_and_failure_is_audited(store: Any) -> None:
    add_users(store)
    rid = record_id(store)
    with pytest.raises(AuthError, match="wrong username or password"):
        records.sign_record(store, rid, "rita", "not-rita-password", "reviewed")
    failed = audit(store, "login_failed")[-1]
    assert failed["what"]["object_id"] == "rita"
    assert failed["what"]["new"]["purpose"] == "sign"
    v = view(store, rid)
    assert v["signatures"] == [] and v["status"] == "open"
    assert audit(store, "sign") == []


def test_operator_cannot_sign(store: Any) -> None:
    add_users(store)
    rid = record_id(store)
    with pytest.raises(PermissionDenied, match="reviewer or administrator"):
        records.sign_record(store, rid, "otto", OPER_PW, "reviewed")
    assert view(store, rid)["signatures"] == []


def test_signature_manifestation_and_audit_entry(store: Any) -> None:
    add_users(store)
    rid = record_id(store)
    sig = records.sign_record(store, rid, "rita", REVIEW_PW, "reviewed")
    v = view(store, rid)
    assert v["status"] == "reviewed"
    [shown] = v["signatures"]
    assert shown["printed_name"] == "Rita Reviewer" and shown["meaning"] == "reviewed"
    assert shown["signed_at"].endswith("Z") and shown["valid"] is True
    assert shown["record_hash"] == v["record_hash"] == sig["record_hash"]
    [entry] = audit(store, "sign")
    assert entry["seq"] == shown["audit_seq"]
    assert entry["who"] == {"user_id": "rita", "full_name": "Rita Reviewer", "auth": "password"}
    assert entry["what"]["new"]["meaning"] == "reviewed"
    assert entry["what"]["new"]["record_hash"] == v["record_hash"]
    assert entry["what"]["new"]["printed_name"] == "Rita Reviewer"
    with pytest.raises(SignatureRefused, match="already"):
        records.sign_record(store, rid, "rita", REVIEW_PW, "reviewed")


def test_approval_only_after_review_by_another_person(store: Any) -> None:
    add_users(store)
    rid = record_id(store)
    with pytest.raises(SignatureRefused, match="only after it is reviewed"):
        records.sign_record(store, rid, "quinn", APPROVE_PW, "approved")
    records.sign_record(store, rid, "rita", REVIEW_PW, "reviewed")
    with pytest.raises(SignatureRefused, match="another person"):
        records.sign_record(store, rid, "rita", REVIEW_PW, "approved")
    records.sign_record(store, rid, "quinn", APPROVE_PW, "approved")
    v = view(store, rid)
    assert v["status"] == "approved"
    assert [(s["username"], s["meaning"], s["valid"]) for s in v["signatures"]] == [
        ("rita", "reviewed", True), ("quinn", "approved", True)]
    with store.connect() as conn:
        assert [r["id"] for r in records.list_records(conn, status="approved")] == [rid]


def test_remark_after_signing_needs_reason_and_shows_signature_invalid(store: Any) -> None:
    add_users(store)
    rid = record_id(store)
    otto = Actor("otto", "Otto Operator", "session")
    with store.begin() as conn:
        records.set_remarks(conn, otto, rid, "EICAR test file planted by the demo.")
    assert audit(store, "remark")[-1]["what"]["new"]["remarks"] \
        == "EICAR test file planted by the demo."
    records.sign_record(store, rid, "rita", REVIEW_PW, "reviewed")
    with store.connect() as conn:
        assert records.verify_record(conn, rid)["ok"] is True
    with pytest.raises(UsageError, match="reason"), store.begin() as conn:
        records.set_remarks(conn, otto, rid, "Actually it was real malware.")
    assert view(store, rid)["signatures"][0]["valid"] is True  # the refused change changed nothing
    with store.begin() as conn:
        records.set_remarks(conn, otto, rid, "Actually it was real malware.",
                            reason="second look at the file")
    with store.connect() as conn:
        result = records.verify_record(conn, rid)
    assert result["ok"] is False and result["scan_log_intact"] is True
    [sig] = result["signatures"]
    assert sig["valid"] is False and sig["printed_name"] == "Rita Reviewer"  # kept, not removed
    v = view(store, rid)
    assert v["status"] == "open"
    change = audit(store, "modify")[-1]
    assert change["what"]["old"]["remarks"] == "EICAR test file planted by the demo."
    assert change["what"]["new"]["signatures_invalidated"] == [sig["id"]]
    assert change["why"] == "second look at the file"
    # Signing the changed record again gives a valid signature next to the invalid one.
    records.sign_record(store, rid, "rita", REVIEW_PW, "reviewed")
    assert [s["valid"] for s in view(store, rid)["signatures"]] == [False, True]


def test_findings_edited_in_the_database_invalidate_the_signature(store: Any) -> None:
    add_users(store)
    rid = record_id(store)
    records.sign_record(store, rid, "rita", REVIEW_PW, "reviewed")
    with store.begin() as conn:
        conn.execute(update(schema.findings).values(path="/home/operator/Downloads/harmless.txt"))
    with store.connect() as conn:
        result = records.verify_record(conn, rid)
    assert result["ok"] is False
    assert [s["valid"] for s in result["signatures"]] == [False]


def test_verify_cli_detects_a_damaged_scan_log(
        store: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    rid = record_id(store)
    assert run_cli(store, ["verify", str(rid)], monkeypatch) == 0
    assert "PASS" in capsys.readouterr().out
    import zlib
    with store.begin() as conn:
        conn.execute(update(schema.scan_logs).values(body=zlib.compress(b'{"forged": true}')))
    assert run_cli(store, ["verify", str(rid)], monkeypatch) == 1
    out = capsys.readouterr().out
    assert "DAMAGED" in out and "FAIL" in out
    assert [e["what"]["new"]["ok"] for e in audit(store, "verify")] == [True, False]


def test_sign_cli_asks_the_password_even_when_logged_in(
        store: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    add_users(store)
    rid = record_id(store)
    sessions.login(store, "rita", REVIEW_PW)
    with pytest.raises(AuthError):  # the session alone does not sign
        run_cli(store, ["sign", str(rid), "--meaning", "reviewed", "--user", "rita",
                        "--password-stdin"], monkeypatch, "\n")
    with pytest.raises(UsageError, match="--user"):
        run_cli(store, ["sign", str(rid), "--meaning", "reviewed", "--password-stdin"],
                monkeypatch, REVIEW_PW + "\n")
    assert run_cli(store, ["sign", str(rid), "--meaning", "reviewed", "--user", "rita",
                           "--password-stdin"], monkeypatch, REVIEW_PW + "\n") == 0
    assert "Rita Reviewer" in capsys.readouterr().out
    assert view(store, rid)["status"] == "reviewed"


def test_remark_cli_permission_and_show(
        store: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    add_users(store)
    rid = record_id(store)
    with store.begin() as conn:
        store.set_meta(conn, accounts.REQUIRE_LOGIN_KEY, "on")
    with pytest.raises(UsageError, match="log in first"):
        run_cli(store, ["remark", str(rid), "--text", "checked"], monkeypatch)
    sessions.login(store, "otto", OPER_PW)
    assert run_cli(store, ["remark", str(rid), "--text", "checked by Otto"], monkeypatch) == 0
    assert audit(store, "remark")[-1]["who"]["user_id"] == "otto"
    capsys.readouterr()
    assert run_cli(store, ["show", str(rid)], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "checked by Otto" in out and EICAR in out and "basel" in out
    assert run_cli(store, ["list", "--json"], monkeypatch) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [rid]


def test_html_is_escaped_and_shows_invalid_signatures(store: Any) -> None:
    add_users(store)
    rid = record_id(store)
    records.sign_record(store, rid, "rita", REVIEW_PW, "reviewed")
    with store.begin() as conn:
        records.set_remarks(conn, os_actor(), rid, "<script>alert(1)</script>",
                            reason="test escaping")
    html = render.render_html(view(store, rid), generated_at="2026-11-26T10:00:00Z")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "INVALID: record changed after signing" in html
    assert "Inspection record" in html and "Page " in html


def test_clean_record_says_no_findings(store: Any) -> None:
    rid = record_id(store, scan_log("hmi-line1", findings=False))
    html = render.render_html(view(store, rid))
    assert "No findings." in html and "Not signed." in html and "hmi-line1" in html


def test_pdf_render_holds_the_record_and_is_audited(
        store: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # not /tmp: a stray timeit.py there breaks fontTools
    add_users(store)
    rid = record_id(store)
    records.sign_record(store, rid, "rita", REVIEW_PW, "reviewed")
    out = tmp_path / "record.pdf"
    assert run_cli(store, ["render", str(rid), "--format", "pdf", "--out", str(out)],
                   monkeypatch) == 0
    assert out.read_bytes().startswith(b"%PDF-")
    text_ = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True,
                           text=True, check=True).stdout
    for expected in ("Inspection record", "ews-01", "basel", "fill-finish", "packaging-1",
                     EICAR, "EICAR_Test_File", "Rita Reviewer", "reviewed", "valid",
                     "Debian GNU/Linux 12", "Page 1 of", view(store, rid)["record_hash"]):
        assert expected in text_, expected
    assert "INVALID" not in text_
    [export] = audit(store, "export")
    assert export["what"]["new"]["format"] == "pdf"
    import hashlib
    assert export["what"]["new"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()


def test_append_only_trail_is_untouched_by_record_changes(store: Any) -> None:
    """Sanity: signing and remarks only add audit entries (seq gapless from 1)."""
    add_users(store)
    rid = record_id(store)
    records.sign_record(store, rid, "rita", REVIEW_PW, "reviewed")
    with store.connect() as conn:
        seqs = conn.execute(text("SELECT seq FROM audit_entries ORDER BY seq")).scalars().all()
    assert seqs == list(range(1, len(seqs) + 1))
