"""Inspection records: what one record holds, its hash, remarks, signatures and verification.

    view = record_view(conn, record_id)     # host, scan, bundle, findings, actions, asset,
                                            # remarks, signatures (each valid or not)
    record_hash(view)                       # SHA-256 of the canonical content, no signatures

A signature (§11.50, §11.70) is a `signatures` row and an audit entry `sign` naming the printed
name, UTC date and time, meaning (`reviewed`, `approved`) and the record hash it was given for.
It is linked to the record's content, not to the row: if the record changes afterwards (a new
remark, or a findings row edited in the database) the hash differs and the signature shows as
INVALID ("record changed after signing"); it is never removed. Signing always asks the signer's
username and password again, whether or not a session exists (§11.200: every signing outside
or at the start of a continuous session uses both components).

Sequencing (§11.10(f)): `approved` only after a valid `reviewed` signature by another person;
one person signs a record version once per meaning. Changing the remarks of a signed record
needs a reason and sets its status back to `open` in the same audited change, so a record whose
signatures no longer match is not listed as reviewed or approved.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from typing import Any

from sqlalchemy import Connection, insert, select, update

from orchestrator.audit import trail
from orchestrator.audit.identity import Actor, Where
from orchestrator.errors import PlantsweepError, UsageError
from orchestrator.results import utc_now
from orchestrator.store import schema
from orchestrator.store.database import Store

MEANINGS = ("reviewed", "approved")
STATUSES = ("open", "reviewed", "approved")
RECORD_TYPE = "inspection_record"


class SignatureRefused(PlantsweepError):
    """A signature is not allowed (sequence, role, same person)."""


def _asset_summary(data: str | None) -> dict[str, Any] | None:
    if not data:
        return None
    try:
        asset = json.loads(data)
    except ValueError:
        return None
    if not isinstance(asset, dict):
        return None
    os_info = asset.get("os") if isinstance(asset.get("os"), dict) else {}
    addresses: list[str] = []
    for iface in asset.get("interfaces") or []:
        if not isinstance(iface, dict):
            continue
        for addr in iface.get("addresses") or []:
            text = str(addr)
            if text.startswith(("127.", "::1")):
                continue
            addresses.append(f"{text} ({iface.get('name', '?')})")
    for addr in asset.get("addresses") or []:  # a flat list (Windows kit)
        if str(addr) not in addresses:
            addresses.append(str(addr))
    return {
        "hostname": asset.get("hostname"),
        "fqdn": asset.get("fqdn"),
        "os": os_info.get("pretty_name") or os_info.get("name"),
        "os_version": os_info.get("version") or os_info.get("release"),
        "kernel": os_info.get("kernel"),
        "architecture": asset.get("architecture"),
        "addresses": addresses,
    }


def _need_record(conn: Connection, record_id: int) -> Any:
    row = conn.execute(
        select(schema.inspection_records).where(schema.inspection_records.c.id == record_id)
    ).first()
    if row is None:
        raise UsageError(f"no inspection record {record_id}")
    return row


def record_view(conn: Connection, record_id: int) -> dict[str, Any]:
    """Everything an inspection record shows, as plain JSON-able data.

    Keys: id, status, created, host, scan, bundle, findings, actions, asset, remarks,
    record_hash (of the current content) and signatures (each with `valid`)."""
    rec = _need_record(conn, record_id)
    logs, hosts = schema.scan_logs, schema.hosts
    log = conn.execute(select(logs).where(logs.c.id == rec.scan_log_id)).one()
    host = conn.execute(select(hosts).where(hosts.c.id == rec.host_id)).one()
    f = schema.findings
    findings = [
        {"path": r.path, "sha256": r.sha256, "score": r.score, "level": r.level,
         "engine": r.engine, "rule": r.rule, "action": r.action}
        for r in conn.execute(select(f).where(f.c.scan_log_id == log.id).order_by(f.c.id))
    ]
    q = schema.quarantine_records
    actions = [
        {"path": r.path, "sha256": r.sha256, "vault_id": r.vault_id, "outcome": r.outcome,
         "recorded": r.recorded}
        for r in conn.execute(select(q).where(q.c.scan_log_id == log.id).order_by(q.c.id))
    ]
    a = schema.assets
    asset_row = conn.execute(select(a.c.data).where(a.c.scan_log_id == log.id)).first()
    view: dict[str, Any] = {
        "id": int(rec.id),
        "status": rec.status,
        "created": rec.created,
        "host": {"name": host.name, "site": host.site, "area": host.area, "line": host.line,
                 "cell": host.cell, "criticality": host.criticality},
        "scan": {"scan_id": log.scan_id, "run_id": log.run_id, "type": log.scan_type,
                 "action": log.action, "started": log.started, "finished": log.finished,
                 "complete": bool(log.complete), "files": int(log.files),
                 "errors": int(log.errors), "findings": int(log.findings),
                 "max_level": log.max_level, "log_sha256": log.sha256, "source": log.source},
        "bundle": {"name": log.bundle_name, "version": log.bundle_version,
                   "date": log.bundle_date},
        "findings": findings,
        "actions": actions,
        "asset": _asset_summary(asset_row.data if asset_row else None),
        "remarks": rec.remarks or "",
    }
    current = record_hash(view)
    view["record_hash"] = current
    s = schema.signatures
    view["signatures"] = [
        {"id": int(r.id), "username": r.username, "printed_name": r.printed_name,
         "meaning": r.meaning, "signed_at": r.signed_at, "record_hash": r.record_hash,
         "audit_seq": int(r.audit_seq), "valid": r.record_hash == current}
        for r in conn.execute(
            select(s, schema.users.c.username)
            .join(schema.users, schema.users.c.id == s.c.user_id)
            .where(s.c.record_type == RECORD_TYPE, s.c.record_id == record_id)
            .order_by(s.c.id)
        )
    ]
    return view


# What a signature covers: the record's content. Not its status or its signatures (they change
# by signing), nor the computed hash itself.
_NOT_HASHED = ("signatures", "status", "record_hash")


def record_content(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k not in _NOT_HASHED}


def record_hash(view: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of the record's content, signatures excluded."""
    return hashlib.sha256(trail.canonical(record_content(view))).hexdigest()


