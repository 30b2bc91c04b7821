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
import mmap
import os
import threading
import time

from agentless_scanner import archives, filetypes, scoring, yara_engine
from agentless_scanner import verdicts as verdicts_mod
from agentless_scanner.scanlog import path_fields
from agentless_scanner.timeutil import iso_utc
from agentless_scanner.walker import DeadlineReached

CHUNK_SIZE = 1 << 20
MAX_FINDINGS = 10000


class TooLarge(Exception):
    pass


class FileData(object):
    __slots__ = (
        "size",
        "sha256",
        "sha1",
        "md5",
        "data",
        "head",
        "changed",
        "container_sha256",
        "reread",
    )

    def __init__(self):
        self.size = 0
        self.sha256 = self.sha1 = self.md5 = None
        self.data = None
        self.head = b""
        self.changed = None
        self.container_sha256 = None
        self.reread = None  # reads the file again for SHA-1/MD5 when its bytes were not kept


def _md5():
    """hashlib.md5, or None where FIPS mode forbids it."""
    try:
        return hashlib.md5()
    except ValueError:
        try:
            return hashlib.new("md5", usedforsecurity=False)
        except (TypeError, ValueError):
            return None


_buffers = threading.local()
#: os.readv reads into a buffer without a FileIO object per file (POSIX; not on Windows).
_readv = getattr(os, "readv", None)


#: With verdicts to reuse, files larger than this are hashed before their bytes are kept.
HASH_FIRST_MIN = 1 << 20
#: Files up to this size are read into the thread's reused buffer; a larger file gets a buffer
#: of its own, freed when the file is done (see _buffer).
KEEP_BUFFER_MAX = 4 << 20


def _buffer(size):
    """A bytearray of at least ``size`` bytes: this thread's reused one for files up to
    KEEP_BUFFER_MAX, else a new one that is not kept.

    Reusing saves an allocation, a zero-fill and the page faults per file. Not keeping the
    large ones matters for the peak: a kept 94 MiB buffer (the largest file of the benchmark
    corpus) stayed resident while libyara's scan state for the next large file came on top
    of it (peak 217 MiB against 187 MiB on the first 10,000 files; measured). Large files are
    few (92 of 77,238 in the corpus), so their allocations cost little. They are anonymous
    memory maps, not bytearrays: the allocator would keep freed large blocks in its heap
    (glibc raises its mmap threshold after each free) and the process would stay that big."""
    if size > KEEP_BUFFER_MAX:
        return mmap.mmap(-1, size)
    buf = getattr(_buffers, "buf", None)
    if buf is None or len(buf) < size:
        # A new object, not a resize: views of the old one may still be alive.
        _buffers.buf = None
        buf = _buffers.buf = bytearray(max(size, 1 << 20))
    return buf


