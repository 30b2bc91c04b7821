"""Read each file once: hash it (SHA-256, SHA-1, MD5 in 1 MiB chunks), keep the bytes for
YARA, match, and turn the matches on one file into one scored finding.

Engines per file (each match records its ``scope``):

- content (depends only on the bytes): hash IOCs and the content-only YARA rules. The YARA
  verdict may come from the fleet verdict cache (``verdicts.Verdicts``) by SHA-256.
- path (depends on where the file is): YARA rules that use external variables, filename IOCs.

With ``--since`` a file unchanged since the host's previous scan (same path, size, mtime,
inode and SHA-256) is not matched at all: its previous findings are carried over.
"""

import hashlib
import io
import os
import threading
import time

from agentless_scanner import archives, filetypes, scoring, yara_engine
from agentless_scanner.scanlog import path_fields
from agentless_scanner.timeutil import iso_utc
from agentless_scanner.walker import DeadlineReached

CHUNK_SIZE = 1 << 20
MAX_FINDINGS = 10000


class TooLarge(Exception):
    pass


class FileData(object):
    __slots__ = ("size", "sha256", "sha1", "md5", "data", "head", "changed", "container_sha256")

    def __init__(self):
        self.size = 0
        self.sha256 = self.sha1 = self.md5 = None
        self.data = None
        self.head = b""
        self.changed = None
        self.container_sha256 = None


def _md5():
    """hashlib.md5, or None where FIPS mode forbids it."""
    try:
        return hashlib.md5()
    except ValueError:
        try:
            return hashlib.new("md5", usedforsecurity=False)
        except (TypeError, ValueError):
            return None


def read_file(fd, st, max_size, keep_data, deadline_at=None, readinto=None):
    """Read ``fd`` to EOF in CHUNK_SIZE pieces and hash it; keep the bytes if ``keep_data``.

    Memory: with ``keep_data`` one buffer of the file's size (grown only if the file grows),
    else one reused 1 MiB buffer. ``data`` is a memoryview of the bytes read.

    Raises TooLarge if more than ``max_size`` bytes arrive (the file grew), DeadlineReached
    if the deadline passes mid-file, OSError on read errors. ``changed`` says why the
    result may not match the file any more (size or mtime changed while reading).
    """
    if readinto is None:
        readinto = io.FileIO(fd, "r", closefd=False).readinto
    sha256, sha1, md5 = hashlib.sha256(), hashlib.sha1(), _md5()
    buf = bytearray(max(1, min(st.st_size, max_size)) if keep_data else CHUNK_SIZE)
    view = memoryview(buf)
    result = FileData()
    total = 0
    while True:
        if deadline_at is not None and time.monotonic() >= deadline_at:
            raise DeadlineReached()
        if keep_data:
            if total == len(buf):  # the file grew while we read it
                view.release()
                buf.extend(bytes(CHUNK_SIZE))
                view = memoryview(buf)
            target = view[total : min(len(buf), total + CHUNK_SIZE)]
        else:
            target = view
        count = readinto(target)
        if not count:
            break
        with target[:count] as chunk:
            if not total:
                result.head = bytes(chunk[: filetypes.HEAD_SIZE])
            total += count
            if total > max_size:
                raise TooLarge(total)
            sha256.update(chunk)
            sha1.update(chunk)
            if md5 is not None:
                md5.update(chunk)
        if keep_data:
            target.release()  # so the buffer can grow if the file does
    after = os.fstat(fd)
    reasons = []
    if total != st.st_size:
        reasons.append("read %d bytes, size was %d at open" % (total, st.st_size))
    if after.st_size != st.st_size:
        reasons.append("size changed from %d to %d while reading" % (st.st_size, after.st_size))
    if after.st_mtime_ns != st.st_mtime_ns:
        reasons.append("modified while reading")
    result.changed = "; ".join(reasons) or None
    result.size = total
    result.sha256 = sha256.hexdigest()
    result.sha1 = sha1.hexdigest()
    result.md5 = md5.hexdigest() if md5 is not None else None
    if keep_data:
        result.data = view[:total]
    return result


class ScanOptions(object):
    """What FileScanner does beyond reading and hashing; defaults are a plain folder scan."""

    def __init__(
        self,
        max_size,
        deadline_at=None,
        readinto=None,
        type_filter=False,
        archive_limits=None,
        verdicts=None,
        previous=None,
        index=None,
        throttle=None,
    ):
        self.max_size = max_size
        self.deadline_at = deadline_at
        self.readinto = readinto
        self.type_filter = (
            type_filter  # quick scans: executables, scripts, macro documents, archives
        )
        self.archive_limits = archive_limits  # archives.Limits: scan inside zip files
        self.verdicts = verdicts  # verdicts.Verdicts of the content rules
        self.previous = previous  # verdicts.Previous (--since)
        self.index = index  # verdicts.FileIndex (--files-out)
        self.throttle = throttle  # impact.CpuLimit
        # Quick scans match every file under these folders whatever its type (startup
        # folders: cron files, systemd units and the like are persistence, not data).
        self.all_types_under = ()