def scan_log_bytes(conn: Connection, record_id: int) -> bytes:
    """The exact bytes of the record's scan log."""
    rec = _need_record(conn, record_id)
    body = conn.execute(
        select(schema.scan_logs.c.body).where(schema.scan_logs.c.id == rec.scan_log_id)
    ).scalar_one()
    return zlib.decompress(body)


def list_records(conn: Connection, *, host: str | None = None,
                 status: str | None = None) -> list[dict[str, Any]]:
    """Records (newest scan first) with their host, scan and signature summary."""
    r, logs, hosts = schema.inspection_records, schema.scan_logs, schema.hosts
    query = (
        select(r.c.id, r.c.status, r.c.created, hosts.c.name, hosts.c.site, hosts.c.area,
               hosts.c.line, logs.c.scan_type, logs.c.finished, logs.c.findings,
               logs.c.max_level, logs.c.complete)
        .join(logs, logs.c.id == r.c.scan_log_id)
        .join(hosts, hosts.c.id == r.c.host_id)
        .order_by(logs.c.finished.desc(), r.c.id.desc())
    )
    if host:
        query = query.where(hosts.c.name == host)
    if status:
        if status not in STATUSES:
            raise UsageError(f"unknown status {status!r} (choose from {', '.join(STATUSES)})")
        query = query.where(r.c.status == status)
    return [
        {"id": int(row.id), "status": row.status, "created": row.created, "host": row.name,
         "site": row.site, "area": row.area, "line": row.line, "scan_type": row.scan_type,
         "finished": row.finished, "findings": int(row.findings), "max_level": row.max_level,
         "complete": bool(row.complete)}
        for row in conn.execute(query)
    ]


