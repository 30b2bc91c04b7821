"""Appending to the audit trail, inside the caller's transaction.

    seq = append(conn, actor, "quarantine", "file", vault_id, new={...}, where=here("basel"))

An entry is canonical JSON (sorted keys, no spaces, UTF-8: the bytes that are hashed) with
who (user id, printed name, how authenticated), what (action, object type and id, old and new
value), when (UTC with the controller's local offset), where (controller host, site) and why (a
reason, required for changes and deletions). Hashes follow RFC 6962: leaf = SHA-256(0x00 ||
entry); the chain hash links every entry to the one before (SHA-256(previous || leaf)), and the
signed checkpoints (checkpoint.py) commit to the Merkle root over the leaves.

The head row (`audit_head`) is read with FOR UPDATE, so controllers appending to one
PostgreSQL trail at once are serialised and seq stays gapless; SQLite serialises writers with
BEGIN IMMEDIATE (store/database.py).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from orchestrator import __version__
from orchestrator.audit.identity import Actor, Where, here
from orchestrator.errors import UsageError
from orchestrator.store import schema

# Actions that change or delete a record: a reason is required (Annex 11 §9).
NEEDS_REASON = frozenset(
    {"modify", "delete", "restore", "deactivate", "role_change", "password_reset", "config_change",
     "key_rotate"}
)


def canonical(data: Any) -> bytes:
    """RFC 8785-style canonical JSON: sorted keys, no insignificant whitespace, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def leaf_hash(entry_bytes: bytes) -> str:
    return hashlib.sha256(b"\x00" + entry_bytes).hexdigest()


def chain_hash(previous: str, leaf: str) -> str:
    return hashlib.sha256(bytes.fromhex(previous) + bytes.fromhex(leaf)).hexdigest()


GENESIS = "0" * 64  # the chain hash "before" entry 1


def now_with_offset() -> tuple[str, str]:
    """(UTC time with milliseconds and +00:00, the controller's local UTC offset)."""
    now = datetime.now(UTC)
    offset = now.astimezone().strftime("%z")  # +0100
    return now.isoformat(timespec="milliseconds"), f"{offset[:3]}:{offset[3:]}"


def append(
    conn: Connection,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str,
    *,
    old: Any = None,
    new: Any = None,
    reason: str | None = None,
    where: Where | None = None,
) -> int:
    """Append one entry in `conn`'s transaction (it commits or rolls back with the record
    change it describes). Returns its seq."""
    if action in NEEDS_REASON and not (reason and reason.strip()):
        raise UsageError(f"a reason is required to {action} a {object_type} (--reason)")
    head = conn.execute(
        select(schema.audit_head.c.seq, schema.audit_head.c.chain_hash)
        .where(schema.audit_head.c.id == 1)
        .with_for_update()
    ).one()
    seq = head.seq + 1
    ts, offset = now_with_offset()
    entry = {
        "seq": seq,
        "ts": ts,
        "tz_offset": offset,
        "who": actor.as_json(),
        "what": {"action": action, "object_type": object_type, "object_id": object_id,
                 "old": old, "new": new},
        "where": {**(where or here()).as_json(), "app_version": __version__},
        "why": reason.strip() if reason else None,
    }
    body = canonical(entry)
    leaf = leaf_hash(body)
    chained = chain_hash(head.chain_hash, leaf)
    conn.execute(
        insert(schema.audit_entries).values(
            seq=seq, ts=ts, user_id=actor.user_id, action=action, object_type=object_type,
            object_id=object_id, entry=body.decode("utf-8"), leaf_hash=leaf, chain_hash=chained,
        )
    )
    conn.execute(
        update(schema.audit_head).where(schema.audit_head.c.id == 1)
        .values(seq=seq, chain_hash=chained)
    )
    return seq