class FileScanner(object):
    """The ``on_file`` callback of the walker: read, hash, match, record. Thread-safe."""

    def __init__(self, recorder, patterns, yara, options):
        self.recorder = recorder
        self.patterns = patterns
        self.yara = yara
        self.options = options
        self.max_size = options.max_size
        self.deadline_at = options.deadline_at
        self.files_scanned = 0
        self.bytes_scanned = 0
        self.members_scanned = 0
        self.type_filtered = 0  # quick scans: files hashed but not YARA-matched
        self.findings = []
        self.findings_omitted = 0
        self._owners = {}
        self._lock = threading.Lock()
        rules = (yara.content_rules, yara.path_rules) if yara is not None else (None, None)
        self.content_rules, self.path_rules = rules
        self.use_yara = self.content_rules is not None or self.path_rules is not None

    def owner(self, uid):
        if uid not in self._owners:
            try:
                import pwd

                self._owners[uid] = pwd.getpwuid(uid).pw_name
            except (ImportError, KeyError):
                self._owners[uid] = "" if os.name == "nt" else str(uid)
        return self._owners[uid]

    # -- one file ------------------------------------------------------------------------

    def __call__(self, fd, path, st):
        if self.options.throttle is not None:
            self.options.throttle.pause()
        if st.st_size > self.max_size:
            self.recorder.skip(
                path,
                "too-large",
                "%d bytes is more than --max-size %d" % (st.st_size, self.max_size),
            )
            return
        keep = self.use_yara or self.options.archive_limits is not None
        try:
            data = read_file(fd, st, self.max_size, keep, self.deadline_at, self.options.readinto)
        except TooLarge as exc:
            self.recorder.skip(
                path,
                "too-large",
                "grew past --max-size %d while reading (%d)" % (self.max_size, exc.args[0]),
            )
            return
        except DeadlineReached:
            self.recorder.skip(path, "deadline", "being read when the walk was stopped")
            raise
        except OSError as exc:
            self.recorder.error(path, "read-error", "cannot read: %s" % (exc.strerror or exc))
            return
        with self._lock:
            self.files_scanned += 1
            self.bytes_scanned += data.size
        if data.changed:
            self.recorder.note(
                path, "changed-during-scan", "hashed what was read: %s" % data.changed
            )
        shown = path_fields(path)["path"]
        index = self.options.index
        previous = self.options.previous
        if previous is not None and not data.changed:
            carried = previous.carried_over(
                shown, data.size, st.st_mtime_ns, st.st_ino, data.sha256
            )
            if carried is not None:
                with self._lock:
                    previous.unchanged += 1
                for finding in carried:
                    self._add(finding)
                if index is not None:
                    index.add(shown, data.size, st.st_mtime_ns, st.st_ino, data.sha256, "unchanged")
                return
        file_info = {
            "shown": shown,
            "owner": self.owner(st.st_uid),
            "mtime": iso_utc(st.st_mtime),
        }
        name = shown.replace("\\", "/").rsplit("/", 1)[-1]
        state = self._scan_bytes(
            path, file_info, data, None, self._yara_wanted(path, name, data.head)
        )
        if index is not None:
            index.add(shown, data.size, st.st_mtime_ns, st.st_ino, data.sha256, state)
        if self.options.archive_limits is not None and data.data is not None:
            self._scan_archive(path, file_info, data)

    def _all_types_here(self, path):
        raw = os.fsencode(path)
        return any(raw.startswith(prefix) for prefix in self.options.all_types_under)

    def _yara_wanted(self, path, name, head):
        """Quick scans run YARA only on executables, scripts, macro documents and archives
        (hashes and filename IOCs still cover every file: hashing is cheap, YARA is not)."""
        if not self.options.type_filter or self._all_types_here(path):
            return True
        if filetypes.wanted(name, head):
            return True
        with self._lock:
            self.type_filtered += 1
        return False

    def _scan_bytes(self, path, file_info, data, member, use_yara=True):
        """Match one file's (or zip member's) bytes; add its finding. Returns the index state."""
        matches = self._hash_matches(data)
        state = "unchecked"
        if use_yara and self.content_rules is not None:
            cached = None
            if self.options.verdicts is not None:
                cached = self.options.verdicts.get(data.sha256)
            if cached is not None:
                with self._lock:
                    self.options.verdicts.hits += 1
                matches.extend(dict(m) for m in cached)
                state = "cached"
            else:
                found = self._yara(
                    path,
                    self.content_rules,
                    data.data,
                    self._externals(file_info, data, member),
                    "content",
                )
                if found is not None:
                    matches.extend(found)
                    state = "matched" if found else "clean"
        if use_yara and self.path_rules is not None:
            found = self._yara(
                path, self.path_rules, data.data, self._externals(file_info, data, member), "path"
            )
            matches.extend(found or ())
        shown = file_info["shown"] + ("!" + member if member else "")
        for ioc in self.patterns.filename_iocs:
            if ioc.matches(shown):
                matches.append(
                    {
                        "engine": "filename",
                        "rule": ioc.regex.pattern,
                        "source": "%s:%d" % (ioc.source, ioc.line),
                        "description": ioc.description,
                        "score": ioc.score,
                        "scope": "path",
                    }
                )
        if matches:
            self._add(self._finding(path, file_info, data, matches, member))
        return state

    def _hash_matches(self, data):
        matches = []
        for algo in ("sha256", "sha1", "md5"):
            digest = getattr(data, algo)
            ioc = self.patterns.hashes.get(digest) if digest else None
            if ioc is not None:
                matches.append(
                    {
                        "engine": "hash",
                        "rule": "%s:%s" % (algo, digest),
                        "source": ioc["source"],
                        "description": ioc["description"],
                        "score": ioc["score"],
                        "scope": "content",
                    }
                )
        return matches

    def _externals(self, file_info, data, member):
        shown = file_info["shown"]
        if member:
            shown = shown + "!" + member
        base = shown.replace("\\", "/").rsplit("/", 1)[-1]
        return {
            "filename": base,
            "filepath": shown,
            "extension": os.path.splitext(base)[1].lower(),
            "filetype": yara_engine.file_type(data.head),
            "owner": file_info["owner"],
        }

    def _yara(self, path, rules, data, externals, scope):
        """Matches of one rule set, or None if the match failed (recorded as an error)."""
        timeout = yara_engine.MATCH_TIMEOUT_S
        if self.deadline_at is not None:
            timeout = min(timeout, max(1, self.deadline_at - time.monotonic()))
        try:
            found = yara_engine.match_rules(self.yara, rules, data, externals, timeout)
        except Exception as exc:
            timeout_error = getattr(self.yara.module, "TimeoutError", ())
            if timeout_error and isinstance(exc, timeout_error):
                self.recorder.error(
                    path, "yara-timeout", "YARA match timed out after %ds" % int(timeout)
                )
            else:
                self.recorder.error(
                    path, "yara-error", "YARA match failed: %s: %s" % (type(exc).__name__, exc)
                )
            return None
        matches = []
        for rule, namespace, tags, meta in found:
            match = {
                "engine": "yara",
                "rule": rule,
                "source": namespace,
                "score": scoring.yara_score(meta),
                "scope": scope,
            }
            if isinstance(meta.get("description"), str):
                match["description"] = meta["description"]
            if meta:
                match["meta"] = meta
            if tags:
                match["tags"] = tags
            matches.append(match)
        return matches

    # -- zip archives --------------------------------------------------------------------

    def _scan_archive(self, path, file_info, data):
        if not archives.is_zip(data.head):
            return
        for event in archives.iter_zip_members(data.data, self.options.archive_limits):
            if event.data is None:
                self.recorder.note(path, "archive", "%s: %s" % (event.name, event.problem))
                continue
            member = read_bytes(event.data)
            with self._lock:
                self.members_scanned += 1
            member.container_sha256 = data.sha256
            self._scan_bytes(path, file_info, member, event.name)

    # -- findings ------------------------------------------------------------------------

    def _finding(self, path, file_info, data, matches, member):
        matches.sort(key=lambda m: (-m["score"], m["engine"], m["rule"]))
        top = matches[0]
        score = scoring.combine([m["score"] for m in matches])
        finding = path_fields(path)
        finding.update(
            {
                "size": data.size,
                "mtime": file_info["mtime"],
                "sha256": data.sha256,
                "sha1": data.sha1,
                "md5": data.md5,
                "score": score,
                "level": scoring.level_of(score),
                "engine": top["engine"],
                "rule": top["rule"],
                "source": top["source"],
            }
        )
        if top.get("description"):
            finding["description"] = top["description"]
        finding["matches"] = matches
        if member:
            finding["archive_member"] = member
            finding["container_sha256"] = data.container_sha256
        finding["action"] = "logged"
        if data.changed:
            finding["changed_during_scan"] = data.changed
        return finding

    def _add(self, finding):
        with self._lock:
            if len(self.findings) >= MAX_FINDINGS:
                self.findings_omitted += 1
                return
            self.findings.append(finding)

    def content_verdicts(self):
        """{sha256: content matches} of the findings, for the fleet verdict cache."""
        verdicts = {}
        for finding in self.findings:
            content = [
                m for m in finding["matches"] if m["engine"] == "yara" and m["scope"] == "content"
            ]
            if content:
                verdicts[finding["sha256"]] = content
        return verdicts


def read_bytes(data):
    """FileData of bytes already in memory (a zip member)."""
    result = FileData()
    result.size = len(data)
    result.sha256 = hashlib.sha256(data).hexdigest()
    result.sha1 = hashlib.sha1(data).hexdigest()
    md5 = _md5()
    if md5 is not None:
        md5.update(data)
        result.md5 = md5.hexdigest()
    result.head = bytes(data[: filetypes.HEAD_SIZE])
    result.data = data
    return result
