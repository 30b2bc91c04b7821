"""One scan run: patterns -> engines -> asset info -> scope -> walk -> the log document."""

import contextlib
import hashlib
import os
import platform
import signal
import socket
import sys
import time
import traceback
import uuid

from agentless_scanner import SCHEMA_VERSION, __version__, asset, scope, yara_engine
from agentless_scanner.filescan import FileScanner
from agentless_scanner.patterns import empty_patterns, load_patterns
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


def run(args, payload, argv):
    """Run the scan described by the parsed ``args``; return the log document."""
    started = time.time()
    t0 = time.monotonic()
    deadline_at = t0 + args.deadline if args.deadline else None
    stop = _Stop()
    stop.install()
    raise_fd_limit()
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
    try:
        yara_engine.compile_rules(yara, patterns)
    except Exception as exc:
        patterns.error(None, "YARA rules could not be loaded: %s: %s" % (type(exc).__name__, exc))

    asset_info = _collect_asset()

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

    if stop.reason:
        deadline_at = 0
    scanner = FileScanner(recorder, patterns, yara, args.max_size, deadline_at)
    walker = Walker(
        recorder,
        scanner,
        plan.excluded_mountpoints(),
        plan.excluded_devs(),
        plan.scanner_dirs,
        deadline_at,
        mount_names=plan.mount_names(),
        excluded_paths=plan.user_excludes,
    )
    stop.targets.extend((scanner, walker))
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
    yara.cleanup()
    finished = time.time()

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
            "findings": len(scanner.findings) + scanner.findings_omitted,
            "findings_omitted": scanner.findings_omitted,
            "duration_s": round(time.monotonic() - t0, 3),
        },
        "findings": scanner.findings,
        "errors": recorder.entries,
        "errors_omitted": dict(sorted(recorder.omitted.items())),
        "cleanup": None,
    }
