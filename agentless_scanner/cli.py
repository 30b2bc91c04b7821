"""Command line of the scanner payload.

    python3 -I -B scanner.pyz --type quick|full|folders|asset [--path P ...]
        [--patterns DIR] [--wheel-dir DIR] --out FILE [--scan-id ID] [--host-name NAME]
        [--max-size BYTES] [--deadline SECONDS] [--include-mounts TYPE,...]
        [--exclude PATH ...] [--threads N] [--low-impact] [--cpu-limit PCT]
        [--all-types] [--scan-archives [--archive-depth N] [--archive-max-size BYTES]]
        [--verdicts FILE] [--since FILE] [--files-out FILE] [--log-mac-key FILE]

Prints one JSON line to stdout at the end:
``{"out": FILE, "files_scanned": N, "findings": N, "errors": N}``.

Exit codes: 0 the log was written (with or without findings, complete or partial);
3 bad arguments; 5 the log cannot be written; 1 a scanner bug stopped the run before the
log could be written (traceback on stderr; a bug while handling one file or root is
recorded in the log as ``internal-error`` instead).

``--log-mac-key`` (the offline USB kit's ``kit.key``): once the log is written, ``OUT.mac``
gets its HMAC-SHA256 with the kit's key (see ``logmac``); exit 5 if it cannot be written.

``--deadline`` counts from the scanner's start (asset collection included), so the controller
can bound the whole run; SIGTERM/SIGINT stop the walk the same way. Either way the partial
log is written (``complete: false``).
"""

import argparse
import json
import os
import sys
import traceback

from agentless_scanner import archives, impact, logmac, mounts, scanlog
from agentless_scanner.patterns import PatternArchiveError, unpack_pattern_archive
from agentless_scanner.scanner import run

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 3
EXIT_LOG = 5

DEFAULT_MAX_SIZE = 100 * 1024 * 1024
SCAN_TYPES = ("quick", "full", "folders", "asset")


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def build_parser():
    parser = _Parser(
        prog="scanner.pyz",
        description="plantsweep scanner payload: log-only malware scan and asset inventory.",
    )
    parser.add_argument(
        "--type",
        required=True,
        choices=SCAN_TYPES,
        dest="scan_type",
        help="quick: most exposed folders; full: all local filesystems; "
        "folders: the --path values; asset: asset information only",
    )
    parser.add_argument(
        "--path",
        action="append",
        default=[],
        dest="paths",
        help="folder or file to scan (--type folders; repeatable)",
    )
    parser.add_argument(
        "--patterns",
        help="pattern directory (hash IOC lists, YARA rules), "
        "or a .zip of one, unpacked inside the scanner's own dir",
    )
    parser.add_argument(
        "--wheel-dir",
        help="directory holding yara-python wheels (default: wheels/ next to the zipapp)",
    )
    parser.add_argument("--out", required=True, help="scan log file to write (JSON)")
    parser.add_argument("--scan-id", help="scan id to record (default: random)")
    parser.add_argument("--host-name", help="host name to record (default: hostname)")
    parser.add_argument(
        "--max-size",
        type=int,
        default=DEFAULT_MAX_SIZE,
        help="skip files larger than this many bytes (default 100 MiB)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        help="stop walking this many seconds after the start; the log is then partial",
    )
    parser.add_argument(
        "--include-mounts",
        default="",
        help="comma-separated filesystem types or 'network'/'removable' "
        "to scan although excluded by default",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        dest="excludes",
        metavar="PATH",
        help="file or directory never scanned, in any scan type (repeatable)",
    )
    perf = parser.add_argument_group("speed and impact")
    perf.add_argument(
        "--threads",
        type=int,
        help="scanner threads (default: the CPUs, at most %d)" % impact.MAX_DEFAULT_THREADS,
    )
    perf.add_argument(
        "--low-impact",
        action="store_true",
        help="one thread, lowest CPU and I/O priority, --cpu-limit %d unless given"
        % impact.LOW_IMPACT_CPU_LIMIT,
    )
    perf.add_argument(
        "--cpu-limit",
        type=int,
        metavar="PCT",
        help="keep the scanner's CPU time at or below PCT%% of one CPU",
    )
    perf.add_argument(
        "--all-types",
        action="store_true",
        help="quick scan: match every file, not only executables, scripts, macro documents "
        "and archives",
    )
    perf.add_argument(
        "--scan-archives", action="store_true", help="also scan the members of zip archives"
    )
    perf.add_argument(
        "--archive-depth",
        type=int,
        help="zip archives nested deeper than this are not opened (default %d)"
        % archives.Limits().max_depth,
    )
    perf.add_argument(
        "--archive-max-size",
        type=int,
        metavar="BYTES",
        help="skip zip members larger than this uncompressed (default %d)"
        % archives.Limits().max_member_size,
    )
    cache = parser.add_argument_group("work done before (written by the controller)")
    cache.add_argument("--verdicts", metavar="FILE", help="fleet verdict cache (gzip JSON)")
    cache.add_argument("--since", metavar="FILE", help="the host's previous scan (gzip JSON)")
    cache.add_argument("--files-out", metavar="FILE", help="write the per-file index here")
    parser.add_argument(
        "--log-mac-key",
        metavar="FILE",
        help="offline kit key file: also write OUT.mac, an HMAC-SHA256 of the log with that key",
    )
    return parser


