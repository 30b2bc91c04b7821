"""SIEM export formats and the export engine without a network: CEF, LEEF 2.0 and RFC 5424
text (exact lines and every escaping rule), events derived from a real store (SQLite and
PostgreSQL), JSON lines export with its persistent cursor, forward.yml and the forwarding
after a stored run. The receivers are in test_siem_syslog.py and test_siem_hec.py."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import select

from orchestrator import __version__, cli
from orchestrator.errors import UsageError
from orchestrator.siem import cef, leef
from orchestrator.siem.events import Event, events_of, parse_kinds, read_entries
from orchestrator.siem.export import Destination, export
from orchestrator.siem.forward import load_destinations
from orchestrator.siem.syslog import frame, rfc5424
from orchestrator.store import schema
from orchestrator.store.after_run import store_run
from orchestrator.store.database import open_store
from tests.siem_servers.populate import (
    ACTOR,
    NASTY_PATH,
    NASTY_REASON,
    all_event_ids,
    load_json_lines,
    populate,
)
from tests.store_logs import real_logs, variant

V = __version__


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    return real_logs(tmp_path_factory.mktemp("siem-logs"))


def _finding(path: str = NASTY_PATH) -> Event:
    return Event(
        kind="finding",
        event_id="finding:7",
        seq=42,
        time="2026-11-25T16:30:00.123Z",
        severity=9,
        data={
            "host": "ews|03",
            "site": "basel",
            "area": "fill",
            "line": "pk-1",
            "scan_id": "s-1",
            "path": path,
            "sha256": "ab" * 32,
            "score": 100,
            "level": "alert",
            "engine": "yara",
            "rule": "EICAR=test",
            "action": "log-only",
            "scan_type": "folders",
        },
    )


def test_cef_line_escapes_header_and_extension_exactly() -> None:
    line = cef.format_event(_finding(), "ctl-1")
    head, _, ext = line.partition("|rt=")
    # Header: `|` in the host name is escaped, nothing else; `=` is not escaped there.
    assert head == f"CEF:0|plantsweep|plantsweep|{V}|finding|alert finding EICAR=test on ews\\|03|9"
    assert ext.startswith("1795624200123 dvchost=ctl-1 externalId=finding:7 cat=finding ")
    # Extension: `\` -> `\\`, `=` -> `\=`, newline -> `\n`; `|`, tab and non-ASCII stay.
    assert 'filePath=C:\\\\Temp\\\\a|b\\=c\\nd e^f"g]h ü€.exe ' in line
    assert "cs4Label=rule cs4=EICAR\\=test " in line
    assert "shost=ews|03 " in line and "\n" not in line
    assert line.endswith("cn2Label=score cn2=100")


def test_cef_header_backslash_and_empty_values() -> None:
    event = _finding()
    event.data.update(host="a\\b", rule=None, sha256="")
    line = cef.format_event(event)
    assert "on a\\\\b|9|" in line  # header backslash doubled
    assert "cs4=" not in line and "fileHash" not in line  # None and "" are left out


def test_leef_line_and_delimiter_rules() -> None:
    line = leef.format_event(_finding(), "ctl-1", "^")
    assert line.startswith(
        f"LEEF:2.0|plantsweep|plantsweep|{V}|finding|^|devTime=1795624200123^"
        "sev=9^cat=finding^eventId=finding:7^auditSeq=42^controller=ctl-1^"
    )
    # The delimiter in a value becomes \x5E, newline \n, tab \t, backslash \\; `=` and `|` stay.
    assert '^filePath=C:\\\\Temp\\\\a|b=c\\nd\\te\\x5Ef"g]h ü€.exe^' in line
    attrs = line.split("|", 6)[6].split("^")
    assert all("=" in a for a in attrs)  # no value split an attribute
    assert len(attrs) == len(
        [a for a in leef.attributes(_finding(), "ctl-1") if a[1] not in (None, "")]
    )
    # Hex and tab delimiters, as the header names them.
    tabbed = leef.format_event(_finding(), "ctl-1", leef.parse_delimiter("x09"))
    assert tabbed.split("|")[5] == "x09" and "\tsev=9\t" in tabbed
    assert leef.parse_delimiter("0x5E") == "^" and leef.parse_delimiter("tab") == "\t"
    with pytest.raises(UsageError, match="not a LEEF delimiter"):
        leef.parse_delimiter("=")


def test_rfc5424_header_sd_escaping_bom_and_octet_count() -> None:
    event = _finding()
    event.event_id = 'x"y]z\\'
    ascii_msg = rfc5424(event, "CEF:0|a", hostname="ctl 1", procid="77")
    assert ascii_msg == (
        b"<105>1 2026-11-25T16:30:00.123Z ctl_1 plantsweep 77 finding "
        b'[plantsweep@32473 eventId="x\\"y\\]z\\\\" kind="finding" '
        b'auditSeq="42"] CEF:0|a'
    )  # 13*8 + 1 (alert); no BOM for ASCII
    utf8 = rfc5424(event, "CEF:0|é", hostname="h", procid="1")
    assert utf8.endswith(b"] \xef\xbb\xbfCEF:0|\xc3\xa9")  # BOM before a UTF-8 MSG
    assert b"\xef\xbb\xbf" not in rfc5424(event, "CEF:0|é", hostname="h", bom="never")
    assert frame(utf8) == str(len(utf8)).encode() + b" " + utf8
    assert len(utf8) > len("CEF:0|é") + 60  # the count is bytes, not characters


def test_events_from_a_real_store(store, logs) -> None:
    populate(store, *logs)
    with store.connect() as conn:
        entries = read_entries(conn, 0, 1000)
        events = [e for entry in entries for e in events_of(conn, entry, parse_kinds(None))]
    by_kind: dict[str, list[Event]] = {}
    for e in events:
        by_kind.setdefault(e.kind, []).append(e)
    assert len(by_kind["scan"]) == 7 and len(by_kind["finding"]) == 6
    # Asset: new for each of the 6 hosts, then one change (the rescan renamed the host).
    changes = [(e.data["host"], e.data["change"]) for e in by_kind["asset"]]
    assert changes.count(("hmi-00", "changed")) == 1 and len(changes) == 7
    assert [e for e in by_kind["asset"] if e.data["change"] == "changed"][0].data[
        "changed"
    ] == "hostname"
    assert len(by_kind["checkpoint"]) == 1 and "\n\u2014 " in by_kind["checkpoint"][0].data["note"]
    assert len({e.event_id for e in events}) == len(events)  # ids are unique
    nasty = [e for e in by_kind["finding"] if e.data["path"] == NASTY_PATH]
    assert len(nasty) == 1 and nasty[0].severity == 9 and nasty[0].syslog_severity == 1
    modify = [e for e in by_kind["audit"] if e.data["action"] == "modify"][0]
    assert modify.data["reason"] == NASTY_REASON and modify.data["user"] == "alice"
    assert [e.seq for e in events] == sorted(e.seq for e in events)  # trail order


def test_jsonl_export_moves_the_cursor_and_resumes(store, logs, tmp_path: Path) -> None:
    populate(store, *logs)
    out = tmp_path / "events.jsonl"
    dest = Destination(type="jsonl", target=str(out), batch_size=4)
    expected = all_event_ids(store)
    first = export(store, dest, ACTOR)
    got = load_json_lines(out)
    assert [e["event_id"] for e in got] == expected
    # Batches end on audit-entry boundaries: at least 4 events each, but the last.
    assert first.events == len(expected) and 1 < first.batches <= -(-len(expected) // 4)
    nasty = [e for e in got if e.get("path") == NASTY_PATH]
    assert len(nasty) == 1 and nasty[0]["kind"] == "finding"
    # The export itself is audited (destination, count, range), and the next export sends
    # only what is new: that audit entry.
    with store.connect() as conn:
        row = conn.execute(
            select(schema.audit_entries.c.entry).where(schema.audit_entries.c.action == "export")
        ).scalar_one()
        cursor_row = conn.execute(select(schema.export_cursors)).one()
    entry = json.loads(row)["what"]
    assert entry["new"]["events"] == len(expected) and entry["new"]["complete"] is True
    assert entry["new"]["destination"] == f"jsonl {out.resolve()}"
    assert cursor_row.position == first.last_seq and cursor_row.name == dest.cursor_name
    second = export(store, dest, ACTOR)
    again = load_json_lines(out)[len(got) :]
    assert [e["kind"] for e in again] == ["audit"] and again[0]["action"] == "export"
    assert second.first_seq == first.last_seq + 1
    # --from-start sends everything again; --kinds limits what is sent.
    only = Destination(
        type="jsonl", target=str(tmp_path / "f.jsonl"), kinds=parse_kinds("finding,checkpoint")
    )
    export(store, only, ACTOR)
    kinds = {e["kind"] for e in load_json_lines(tmp_path / "f.jsonl")}
    assert kinds == {"finding", "checkpoint"}


def test_since_starts_at_a_time(store, logs, tmp_path: Path) -> None:
    populate(store, *logs)
    out = tmp_path / "since.jsonl"
    export(store, Destination(type="jsonl", target=str(out)), ACTOR, since="2999-01-01")
    assert not out.exists()  # nothing written after that time
    expected = all_event_ids(store)
    export(store, Destination(type="jsonl", target=str(out), name="x"), ACTOR, since="2000-01-01")
    assert [e["event_id"] for e in load_json_lines(out)] == expected
    assert load_json_lines(out)[0]["audit_seq"] == 1


def test_cli_export_jsonl_and_bad_kinds(store_url, logs, tmp_path: Path, capsys) -> None:
    store = open_store(store_url)
    try:
        populate(store, *logs)
        total = len(all_event_ids(store))
    finally:
        store.dispose()
    out = tmp_path / "cli.jsonl"
    code = cli.main(["export", "jsonl", "--out", str(out), "--store", store_url])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert printed.out.startswith(f"exported {total} event(s) in ")
    assert len(out.read_text().splitlines()) == total
    code = cli.main(
        ["export", "jsonl", "--out", str(out), "--kinds", "finding,bogus", "--store", store_url]
    )
    err = capsys.readouterr().err
    assert code == 4 and err.strip().splitlines()[-1] == (
        "ERROR: unknown event kind(s) bogus: use finding,scan,asset,audit,checkpoint"
    )


def test_forward_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANTSWEEP_HOME", str(tmp_path))
    assert load_destinations() == []
    cfg = tmp_path / "forward.yml"
    cfg.write_text("destinations:\n  - type: splunk\n    url: https://s:8088\n    token: abc\n")
    with pytest.raises(UsageError, match="a token does not belong in this file") as exc:
        load_destinations()
    assert "abc" not in str(exc.value)
    cfg.write_text("destinations:\n  - type: cef\n    to: ftp://x\n")
    with pytest.raises(UsageError, match=r"forward.yml: destination 1: --to 'ftp://x'"):
        load_destinations()
    cfg.write_text(
        "destinations:\n  - type: leef\n    to: tcp://127.0.0.1:9\n"
        "    kinds: [finding]\n    colour: red\n"
    )
    with pytest.raises(UsageError, match="unknown key.*colour"):
        load_destinations()


def test_forwarding_after_a_run_never_fails_it(
    store_url, logs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stored run forwards to forward.yml's destinations; a down receiver is one warning,
    its cursor does not move, and the working destination gets everything."""
    monkeypatch.setenv("PLANTSWEEP_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    out = tmp_path / "fwd.jsonl"
    (tmp_path / "home" / "forward.yml").write_text(
        "destinations:\n"
        f"  - {{name: archive, type: jsonl, out: '{out}'}}\n"
        "  - {name: soc, type: cef, to: 'tcp://127.0.0.1:9', retries: 0}\n"
    )
    run = tmp_path / "run-1"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"run_id": "run-1", "exit_code": 1}))
    (run / "hmi-01.json").write_bytes(variant(logs[0], scan_id="fwd-1", host="hmi-01"))
    console = Console(stderr=False, record=True, width=400)
    assert store_run(run, "scan", store_url, console) is True
    text = console.export_text()
    assert "WARNING: SIEM forwarding to soc failed (tcp://127.0.0.1:9: cannot connect" in text
    assert "siem: " in text and "forwarded to archive" in text
    kinds = [e["kind"] for e in load_json_lines(out)]
    assert kinds.count("finding") == 1 and kinds.count("scan") == 1 and "audit" in kinds
    store = open_store(store_url)
    try:
        with store.connect() as conn:
            names = conn.execute(select(schema.export_cursors.c.name)).scalars().all()
            actions = (
                conn.execute(
                    select(schema.audit_entries.c.entry).where(
                        schema.audit_entries.c.action == "export"
                    )
                )
                .scalars()
                .all()
            )
    finally:
        store.dispose()
    assert names == ["archive"]  # the down receiver's backlog starts at 0 next time
    failed = [json.loads(a)["what"]["new"] for a in actions if "soc" in a]
    assert failed and failed[0]["complete"] is False and failed[0]["events"] == 0
    assert os.stat(out).st_mode & 0o077 == 0  # the event file is private


