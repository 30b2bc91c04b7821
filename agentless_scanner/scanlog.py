"""The scan log: path representation, the skip/error record, JSON sanitising, atomic write.

Paths. The walk works on raw bytes (POSIX) so no name is ever lost. In the log a path is
``path`` (a str). If the raw name is not valid UTF-8, ``path`` is a lossy display form in
which every undecodable byte is written as the four characters ``\\xNN`` (Python's
``backslashreplace``) and ``path_b64`` holds the exact raw bytes, base64-encoded. So:
``path_b64`` present => decode it for the real name; absent => ``path`` is exact.

The record of skips and errors. Every skipped file or directory is counted in
``stats.skipped[reason]``, every error in ``stats.errors``, every note (a file that changed
while it was read) in ``stats.notes[kind]``. The ``errors`` list shows the individual
events, capped so a hostile tree cannot blow up the log: at most 100 entries per kind, and
at most 300 errors, 600 skips and 100 notes in all; ``errors_omitted[kind]`` counts the rest.
"""

import base64
import contextlib
import json
import os
import threading

SKIPPED = "skipped"
ERROR = "error"
NOTE = "note"

PER_KIND_CAP = 100
CATEGORY_CAP = {ERROR: 300, SKIPPED: 600, NOTE: 100}

# Why a file or directory was not scanned (stats.skipped keys).
SKIP_REASONS = (
    "symlink",  # never followed
    "fifo",  # never opened (opening a FIFO can block)
    "socket",
    "char-device",  # never opened (opening a device can have side effects)
    "block-device",
    "other-type",  # door, whiteout, ... anything that is not a file or directory
    "too-large",  # bigger than --max-size (never reported as clean)
    "vanished",  # listed, then gone (or replaced) before it could be opened
    "permission-denied",
    "excluded-mount",  # a mount point of an excluded filesystem (network, removable, pseudo)
    "excluded-path",  # /proc, /sys, /dev (except /dev/shm): never descended
    "scanner-dir",  # the scanner's own temp dir, pattern dir or wheel dir
    "already-visited",  # a directory seen before (bind mount): scanned once
    "deadline",  # the file being read when the walk was stopped (deadline or signal)
)

# What went wrong (counted in stats.errors).
ERROR_KINDS = (
    "not-found",  # a --path that does not exist
    "open-error",
    "read-error",
    "list-error",  # a directory that cannot be listed (other than permission denied)
    "too-deep",  # out of file descriptors or path too long at this depth
    "yara-error",
    "yara-timeout",
    "deadline",  # --deadline reached: the log is partial
    "terminated",  # stopped by SIGTERM/SIGINT: the log is partial
    "internal-error",  # a bug: the file is skipped, the scan goes on
)

NOTE_KINDS = ("changed-during-scan", "archive")


def path_fields(raw):
    """``{"path": str}`` or ``{"path": display, "path_b64": b64}`` for a bytes/str path."""
    if isinstance(raw, str):
        try:
            raw.encode("utf-8")
            return {"path": raw}
        except UnicodeEncodeError:
            raw = raw.encode("utf-8", "surrogateescape" if os.name != "nt" else "surrogatepass")
    try:
        return {"path": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {
            "path": raw.decode("utf-8", "backslashreplace"),
            "path_b64": base64.b64encode(raw).decode("ascii"),
        }


def display_path(raw):
    """The ``path`` field alone (always valid UTF-8 text)."""
    return path_fields(raw)["path"]


class Recorder(object):
    """Counts and lists skips, errors and notes (see module docstring for the caps).

    Thread-safe: scanner worker threads record into one Recorder."""

    def __init__(self):
        self._lock = threading.Lock()
        self.skipped = {}
        self.notes = {}
        self.error_count = 0
        self.entries = []
        self.omitted = {}
        self._per_kind = {}
        self._per_category = {ERROR: 0, SKIPPED: 0, NOTE: 0}

    def _add(self, category, kind, path, message):
        key = (category, kind)
        if (
            self._per_kind.get(key, 0) >= PER_KIND_CAP
            or self._per_category[category] >= CATEGORY_CAP[category]
        ):
            self.omitted[kind] = self.omitted.get(kind, 0) + 1
            return
        self._per_kind[key] = self._per_kind.get(key, 0) + 1
        self._per_category[category] += 1
        entry = {}
        if path is not None:
            entry.update(path_fields(path))
        entry["category"] = category
        entry["kind"] = kind
        entry["message"] = message
        self.entries.append(entry)

    def skip(self, path, reason, message):
        with self._lock:
            self.skipped[reason] = self.skipped.get(reason, 0) + 1
            self._add(SKIPPED, reason, path, message)

    def error(self, path, kind, message):
        with self._lock:
            self.error_count += 1
            self._add(ERROR, kind, path, message)

    def note(self, path, kind, message):
        with self._lock:
            self.notes[kind] = self.notes.get(kind, 0) + 1
            self._add(NOTE, kind, path, message)


def _clean_str(text):
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte (surrogateescape)
            out.append("\\x%02x" % (code - 0xDC00))
        elif 0xD800 <= code <= 0xDFFF:  # any other lone surrogate
            out.append("\\u%04x" % code)
        else:
            out.append(char)
    return "".join(out)


def sanitize(value):
    """Make every string valid Unicode: an undecodable byte carried as a surrogate escape
    becomes the text ``\\xNN`` (as in paths), any other lone surrogate ``\\uNNNN``."""
    if isinstance(value, str):
        return _clean_str(value)
    if isinstance(value, dict):
        return dict((_clean_str(str(k)), sanitize(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [sanitize(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return _clean_str(str(value))


def encode_log(document):
    return (json.dumps(sanitize(document), ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def write_atomically(path, data):
    """Write ``data`` to ``path`` via a temp name in the same directory and os.replace.

    The file is created with mode 0600. Raises OSError if it cannot be written.
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