def parse_args(argv):
    args = build_parser().parse_args(argv)
    if args.scan_type == "folders" and not args.paths:
        raise UsageError("--type folders needs at least one --path")
    if args.scan_type != "folders" and args.paths:
        raise UsageError("--path is only valid with --type folders")
    if args.max_size < 0:
        raise UsageError("--max-size must be >= 0")
    if args.threads is not None and not 1 <= args.threads <= 64:
        raise UsageError("--threads must be 1-64")
    if args.cpu_limit is not None and not 1 <= args.cpu_limit <= 100:
        raise UsageError("--cpu-limit must be 1-100 (percent of one CPU)")
    for name in ("archive_depth", "archive_max_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError("--%s must be >= 1" % name.replace("_", "-"))
    for name in ("verdicts", "since"):
        value = getattr(args, name)
        if value is not None and not os.path.isfile(value):
            raise UsageError("--%s %s is not a file" % (name, value))
    if args.deadline is not None and not args.deadline > 0:
        raise UsageError("--deadline must be > 0 seconds")
    tokens = [t.strip() for t in args.include_mounts.split(",") if t.strip()]
    for token in tokens:
        if token in mounts.PSEUDO_FS or token in ("pseudo", "system-path"):
            raise UsageError("--include-mounts cannot include %r (pseudo filesystem)" % token)
        if not all(c.isalnum() or c in "._-" for c in token):
            raise UsageError("--include-mounts: bad filesystem type %r" % token)
    args.include_tokens = tokens
    if args.patterns is not None and not (
        os.path.isdir(args.patterns)
        or (args.patterns.endswith(".zip") and os.path.isfile(args.patterns))
    ):
        raise UsageError("--patterns %s is not a directory or a .zip file" % args.patterns)
    if args.scan_id is not None and not (0 < len(args.scan_id) <= 200):
        raise UsageError("--scan-id must be 1-200 characters")
    args.mac_key = None
    if args.log_mac_key is not None:
        # Read before the scan: a bad key must not cost a whole scan and leave an unproven log.
        try:
            args.mac_key = logmac.load_key(args.log_mac_key)
        except logmac.LogMacError as exc:
            raise UsageError("--log-mac-key: %s" % exc) from None
    return args


def _check_out(path):
    """Return an error message if the log file cannot be created, else None."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return "directory of --out does not exist: %s" % directory
    if os.path.isdir(path):
        return "--out is a directory: %s" % path
    if not os.access(directory, os.W_OK | os.X_OK):
        return "directory of --out is not writable: %s" % directory
    return None


def main(argv=None, payload=None):
    """Entry point. ``payload`` is the zipapp path when run from one."""
    if argv is None:
        argv = sys.argv[1:]
    try:
        args = parse_args(argv)
    except UsageError as exc:
        sys.stderr.write("scanner: error: %s\n" % exc)
        return EXIT_USAGE
    problem = _check_out(args.out)
    if problem:
        sys.stderr.write("scanner: error: %s\n" % problem)
        return EXIT_LOG
    if args.patterns and os.path.isfile(args.patterns):
        # A pattern archive that cannot be unpacked is refused, never scanned without.
        dest = os.path.join(os.path.dirname(os.path.abspath(args.patterns)), "patterns")
        try:
            args.patterns = unpack_pattern_archive(args.patterns, dest)
        except PatternArchiveError as exc:
            sys.stderr.write("scanner: error: pattern archive %s: %s\n" % (args.patterns, exc))
            return EXIT_USAGE
    try:
        document = run(args, payload, argv)
    except Exception:
        sys.stderr.write("scanner: internal error, no log written:\n" + traceback.format_exc())
        return EXIT_INTERNAL
    data = scanlog.encode_log(document)
    try:
        scanlog.write_atomically(args.out, data)
    except OSError as exc:
        sys.stderr.write("scanner: error: cannot write %s: %s\n" % (args.out, exc))
        return EXIT_LOG
    if args.mac_key is not None:
        # After the log: the MAC covers exactly the bytes that are on disk.
        kit_id, key = args.mac_key
        mac = logmac.mac_document(key, kit_id, os.path.basename(args.out), data)
        try:
            scanlog.write_atomically(args.out + logmac.MAC_SUFFIX, mac)
        except OSError as exc:
            sys.stderr.write(
                "scanner: error: log written, but not its MAC %s%s: %s\n"
                % (args.out, logmac.MAC_SUFFIX, exc)
            )
            return EXIT_LOG
    summary = {
        "out": args.out,
        "files_scanned": document["stats"]["files_scanned"],
        "findings": document["stats"]["findings"],
        "errors": document["stats"]["errors"],
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    sys.stdout.flush()
    return EXIT_OK
