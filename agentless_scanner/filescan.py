"""Read each file once: hash it (SHA-256, SHA-1, MD5 in 1 MiB chunks), keep the bytes for
YARA, and turn hash-IOC and YARA hits into findings."""

import hashlib
import io
import os
import time

from agentless_scanner import yara_engine
from agentless_scanner.scanlog import path_fields
from agentless_scanner.timeutil import iso_utc
from agentless_scanner.walker import DeadlineReached

CHUNK_SIZE = 1 << 20
MAX_FINDINGS = 10000


class TooLarge(Exception):
    pass


class FileData(object):
    __slots__ = ("size", "sha256", "sha1", "md5", "data", "head", "changed")

    def __init__(self):
        self.size = 0
        self.sha256 = self.sha1 = self.md5 = None
        self.data = None
        self.head = b""
        self.changed = None


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
                result.head = bytes(chunk[:64])
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


class FileScanner(object):
    """The ``on_file`` callback of the walker: read, hash, match, record."""

    def __init__(self, recorder, patterns, yara, max_size, deadline_at=None, readinto=None):
        self.recorder = recorder
        self.patterns = patterns
        self.yara = yara
        self.max_size = max_size
        self.deadline_at = deadline_at
        self.readinto = readinto
        self.files_scanned = 0
        self.bytes_scanned = 0
        self.findings = []
        self.findings_omitted = 0
        self._owners = {}
        self.use_yara = bool(yara is not None and yara.rules is not None)

    def owner(self, uid):
        if uid not in self._owners:
            try:
                import pwd

                self._owners[uid] = pwd.getpwuid(uid).pw_name
            except (ImportError, KeyError):
                self._owners[uid] = "" if os.name == "nt" else str(uid)
        return self._owners[uid]

    def __call__(self, fd, path, st):
        if st.st_size > self.max_size:
            self.recorder.skip(
                path,
                "too-large",
                "%d bytes is more than --max-size %d" % (st.st_size, self.max_size),
            )
            return
        try:
            data = read_file(fd, st, self.max_size, self.use_yara, self.deadline_at, self.readinto)
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
        self.files_scanned += 1
        self.bytes_scanned += data.size
        if data.changed:
            self.recorder.note(
                path, "changed-during-scan", "hashed what was read: %s" % data.changed
            )
        hits = []
        for algo in ("sha256", "sha1", "md5"):
            digest = getattr(data, algo)
            ioc = self.patterns.hashes.get(digest) if digest else None
            if ioc is not None:
                hits.append(
                    {
                        "engine": "hash",
                        "rule": "%s:%s" % (algo, digest),
                        "source": ioc["source"],
                        "description": ioc["description"],
                    }
                )
        if self.use_yara:
            hits.extend(self._yara_hits(path, st, data))
        for hit in hits:
            self._add_finding(path, st, data, hit)

    def _yara_hits(self, path, st, data):
        shown = path_fields(path)["path"]
        base = os.path.basename(shown.replace("\\", "/"))
        externals = {
            "filename": base,
            "filepath": shown,
            "extension": os.path.splitext(base)[1].lower(),
            "filetype": yara_engine.file_type(data.head),
            "owner": self.owner(st.st_uid),
        }
        timeout = yara_engine.MATCH_TIMEOUT_S
        if self.deadline_at is not None:
            timeout = min(timeout, max(1, self.deadline_at - time.monotonic()))
        try:
            matches = yara_engine.match(self.yara, data.data, externals, timeout)
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
            return []
        hits = []
        for rule, namespace, tags, meta in matches:
            hit = {"engine": "yara", "rule": rule, "source": namespace}
            if isinstance(meta.get("description"), str):
                hit["description"] = meta["description"]
            if meta:
                hit["meta"] = meta
            if tags:
                hit["tags"] = tags
            hits.append(hit)
        return hits

    def _add_finding(self, path, st, data, hit):
        if len(self.findings) >= MAX_FINDINGS:
            self.findings_omitted += 1
            return
        finding = path_fields(path)
        finding.update(
            {
                "size": data.size,
                "mtime": iso_utc(st.st_mtime),
                "sha256": data.sha256,
                "sha1": data.sha1,
                "md5": data.md5,
            }
        )
        finding.update(hit)
        finding["action"] = "logged"
        if data.changed:
            finding["changed_during_scan"] = data.changed
        self.findings.append(finding)
