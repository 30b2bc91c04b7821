"""One scan run: patterns -> engines -> asset info -> scope -> walk -> the log document."""

import contextlib
import hashlib
import os
import platform
import signal
import socket
import sys
import threading
import time
import traceback
import uuid

from agentless_scanner import (
    SCHEMA_VERSION,
    __version__,
    archives,
    asset,
    impact,
    scope,
    verdicts,
    yara_engine,
)
from agentless_scanner.filescan import FileScanner, ScanOptions
from agentless_scanner.patterns import empty_patterns, load_patterns
from agentless_scanner.pool import ThreadedScan
from agentless_scanner.scanlog import ERROR, Recorder, display_path
from agentless_scanner.timeutil import iso_utc
from agentless_scanner.walker import DeadlineReached, Walker, raise_fd_limit


def own_dir(payload):
    """The scanner's private temp dir: the directory holding the zipapp (None otherwise)."""
    return os.path.dirname(os.path.abspath(payload)) if payload else None


def _sha256_file(path):
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None


def _collect_asset():
    try:
        return asset.collect()
    except Exception as exc:  # a bug in asset collection must not lose the scan
        return {
            "hostname": socket.gethostname(),
            "fqdn": None,
            "os": None,
            "architecture": platform.machine() or None,
            "interfaces": [],
            "packages": {"manager": None, "count": 0, "items": [], "reason": "failed"},
            "errors": [
                {
                    "kind": "internal-error",
                    "message": "%s: %s\n%s"
                    % (type(exc).__name__, exc, traceback.format_exc(limit=5)),
                }
            ],
        }


class _InThread(object):
    """``fn()`` run on a thread of its own; ``result()`` waits for its return value. For
    work whose result is needed only later (its exceptions must be handled by ``fn``)."""

    def __init__(self, fn, name):
        self._value = None
        self._thread = threading.Thread(target=self._run, args=(fn,), name=name)
        self._thread.daemon = True
        self._thread.start()

    def _run(self, fn):
        self._value = fn()

    def result(self):
        self._thread.join()
        return self._value


class _Stop(object):
    """SIGTERM/SIGINT stop the walk like the deadline does; the partial log is still written."""

    def __init__(self):
        self.reason = None
        self.targets = []

    def __call__(self, signum, frame):
        self.reason = "SIGTERM" if signum == getattr(signal, "SIGTERM", None) else "SIGINT"
        for target in self.targets:
            target.deadline_at = 0

    def install(self):
        for name in ("SIGTERM", "SIGINT"):
            # Not possible outside the main thread or without such a signal: then no handler.
            with contextlib.suppress(AttributeError, ValueError, OSError):
                signal.signal(getattr(signal, name), self)


def _finding_order(finding):
    # Threads finish files in any order: the log lists findings in a stable order.
    return (finding.get("path", ""), finding.get("archive_member", ""))


def _options_key(args, archive_limits):
    """Scanner options that change which findings a file can have (for --since)."""
    return {
        "max_size": args.max_size,
        "archives": archive_limits.as_log() if archive_limits is not None else None,
    }


def _compile_rules(yara, patterns):
    try:
        yara_engine.compile_rules(yara, patterns)
    except Exception as exc:
        patterns.error(None, "YARA rules could not be loaded: %s: %s" % (type(exc).__name__, exc))


def _pattern_ids(patterns):
    """``(rules_id, patterns_id)``: the identities of the YARA rule files and of the whole
    pattern set (None without them); each file is hashed once for both."""
    digests = {}
    rules_id = verdicts.rules_id(patterns.yara_files, digests) if patterns.yara_files else None
    patterns_id = verdicts.patterns_id(patterns.files, digests) if patterns.root else None
    return rules_id, patterns_id


