"""What the controller hands to a scan and gets back, so work done once is not done again.

Three gzip files, all optional (see the README, "Fleet verdict cache" and "--since-last"):

- ``--verdicts FILE`` (in): the fleet's YARA verdicts, ``{"format": 1, "rules_id": ...,
  "libyara": ..., "clean": [sha256...], "matched": {sha256: [match...]}, "path_clean":
  [key...], "path_matched": {key: [match...]}}``. Used only if ``rules_id`` and ``libyara``
  equal this scan's. A file whose SHA-256 is listed is not matched by the content rules
  again; its path rules (those using external variables) run unless the same bytes were
  already matched with the very same external values (``path_key``: same file name, path,
  extension, type and owner, as on identical HMIs). Hash and filename IOCs run on every
  file.
- ``--since FILE`` (in): the host's previous scan with the same patterns and options,
  ``{"format": 1, "patterns_id": ..., "options": {...}, "files": [[path, size, mtime_ns, inode,
  sha256], ...], "findings": [finding, ...]}``. A file with the same path, size, mtime, inode
  and SHA-256 is not matched at all: its previous findings are carried over.
- ``--files-out FILE`` (out): one JSON line per scanned file, ``[path, size, mtime_ns, inode,
  sha256, state]``, after a header line ``{"format": 1, "rules_id", "libyara", "patterns_id",
  "options"}``. ``state`` is ``clean`` or ``matched`` (content rules ran), ``cached`` (verdict
  known: from --verdicts or an earlier file with the same bytes), ``unchanged`` (carried over
  by --since), or ``unchecked`` (content rules did not run: no YARA, the quick-scan type
  filter, or the match failed). With path rules the line goes on with ``path_key, pstate``
  (the same states, for the path rules). The controller builds the next --verdicts and
  --since files from it; ``unchecked`` files never become ``clean`` verdicts.
"""

import gzip
import hashlib
import json
import threading

from agentless_scanner.patterns import content_id, file_sha256

FORMAT = 1
#: Clean verdicts a scan remembers for its own duplicates (about 150 bytes each).
SCAN_MEMO_MAX = 20000


def rules_id(yara_files):
    """Identity of the YARA rule set (``patterns.content_id`` of the rule files).

    The controller computes the same value over the same pattern folder."""
    return _files_id(yara_files)


def patterns_id(files):
    """Identity of the whole pattern set (YARA, hash and filename IOCs)."""
    return _files_id(files)


def _files_id(files):
    return content_id((rel, file_sha256(path)) for rel, path in files)


def _read_json_gz(path):
    with gzip.open(path, "rb") as fh:
        return json.loads(fh.read().decode("utf-8"))


class Verdicts(object):
    """YARA verdicts: of the content rules by SHA-256, of the path rules by ``path_key``
    (SHA-256 and every external variable: the same bytes at the same path, same owner).

    Filled from --verdicts and, during the scan, by every file matched, so a second file
    with the same bytes on the same host is not matched by the content rules again.
    Thread-safe enough: a set/dict insert is atomic under the GIL, and two threads that
    match the same new content at once both compute the same verdict."""

    def __init__(self, clean=(), matched=None, path_clean=(), path_matched=None):
        # From --verdicts (the fleet): content by SHA-256, path rules by path_key.
        self.fleet = _Book(clean, matched)
        self.fleet_path = _Book(path_clean, path_matched)
        # Learned during this scan: later files with the same bytes reuse them. Bounded, so
        # the scanner's memory does not grow with the number of files. (A path verdict is
        # never needed twice in one scan: each path is scanned once; the controller learns
        # them from --files-out.)
        self.scan = _Book(limit=SCAN_MEMO_MAX)
        self.scan_path = _Book(limit=0)
        self.loaded = len(self.fleet) + len(self.fleet_path)
        self.hits = 0  # files whose content verdict came from the fleet
        self.path_hits = 0  # files whose path verdict came from the fleet
        self.duplicates = 0  # files whose content verdict came from an earlier file here

    def get(self, sha256):
        """``(matches, "fleet"|"scan")`` of a known content verdict (matches empty if clean),
        or ``(None, None)``."""
        for book, origin in ((self.fleet, "fleet"), (self.scan, "scan")):
            found = book.get(sha256)
            if found is not None:
                return found, origin
        return None, None

    def put(self, sha256, matches):
        self.scan.put(sha256, matches)

    def get_path(self, key):
        for book, origin in ((self.fleet_path, "fleet"), (self.scan_path, "scan")):
            found = book.get(key)
            if found is not None:
                return found, origin
        return None, None

    def put_path(self, key, matches):
        self.scan_path.put(key, matches)


