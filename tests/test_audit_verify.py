"""Tamper evidence of the audit trail: Merkle roots, signed checkpoints, `audit verify`.

Every test on SQLite and on a real PostgreSQL (the `store` fixture). Tampering is done the way
an administrator would: drop the append-only triggers, then edit the tables directly.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert, select, text, update

from orchestrator.audit import checkpoint, merkle, trail
from orchestrator.audit.cli import audit_command
from orchestrator.audit.identity import Actor, Where
from orchestrator.audit.verify import AUDIT_FAILED, verify
from orchestrator.store import schema

ALICE = Actor(user_id="alice", full_name="Alice Example", auth="password")
CTL = Where("ctl-1", "basel")
E = schema.audit_entries


@pytest.fixture(autouse=True)
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("PLANTSWEEP_HOME", str(home))
    monkeypatch.delenv("PLANTSWEEP_AUDIT_KEY", raising=False)
    return home


def fill(store: Any, n: int, tag: str = "r") -> None:
    with store.begin() as conn:
        for i in range(n):
            trail.append(conn, ALICE, "scan_start", "run", f"{tag}{i}", new={"i": i}, where=CTL)


@pytest.fixture
def trail30(store: Any) -> Any:
    """30 entries, checkpoints over 9, 19 and 29 (entries 10, 20 and 30 record them)."""
    for batch in "abc":
        fill(store, 9, batch)
        checkpoint.make_checkpoint(store, actor=ALICE)
    return store


def unlock(store: Any) -> None:
    with store.begin() as conn:
        if store.dialect == "sqlite":
            for t in ("audit_entries", "audit_checkpoints"):
                for op in ("update", "delete"):
                    conn.execute(text(f"DROP TRIGGER {t}_no_{op}"))
        else:
            for t in ("audit_entries", "audit_checkpoints"):
                conn.execute(text(f"DROP TRIGGER {t}_append_only ON {t}"))


def rows(store: Any) -> list[Any]:
    with store.connect() as conn:
        return conn.execute(select(E).order_by(E.c.seq)).all()


def set_head(conn: Any) -> None:
    last = conn.execute(select(E.c.seq, E.c.chain_hash).order_by(E.c.seq.desc()).limit(1)).one()
    conn.execute(update(schema.audit_head).values(seq=last.seq, chain_hash=last.chain_hash))


def rechain(conn: Any, start: int) -> None:
    """What a careful attacker does after editing: recompute leaves and chain from `start`."""
    previous = trail.GENESIS
    for row in conn.execute(select(E).order_by(E.c.seq)).all():
        if row.seq >= start:
            leaf = trail.leaf_hash(row.entry.encode())
            chained = trail.chain_hash(previous, leaf)
            conn.execute(update(E).where(E.c.seq == row.seq)
                         .values(leaf_hash=leaf, chain_hash=chained))
            previous = chained
        else:
            previous = row.chain_hash
    set_head(conn)


def edited(entry_text: str, **what: Any) -> str:
    data = json.loads(entry_text)
    data["what"].update(what)
    return trail.canonical(data).decode()


# -- Merkle tree ------------------------------------------------------------------------------


def test_merkle_root_matches_rfc6962_definition() -> None:
    leaves = [hashlib.sha256(b"\x00" + bytes([i])).digest() for i in range(40)]
    assert merkle.merkle_root([]) == hashlib.sha256(b"").digest()
    for n in range(0, 41):
        assert merkle.merkle_root(leaves[:n]) == merkle.reference_root(leaves[:n]), n
    # By hand for 3 leaves: node(node(a, b), c).
    a, b, c = leaves[:3]
    assert merkle.merkle_root([a, b, c]) == merkle.node_hash(merkle.node_hash(a, b), c)
    builder = merkle.MerkleBuilder()
    for leaf in leaves[:13]:
        builder.add(leaf)
    again = merkle.MerkleBuilder.from_state(json.loads(json.dumps(builder.state())))
    for leaf in leaves[13:]:
        again.add(leaf)
    assert again.root() == merkle.reference_root(leaves)


# -- checkpoints and the key ------------------------------------------------------------------


def test_checkpoint_is_a_c2sp_signed_note(store: Any, own_home: Path) -> None:
    fill(store, 5)
    cp = checkpoint.make_checkpoint(store, actor=ALICE)
    assert cp is not None and cp.size == 5 and cp.audit_seq == 6
    origin = store.meta("install_id")
    body, _, sig_line = cp.note.partition("\n\n")
    leaves = [bytes.fromhex(r.leaf_hash) for r in rows(store)[:5]]
    root = merkle.reference_root(leaves)
    assert body == f"{origin}\n5\n{base64.b64encode(root).decode()}"
    assert cp.root_hash == root.hex()
    assert sig_line.startswith(f"\u2014 {origin} ") and sig_line.endswith("\n")
    blob = base64.b64decode(sig_line.split(" ")[2])
    key = checkpoint.load_key()
    raw = checkpoint.raw_public(key.public_key())
    assert blob[:4] == hashlib.sha256(origin.encode() + b"\n\x01" + raw).digest()[:4]
    key.public_key().verify(blob[4:], (body + "\n").encode())  # raises if invalid
    # The key files: 0700 folder, 0600 PEM PKCS#8 key, public key beside it and in keys/.
    path = own_home / "audit" / "signing.key"
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert (own_home / "audit" / "signing.pub").exists()
    assert len(list((own_home / "audit" / "keys").glob("*.pub"))) == 1
    # Recorded in the trail after the checkpoint, and the row holds the note.
    last = rows(store)[-1]
    assert (last.seq, last.action, last.object_id) == (6, "audit_checkpoint", str(cp.id))
    assert json.loads(last.entry)["what"]["new"]["size"] == 5
    with store.connect() as conn:
        stored = conn.execute(select(schema.audit_checkpoints)).one()
    assert (stored.size, stored.note) == (5, cp.note)


def test_checkpoint_if_due(store: Any) -> None:
    assert checkpoint.checkpoint_if_due(store, every=10) is None  # empty trail
    fill(store, 3)
    first = checkpoint.checkpoint_if_due(store, every=10)  # entries but no checkpoint yet
    assert first is not None and first.size == 3
    fill(store, 8)  # 12 entries, 9 since the checkpoint
    assert checkpoint.checkpoint_if_due(store, every=10) is None
    fill(store, 1)
    second = checkpoint.checkpoint_if_due(store, every=10)
    assert second is not None and second.size == 13
    fill(store, 4)
    third = checkpoint.make_checkpoint(store)  # from the saved frontier, not from leaf 1
    leaves = [bytes.fromhex(r.leaf_hash) for r in rows(store)[:third.size]]
    assert third.root_hash == merkle.reference_root(leaves).hex()
    assert verify(store, record=False).ok


def test_rotation_keeps_old_checkpoints_verifiable(store: Any, own_home: Path) -> None:
    fill(store, 4)
    first = checkpoint.make_checkpoint(store)
    with pytest.raises(Exception, match="reason"):
        checkpoint.rotate_key(store, "")
    old, new = checkpoint.rotate_key(store, "annual key rotation", actor=ALICE)
    assert checkpoint.fingerprint(old) != checkpoint.fingerprint(new)
    fill(store, 2)
    second = checkpoint.make_checkpoint(store)
    assert first is not None and second is not None
    assert first.note.split("\u2014")[1].split()[1] != second.note.split("\u2014")[1].split()[1]
    rotation = [r for r in rows(store) if r.action == "key_rotate"]
    assert len(rotation) == 1 and json.loads(rotation[0].entry)["why"] == "annual key rotation"
    assert len(list((own_home / "audit" / "keys").glob("*.pub"))) == 2
    report = verify(store, record=False)
    assert report.ok, report.problems
    assert len(report.fingerprints) == 2 and report.checkpoints == 3  # incl. the pre-rotation one


# -- verify: intact -----------------------------------------------------------------------------


def test_intact_trail_passes_and_verify_is_audited(trail30: Any) -> None:
    report = verify(trail30, actor=ALICE)
    assert report.ok, report.problems
    assert (report.entries, report.checkpoints, report.last_checkpoint_size) == (30, 3, 29)
    assert report.first_bad_seq is None and report.summary().startswith("PASS: 30 entries")
    assert len(report.key_ids) == 1 and report.key_ids[0] in report.summary()
    last = rows(trail30)[-1]
    assert (last.seq, last.action) == (31, "audit_verify")
    assert json.loads(last.entry)["what"]["new"]["result"] == "PASS"
    assert verify(trail30, record=False).ok  # the verify entry chains on


def test_no_checkpoint_yet_is_a_warning(store: Any) -> None:
    fill(store, 3)
    report = verify(store, record=False)
    assert report.ok and any("no checkpoint" in w for w in report.warnings)


def test_time_going_backwards_is_a_warning_only(trail30: Any) -> None:
    unlock(trail30)
    with trail30.begin() as conn:
        row = conn.execute(select(E).where(E.c.seq == 30)).one()
        data = json.loads(row.entry)
        data["ts"] = "2001-01-01T00:00:00.000+00:00"
        body = trail.canonical(data)
        conn.execute(update(E).where(E.c.seq == 30).values(entry=body.decode(), ts=data["ts"]))
        rechain(conn, 30)
    report = verify(trail30, record=False)
    assert any("entry 30: time goes backwards" in w for w in report.warnings)
    # Not covered by a checkpoint yet (entry 30 records the checkpoint over 29): PASS.
    assert report.ok, report.problems


# -- verify: tampering ------------------------------------------------------------------------


def test_edited_entry_is_named(trail30: Any) -> None:
    unlock(trail30)
    with trail30.begin() as conn:
        entry = conn.execute(select(E.c.entry).where(E.c.seq == 17)).scalar_one()
        conn.execute(update(E).where(E.c.seq == 17).values(entry=edited(entry, new={"i": 99})))
    report = verify(trail30, actor=ALICE)
    assert not report.ok and report.first_bad_seq == 17
    assert report.problems[0] == "entry 17: content changed (hash differs)"
    assert report.summary() == "FAIL: entry 17: content changed (hash differs)"
    last = rows(trail30)[-1]  # a failed verification is recorded too
    assert last.action == "audit_verify"
    assert json.loads(last.entry)["what"]["new"]["result"] == "FAIL"


def test_edited_column_is_named(trail30: Any) -> None:
    unlock(trail30)
    with trail30.begin() as conn:
        conn.execute(update(E).where(E.c.seq == 8).values(user_id="mallory"))
    report = verify(trail30, record=False)
    assert report.first_bad_seq == 8
    assert report.problems[0] == "entry 8: column user_id is 'mallory' but the entry says 'alice'"


def test_deleted_entry_is_named(trail30: Any) -> None:
    unlock(trail30)
    with trail30.begin() as conn:
        conn.execute(E.delete().where(E.c.seq == 5))
    report = verify(trail30, record=False)
    assert report.first_bad_seq == 5
    assert report.problems[0] == "entry 5 missing (seq jumps 4 -> 6)"


def test_deleted_and_renumbered_is_named(trail30: Any) -> None:
    unlock(trail30)
    with trail30.begin() as conn:
        conn.execute(E.delete().where(E.c.seq == 5))
        conn.execute(update(E).where(E.c.seq > 5).values(seq=E.c.seq + 1000))
        conn.execute(update(E).where(E.c.seq > 1000).values(seq=E.c.seq - 1001))
        set_head(conn)
    report = verify(trail30, record=False)
    assert report.first_bad_seq == 5
    assert report.problems[0].startswith("entry 5 missing (the later entries were renumbered")


def _shift_up_from(conn: Any, seq: int) -> None:
    conn.execute(update(E).where(E.c.seq >= seq).values(seq=E.c.seq + 1000))
    conn.execute(update(E).where(E.c.seq >= 1000).values(seq=E.c.seq - 999))


def _forge(conn: Any, seq: int) -> None:
    """A plausible entry `seq` with a correct leaf hash, chained to entry seq - 1."""
    previous = conn.execute(select(E).where(E.c.seq == seq - 1)).one()
    data = json.loads(previous.entry)
    data["seq"], data["what"]["object_id"] = seq, "forged"
    body = trail.canonical(data)
    leaf = trail.leaf_hash(body)
    conn.execute(insert(E).values(
        seq=seq, ts=data["ts"], user_id="alice", action=data["what"]["action"],
        object_type=data["what"]["object_type"], object_id="forged", entry=body.decode(),
        leaf_hash=leaf, chain_hash=trail.chain_hash(previous.chain_hash, leaf)))


@pytest.mark.parametrize("renumber", [False, True])
def test_inserted_entry_is_named(trail30: Any, renumber: bool) -> None:
    unlock(trail30)
    with trail30.begin() as conn:
        _shift_up_from(conn, 12)
        if renumber:  # the moved entries' own seq fixed too (hashes left alone)
            for row in conn.execute(select(E).where(E.c.seq > 12)).all():
                data = json.loads(row.entry)
                data["seq"] = row.seq
                conn.execute(update(E).where(E.c.seq == row.seq)
                             .values(entry=trail.canonical(data).decode()))
        _forge(conn, 12)
        set_head(conn)
    report = verify(trail30, record=False)
    assert not report.ok and report.first_bad_seq == 12, report.problems
    assert report.problems[0].startswith("entry 12: ")
    assert "insert" in report.problems[0]


@pytest.mark.parametrize("whole_rows", [True, False])
def test_reordered_entries_are_named(trail30: Any, whole_rows: bool) -> None:
    unlock(trail30)
    cols = ["ts", "user_id", "action", "object_type", "object_id", "entry"]
    if whole_rows:
        cols += ["leaf_hash", "chain_hash"]
    with trail30.begin() as conn:
        nine, ten = (conn.execute(select(E).where(E.c.seq == s)).one() for s in (9, 10))
        conn.execute(update(E).where(E.c.seq == 9).values({c: getattr(ten, c) for c in cols}))
        conn.execute(update(E).where(E.c.seq == 10).values({c: getattr(nine, c) for c in cols}))
    report = verify(trail30, record=False)
    assert report.first_bad_seq == 9
    assert report.problems[0].startswith("entry 9 out of order (seq 9 holds entry 10")


def test_truncated_tail_is_caught_by_a_checkpoint(trail30: Any) -> None:
    unlock(trail30)
    with trail30.begin() as conn:
        conn.execute(E.delete().where(E.c.seq > 25))
        set_head(conn)
    report = verify(trail30, record=False)
    assert report.first_bad_seq == 26
    assert report.problems[0].startswith("trail truncated: checkpoint of ")
    assert report.problems[0].endswith("covers 29 entries, the store has 25")


def test_truncated_tail_with_stale_head(trail30: Any) -> None:
    unlock(trail30)
    with trail30.begin() as conn:
        conn.execute(E.delete().where(E.c.seq > 29))
    report = verify(trail30, record=False)
    assert report.first_bad_seq == 30
    assert report.problems[0] == ("trail truncated: the audit head records 30 entries, "
                                  "the store has 29")


def test_full_rewrite_is_caught_by_the_checkpoints(trail30: Any) -> None:
    unlock(trail30)
    with trail30.begin() as conn:
        entry = conn.execute(select(E.c.entry).where(E.c.seq == 17)).scalar_one()
        conn.execute(update(E).where(E.c.seq == 17).values(entry=edited(entry, new={"i": 99})))
        rechain(conn, 17)
    report = verify(trail30, record=False)
    assert not report.ok
    assert report.first_bad_range == (10, 19) and report.first_bad_seq == 10
    assert "first bad entry is in seq 10..19" in report.problems[0]


def test_truncation_with_checkpoints_deleted_needs_the_exported_ones(
    trail30: Any, tmp_path: Path
) -> None:
    exported = tmp_path / "checkpoints.txt"
    assert checkpoint.export_checkpoints(trail30, exported) == 3
    assert len(checkpoint.parse_notes_file(exported)) == 3
    assert verify(trail30, exported, record=False).external_checkpoints == 3
    unlock(trail30)
    with trail30.begin() as conn:
        conn.execute(schema.audit_checkpoints.delete())
        conn.execute(E.delete().where(E.c.seq > 15))
        rechain(conn, 1)
    assert verify(trail30, record=False).ok  # nothing left in the store to tell
    report = verify(trail30, exported, record=False)
    assert not report.ok and report.first_bad_seq == 16
    assert report.problems[0].startswith("trail truncated: checkpoint of ")
    assert "(exported) covers 19 entries, the store has 15" in report.problems[0]


def test_rewrite_and_resign_with_another_key_fails(trail30: Any, tmp_path: Path) -> None:
    exported = tmp_path / "checkpoints.txt"
    checkpoint.export_checkpoints(trail30, exported)
    unlock(trail30)
    origin = trail30.meta("install_id")
    mallory = Ed25519PrivateKey.generate()
    with trail30.begin() as conn:
        entry = conn.execute(select(E.c.entry).where(E.c.seq == 3)).scalar_one()
        conn.execute(update(E).where(E.c.seq == 3).values(entry=edited(entry, new={"i": 77})))
        rechain(conn, 3)
        conn.execute(schema.audit_checkpoints.delete())
        leaves = [r.leaf_hash for r in conn.execute(select(E.c.leaf_hash).order_by(E.c.seq))]
        root = merkle.merkle_root(leaves)
        note = checkpoint.sign_note(checkpoint.note_body(origin, 30, root), origin, mallory)
        conn.execute(insert(schema.audit_checkpoints).values(
            size=30, root_hash=root.hex(), created="2026-01-01T00:00:00.000+00:00", note=note))
    report = verify(trail30, record=False)
    assert not report.ok
    assert report.problems[0].startswith("checkpoint of 2026-01-01T00:00:00.000+00:00 (size 30)"
                                         ": signature not valid under any trusted key")
    with_export = verify(trail30, exported, record=False)
    assert with_export.first_bad_range == (1, 9)


def test_forged_signature_bytes_fail(trail30: Any) -> None:
    unlock(trail30)
    with trail30.begin() as conn:
        row = conn.execute(select(schema.audit_checkpoints).order_by(
            schema.audit_checkpoints.c.id)).first()
        body, _, sig = row.note.partition("\n\n")
        prefix, blob = sig.rstrip("\n").rsplit(" ", 1)
        raw = bytearray(base64.b64decode(blob))
        raw[10] ^= 1
        forged = f"{body}\n\n{prefix} {base64.b64encode(bytes(raw)).decode()}\n"
        conn.execute(update(schema.audit_checkpoints)
                     .where(schema.audit_checkpoints.c.id == row.id).values(note=forged))
    report = verify(trail30, record=False)
    assert not report.ok and report.checkpoints == 2
    assert "(size 9): signature not valid under any trusted key" in report.problems[0]


# -- the command ------------------------------------------------------------------------------


def _ns(store: Any, **kw: Any) -> argparse.Namespace:
    base = {"store": store.url, "audit_command": "verify", "checkpoint": None, "json": False}
    base.update(kw)
    return argparse.Namespace(**base)


def test_verify_command_exit_codes_and_json(trail30: Any, capsys: Any) -> None:
    assert audit_command(_ns(trail30)) == 0
    assert capsys.readouterr().out.startswith("PASS: ")
    unlock(trail30)
    with trail30.begin() as conn:
        conn.execute(E.delete().where(E.c.seq == 7))
    assert audit_command(_ns(trail30, json=True)) == AUDIT_FAILED == 8
    data = json.loads(capsys.readouterr().out)
    assert data["result"] == "FAIL" and data["first_bad_seq"] == 7


def test_key_and_checkpoints_commands(trail30: Any, tmp_path: Path, capsys: Any) -> None:
    assert audit_command(_ns(trail30, audit_command="key", rotate=False, reason=None)) == 0
    out = capsys.readouterr().out
    origin = trail30.meta("install_id")
    key = checkpoint.load_key().public_key()
    assert checkpoint.verifier_key(origin, key) in out
    assert checkpoint.key_id(origin, key).hex() in out
    target = tmp_path / "cps.txt"
    assert audit_command(_ns(trail30, audit_command="checkpoints", export=str(target),
                             now=False)) == 0
    assert target.read_text().count("\u2014 ") == 3
    assert audit_command(_ns(trail30, audit_command="checkpoints", export=None, now=True)) == 0
    with trail30.connect() as conn:
        assert checkpoint.count_checkpoints(conn) == 4