def _scan_options(args, patterns, yara, deadline_at, ids, verdicts_ahead=None):
    """The FileScanner options and the performance record for the log."""
    work = {"threads": args.threads or impact.default_threads()}
    if args.low_impact:
        work["threads"] = args.threads or 1
        work["priority"] = impact.lower_priority()
    cpu_limit = args.cpu_limit or (impact.LOW_IMPACT_CPU_LIMIT if args.low_impact else None)
    archive_limits = None
    if args.scan_archives:
        archive_limits = archives.Limits()
        if args.archive_depth:
            archive_limits.max_depth = args.archive_depth
        if args.archive_max_size:
            archive_limits.max_member_size = args.archive_max_size
    options = ScanOptions(
        args.max_size,
        deadline_at,
        type_filter=args.scan_type == "quick" and not args.all_types,
        archive_limits=archive_limits,
        throttle=impact.CpuLimit(cpu_limit) if cpu_limit else None,
    )
    work["type_filter"] = options.type_filter
    work["archives"] = archive_limits.as_log() if archive_limits is not None else None
    rules_id, patterns_id = ids
    options_key = _options_key(args, archive_limits)
    work["rules_id"] = rules_id
    work["patterns_id"] = patterns_id
    notes = []
    options.verdicts = verdicts.Verdicts()
    if args.verdicts:
        if not yara.content_count and yara.path_rules is None:
            notes.append("verdict cache not used: no YARA rules")
        else:
            loaded, why = verdicts.load_verdicts(
                args.verdicts, rules_id, yara.libyara, verdicts_ahead
            )
            if why:
                notes.append("verdict cache not used: " + why)
            else:
                options.verdicts = loaded
                work["verdicts_loaded"] = loaded.loaded
    if args.since:
        options.previous, why = verdicts.load_previous(args.since, patterns_id, options_key)
        if why:
            notes.append("--since not used: " + why)
    if args.files_out:
        options.index = verdicts.FileIndex(
            args.files_out,
            {
                "rules_id": rules_id,
                "libyara": yara.libyara,
                "patterns_id": patterns_id,
                "options": options_key,
            },
        )
    work["notes"] = notes
    return options, work


