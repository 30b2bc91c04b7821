"""Splunk HEC export against a real HTTP(S) server on loopback that implements HEC's endpoint,
status codes and ack protocol (tests/siem_servers/hec_server.py): TLS with CA verification,
batching, indexer acknowledgement, retries on 503, hard errors, an outage in the middle of an
export, and the token kept out of every message, log and the store."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from orchestrator import cli
from orchestrator.errors import UsageError
from orchestrator.siem.export import Destination, export
from orchestrator.siem.hec import load_token
from orchestrator.siem.syslog import DeliveryError
from orchestrator.store import schema
from orchestrator.store.database import open_store
from tests.siem_servers.certs import make_pki
from tests.siem_servers.hec_server import HecServer
from tests.siem_servers.populate import ACTOR, NASTY_PATH, all_event_ids, populate
from tests.store_logs import real_logs


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    return real_logs(tmp_path_factory.mktemp("siem-hec-logs"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_pki(tmp_path_factory.mktemp("hec-pki"))


TOKEN = "11111111-2222-3333-4444-" + secrets.token_hex(6)


def _splunk(hec: HecServer, pki: Any, **options: Any) -> Destination:
    options.setdefault("backoff", 0.01)
    return Destination(type="splunk", target=hec.url, ca=str(pki.ca), **options)


def _ids(hec: HecServer) -> list[str]:
    return [e["event"]["event_id"] for e in hec.events]


def _store_text(store: Any) -> str:
    with store.connect() as conn:
        rows = conn.execute(select(schema.audit_entries.c.entry)).scalars().all()
        cursors = conn.execute(select(schema.export_cursors)).all()
    return "\n".join(rows) + repr(cursors)


def test_events_over_tls_with_batching(store, logs, pki) -> None:
    populate(store, *logs)
    expected = all_event_ids(store)
    with HecServer(TOKEN, pki=pki) as hec:
        result = export(
            store, _splunk(hec, pki, batch_size=10, index="ot_security"), ACTOR, token=TOKEN
        )
    assert _ids(hec) == expected and result.events == len(expected)
    assert len(hec.batches) == result.batches and all(len(b) >= 10 for b in hec.batches[:-1])
    auth = {h["Authorization"] for _, h in hec.requests}
    assert auth == {f"Splunk {TOKEN}"}
    finding = [e for e in hec.events if e["event"].get("path") == NASTY_PATH][0]
    assert finding["sourcetype"] == "plantsweep:finding" and finding["index"] == "ot_security"
    assert finding["source"] == "plantsweep" and finding["host"] == "hmi-00"
    assert finding["event"]["level"] == "alert" and finding["event"]["severity"] == 9
    assert finding["fields"]["event_id"] == finding["event"]["event_id"]
    assert isinstance(finding["time"], float) and finding["time"] > 1.7e9
    assert TOKEN not in _store_text(store)


def test_indexer_acknowledgement(store, logs, pki) -> None:
    populate(store, *logs)
    with HecServer(TOKEN, pki=pki, ack=True) as hec:
        hec.ack_delay = 2  # two polls say false ("not yet indexed") before true
        result = export(store, _splunk(hec, pki, ack=True, batch_size=50), ACTOR, token=TOKEN)
    channels = {h.get("X-Splunk-Request-Channel") for _, h in hec.requests}
    assert len(channels) == 1 and None not in channels
    assert hec.ack_polls == 3 * result.batches and not hec.pending
    assert _ids(hec) == all_event_ids(store, upto=result.last_seq)


def test_ack_requested_but_disabled_is_a_clear_error(store, logs, pki) -> None:
    populate(store, *logs)
    with (
        HecServer(TOKEN, pki=pki, ack=False) as hec,
        pytest.raises(DeliveryError, match="indexer acknowledgement is not enabled for this token"),
    ):
        export(store, _splunk(hec, pki, ack=True), ACTOR, token=TOKEN)


def test_503_is_retried_with_backoff(store, logs, pki) -> None:
    populate(store, *logs)
    with HecServer(TOKEN, pki=pki) as hec:
        hec.busy_next = 2  # the third attempt finds the server free
        result = export(store, _splunk(hec, pki, retries=3, batch_size=1000), ACTOR, token=TOKEN)
    assert result.error is None and _ids(hec) == all_event_ids(store, upto=result.last_seq)
    assert hec.busy_replies == 2 and len(hec.requests) == 3 and result.batches == 1
    with HecServer(TOKEN, pki=pki) as hec:
        hec.busy = True  # busy for good: the export gives up after its retries
        with pytest.raises(
            DeliveryError,
            match=r"server busy: 503 Server is busy \(HEC code 9\);"
            r" gave up after 3 attempt",
        ):
            export(store, _splunk(hec, pki, retries=2), ACTOR, token=TOKEN, from_start=True)
    assert hec.busy_replies == 3 and hec.events == []


@pytest.mark.parametrize(
    "token,expected",
    [
        ("wrong-token", "HEC refused the token: 403 Invalid token (HEC code 4)"),
    ],
)
def test_hard_errors_are_one_line_and_move_nothing(
    store, logs, pki, token: str, expected: str
) -> None:
    populate(store, *logs)
    with HecServer(TOKEN, pki=pki) as hec, pytest.raises(DeliveryError) as exc:
        export(store, _splunk(hec, pki, retries=3), ACTOR, token=token)
    assert str(exc.value) == f"{hec.url}: {expected}"
    assert len(hec.requests) == 1  # no retry on a hard error
    assert "\n" not in str(exc.value) and token not in str(exc.value)
    with store.connect() as conn:
        assert conn.execute(select(schema.export_cursors)).all() == []


def test_incorrect_index_is_a_400(store, logs, pki) -> None:
    populate(store, *logs)
    with HecServer(TOKEN, pki=pki) as hec:
        hec.indexes = {"main"}
        with pytest.raises(
            DeliveryError,
            match=r"refused the batch: 400 Incorrect index "
            r"\(HEC code 7\)",
        ):
            export(store, _splunk(hec, pki, index="nope"), ACTOR, token=TOKEN)


def test_untrusted_certificate(store, logs, pki, tmp_path: Path) -> None:
    populate(store, *logs)
    other = make_pki(tmp_path / "other", "another CA")
    with (
        HecServer(TOKEN, pki=pki) as hec,
        pytest.raises(DeliveryError, match="TLS certificate not trusted"),
    ):
        export(
            store, Destination(type="splunk", target=hec.url, ca=str(other.ca)), ACTOR, token=TOKEN
        )
    assert hec.events == []


@pytest.mark.parametrize("ack", [False, True])
def test_outage_mid_export_then_backlog(store, logs, pki, ack: bool) -> None:
    """The server goes down right after accepting batch 2: the export fails with a clear
    message after its retries; after recovery the next export sends the rest. Every event
    arrives; without ack none twice (the cursor moved at the 200 of batch 2), with ack batch 2
    was never acknowledged, so exactly its events arrive twice (at-least-once)."""
    populate(store, *logs)
    expected = all_event_ids(store)
    hec = HecServer(TOKEN, pki=pki, ack=ack).start()
    hec.fail_after, hec.on_fail = 2, hec.stop
    dest = _splunk(hec, pki, ack=ack, batch_size=5, retries=2)
    progress: list[int] = []
    try:
        with pytest.raises(DeliveryError, match=r"cannot reach it .*gave up after 3 attempt"):
            export(store, dest, ACTOR, token=TOKEN, on_batch=lambda r: progress.append(r.batches))
        assert len(hec.batches) == 2 and progress == ([1] if ack else [1, 2])
        unacknowledged = [e["event"]["event_id"] for e in hec.batches[1]] if ack else []
        hec.start()  # back on the same port
        second = export(store, dest, ACTOR, token=TOKEN)
    finally:
        hec.stop()
    ids = _ids(hec)
    assert set(expected) <= set(ids)
    twice = sorted(i for i, n in Counter(ids).items() if n > 1)
    assert twice == sorted(unacknowledged) and max(Counter(ids).values()) <= 2
    assert sorted(set(ids)) == sorted(all_event_ids(store, upto=second.last_seq))
    failed = [
        json.loads(e["event"]["new"]) for e in hec.events if e["event"].get("action") == "export"
    ]
    assert failed and failed[0]["complete"] is False and "gave up" in failed[0]["error"]


def test_token_file_must_be_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "hec.token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o644)
    with pytest.raises(UsageError, match=r"readable by others \(mode 0644\): chmod 600"):
        load_token(str(path))
    path.chmod(0o600)
    assert load_token(str(path)) == TOKEN
    monkeypatch.delenv("PLANTSWEEP_HEC_TOKEN", raising=False)
    with pytest.raises(UsageError, match="no HEC token"):
        load_token(None)
    monkeypatch.setenv("PLANTSWEEP_HEC_TOKEN", TOKEN)
    assert load_token(None) == TOKEN


def test_cli_splunk_export(store_url, logs, pki, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    store = open_store(store_url)
    try:
        populate(store, *logs)
        total = len(all_event_ids(store))
    finally:
        store.dispose()
    monkeypatch.setenv("PLANTSWEEP_HEC_TOKEN", TOKEN)
    with HecServer(TOKEN, pki=pki, ack=True) as hec:
        code = cli.main(
            [
                "export",
                "splunk",
                "--url",
                hec.url,
                "--ca",
                str(pki.ca),
                "--ack",
                "--name",
                "soc",
                "--store",
                store_url,
            ]
        )
        printed = capsys.readouterr()
        assert code == 0, printed.err
        assert len(hec.events) == total
        monkeypatch.setenv("PLANTSWEEP_HEC_TOKEN", "not-the-token")
        code = cli.main(
            [
                "export",
                "splunk",
                "--url",
                hec.url,
                "--ca",
                str(pki.ca),
                "--from-start",
                "--store",
                store_url,
            ]
        )
        failed = capsys.readouterr()
    assert printed.out.startswith(f"exported {total} event(s)") and "cursor soc" in printed.out
    assert code == 2
    assert failed.err.strip() == (
        f"ERROR: {hec.url}: HEC refused the token: 403 Invalid token (HEC code 4)"
    )
    for text in (printed.out, printed.err, failed.out, failed.err):
        assert TOKEN not in text and "not-the-token" not in text