def read_file(fd, st, max_size, keep_data, deadline_at=None, readinto=None, all_digests=True):
    """Read ``fd`` to EOF in CHUNK_SIZE pieces and hash it; keep the bytes if ``keep_data``.

    Memory: with ``keep_data`` this thread's reused buffer, at least the file's size (see
    ``_buffer``), else a reused 1 MiB buffer.
    ``data`` is a memoryview of the bytes read, valid until this thread reads the next file.

    Raises TooLarge if more than ``max_size`` bytes arrive (the file grew), DeadlineReached
    if the deadline passes mid-file, OSError on read errors. ``changed`` says why the
    result may not match the file any more (size or mtime changed while reading).
    """
    use_readv = readinto is None and _readv is not None
    if readinto is None and not use_readv:
        readinto = io.FileIO(fd, "r", closefd=False).readinto
    # SHA-1 and MD5 cost more than SHA-256 together: when the bytes are kept they are
    # computed later, only for findings (see add_digests), unless IOCs of that kind exist.
    sha256 = hashlib.sha256()
    sha1, md5 = (hashlib.sha1(), _md5()) if all_digests else (None, None)
    buf = _buffer(max(1, min(st.st_size, max_size)) if keep_data else CHUNK_SIZE)
    view = memoryview(buf)
    result = FileData()
    total = 0
    # Most files: one read into the reused buffer, shorter than a chunk, is the whole file
    # (the loop below does the same in more steps).
    whole = use_readv and keep_data and st.st_size < CHUNK_SIZE
    if whole:
        if deadline_at is not None and time.monotonic() >= deadline_at:
            raise DeadlineReached()
        count = _readv(fd, (view[:CHUNK_SIZE],))
        if count < CHUNK_SIZE:
            if count > max_size:
                raise TooLarge(count)
            chunk = view[:count]
            result.head = bytes(chunk[: filetypes.HEAD_SIZE])
            sha256.update(chunk)
            if sha1 is not None:
                sha1.update(chunk)
            if md5 is not None:
                md5.update(chunk)
            total = count
        else:  # it grew to a chunk or more since it was opened: read it again, in chunks
            os.lseek(fd, 0, os.SEEK_SET)
            whole = False
    while not whole:
        if deadline_at is not None and time.monotonic() >= deadline_at:
            raise DeadlineReached()
        probed = 0
        if keep_data:
            if total == len(buf):
                # Full: most files end exactly here. Probe with one byte before growing.
                probe = bytearray(1)
                if not (_readv(fd, (probe,)) if use_readv else readinto(memoryview(probe))):
                    break
                # The file grew while we read it: a bigger buffer of its own (a copy, since
                # the reused buffer may not be resized).
                bigger = bytearray(len(buf) + CHUNK_SIZE)
                bigger[:total] = view[:total]
                view.release()
                buf, view = bigger, memoryview(bigger)
                buf[total] = probe[0]
                probed = 1
            target = view[total + probed : min(len(buf), total + CHUNK_SIZE)]
        else:
            target = view
        count = (_readv(fd, (target,)) if use_readv else readinto(target)) + probed
        if not count:
            break
        with view[total : total + count] if keep_data else target[:count] as chunk:
            if not total:
                result.head = bytes(chunk[: filetypes.HEAD_SIZE])
            total += count
            if total > max_size:
                raise TooLarge(total)
            sha256.update(chunk)
            if sha1 is not None:
                sha1.update(chunk)
            if md5 is not None:
                md5.update(chunk)
        short = count - probed < len(target)
        if keep_data:
            target.release()  # so the buffer can grow if the file does
        if short:
            # A short read of a regular file is its end (a file that grows meanwhile is
            # caught by the fstat below): no second read just to see 0 bytes.
            break
    after = os.fstat(fd)
    if total != st.st_size or after.st_size != st.st_size or after.st_mtime_ns != st.st_mtime_ns:
        reasons = []
        if total != st.st_size:
            reasons.append("read %d bytes, size was %d at open" % (total, st.st_size))
        if after.st_size != st.st_size:
            reasons.append("size changed from %d to %d while reading" % (st.st_size, after.st_size))
        if after.st_mtime_ns != st.st_mtime_ns:
            reasons.append("modified while reading")
        result.changed = "; ".join(reasons)
    result.size = total
    result.sha256 = sha256.hexdigest()
    if sha1 is not None:
        result.sha1 = sha1.hexdigest()
    if md5 is not None:
        result.md5 = md5.hexdigest()
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
        algos = set(ioc["algo"] for ioc in patterns.hashes.values())
        self.need_all_digests = bool(algos & {"sha1", "md5"})
        self.findings = []
        self.findings_omitted = 0
        self._owners = {}
        self._lock = threading.Lock()
        self.content_rules = yara.content_rules if yara is not None else None
        # Content rules exist (run through the combined set when it is loaded).
        self.has_content = yara is not None and yara.content_count > 0
        self.path_rules = yara.path_rules if yara is not None else None
        self.all_rules = yara.all_rules if yara is not None else None
        self.use_yara = self.has_content or self.path_rules is not None
        # No hash or filename IOCs: only YARA can give a file a finding (see _known_clean).
        self._plain = not patterns.hashes and not patterns.filename_iocs
        # stage may do the lookups of _needs_matching itself (see there).
        self._lookup_inline = self.has_content and yara_engine.EXTERNALS == _EXTERNAL_NAMES
        # stage_small may take its short way: verdicts to reuse, and nothing that needs more
        # than a file's bytes, SHA-256 and verdicts (the options do not change once set).
        self._small_fast = bool(
            self._lookup_inline
            and self._plain
            and options.verdicts is not None
            and options.verdicts.loaded
            and options.previous is None
            and not options.type_filter
            and options.archive_limits is None
            and options.throttle is None
            and options.readinto is None
            and _readv is not None
        )

    def owner(self, uid):
        found = self._owners.get(uid)
        if found is not None:
            return found
        if uid not in self._owners:
            try:
                import pwd

                self._owners[uid] = pwd.getpwuid(uid).pw_name
            except (ImportError, KeyError):
                self._owners[uid] = "" if os.name == "nt" else str(uid)
        return self._owners[uid]

    # -- one file ------------------------------------------------------------------------

    def __call__(self, fd, path, st):
        # With verdicts or a previous scan to reuse, large files are hashed first (see stage).
        verdicts, previous = self.options.verdicts, self.options.previous
        reusing = bool(verdicts is not None and verdicts.loaded) or previous is not None
        staged = self.stage(fd, path, st, hash_first=reusing)
        if staged is not None:
            self.finish(staged)

    def stage_small(self, fd, path, st):
        """``stage(fd, path, st, copy=True)`` of a file smaller than CHUNK_SIZE, in fewer steps
        for the usual file of a scan with verdicts to reuse: read in one call and hashed; if
        both its YARA verdicts are known and clean, and nothing else can give it a finding
        (``_small_fast``), it is recorded as ``_record_known_clean`` records it. Any other
        file goes on as in ``stage``, and a file that changed while read is read again by it.

        This is the walker's own work for most files of a second host (pool.py), and the
        walker sets the pace there: measured on the benchmark corpus, see the README."""
        if not self._small_fast or st.st_size > self.max_size:
            return self.stage(fd, path, st, copy=True)
        deadline_at = self.deadline_at
        if deadline_at is not None and time.monotonic() >= deadline_at:
            return self.stage(fd, path, st, copy=True)  # records it as stopped
        view = getattr(_buffers, "small", None)
        if view is None:
            view = _buffers.small = memoryview(bytearray(CHUNK_SIZE))  # this thread's
        try:
            count = _readv(fd, (view,))
            after = os.fstat(fd)
        except OSError as exc:
            self.recorder.error(path, "read-error", "cannot read: %s" % (exc.strerror or exc))
            return None
        if (
            count != st.st_size
            or count == CHUNK_SIZE
            or after.st_size != count
            or after.st_mtime_ns != st.st_mtime_ns
        ):
            os.lseek(fd, 0, os.SEEK_SET)
            return self.stage(fd, path, st, copy=True)
        chunk = view[:count]
        sha256 = hashlib.sha256(chunk).hexdigest()
        verdicts = self.options.verdicts
        content_known, origin = verdicts.get(sha256)
        shown = _shown(path)
        pkey = path_origin = None
        clean = content_known == []
        if clean and self.path_rules is not None:
            owner = self._owners.get(st.st_uid)
            if owner is None:
                owner = self.owner(st.st_uid)
            base = shown.replace("\\", "/").rsplit("/", 1)[-1]
            values = (base, shown, _extension(base), yara_engine.file_type(chunk), owner)
            pkey = verdicts_mod.path_key_of(sha256, values)  # in _EXTERNAL_NAMES order
            path_known, path_origin = verdicts.get_path(pkey)
            clean = path_known == []
        if not clean:
            data = FileData()
            data.size = count
            data.sha256 = sha256
            data.head = bytes(chunk[: filetypes.HEAD_SIZE])
            data.data = bytes(chunk)
            return self._staged(fd, path, st, data, True, False, False)
        self._record_known_clean(st, shown, count, sha256, origin, pkey, path_origin, True)
        return None

    def stage(self, fd, path, st, copy=False, hash_first=False, counted=False):
        """Read, hash and look up one file. Returns None when the file is done (no YARA left to
        run: its verdicts are known, or it needs none), else what ``finish`` needs; with
        ``copy`` the bytes are copied out of this thread's reused buffer for another thread.
        (A worker thread only gets files that need YARA: see pool.py.)"""
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
        # With verdicts to reuse, a large file is first only hashed, in chunks: most are
        # known and clean, and then their bytes are never needed (no large buffer, no page
        # faults). One that still needs YARA is read a second time, whole (stage again).
        hash_only = hash_first and keep and st.st_size > HASH_FIRST_MIN
        try:
            data = read_file(
                fd,
                st,
                self.max_size,
                keep and not hash_only,
                self.deadline_at,
                self.options.readinto,
                self.need_all_digests or not keep,
            )
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
        return self._staged(fd, path, st, data, copy, hash_only, counted)

    def _staged(self, fd, path, st, data, copy, hash_only, counted):
        """``stage`` once the file is read and hashed into ``data``."""
        if not counted:
            with self._lock:
                self.files_scanned += 1
                self.bytes_scanned += data.size
        if data.changed:
            self.recorder.note(
                path, "changed-during-scan", "hashed what was read: %s" % data.changed
            )
        shown = _shown(path)
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
        owner = self._owners.get(st.st_uid)
        if owner is None:
            owner = self.owner(st.st_uid)
        options = self.options
        if options.type_filter:
            name = shown.replace("\\", "/").rsplit("/", 1)[-1]
            wanted = self._yara_wanted(path, name, data.head)
        else:
            wanted = True  # what _yara_wanted says without the filter, in fewer steps
        if self._lookup_inline and wanted and options.archive_limits is None:
            # _needs_matching and _known_clean in fewer steps (the lookups of _lookups, the
            # key of _path_key, the same results), for the usual scan: content rules, no
            # archives to open.
            verdicts = options.verdicts
            content_known, origin = verdicts.get(data.sha256)
            pkey = path_known = path_origin = None
            if self.path_rules is not None:
                base = shown.replace("\\", "/").rsplit("/", 1)[-1]
                values = (
                    base,
                    shown,
                    _extension(base),
                    yara_engine.file_type(data.head),
                    owner,
                )  # _external_values
                pkey = verdicts_mod.path_key_of(data.sha256, values)
                path_known, path_origin = verdicts.get_path(pkey)
            if self._plain and content_known == [] and (pkey is None or path_known == []):
                self._record_known_clean(
                    st, shown, data.size, data.sha256, origin, pkey, path_origin
                )
                return None
            file_info = {"shown": shown, "owner": owner, "mtime": st.st_mtime}
            if pkey is not None:
                file_info["pkey"] = pkey
            file_info["known"] = (content_known, origin, pkey, path_known, path_origin)
            needs = content_known is None or (pkey is not None and path_known is None)
        else:
            file_info = {
                "shown": shown,
                "owner": owner,
                "mtime": st.st_mtime,  # formatted only for a finding
            }
            needs = self._needs_matching(file_info, data, wanted)
        staged = (path, st, file_info, data, wanted)
        if not needs:
            if hash_only:
                data.reread = lambda: _digests_again(fd, data)
            if not self._known_clean(st, file_info, data, wanted):
                self.finish(staged)
            return None
        if hash_only:
            os.lseek(fd, 0, os.SEEK_SET)
            return self.stage(fd, path, st, copy, counted=True)
        if copy and data.data is not None:
            data.data = bytes(data.data)
        return staged

    def finish(self, staged):
        """Match a staged file, add its finding and its line in the file index."""
        path, st, file_info, data, wanted = staged
        state, pkey, pstate = self._scan_bytes(path, file_info, data, None, wanted)
        index = self.options.index
        if index is not None:
            shown = file_info["shown"]
            index.add(shown, data.size, st.st_mtime_ns, st.st_ino, data.sha256, state, pkey, pstate)
        if self.options.archive_limits is not None and data.data is not None:
            self._scan_archive(path, file_info, data)

    def _known_clean(self, st, file_info, data, wanted):
        """``finish`` in fewer steps for the most common file with verdicts to reuse: both
        YARA verdicts known and clean, and no hash IOC, filename IOC or archive that could
        still give it a finding. Returns False (nothing done) for any other file.

        The outcome is the one ``finish`` gives: no finding, the same counters and the same
        line in the file index."""
        known = file_info.get("known")
        if known is None or not wanted or not self._plain:
            return False
        if self.options.archive_limits is not None:
            return False
        content_known, origin, pkey, path_known, path_origin = known
        if content_known != [] or (pkey is not None and path_known != []):
            return False
        self._record_known_clean(
            st, file_info["shown"], data.size, data.sha256, origin, pkey, path_origin
        )
        return True

    def _record_known_clean(
        self, st, shown, size, sha256, origin, pkey, path_origin, uncounted=False
    ):
        """What ``finish`` records for a file whose YARA verdicts are all known and clean
        and that nothing else can give a finding: the counters and its line in the index.
        ``uncounted``: the file is not in files_scanned and bytes_scanned yet."""
        verdicts = self.options.verdicts
        with self._lock:
            if uncounted:
                self.files_scanned += 1
                self.bytes_scanned += size
            if origin == "fleet":
                verdicts.hits += 1
            else:
                verdicts.duplicates += 1
            if pkey is not None and path_origin == "fleet":
                verdicts.path_hits += 1
        index = self.options.index
        if index is not None:
            index.add(
                shown,
                size,
                st.st_mtime_ns,
                st.st_ino,
                sha256,
                "cached",
                pkey,
                None if pkey is None else "cached",
            )

    def _needs_matching(self, file_info, data, wanted):
        """Whether YARA must run on the file (or inside it, for a zip). The lookups are kept
        in ``file_info`` for ``_yara_verdicts``."""
        if self.options.archive_limits is not None and archives.is_zip(data.head):
            return True
        if not (wanted and self.use_yara):
            return False
        known = self._lookups(file_info, data, None, None)
        file_info["known"] = known
        content_known, _origin, pkey, path_known, _path_origin = known
        if self.has_content and content_known is None:
            return True
        return pkey is not None and path_known is None

    def _lookups(self, file_info, data, member, externals):
        """``(content matches, origin, path key, path matches, origin)`` known so far."""
        if member is None and "known" in file_info:
            return file_info["known"]
        verdicts = self.options.verdicts
        content_known, origin = None, None
        if self.has_content:
            content_known, origin = verdicts.get(data.sha256)
        pkey, path_known, path_origin = None, None, None
        if self.path_rules is not None:
            pkey = self._path_key(file_info, data, member, externals)
            path_known, path_origin = verdicts.get_path(pkey)
        return content_known, origin, pkey, path_known, path_origin

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
        """Match one file's (or zip member's) bytes; add its finding.

        Returns the index states ``(content state, path key, path state)``."""
        matches = self._hash_matches(data)
        state, pkey, pstate = "unchecked", None, None
        if use_yara and self.use_yara:
            externals = self._externals(file_info, data, member)
            found, state, pkey, pstate = self._yara_verdicts(
                path, data, externals, file_info, member
            )
            matches.extend(found)
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
        return state, pkey, pstate

    def _yara_verdicts(self, path, data, externals, file_info, member):
        """YARA matches of one file, from the verdicts where known (see verdicts.Verdicts).

        Returns ``(matches, content state, path key, path state)``."""
        verdicts = self.options.verdicts
        known = self._lookups(file_info, data, member, externals)
        content_known, origin, pkey, path_known, path_origin = known
        if content_known is None and self.all_rules is not None and path_known is None:
            # Nothing known: one pass with every rule, split by scope afterwards.
            found = self._yara(path, self.all_rules, data.data, externals, None)
            if found is None:
                return [], "unchecked", pkey, "unchecked"
            content = [m for m in found if m["scope"] == "content"]
            on_path = [m for m in found if m["scope"] == "path"]
            verdicts.put(data.sha256, content)
            verdicts.put_path(pkey, on_path)
            return found, _state(content), pkey, _state(on_path)
        matches, state, pstate = [], "unchecked", None
        if content_known is not None:
            with self._lock:
                if origin == "fleet":
                    verdicts.hits += 1
                else:
                    verdicts.duplicates += 1
            matches.extend(dict(m) for m in content_known)
            state = "cached"
        elif self.has_content:
            # The content set alone, or the combined set's content-scope matches.
            rules = self.content_rules or self.all_rules
            found = self._yara(
                path, rules, data.data, externals, "content" if self.content_rules else None
            )
            if found is not None:
                found = [m for m in found if m["scope"] == "content"]
                verdicts.put(data.sha256, found)
                matches.extend(found)
                state = _state(found)
        if pkey is not None:
            if path_known is not None:
                if path_origin == "fleet":
                    with self._lock:
                        verdicts.path_hits += 1
                matches.extend(dict(m) for m in path_known)
                pstate = "cached"
            else:
                found = self._yara(path, self.path_rules, data.data, externals, "path")
                pstate = "unchecked" if found is None else _state(found)
                if found is not None:
                    verdicts.put_path(pkey, found)
                    matches.extend(found)
        return matches, state, pkey, pstate

    def _hash_matches(self, data):
        matches = []
        if self.need_all_digests:
            add_digests(data)
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

    def _path_key(self, file_info, data, member, externals=None):
        """The path-verdict key of a file (remembered for the file itself: the walker's
        lookup and the match that may follow need the same one)."""
        if member is None and "pkey" in file_info:
            return file_info["pkey"]
        if externals is None and (member is not None or "externals" not in file_info):
            # The values alone: the dict is built only if YARA runs (see _externals).
            values = self._external_values(file_info, data, member)
            if yara_engine.EXTERNALS != _EXTERNAL_NAMES:
                named = _named_externals(values)
                values = [named[name] for name in yara_engine.EXTERNALS]
        else:
            externals = externals or self._externals(file_info, data, member)
            values = [externals[name] for name in yara_engine.EXTERNALS]
        key = verdicts_mod.path_key_of(data.sha256, values)
        if member is None:
            file_info["pkey"] = key
        return key

    def _externals(self, file_info, data, member):
        if member is None and "externals" in file_info:
            return file_info["externals"]
        externals = _named_externals(self._external_values(file_info, data, member))
        if member is None:
            file_info["externals"] = externals
        return externals

    def _external_values(self, file_info, data, member):
        """The external variables' values, in _EXTERNAL_NAMES order."""
        shown = file_info["shown"]
        if member:
            shown = shown + "!" + member
        base = shown.replace("\\", "/").rsplit("/", 1)[-1]
        return (
            base,
            shown,
            _extension(base),
            yara_engine.file_type(data.head),
            file_info["owner"],
        )

    def _yara(self, path, rules, data, externals, scope):
        """Matches of one rule set, or None if the match failed (recorded as an error).

        ``scope`` None: the combined set, each match's scope found from its namespace."""
        if rules is None:
            return []
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
                "scope": scope or self._scope_of(namespace),
            }
            if isinstance(meta.get("description"), str):
                match["description"] = meta["description"]
            if meta:
                match["meta"] = meta
            if tags:
                match["tags"] = tags
            matches.append(match)
        return matches

    def _scope_of(self, namespace):
        return "path" if namespace in self.yara.path_namespaces else "content"

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
        add_digests(data)
        finding = path_fields(path)
        finding.update(
            {
                "size": data.size,
                "mtime": iso_utc(file_info["mtime"]),
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


#: The order of FileScanner._external_values.
_EXTERNAL_NAMES = ("filename", "filepath", "extension", "filetype", "owner")


def _named_externals(values):
    """The external variables as a dict, from values in _EXTERNAL_NAMES order."""
    filename, filepath, extension, filetype, owner = values
    return {
        "filename": filename,
        "filepath": filepath,
        "extension": extension,
        "filetype": filetype,
        "owner": owner,
    }


def _extension(base):
    """``os.path.splitext(base)[1].lower()`` of a name without path separators, in fewer
    steps: from the last dot, unless only dots come before it (".bashrc" has none)."""
    dot = base.rfind(".")
    if dot > 0 and base[:dot].lstrip("."):
        return base[dot:].lower()
    return ""


def _shown(path):
    """``path_fields(path)["path"]``, without building the dict for a UTF-8 bytes path."""
    if type(path) is bytes:
        try:
            return path.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return path_fields(path)["path"]


def _state(matches):
    return "matched" if matches else "clean"


def _digests_again(fd, data):
    """(SHA-1, MD5) of the file behind ``fd``, read again from the start in chunks; a file
    that changed since its first read is noted in ``data.changed``."""
    os.lseek(fd, 0, os.SEEK_SET)
    again = read_file(fd, os.fstat(fd), 1 << 62, False)
    if again.sha256 != data.sha256:
        note = "changed between its two reads (SHA-1 and MD5 are of the second)"
        data.changed = "; ".join(filter(None, (data.changed, note)))
    return again.sha1, again.md5


def add_digests(data):
    """Fill in SHA-1 and MD5 of a FileData (for a finding): from its bytes if they were kept,
    else by reading the file again (``reread``)."""
    if data.sha1 is None and data.data is None and data.reread is not None:
        data.sha1, data.md5 = data.reread()
    if data.sha1 is None and data.data is not None:
        data.sha1 = hashlib.sha1(data.data).hexdigest()
        md5 = _md5()
        if md5 is not None:
            md5.update(data.data)
            data.md5 = md5.hexdigest()


def read_bytes(data):
    """FileData of bytes already in memory (a zip member)."""
    result = FileData()
    result.size = len(data)
    result.sha256 = hashlib.sha256(data).hexdigest()
    result.head = bytes(data[: filetypes.HEAD_SIZE])
    result.data = data
    return result