class _Book(object):
    def __init__(self, clean=(), matched=None, limit=None):
        self.clean = set(clean)
        self.matched = dict(matched or {})
        self.limit = limit

    def __len__(self):
        return len(self.clean) + len(self.matched)

    def get(self, key):
        if key in self.matched:
            return self.matched[key]
        if key in self.clean:
            return []
        return None

    def put(self, key, matches):
        if matches:
            self.matched[key] = matches
        elif self.limit is None or len(self.clean) < self.limit:
            self.clean.add(key)


def path_key(sha256, externals, names):
    """Key of a path-rule verdict: the bytes and every external variable's value."""
    text = "\0".join([sha256] + [externals[name] for name in names])
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def load_verdicts(path, expected_rules_id, libyara):
    """(Verdicts or None, reason it is not used or None)."""
    try:
        data = _read_json_gz(path)
    except (OSError, ValueError, EOFError) as exc:
        return None, "verdict cache unreadable: %s" % exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None, "verdict cache has an unknown format"
    if data.get("rules_id") != expected_rules_id:
        return None, "verdict cache is for other rules"
    if data.get("libyara") != libyara:
        return None, "verdict cache is from libyara %s, this scan uses %s" % (
            data.get("libyara"),
            libyara,
        )
    verdicts = Verdicts(
        data.get("clean") or (),
        data.get("matched") or {},
        data.get("path_clean") or (),
        data.get("path_matched") or {},
    )
    return verdicts, None


class Previous(object):
    """The host's previous scan (--since): unchanged files and their findings."""

    def __init__(self, files, findings):
        self.files = dict((entry[0], tuple(entry[1:5])) for entry in files)
        self.findings = {}
        for finding in findings:
            self.findings.setdefault(finding.get("path"), []).append(finding)
        self.unchanged = 0

    def carried_over(self, shown, size, mtime_ns, inode, sha256):
        """The previous findings of an unchanged file (a list), or None if it changed."""
        if self.files.get(shown) != (size, mtime_ns, inode, sha256):
            return None
        return [dict(f) for f in self.findings.get(shown, ())]


def load_previous(path, expected_patterns_id, options):
    """(Previous or None, reason it is not used or None)."""
    try:
        data = _read_json_gz(path)
    except (OSError, ValueError, EOFError) as exc:
        return None, "previous scan unreadable: %s" % exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None, "previous scan has an unknown format"
    if data.get("patterns_id") != expected_patterns_id:
        return None, "previous scan used other patterns"
    if data.get("options") != options:
        return None, "previous scan used other options (%s)" % data.get("options")
    return Previous(data.get("files") or (), data.get("findings") or ()), None


class FileIndex(object):
    """Writer of --files-out (thread-safe)."""

    def __init__(self, path, header):
        # Open for the whole scan; closed by close() after the last worker ended.
        self._fh = gzip.open(path, "wt", encoding="utf-8", compresslevel=1)  # noqa: SIM115
        self._lock = threading.Lock()
        self._pending = []
        header = dict(header, format=FORMAT)
        self._fh.write(json.dumps(header, sort_keys=True) + "\n")

    def add(self, shown, size, mtime_ns, inode, sha256, state, pkey=None, pstate=None):
        # Formatted by hand: json.dumps of the whole list costs more than the rest of the
        # line's work for a file whose verdict is known. Only the path needs JSON escaping.
        line = '[%s,%d,%d,%d,"%s","%s"' % (json.dumps(shown), size, mtime_ns, inode, sha256, state)
        if pkey is not None:
            line += ',"%s","%s"' % (pkey, pstate)
        line += "]"
        with self._lock:
            # Written in batches: one gzip write per 1,000 files, not one per file.
            self._pending.append(line)
            if len(self._pending) >= 1000:
                self._flush()

    def _flush(self):
        if self._pending:
            self._fh.write("\n".join(self._pending) + "\n")
            self._pending = []

    def close(self):
        with self._lock:
            self._flush()
            self._fh.close()
