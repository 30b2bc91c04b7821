"""IBM QRadar LEEF 2.0: `LEEF:2.0|plantsweep|plantsweep|VERSION|EventID|^|key=value^key=value`.

LEEF defines no escaping: QRadar splits the attributes on the delimiter character and takes a
custom property as `key=([^<delimiter>]+)`. IBM's advice is a delimiter absent from the data.
We go one step further so no value can ever split or end a line: in values `\\` -> `\\\\`,
newline -> `\\n`, CR -> `\\r`, TAB -> `\\t`, and the delimiter itself and other control
characters -> `\\xHH` (hex, as the header writes a hex delimiter). `=` needs nothing (only the
first `=` of a pair splits). The header fields escape `|` as `\\|` and `\\` as `\\\\` (like
CEF). Time is `devTime` in epoch milliseconds, which needs no `devTimeFormat`.

    line = format_event(event, delimiter="^")
"""

from __future__ import annotations

import re
from typing import Any

from orchestrator import __version__
from orchestrator.errors import UsageError
from orchestrator.siem.cef import class_id
from orchestrator.siem.events import Event, epoch_ms

VENDOR = PRODUCT = "plantsweep"


def parse_delimiter(text: str) -> str:
    """'^', 'x5E', '0x5E', 'tab' -> the character."""
    raw = text.strip()
    if raw.lower() == "tab":
        return "\t"
    if len(raw) == 1 and raw not in "|=\\\r\n" and raw.isprintable():
        return raw
    hexpart = raw[2:] if raw.lower().startswith("0x") else raw[1:] if raw[:1] in "xX" else ""
    if 1 <= len(hexpart) <= 4 and all(c in "0123456789abcdefABCDEF" for c in hexpart):
        char = chr(int(hexpart, 16))
        if char not in "|=\\\r\n":
            return char
    raise UsageError(f"not a LEEF delimiter: {text!r} (one character such as ^, or x5E, x09)")


def header_delimiter(delimiter: str) -> str:
    """How the header names the delimiter: the character itself when printable, else xHH."""
    if delimiter.isprintable() and delimiter != " ":
        return delimiter
    return f"x{ord(delimiter):02X}"


_OTHER_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def header_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def value_escape(value: str, delimiter: str) -> str:
    text = (
        value.replace("\\", "\\\\")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    if delimiter != "\t":
        text = text.replace(delimiter, f"\\x{ord(delimiter):02X}")
    # Other control characters: hex, like the delimiter (syslog receivers rewrite them).
    return _OTHER_CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02X}", text)


def attributes(event: Event, controller: str) -> list[tuple[str, Any]]:
    d = event.data
    pairs: list[tuple[str, Any]] = [
        ("devTime", epoch_ms(event.time)),
        ("sev", max(1, event.severity)),
        ("cat", event.kind),
        ("eventId", event.event_id),
        ("auditSeq", event.seq),
        ("controller", controller),
    ]
    if event.kind in ("finding", "scan", "asset"):
        pairs += [
            ("resource", d.get("host")),
            ("identHostName", d.get("host")),
            ("site", d.get("site")),
            ("area", d.get("area")),
            ("line", d.get("line")),
            ("scanId", d.get("scan_id")),
        ]
    if event.kind == "finding":
        pairs += [
            ("filePath", d.get("path")),
            ("fileHash", d.get("sha256")),
            ("rule", d.get("rule")),
            ("engine", d.get("engine")),
            ("level", d.get("level")),
            ("score", d.get("score")),
            ("scanAction", d.get("action")),
        ]
    elif event.kind == "scan":
        pairs += [
            ("scanType", d.get("scan_type")),
            ("scanAction", d.get("action")),
            ("complete", d.get("complete")),
            ("started", epoch_ms(d["started"])),
            ("files", d.get("files")),
            ("findings", d.get("findings")),
            ("maxLevel", d.get("max_level")),
            ("errors", d.get("errors")),
            ("patterns", d.get("bundle_name")),
            ("patternsVersion", d.get("bundle_version")),
        ]
    elif event.kind == "asset":
        pairs += [
            ("change", d.get("change")),
            ("changed", d.get("changed")),
            ("osName", d.get("os_name")),
            ("osVersion", d.get("os_version")),
        ]
    elif event.kind == "checkpoint":
        pairs += [
            ("size", d.get("size")),
            ("rootHash", d.get("root_hash")),
            ("keyFingerprint", d.get("key_fingerprint")),
            ("note", d.get("note")),
        ]
    else:
        pairs += [
            ("usrName", d.get("user")),
            ("userFullName", d.get("user_name")),
            ("auth", d.get("auth")),
            ("auditAction", d.get("action")),
            ("objectType", d.get("object_type")),
            ("objectId", d.get("object_id")),
            ("site", d.get("site")),
            ("reason", d.get("reason")),
            ("oldValue", d.get("old")),
            ("newValue", d.get("new")),
        ]
    return pairs


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def format_event(event: Event, controller: str = "-", delimiter: str = "^") -> str:
    """One LEEF 2.0 line (no trailing newline, no syslog header)."""
    head = "|".join(
        [
            "LEEF:2.0",
            header_escape(VENDOR),
            header_escape(PRODUCT),
            header_escape(__version__),
            header_escape(class_id(event)[:255]),
            header_delimiter(delimiter),
        ]
    )
    body = delimiter.join(
        f"{k}={value_escape(_value(v), delimiter)}"
        for k, v in attributes(event, controller)
        if v is not None and v != ""
    )
    return f"{head}|{body}"