def run(args, payload, argv):
    """Run the scan described by the parsed ``args``; return the log document."""
    started = time.time()
    t0 = time.monotonic()
    deadline_at = t0 + args.deadline if args.deadline else None
    stop = _Stop()
    stop.install()
    raise_fd_limit()
    # The fleet's verdicts are read while the patterns, the rules and the asset load.
    verdicts_ahead = verdicts.ReadAhead(args.verdicts) if args.verdicts else None
    recorder = Recorder()
    scratch_parent = own_dir(payload)

    wheel_dir = args.wheel_dir
    if (
        wheel_dir is None
        and scratch_parent
        and os.path.isdir(os.path.join(scratch_parent, "wheels"))
    ):
        wheel_dir = os.path.join(scratch_parent, "wheels")

    if args.patterns:
        patterns = load_patterns(args.patterns)
    else:
        patterns = empty_patterns()
        if args.scan_type != "asset":
            patterns.error(None, "no pattern directory given: files are hashed, not matched")

    yara = yara_engine.load_yara(wheel_dir, scratch_parent, want=args.scan_type != "asset")
    # yara.load works without the interpreter lock: the pattern files are hashed for the
    # rule ids (below) while the compiled rules load.
    compiling = _InThread(lambda: _compile_rules(yara, patterns), "rules")

    # Only the log needs the asset information: it is collected while the scan runs (its
    # name lookups may wait for a resolver).
    asset_ahead = _InThread(_collect_asset, "asset")

    scanner_paths = []
    for path, reason in (
        (scratch_parent, "scanner temp dir"),
        (args.patterns, "pattern dir"),
        (wheel_dir, "wheel dir"),
        (yara.scratch, "yara scratch dir"),
    ):
        if path:
            scanner_paths.append((os.path.abspath(path), reason))
    plan = scope.build(
        args.scan_type, args.paths, args.include_tokens, scanner_paths, excludes=args.excludes
    )
    for path, category, kind, message in plan.problems:
        if category == ERROR:
            recorder.error(os.fsencode(path) if path else None, kind, message)
        else:
            recorder.skip(os.fsencode(path) if path else None, kind, message)

    ids = _pattern_ids(patterns)
    compiling.result()
    if stop.reason:
        deadline_at = 0
    options, work = _scan_options(args, patterns, yara, deadline_at, ids, verdicts_ahead)
    options.all_types_under = tuple(
        os.path.join(os.fsencode(entry["real"]), b"")
        for entry in plan.walk_roots()
        if entry["root"].category == "startup"
    )
    scanner = FileScanner(recorder, patterns, yara, options)
    threads = work["threads"]
    # With verdicts or a previous scan to reuse, most files need no YARA: see pool.py.
    reuse = bool(options.verdicts.loaded) or options.previous is not None
    on_file = ThreadedScan(scanner, threads, recorder, stage=reuse) if threads > 1 else scanner
    work["hand_over"] = "after lookup" if reuse and threads > 1 else "whole file"
    walker = Walker(
        recorder,
        on_file,
        plan.excluded_mountpoints(),
        plan.excluded_devs(),
        plan.scanner_dirs,
        deadline_at,
        mount_names=plan.mount_names(),
        excluded_paths=plan.user_excludes,
    )
    stop.targets.extend((scanner, walker, options))
    complete = True
    roots = plan.walk_roots()
    for index, entry in enumerate(roots):
        try:
            walker.walk(
                os.fsencode(entry["real"]),
                entry["root"].max_depth,
                plan.allowed_mount(entry["real"]),
            )
            entry["log"]["status"] = "scanned"
        except DeadlineReached:
            complete = False
            if on_file is not scanner:
                on_file.close()  # the files still queued are recorded before the stop
            entry["log"]["status"] = "interrupted"
            for rest in roots[index + 1 :]:
                rest["log"]["status"] = "not-reached"
            if stop.reason:
                recorder.error(
                    None,
                    "terminated",
                    "stopped by %s after %d files: this log is partial (see "
                    "scope.roots[].status)" % (stop.reason, scanner.files_scanned),
                )
            else:
                recorder.error(
                    None,
                    "deadline",
                    "deadline of %gs reached after %d files: the walk stopped, this "
                    "log is partial (see scope.roots[].status)"
                    % (args.deadline, scanner.files_scanned),
                )
            break
        except Exception as exc:
            entry["log"]["status"] = "failed"
            recorder.error(
                os.fsencode(entry["real"]),
                "internal-error",
                "%s: %s\n%s" % (type(exc).__name__, exc, traceback.format_exc(limit=5)),
            )
    if on_file is not scanner:
        on_file.close()
    if options.index is not None:
        options.index.close()
    yara.cleanup()
    asset_info = asset_ahead.result()
    finished = time.time()
    work["cache_hits"] = options.verdicts.hits
    work["path_cache_hits"] = options.verdicts.path_hits
    work["duplicates_reused"] = options.verdicts.duplicates
    work["unchanged_since_last"] = options.previous.unchanged if options.previous else 0
    if options.throttle is not None:
        work.update(options.throttle.as_log())

    return {
        "schema_version": SCHEMA_VERSION,
        "scan_id": args.scan_id or uuid.uuid4().hex,
        "host": args.host_name or asset_info.get("hostname") or socket.gethostname(),
        "scan_type": args.scan_type,
        "action": "log-only",
        "complete": complete,
        "started": iso_utc(started, millis=True),
        "finished": iso_utc(finished, millis=True),
        "scanner": {
            "version": __version__,
            "python": platform.python_version(),
            "python_executable": display_path(sys.executable),
            "platform": sys.platform,
            "payload": display_path(os.path.basename(payload)) if payload else None,
            "payload_sha256": _sha256_file(payload) if payload else None,
            "argv": [display_path(a) for a in argv],
        },
        "patterns": patterns.as_log(),
        "engines": {
            "hash": {
                "available": True,
                "iocs": len(patterns.hashes),
                "algorithms": ["sha256", "sha1", "md5"],
            },
            "yara": yara.as_log(),
        },
        "asset": asset_info,
        "scope": scope.as_log(plan, args.include_tokens, args.max_size, args.deadline),
        "stats": {
            "files_scanned": scanner.files_scanned,
            "bytes_scanned": scanner.bytes_scanned,
            "dirs_scanned": walker.dirs_scanned,
            "skipped": dict(sorted(recorder.skipped.items())),
            "errors": recorder.error_count,
            "notes": dict(sorted(recorder.notes.items())),
            "archive_members_scanned": scanner.members_scanned,
            "yara_skipped_by_type": scanner.type_filtered,
            "findings": len(scanner.findings) + scanner.findings_omitted,
            "findings_omitted": scanner.findings_omitted,
            "duration_s": round(time.monotonic() - t0, 3),
        },
        "performance": work,
        "findings": sorted(scanner.findings, key=_finding_order),
        "errors": recorder.entries,
        "errors_omitted": dict(sorted(recorder.omitted.items())),
        "cleanup": None,
    }
