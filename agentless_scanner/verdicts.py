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
  (the same states, for the path rules), unless both verdicts were ``cached``: the
  controller learns nothing from such a path key. The controller builds the next --verdicts
  and --since files from it; ``unchecked`` files never become ``clean`` verdicts.
"""

import collections
import gzip
import hashlib
import json
import threading

from agentless_scanner.patterns import content_id, file_sha256

FORMAT = 1
#: json.dumps of a str, without its per-call overhead (the same function json.dumps uses
#: with its default ensure_ascii=True).
_json_str = json.encoder.encode_basestring_ascii
#: Clean verdicts a scan remembers for its own duplicates (about 150 bytes each).
SCAN_MEMO_MAX = 20000


def rules_id(yara_files, digests=None):
    """Identity of the YARA rule set (``patterns.content_id`` of the rule files).

    The controller computes the same value over the same pattern folder. ``digests``: a
    dict {path: sha256} shared with ``patterns_id`` in the same scan, so that no file is
    hashed twice."""
    return _files_id(yara_files, digests)


def patterns_id(files, digests=None):
    """Identity of the whole pattern set (YARA, hash and filename IOCs)."""
    return _files_id(files, digests)


def _files_id(files, digests=None):
    if digests is None:
        digests = {}
    entries = []
    for rel, path in files:
        digest = digests.get(path)
        if digest is None:
            digest = digests[path] = file_sha256(path)
        entries.append((rel, digest))
    return content_id(entries)


def _read_json_gz(path):
    # Read whole, then decompressed in one call: a fifth less time than reading through
    # gzip.open on Python 3.11 (the verdicts of the benchmark corpus: 0.053 s against 0.073 s).
    with open(path, "rb") as fh:
        return json.loads(gzip.decompress(fh.read()).decode("utf-8"))


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
        found = self.fleet.entries.get(sha256)
        if found is not None:
            return found or [], "fleet"
        found = self.scan.entries.get(sha256)
        if found is not None:
            return found or [], "scan"
        return None, None

    def put(self, sha256, matches):
        self.scan.put(sha256, matches)

    def get_path(self, key):
        found = self.fleet_path.entries.get(key)
        if found is not None:
            return found or [], "fleet"
        found = self.scan_path.entries.get(key)
        if found is not None:
            return found or [], "scan"
        return None, None

    def put_path(self, key, matches):
        self.scan_path.put(key, matches)


#: A clean verdict in a _Book (a matched one is its list of matches).
_CLEAN = ()


class _Book(object):
    """Verdicts by key in one dict (one lookup per file): the list of matches, or _CLEAN.
    ``limit``: at most this many clean verdicts are added by ``put``."""

    def __init__(self, clean=(), matched=None, limit=None):
        self.entries = dict.fromkeys(clean, _CLEAN)
        self.entries.update(matched or {})  # a key listed as both is matched
        self.limit = limit
        self._clean_added = 0

    def __len__(self):
        return len(self.entries)

    def put(self, key, matches):
        if matches:
            self.entries[key] = matches
        elif key not in self.entries and (self.limit is None or self._clean_added < self.limit):
            self.entries[key] = _CLEAN
            self._clean_added += 1


def path_key(sha256, externals, names):
    """Key of a path-rule verdict: the bytes and every external variable's value."""
    return path_key_of(sha256, [externals[name] for name in names])


def path_key_of(sha256, values):
    """``path_key`` from the external variables' values, in the order of its ``names``."""
    text = "\0".join((sha256,) + tuple(values))
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


