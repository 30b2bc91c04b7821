"""The store's tables (SQLAlchemy Core). Times are RFC 3339 UTC text ("2026-11-26T03:07:17Z"):
they sort as text on SQLite and PostgreSQL alike and read the same in both.

Record tables and the audit tables are apart: records change (an inspection record gets
remarks, a quarantined file is restored), the audit trail only grows (`audit_entries` and
`audit_checkpoints` refuse UPDATE and DELETE by trigger, see database.py; real protection is the
hash chain and the signed checkpoints, see orchestrator/audit/).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# The levels of agentless_scanner/scoring.py as numbers, so "at least warning" is one
# indexed comparison; "none" is a scan log without findings.
LEVEL_RANKS = {"none": 0, "info": 0, "notice": 1, "warning": 2, "alert": 3}

store_meta = Table(
    "store_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

hosts = Table(
    "hosts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("site", String(128), nullable=False, server_default=""),
    Column("name", String(255), nullable=False),
    Column("area", String(128), nullable=False, server_default=""),
    Column("line", String(128), nullable=False, server_default=""),
    Column("cell", String(128), nullable=False, server_default=""),
    Column("criticality", String(32), nullable=False, server_default=""),
    Column("first_seen", String(32), nullable=False),
    Column("last_seen", String(32), nullable=False),
    # When set, `plantsweep status` counts a host without a scan inside this many days overdue.
    Column("scan_interval_days", Integer),
    UniqueConstraint("site", "name", name="uq_hosts_site_name"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", String(64), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),  # scan, playbook, import, checkpoint
    Column("started", String(32)),
    Column("finished", String(32)),
    Column("controller", String(255), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("exit_code", Integer),
    Column("summary", Text),  # run.json as it was written
)

scan_logs = Table(
    "scan_logs",
    metadata,
    Column("id", Integer, primary_key=True),
    # Idempotent ingestion: the same bytes (or the same scan_id) are stored once.
    Column("sha256", String(64), nullable=False, unique=True),
    Column("scan_id", String(64), nullable=False, unique=True),
    Column("run_id", String(64)),
    Column("host_id", Integer, ForeignKey("hosts.id"), nullable=False),
    Column("host", String(255), nullable=False),
    Column("site", String(128), nullable=False, server_default=""),
    Column("area", String(128), nullable=False, server_default=""),
    Column("line", String(128), nullable=False, server_default=""),
    Column("scan_type", String(32), nullable=False),
    Column("action", String(32), nullable=False),
    Column("complete", Boolean, nullable=False),
    Column("started", String(32), nullable=False),
    Column("finished", String(32), nullable=False),
    Column("bundle_name", String(255)),
    Column("bundle_version", String(64)),
    Column("bundle_date", String(32)),
    Column("files", BigInteger, nullable=False, server_default="0"),
    Column("findings", Integer, nullable=False, server_default="0"),
    Column("max_score", Integer, nullable=False, server_default="0"),
    Column("max_level", String(16), nullable=False, server_default="none"),
    Column("max_rank", Integer, nullable=False, server_default="0"),
    Column("errors", Integer, nullable=False, server_default="0"),
    Column("source", String(32), nullable=False),  # run, import, kit, checkpoint
    Column("stored_at", String(32), nullable=False),
    Column("body", LargeBinary, nullable=False),  # the log's exact bytes, zlib-compressed
)
Index("ix_scan_logs_host_finished", scan_logs.c.host_id, scan_logs.c.finished)
Index("ix_scan_logs_finished", scan_logs.c.finished)
Index("ix_scan_logs_host_name", scan_logs.c.host, scan_logs.c.finished)
Index("ix_scan_logs_site_line", scan_logs.c.site, scan_logs.c.line, scan_logs.c.finished)
Index("ix_scan_logs_rank", scan_logs.c.max_rank, scan_logs.c.finished)

findings = Table(
    "findings",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("scan_log_id", Integer, ForeignKey("scan_logs.id"), nullable=False),
    Column("host_id", Integer, nullable=False),
    Column("path", Text, nullable=False),
    Column("sha256", String(64)),
    Column("score", Integer, nullable=False),
    Column("level", String(16), nullable=False),
    Column("rank", Integer, nullable=False),
    Column("engine", String(16)),
    Column("rule", Text),
    Column("action", String(32)),
)
Index("ix_findings_scan_log", findings.c.scan_log_id)
Index("ix_findings_host_rank", findings.c.host_id, findings.c.rank)
Index("ix_findings_sha256", findings.c.sha256)

assets = Table(
    "assets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("scan_log_id", Integer, ForeignKey("scan_logs.id"), nullable=False, unique=True),
    Column("host_id", Integer, nullable=False),
    Column("collected", String(32), nullable=False),
    Column("os_name", String(255)),
    Column("os_version", String(255)),
    Column("data", Text, nullable=False),  # the log's `asset` object as JSON
    # Its `os` object alone (schema 3): `status` assesses end of life from it without
    # parsing every host's whole asset record.
    Column("os", Text),
)
Index("ix_assets_host_collected", assets.c.host_id, assets.c.collected)

quarantine_records = Table(
    "quarantine_records",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("scan_log_id", Integer, ForeignKey("scan_logs.id"), nullable=False),
    Column("host_id", Integer, nullable=False),
    Column("path", Text, nullable=False),
    Column("sha256", String(64)),
    Column("vault_id", String(64)),
    Column("outcome", String(32), nullable=False),  # quarantined, refused, failed, restored
    Column("detail", Text),
    Column("recorded", String(32), nullable=False),
)
Index("ix_quarantine_host", quarantine_records.c.host_id)

inspection_records = Table(
    "inspection_records",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("scan_log_id", Integer, ForeignKey("scan_logs.id"), nullable=False, unique=True),
    Column("host_id", Integer, nullable=False),
    Column("created", String(32), nullable=False),
    Column("remarks", Text, nullable=False, server_default=""),
    Column("status", String(16), nullable=False, server_default="open"),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("full_name", String(255), nullable=False),
    Column("role", String(32), nullable=False),  # operator, reviewer, administrator
    Column("password_hash", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created", String(32), nullable=False),
    Column("password_changed", String(32), nullable=False),
    Column("failed_attempts", Integer, nullable=False, server_default="0"),
    Column("locked_until", String(32)),
)

signatures = Table(
    "signatures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("record_type", String(32), nullable=False),
    Column("record_id", Integer, nullable=False),
    Column("record_hash", String(64), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("printed_name", String(255), nullable=False),
    Column("meaning", String(32), nullable=False),
    Column("signed_at", String(40), nullable=False),
    Column("audit_seq", BigInteger, nullable=False),
)
Index("ix_signatures_record", signatures.c.record_type, signatures.c.record_id)

# `plantsweep login`: the store keeps only the SHA-256 of a session's random token (the token
# itself is in the user's 0600 session file, see orchestrator/users/sessions.py).
sessions = Table(
    "sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("created", String(32), nullable=False),
    Column("expires", String(32), nullable=False),
    Column("ended", String(32)),  # logout, deactivation
    Column("controller", String(255), nullable=False),
)

audit_entries = Table(
    "audit_entries",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=False),
    Column("ts", String(40), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("object_type", String(64), nullable=False),
    Column("object_id", String(255), nullable=False),
    Column("entry", Text, nullable=False),  # canonical JSON, the bytes that are hashed
    Column("leaf_hash", String(64), nullable=False),
    Column("chain_hash", String(64), nullable=False),  # SHA-256(previous chain_hash || leaf)
)
Index("ix_audit_object", audit_entries.c.object_type, audit_entries.c.object_id)
Index("ix_audit_ts", audit_entries.c.ts)

# A single row: the last seq and chain hash, locked by every append (serialises writers on
# PostgreSQL, where several controllers append to one trail).
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("chain_hash", String(64), nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("root_hash", String(64), nullable=False),
    Column("created", String(40), nullable=False),
    Column("note", Text, nullable=False),  # the signed note (C2SP signed-note format)
)

devices = Table(
    "devices",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("device_id", String(128), nullable=False, unique=True),
    Column("owner", String(255), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("site", String(128), nullable=False, server_default=""),
    Column("registered", String(32), nullable=False),
)

device_scans = Table(
    "device_scans",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("device_id", Integer, ForeignKey("devices.id"), nullable=False),
    Column("scan_log_id", Integer, ForeignKey("scan_logs.id"), nullable=False),
    Column("direction", String(8), nullable=False),  # entry, exit
    Column("reason", Text, nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("recorded", String(32), nullable=False),
)
Index("ix_device_scans_device", device_scans.c.device_id, device_scans.c.recorded)

admissions = Table(
    "admissions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("device_id", Integer, ForeignKey("devices.id"), nullable=False),
    Column("scan_log_id", Integer, ForeignKey("scan_logs.id")),
    Column("verdict", String(16), nullable=False),  # admitted, refused
    Column("reason", Text, nullable=False),
    Column("policy", Text, nullable=False),  # the policy applied, as JSON
    Column("user_id", String(64), nullable=False),
    Column("decided", String(32), nullable=False),
    Column("valid_until", String(32)),
)
Index("ix_admissions_device", admissions.c.device_id, admissions.c.decided)

# SIEM export (orchestrator/siem/): one row per destination. `position` is the audit seq up
# to which every event was accepted by the receiver; the next export starts after it.
export_cursors = Table(
    "export_cursors",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("destination", Text, nullable=False),  # as shown: no token, no password
    Column("position", BigInteger, nullable=False),
    Column("updated", String(32), nullable=False),
)
