"""ArcSight CEF: `CEF:0|plantsweep|plantsweep|VERSION|ClassID|Name|Severity|key=value ...`.

Escaping (OpenText "CEF Implementation Standard"): in the header `\\` -> `\\\\` and `|` -> `\\|`;
in extension values `\\` -> `\\\\`, `=` -> `\\=`, newline -> `\\n`, CR -> `\\r`, and other
control characters -> a space (CEF has no escape for them); `|` and spaces are left as they
are (pairs are space-separated, a value may hold spaces). The line is UTF-8.

    line = format_event(event)    # 'CEF:0|plantsweep|plantsweep|0.1.0|finding|...'
"""

from __future__ import annotations

import posixpath
from typing import Any

from orchestrator import __version__
from orchestrator.siem.events import Event, epoch_ms

VENDOR = PRODUCT = "plantsweep"
MAX_NAME = 512


def header_escape(value: str) -> str:
    text = value.replace("\\", "\\\\").replace("|", "\\|")
    return text.replace("\r", " ").replace("\n", " ").translate(_CONTROLS)


# CEF has no escape for other control characters (tab, ...) and syslog receivers rewrite them
# (rsyslog writes a tab as "#011"), so they become spaces.
_CONTROLS = {c: " " for c in range(32) if c not in (10, 13)} | {127: " "}


def value_escape(value: str) -> str:
    return (
        value.replace("\\", "\\\\")
        .replace("=", "\\=")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .translate(_CONTROLS)
    )


def class_id(event: Event) -> str:
    """The static Device Event Class ID (also the LEEF EventID)."""
    if event.kind == "audit":
        return f"audit.{event.data.get('action') or 'unknown'}"
    return event.kind


def name(event: Event) -> str:
    d = event.data
    if event.kind == "finding":
        return f"{d.get('level')} finding {d.get('rule') or d.get('engine') or ''} on {d['host']}"
    if event.kind == "scan":
        state = "" if d.get("complete") else " (incomplete)"
        found = f"{d['findings']} finding(s)" if d.get("findings") else "clean"
        return f"scan of {d['host']}: {found}{state}"
    if event.kind == "asset":
        return f"asset {'first seen' if d.get('change') == 'new' else 'changed'}: {d['host']}"
    if event.kind == "checkpoint":
        return f"audit trail checkpoint at {d.get('size')} entries"
    return f"audit {d.get('action')} {d.get('object_type')} {d.get('object_id')}"


def extension(event: Event, controller: str) -> list[tuple[str, Any]]:
    """(key, value) pairs in order; None values are left out."""
    d = event.data
    common: list[tuple[str, Any]] = [
        ("rt", epoch_ms(event.time)),
        ("dvchost", controller),
        ("externalId", event.event_id),
        ("cat", event.kind),
        ("cn1Label", "auditSeq"),
        ("cn1", event.seq),
    ]
    place = [
        ("shost", d.get("host")),
        ("cs1Label", "site"),
        ("cs1", d.get("site")),
        ("cs2Label", "areaLine"),
        ("cs2", _area_line(d)),
        ("cs3Label", "scanId"),
        ("cs3", d.get("scan_id")),
    ]
    if event.kind == "finding":
        path = str(d.get("path") or "")
        return (
            common
            + place
            + [
                ("filePath", path),
                ("fname", posixpath.basename(path.replace("\\", "/"))),
                ("fileHash", d.get("sha256")),
                ("act", d.get("action")),
                ("cs4Label", "rule"),
                ("cs4", d.get("rule")),
                ("cs5Label", "level"),
                ("cs5", d.get("level")),
                ("cs6Label", "engine"),
                ("cs6", d.get("engine")),
                ("cn2Label", "score"),
                ("cn2", d.get("score")),
            ]
        )
    if event.kind == "scan":
        return (
            common
            + place
            + [
                ("start", epoch_ms(d["started"])),
                ("end", epoch_ms(d["finished"])),
                ("act", d.get("action")),
                ("outcome", "complete" if d.get("complete") else "incomplete"),
                ("cs4Label", "scanType"),
                ("cs4", d.get("scan_type")),
                ("cs5Label", "maxLevel"),
                ("cs5", d.get("max_level")),
                ("cs6Label", "patterns"),
                ("cs6", f"{d.get('bundle_name') or ''} {d.get('bundle_version') or ''}".strip()),
                ("cn2Label", "findings"),
                ("cn2", d.get("findings")),
                ("cn3Label", "files"),
                ("cn3", d.get("files")),
            ]
        )
    if event.kind == "asset":
        return (
            common
            + place
            + [
                ("act", d.get("change")),
                ("cs4Label", "os"),
                ("cs4", f"{d.get('os_name') or ''} {d.get('os_version') or ''}".strip()),
                ("cs5Label", "changed"),
                ("cs5", d.get("changed")),
            ]
        )
    if event.kind == "checkpoint":
        return common + [
            ("cs4Label", "rootHash"),
            ("cs4", d.get("root_hash")),
            ("cs5Label", "keyFingerprint"),
            ("cs5", d.get("key_fingerprint")),
            ("cn2Label", "size"),
            ("cn2", d.get("size")),
            ("msg", d.get("note")),
        ]
    return common + [
        ("act", d.get("action")),
        ("suser", d.get("user")),
        ("cs1Label", "site"),
        ("cs1", d.get("site")),
        ("cs4Label", "objectType"),
        ("cs4", d.get("object_type")),
        ("cs5Label", "objectId"),
        ("cs5", d.get("object_id")),
        ("cs6Label", "auth"),
        ("cs6", d.get("auth")),
        ("reason", d.get("reason")),
        ("msg", _old_new(d)),
    ]


def _area_line(d: dict[str, Any]) -> str | None:
    if not d.get("area") and not d.get("line"):
        return None
    return f"{d.get('area') or ''}/{d.get('line') or ''}"


def _old_new(d: dict[str, Any]) -> str | None:
    parts = [f"old={d['old']}" if d.get("old") else "", f"new={d['new']}" if d.get("new") else ""]
    text = "\n".join(p for p in parts if p)
    return text or None


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def format_event(event: Event, controller: str = "-") -> str:
    """One CEF line (no trailing newline, no syslog header)."""
    head = "|".join(
        [
            "CEF:0",
            header_escape(VENDOR),
            header_escape(PRODUCT),
            header_escape(__version__),
            header_escape(class_id(event)[:1023]),
            header_escape(name(event)[:MAX_NAME]),
            str(event.severity),
        ]
    )
    pairs = [
        f"{k}={value_escape(_value(v)).rstrip(' ') or '-'}"
        for k, v in extension(event, controller)
        if v is not None and v != ""
    ]
    return f"{head}|{' '.join(pairs)}"