def test_exporting_the_audit_trail_needs_audit_export(
    store_url, logs, tmp_path: Path, capsys
) -> None:
    """Once the store has users, the OS account acts as an operator: it may export findings
    and scans (`view`) but not the audit trail (`audit.export`, reviewer and up)."""
    from orchestrator.users.accounts import create_user

    store = open_store(store_url)
    try:
        populate(store, *logs)
        with store.begin() as conn:
            create_user(
                conn, ACTOR, "ada", "Ada Admin", "administrator", "a-long-enough-passphrase-42"
            )
    finally:
        store.dispose()
    out = tmp_path / "p.jsonl"
    code = cli.main(["export", "jsonl", "--out", str(out), "--store", store_url])
    err = capsys.readouterr().err
    assert code == 4 and "'audit.export' needs a logged-in reviewer or administrator" in err
    assert not out.exists()
    code = cli.main(
        ["export", "jsonl", "--out", str(out), "--kinds", "finding,scan", "--store", store_url]
    )
    assert code == 0 and {e["kind"] for e in load_json_lines(out)} == {"finding", "scan"}
    code = cli.main(["export", "cursors", "--store", store_url])
    listed = capsys.readouterr().out
    assert code == 0 and f"jsonl-{out.resolve()}" in listed.replace(" ", "-")