class ReadAhead(object):
    """Reads and parses a gzip JSON file on a thread of its own, so that --verdicts is read
    while the rules load (both mostly without the interpreter lock). ``result()`` returns
    what ``_read_json_gz`` returns or raises what it raised."""

    def __init__(self, path):
        self._value = self._error = None
        self._thread = threading.Thread(target=self._run, args=(path,), name="read-ahead")
        self._thread.daemon = True
        self._thread.start()

    def _run(self, path):
        try:
            self._value = _read_json_gz(path)
        except Exception as exc:  # raised again by result(), in the scan's thread
            self._error = exc

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def load_verdicts(path, expected_rules_id, libyara, ahead=None):
    """(Verdicts or None, reason it is not used or None). ``ahead``: a ReadAhead of ``path``."""
    try:
        data = ahead.result() if ahead is not None else _read_json_gz(path)
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
    """Writer of --files-out (thread-safe).

    Entries are collected in batches of BATCH_LINES; a thread of its own formats, compresses
    and writes them (zlib works without the interpreter lock, so this runs beside the walk
    instead of on the walker's thread). At most QUEUED_BATCHES wait. A write error is raised
    by the next ``add`` and by ``close``."""

    BATCH_LINES = 1000
    QUEUED_BATCHES = 8

    def __init__(self, path, header):
        # Open for the whole scan; closed by close() after the last worker ended.
        self._fh = gzip.open(path, "wt", encoding="utf-8", compresslevel=1)  # noqa: SIM115
        self._lock = threading.Lock()
        self._pending = []
        self._cond = threading.Condition()
        self._batches = collections.deque()
        self._closing = False
        self._failed = None
        header = dict(header, format=FORMAT)
        self._fh.write(json.dumps(header, sort_keys=True) + "\n")
        self._writer = threading.Thread(target=self._write_batches, name="files-out")
        self._writer.daemon = True
        self._writer.start()

    def add(self, shown, size, mtime_ns, inode, sha256, state, pkey=None, pstate=None):
        if state == "cached" and pstate == "cached":
            # Both verdicts came from the cache: the controller learns nothing from the path
            # key, which would be a third of the line (and of the time to compress it).
            pkey = pstate = None
        # The line is formatted by the writer thread (see _lines).
        with self._lock:
            self._pending.append((shown, size, mtime_ns, inode, sha256, state, pkey, pstate))
            if len(self._pending) >= self.BATCH_LINES:
                self._hand_over()

    @staticmethod
    def _lines(batch):
        """The text of a batch of entries, one JSON line each. Formatted by hand: json.dumps
        of the whole list costs more than the rest of the line's work for a file whose
        verdict is known. Only the path needs JSON escaping."""
        lines = []
        for shown, size, mtime_ns, inode, sha256, state, pkey, pstate in batch:
            if pkey is None:
                line = '[%s,%d,%d,%d,"%s","%s"]' % (
                    _json_str(shown),
                    size,
                    mtime_ns,
                    inode,
                    sha256,
                    state,
                )
            else:
                line = '[%s,%d,%d,%d,"%s","%s","%s","%s"]' % (
                    _json_str(shown),
                    size,
                    mtime_ns,
                    inode,
                    sha256,
                    state,
                    pkey,
                    pstate,
                )
            lines.append(line)
        lines.append("")
        return "\n".join(lines)

    def _hand_over(self):
        """Queue the pending lines for the writer thread (with self._lock held)."""
        batch, self._pending = self._pending, []
        with self._cond:
            while self._failed is None and len(self._batches) >= self.QUEUED_BATCHES:
                self._cond.wait()
            if self._failed is not None:
                raise self._failed
            self._batches.append(batch)
            self._cond.notify_all()

    def _write_batches(self):
        while True:
            with self._cond:
                while not self._batches and not self._closing:
                    self._cond.wait()
                if not self._batches:
                    return
                batch = self._batches.popleft()
                self._cond.notify_all()
            try:
                self._fh.write(self._lines(batch))
            except Exception as exc:  # disk full...: raised in the scan's threads
                with self._cond:
                    self._failed = exc
                    self._batches.clear()
                    self._cond.notify_all()
                return

    def close(self):
        try:
            with self._lock:
                if self._pending:
                    self._hand_over()
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._writer.join()
            self._fh.close()
        if self._failed is not None:
            raise self._failed