def set_remarks(conn: Connection, actor: Actor, record_id: int, text: str, *,
                reason: str | None = None, where: Where | None = None) -> dict[str, Any]:
    """Write the engineer's remarks. The first remark of an unsigned record is audited as
    `remark`; replacing remarks, or any change to a signed record, is a `modify` that needs a
    reason. A signed record goes back to status `open` (its signatures stay, shown INVALID)."""
    before = record_view(conn, record_id)
    text = text.strip()
    if text == before["remarks"]:
        raise UsageError("the remarks are unchanged")
    signed = bool(before["signatures"])
    action = "modify" if (signed or before["remarks"]) else "remark"
    if action == "modify" and not (reason and reason.strip()):
        what = "a signed record's" if signed else "existing"
        raise UsageError(f"a reason is required to change {what} remarks (--reason)")
    status = "open" if signed else before["status"]
    r = schema.inspection_records
    conn.execute(update(r).where(r.c.id == record_id).values(remarks=text, status=status))
    after = record_view(conn, record_id)
    trail.append(
        conn, actor, action, RECORD_TYPE, str(record_id),
        old={"remarks": before["remarks"], "status": before["status"],
             "record_hash": before["record_hash"]},
        new={"remarks": text, "status": status, "record_hash": after["record_hash"],
             "signatures_invalidated": [s["id"] for s in before["signatures"] if s["valid"]]},
        reason=reason, where=where,
    )
    return after


def sign_record(store: Store, record_id: int, username: str, password: str, meaning: str, *,
                where: Where | None = None) -> dict[str, Any]:
    """E-sign a record after checking the signer's username and password (a failure is audited
    `login_failed` and counts towards the lockout). Returns the new signature."""
    from orchestrator.users import accounts

    if meaning not in MEANINGS:
        raise UsageError(f"unknown meaning {meaning!r} (choose from {', '.join(MEANINGS)})")
    with store.connect() as conn:
        _need_record(conn, record_id)
    user = accounts.authenticate(store, username, password, purpose="sign", where=where)
    signer = Actor(user_id=user.username, full_name=user.full_name, auth="password")
    accounts.require_role(signer, store, "sign")
    with store.begin() as conn:
        conn.execute(  # lock the record: two signers at once sign in turn
            select(schema.inspection_records.c.id)
            .where(schema.inspection_records.c.id == record_id).with_for_update()
        )
        view = record_view(conn, record_id)
        valid = [s for s in view["signatures"] if s["valid"]]
        if any(s["username"] == user.username and s["meaning"] == meaning for s in valid):
            raise SignatureRefused(f"{user.username} has signed this record as {meaning} already")
        if meaning == "approved":
            reviews = [s for s in valid if s["meaning"] == "reviewed"]
            if not reviews:
                raise SignatureRefused("a record is approved only after it is reviewed "
                                       "(sign --meaning reviewed first)")
            if all(s["username"] == user.username for s in reviews):
                raise SignatureRefused("the approver must be another person than the reviewer")
        signed_at = utc_now()
        new_status = meaning
        if meaning == "reviewed" and view["status"] == "approved":
            new_status = "approved"
        seq = trail.append(
            conn, signer, "sign", RECORD_TYPE, str(record_id),
            old={"status": view["status"]},
            new={"meaning": meaning, "record_hash": view["record_hash"],
                 "printed_name": user.full_name, "username": user.username,
                 "signed_at": signed_at, "status": new_status},
            where=where,
        )
        sig_id = int(conn.execute(insert(schema.signatures).values(
            record_type=RECORD_TYPE, record_id=record_id, record_hash=view["record_hash"],
            user_id=user.id, printed_name=user.full_name, meaning=meaning, signed_at=signed_at,
            audit_seq=seq,
        )).inserted_primary_key[0])
        r = schema.inspection_records
        conn.execute(update(r).where(r.c.id == record_id).values(status=new_status))
    return {"id": sig_id, "username": user.username, "printed_name": user.full_name,
            "meaning": meaning, "signed_at": signed_at, "record_hash": view["record_hash"],
            "audit_seq": seq, "status": new_status}


def verify_record(conn: Connection, record_id: int) -> dict[str, Any]:
    """The record's current hash and each signature's verdict: valid when it was given for
    this exact content. Also checks the stored scan log bytes still match their SHA-256."""
    view = record_view(conn, record_id)
    log_ok = hashlib.sha256(scan_log_bytes(conn, record_id)).hexdigest() == \
        view["scan"]["log_sha256"]
    return {
        "record_id": record_id, "record_hash": view["record_hash"], "scan_log_intact": log_ok,
        "signatures": view["signatures"],
        "ok": log_ok and all(s["valid"] for s in view["signatures"]),
    }
