"""CEF and LEEF over RFC 5424 syslog to a real rsyslogd from Debian's package on loopback:
TCP and TLS with octet-counted framing, UDP, and a receiver outage in the middle of an export.
Assertions are on what rsyslog wrote: %rawmsg% (the message as received) and %msg% (its MSG
part, which proves rsyslog parsed the RFC 5424 header and the framing)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from orchestrator import cli
from orchestrator.siem import cef, leef
from orchestrator.siem.events import events_of, parse_kinds, read_entries
from orchestrator.siem.export import Destination, ExportResult, export
from orchestrator.siem.syslog import DeliveryError, rfc5424
from orchestrator.store.database import open_store
from tests.siem_servers.certs import make_pki
from tests.siem_servers.populate import ACTOR, NASTY_REASON, all_event_ids, populate
from tests.siem_servers.rsyslog import Rsyslog, free_port
from tests.store_logs import real_logs

EVENT_ID = re.compile(r'eventId="([^"]+)"')


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    return real_logs(tmp_path_factory.mktemp("siem-syslog-logs"))


def _expected_messages(store: Any, fmt: str, delimiter: str = "^") -> list[tuple[str, str]]:
    """(event id, MSG) for every event, rendered independently of the export run."""
    out = []
    with store.connect() as conn:
        for entry in read_entries(conn, 0, 10**9):
            for e in events_of(conn, entry, parse_kinds(None)):
                body = (
                    cef.format_event(e, store.controller)
                    if fmt == "cef"
                    else leef.format_event(e, store.controller, delimiter)
                )
                out.append((e.event_id, body))
    return out


def _strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


def test_cef_over_tcp_exact_lines(store, logs, tmp_path: Path) -> None:
    populate(store, *logs)
    expected = _expected_messages(store, "cef")
    with Rsyslog(tmp_path / "rs") as rs:
        result = export(
            store,
            Destination(type="cef", target=f"tcp://127.0.0.1:{rs.tcp_port}", batch_size=5),
            ACTOR,
        )
        raw = rs.wait_for_lines(len(expected))
        msgs = rs.wait_for_lines(len(expected), rs.msg_log)
    assert result.events == len(expected) and result.error is None
    assert [EVENT_ID.search(line).group(1) for line in raw] == [i for i, _ in expected]
    # rsyslog's parse of MSG is our CEF line, byte for byte (BOM only before non-ASCII ones).
    assert [_strip_bom(m) for m in msgs] == [body for _, body in expected]
    assert sum(m.startswith("\ufeff") for m in msgs) == sum(not b.isascii() for _, b in expected)
    first = raw[0]
    assert re.match(
        r"<(10[4-9]|110)>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S+ plantsweep "
        r"\d+ (audit|scan|finding|asset) \[plantsweep@32473 eventId=",
        first,
    )
    nasty = [m for m in msgs if "a|b" in m]
    assert len(nasty) == 1
    assert 'filePath=C:\\\\Temp\\\\a|b\\=c\\nd e^f"g]h ü€.exe ' in nasty[0]
    reason = [m for m in msgs if "audit.modify" in m][0]
    assert "reason=typo | key\\=value \\\\ fixed\\nsecond line: Grüße " in reason
    assert "\\n" in reason and NASTY_REASON not in reason


def test_leef_over_tls_exact_lines(store, logs, tmp_path: Path) -> None:
    populate(store, *logs)
    pki = make_pki(tmp_path / "pki")
    expected = _expected_messages(store, "leef")
    with Rsyslog(tmp_path / "rs", pki=pki) as rs:
        dest = Destination(
            type="leef", target=f"tls://127.0.0.1:{rs.tcp_port}", ca=str(pki.ca), batch_size=7
        )
        result = export(store, dest, ACTOR)
        msgs = rs.wait_for_lines(len(expected), rs.msg_log)
    assert result.events == len(expected)
    assert [_strip_bom(m) for m in msgs] == [body for _, body in expected]
    nasty = [m for m in msgs if "a|b" in m][0]
    assert '^filePath=C:\\\\Temp\\\\a|b=c\\nd\\te\\x5Ef"g]h ü€.exe^' in nasty
    reason = [m for m in msgs if "|audit.modify|" in m][0]
    assert "^reason=typo | key=value \\\\ fixed\\nsecond line: Grüße^" in reason
    assert "^usrName=alice^userFullName=Alice Ängström^" in reason


@pytest.mark.parametrize("fmt", ["cef", "leef"])
@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_both_formats_over_tcp_and_tls(store, logs, tmp_path: Path, fmt: str, transport: str):
    populate(store, *logs)
    pki = make_pki(tmp_path / "pki") if transport == "tls" else None
    expected = _expected_messages(store, fmt)
    with Rsyslog(tmp_path / "rs", pki=pki) as rs:
        dest = Destination(
            type=fmt,
            target=f"{transport}://127.0.0.1:{rs.tcp_port}",
            ca=str(pki.ca) if pki else None,
            batch_size=4,
        )
        result = export(store, dest, ACTOR)
        msgs = rs.wait_for_lines(len(expected), rs.msg_log)
    assert result.events == len(expected) and result.error is None
    assert [_strip_bom(m) for m in msgs] == [body for _, body in expected]
    assert all(m.startswith(("CEF:0|plantsweep|", "LEEF:2.0|plantsweep|")) for m in
               map(_strip_bom, msgs))  # fmt: skip


def test_tls_refuses_an_untrusted_receiver(store, logs, tmp_path: Path) -> None:
    populate(store, *logs)
    pki, other = make_pki(tmp_path / "pki"), make_pki(tmp_path / "other", "another CA")
    with Rsyslog(tmp_path / "rs", pki=pki) as rs:
        dest = Destination(type="cef", target=f"tls://127.0.0.1:{rs.tcp_port}", ca=str(other.ca))
        with pytest.raises(DeliveryError, match="TLS certificate not trusted"):
            export(store, dest, ACTOR)
        assert rs.lines() == []
    with store.connect() as conn:
        from orchestrator.siem.cursor import position

        assert position(conn, dest.cursor_name) is None


def test_cef_over_udp(store, logs, tmp_path: Path) -> None:
    populate(store, *logs)
    expected = _expected_messages(store, "cef")
    with Rsyslog(tmp_path / "rs") as rs:
        export(
            store,
            Destination(type="cef", target=f"udp://127.0.0.1:{rs.udp_port}", batch_size=3),
            ACTOR,
        )
        msgs = rs.wait_for_lines(len(expected), rs.msg_log)
    # UDP keeps no order promise and no delivery promise; on loopback all arrive.
    assert sorted(_strip_bom(m) for m in msgs) == sorted(b for _, b in expected)


def test_outage_mid_export_loses_and_duplicates_nothing(store, logs, tmp_path: Path) -> None:
    """rsyslog stops after the second batch: the export fails with a clear message, the
    cursor stays after batch 2, and the next export (rsyslog back) delivers the rest."""
    populate(store, *logs)
    expected = all_event_ids(store)
    rs = Rsyslog(tmp_path / "rs").start()
    dest = Destination(type="cef", target=f"tcp://127.0.0.1:{rs.tcp_port}", batch_size=4)
    seen: list[int] = []

    def stop_after_two(result: ExportResult) -> None:
        seen.append(result.events)
        if result.batches == 2:
            rs.stop()

    try:
        with pytest.raises(DeliveryError, match="the receiver closed the connection"):
            export(store, dest, ACTOR, on_batch=stop_after_two)
        assert len(seen) == 2
        got_first = [EVENT_ID.search(x).group(1) for x in rs.lines()]
        assert got_first == expected[: seen[-1]]  # rsyslog wrote what it accepted
        rs.start()  # same port, same output files
        second = export(store, dest, ACTOR)
        total = len(all_event_ids(store, upto=second.last_seq))
        raw = rs.wait_for_lines(total)
    finally:
        rs.stop()
    ids = [EVENT_ID.search(x).group(1) for x in raw]
    counts = Counter(ids)
    assert set(expected) <= set(ids)  # nothing lost
    assert max(counts.values()) == 1  # the batch boundary is known: nothing twice
    # The second export also carries the audit entry of the failed one.
    assert sum("|audit.export|" in x for x in raw) == 1


def test_cli_exit_code_and_one_line_when_the_receiver_is_down(
    store_url, logs, tmp_path: Path, capsys
) -> None:
    store = open_store(store_url)
    try:
        populate(store, *logs)
    finally:
        store.dispose()
    port = free_port()
    code = cli.main(["export", "leef", "--to", f"tcp://127.0.0.1:{port}", "--store", store_url])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"ERROR: tcp://127.0.0.1:{port}: cannot connect: Connection refused"]


def test_octet_count_is_bytes_with_non_ascii() -> None:
    from orchestrator.siem.events import Event
    from orchestrator.siem.syslog import frame

    event = Event("audit", "audit:1", 1, "2026-11-25T16:30:00.000Z", 1, {"action": "x"})
    message = rfc5424(event, "CEF:0|ü", hostname="h", procid="1")
    count, _, rest = frame(message).partition(b" ")
    assert int(count) == len(rest) == len(message) and int(count) > len(message.decode())
