"""MAC of a scan log written by the offline USB kit (``--log-mac-key``).

The kit carries a per-kit key in ``kit.key`` (JSON: format, kit_id, key as 64 hex digits).
After the log is on disk, the scanner writes ``<log>.mac``: HMAC-SHA256 over a fixed label,
the kit id and the exact bytes of the log. The controller, which keeps the same key in its
kit registry, recomputes it on import: a log edited on the stick, a log from another kit or
a log without its ``.mac`` is refused. The key is on the stick, so this does not stop someone
who reads it (see the kit's README).

Standard library only, Python 3.6+: the controller imports ``compute`` from here too, so both
ends use one definition.
"""

import hashlib
import hmac
import json
import re

KEY_FORMAT = "plantsweep-kit-key/1"
MAC_FORMAT = "plantsweep-log-mac/1"
MAC_SUFFIX = ".mac"
ALGORITHM = "HMAC-SHA256"
KEY_BYTES = 32
#: Kit ids are made by the controller; this also keeps them safe as file names.
KIT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_MAX_KEY_FILE = 4096


class LogMacError(Exception):
    """The key file is missing or malformed."""


def parse_key(text):
    """``(kit_id, key bytes)`` from the text of a kit key file; raises LogMacError."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise LogMacError("not JSON: %s" % exc) from None
    if not isinstance(data, dict) or data.get("format") != KEY_FORMAT:
        raise LogMacError("not a plantsweep kit key (format %s expected)" % KEY_FORMAT)
    kit_id = data.get("kit_id")
    if not isinstance(kit_id, str) or not KIT_ID_RE.match(kit_id):
        raise LogMacError("bad kit_id")
    key = data.get("key")
    if not isinstance(key, str) or not re.match(r"^[0-9a-f]{%d}$" % (2 * KEY_BYTES), key):
        raise LogMacError("key must be %d lower-case hex digits" % (2 * KEY_BYTES))
    return kit_id, bytes(bytearray.fromhex(key))


def load_key(path):
    """Read a kit key file; raises LogMacError with a short reason."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise LogMacError("cannot read %s: %s" % (path, exc.strerror or exc)) from None
    if len(raw) > _MAX_KEY_FILE:
        raise LogMacError("%s is too large for a key file" % path)
    try:
        return parse_key(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise LogMacError("%s is not UTF-8" % path) from None


def key_text(kit_id, key):
    """The content of a kit key file (the controller writes it onto the stick)."""
    return json.dumps({"format": KEY_FORMAT, "kit_id": kit_id, "key": key.hex()}) + "\n"


def compute(key, kit_id, data):
    """HMAC-SHA256 (hex) over the label, the kit id and the exact log bytes.

    NUL separators: a kit id never holds one, so no two (kit id, log) pairs share an input.
    """
    message = MAC_FORMAT.encode("ascii") + b"\0" + kit_id.encode("utf-8") + b"\0" + data
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def mac_document(key, kit_id, log_name, data):
    """Bytes of the ``.mac`` file for a log named ``log_name`` holding ``data``."""
    document = {
        "format": MAC_FORMAT,
        "algorithm": ALGORITHM,
        "kit_id": kit_id,
        "log": log_name,
        "log_sha256": hashlib.sha256(data).hexdigest(),
        "mac": compute(key, kit_id, data),
    }
    return (json.dumps(document, indent=1, sort_keys=True) + "\n").encode("utf-8")
