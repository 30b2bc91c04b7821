"""run_windows.py: the offline kit's scan on a Windows host. run.cmd starts it.

    run.cmd [--type quick|full|folders|asset] [--path DIR ...]
            [other scanner options, e.g. --exclude DIR --low-impact --scan-archives]

run.cmd starts this file with the kit's own Python for the host's CPU
("windows\\<platform>\\python\\python.exe -I -B run_windows.py ..."). It needs nothing of that
runtime: any Python 3.6+ runs it (the tests run it on Linux), standard library only. What it
guarantees is what run.sh guarantees on a Linux host:

- before anything runs, the copies of scanner.pyz and patterns.zip it is about to run,
  kit.key, this file and every file of the runtime folder for this CPU
  (windows/<platform>/: python/ and wheels/) are checked against kit.json's SHA-256, and a
  file in that folder that kit.json does not list is refused: a damaged stick stops with
  exit code 2 before the scan;
- one private temp dir (tempfile.mkdtemp, in the user's %TEMP%) holds the copies; the scanner
  runs from it with TMP, TEMP and TMPDIR pointing into it (the patterns and the yara wheel are
  unpacked there, nothing is installed), and it is removed however the script ends, also on
  Ctrl-C;
- the log and its MAC go to logs/ on the stick, named as run.sh names them
  (<hostname>-<UTC time>.json and .json.mac), so `plantsweep logs import` takes them as they
  are; at the end it prints where the log went and its SHA-256.

Exit codes: 0 log written; 2 kit damaged, no runtime for this CPU or no temp dir; 3 bad
option; 5 log not written; 97 no Python 3.6+; 130 Ctrl-C, 149 Ctrl-Break; anything else: the
scanner failed.

This file is also a module of the controller: run.sh runs `kit_damage` and `report` as
`python3 -c` snippets (orchestrator/kit/run_sh.py), so that both scripts check a stick and
report a log with one code. Those two functions use only hashlib, json, os and sys (imported
by the snippet) and hold no single quote (run.sh wraps the snippets in single quotes).
"""

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time

# Options the kit sets itself: refused on the command line of run.sh and run.cmd alike.
KIT_OPTIONS = ("--out", "--patterns", "--wheel-dir", "--log-mac-key", "--scan-id")
# What a kit folder must hold before anything else is looked at.
REQUIRED = ("kit.json", "kit.key", "scanner.pyz", "patterns.zip")
LOGS = "logs"

EXIT_DAMAGED = 2
EXIT_OPTION = 3
EXIT_LOG = 5
EXIT_NO_PYTHON = 97


def kit_damage(kit, tmp, checked):
    """What is wrong with the files of the kit in folder kit, by the SHA-256 in kit.json:
    an empty list when nothing is.

    scanner.pyz and patterns.zip are checked as their copies in tmp (the bytes that will run),
    kit.key on the stick, and so is every listed file that checked names: a path, or a folder
    ending in "/" (then also every file in that folder that kit.json does not list is refused).
    """
    bad = []
    try:
        with open(os.path.join(kit, "kit.json"), "rb") as fh:
            files = json.loads(fh.read().decode("utf-8"))["files"]
        folders = tuple(c for c in checked if c.endswith("/"))
        listed = set()
        for entry in files:
            rel = entry["path"]
            listed.add(rel)
            if rel in ("scanner.pyz", "patterns.zip"):
                path = os.path.join(tmp, rel)
            elif rel == "kit.key" or rel in checked or rel.startswith(folders):
                path = os.path.join(kit, *rel.split("/"))
            else:
                continue
            digest = hashlib.sha256()
            try:
                with open(path, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(chunk)
            except OSError as exc:
                bad.append("%s (%s)" % (rel, exc.strerror))
                continue
            if digest.hexdigest() != entry["sha256"]:
                bad.append(rel)
        for rel in ("scanner.pyz", "patterns.zip", "kit.key"):
            if rel not in listed:
                bad.append("%s (not listed in kit.json)" % rel)
        for folder in folders:
            top = os.path.join(kit, *folder.rstrip("/").split("/"))
            for root, dirs, names in os.walk(top):
                dirs.sort()
                for name in sorted(names):
                    rel = os.path.relpath(os.path.join(root, name), kit).replace(os.sep, "/")
                    if rel not in listed:
                        bad.append("%s (not part of the kit)" % rel)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        bad.append("kit.json (%s)" % exc)
    return bad


def report(log):
    """What the operator reads at the end: where the log went, its SHA-256 and the counts."""
    with open(log, "rb") as fh:
        data = fh.read()
    try:
        document = json.loads(data.decode("utf-8"))
        stats = document.get("stats") or {}
        complete = document.get("complete") is not False
    except ValueError:
        stats, complete = {}, False
    if complete:
        print("plantsweep kit: scan finished")
    else:
        print("plantsweep kit: scan INCOMPLETE (stopped early): the log is partial")
    print("  log:     %s" % log)
    print("  sha256:  %s" % hashlib.sha256(data).hexdigest())
    print("  mac:     %s.mac" % log)
    print(
        "  files scanned: %s, findings: %s, errors: %s"
        % (stats.get("files_scanned", "?"), stats.get("findings", "?"), stats.get("errors", "?"))
    )


class KitStop(Exception):
    """Stop with an exit code and one line for the operator."""

    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code


class Interrupted(Exception):
    """Ctrl-C (or Ctrl-Break, SIGTERM): the exit code is 128 + the signal number."""

    def __init__(self, code):
        Exception.__init__(self, code)
        self.code = code


def say(message):
    sys.stderr.write("plantsweep-kit: %s\n" % message)
    sys.stderr.flush()


def usage():
    lines = __doc__.splitlines()
    print("\n".join(lines[2:5]))


def windows_platform():
    """The kit folder for the running interpreter: run.cmd chose its python.exe by CPU."""
    return "win_amd64" if struct.calcsize("P") == 8 else "win32"


def scanner_arguments(argv):
    """The operator's options for the scanner (--type quick unless given); KitStop if an
    option is the kit's own; None for --help."""
    args = []
    have_type = False
    for arg in argv:
        name = arg.split("=", 1)[0]
        if name in KIT_OPTIONS:
            raise KitStop(EXIT_OPTION, "%s is set by the kit itself" % arg)
        if arg in ("-h", "--help"):
            return None
        if name == "--type":
            have_type = True
        args.append(arg)
    return args if have_type else ["--type", "quick"] + args


def log_path(kit):
    """A new logs/<host>-<UTC time>[-N].json on the stick, as run.sh names it: the host name
    with every byte outside A-Z a-z 0-9 . _ - made "_"."""
    try:
        host = socket.gethostname()
    except OSError:
        host = ""
    safe = re.sub(b"[^A-Za-z0-9._-]", b"_", host.encode("utf-8")).decode("ascii") or "host"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    logs = os.path.join(kit, LOGS)
    try:
        if not os.path.isdir(logs):
            os.mkdir(logs)
    except OSError as exc:
        raise KitStop(
            EXIT_LOG, "cannot create %s (is the stick read-only?): %s" % (logs, exc)
        ) from None
    path = os.path.join(logs, "%s-%s.json" % (safe, stamp))
    count = 1
    while os.path.exists(path) or os.path.exists(path + ".mac"):
        count += 1
        path = os.path.join(logs, "%s-%s-%d.json" % (safe, stamp, count))
    return host, safe, stamp, path


def _make_writable(function, path, _error):
    # Windows refuses to delete a read-only file: clear the flag and try once more.
    try:
        os.chmod(path, stat.S_IWRITE)
        function(path)
    except OSError:
        pass


def remove_temp_dir(tmp):
    """Remove the temp dir; say so if it cannot be (a file held by another program)."""
    for _attempt in range(5):
        if sys.version_info >= (3, 12):
            shutil.rmtree(tmp, onexc=_make_writable)
        else:
            shutil.rmtree(tmp, onerror=_make_writable)
        if not os.path.lexists(tmp):
            return
        time.sleep(0.5)  # an antivirus scanning the unpacked yara module lets go soon
    say("WARNING: could not remove %s: remove it by hand" % tmp)


def _interrupt(signum, frame):
    raise Interrupted(128 + signum)


def catch_signals(handler=_interrupt):
    """Ctrl-C, Ctrl-Break and SIGTERM end the script through its cleanup, not around it
    (handler SIG_IGN: while the cleanup runs, a second Ctrl-C cannot cut it short)."""
    for name in ("SIGINT", "SIGBREAK", "SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None:
            with contextlib.suppress(OSError, ValueError):
                signal.signal(number, handler)


def wait_for(process):
    """The scanner's exit code, and the interruption's (None if none). Ctrl-C reaches every
    program of the console, so the scanner stops by itself and writes its partial log; wait
    for that. Elsewhere a SIGTERM is handed on to it."""
    stopped = None
    while True:
        try:
            code = process.wait()
            return (128 - code if code < 0 else code), stopped
        except Interrupted as exc:
            stopped = stopped or exc.code
            if os.name != "nt" and exc.code != 128 + signal.SIGINT:
                with contextlib.suppress(OSError):
                    process.send_signal(exc.code - 128)


def scan(kit, argv):
    """Everything between the option check and the report; returns the exit code."""
    args = scanner_arguments(argv)
    if args is None:
        usage()
        return 0
    try:
        with open(os.path.join(kit, "kit.json"), "rb") as fh:
            manifest = json.loads(fh.read().decode("utf-8"))
        kit_id = str(manifest["kit_id"])
        paths = [str(entry["path"]) for entry in manifest["files"]]
        have = sorted(manifest.get("windows") or {}) or ["none"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KitStop(EXIT_DAMAGED, "unreadable kit.json: %s" % exc) from None
    platform = windows_platform()
    runtime = "windows/%s/" % platform
    if not any(path.startswith(runtime + "python/") for path in paths):
        raise KitStop(
            EXIT_DAMAGED,
            "this stick has no Windows runtime for %s (it has: %s): build the kit with "
            "--windows %s" % (platform, ", ".join(have), platform),
        )
    tmp = None
    log = None
    try:
        try:
            tmp = tempfile.mkdtemp(prefix="plantsweep-kit.")
        except OSError as exc:
            raise KitStop(EXIT_DAMAGED, "cannot create a private temp dir: %s" % exc) from None
        # Run copies from the temp dir (the scanner unpacks patterns and the yara wheel next
        # to itself), and check exactly those copies against the kit's manifest.
        try:
            for name in ("scanner.pyz", "patterns.zip"):
                shutil.copyfile(os.path.join(kit, name), os.path.join(tmp, name))
        except OSError as exc:
            raise KitStop(
                EXIT_DAMAGED, "cannot copy the scanner into %s: %s" % (tmp, exc)
            ) from None
        bad = kit_damage(kit, tmp, ["run_windows.py", runtime])
        if bad:
            say("damaged or changed: %s" % ", ".join(bad))
            raise KitStop(
                EXIT_DAMAGED, "the kit on this stick is damaged or was changed: build a new one"
            )
        host, safe, stamp, log = log_path(kit)
        env = dict(os.environ, TMP=tmp, TEMP=tmp, TMPDIR=tmp)
        command = [sys.executable, "-I", "-B", os.path.join(tmp, "scanner.pyz")] + args + [
            "--patterns", os.path.join(tmp, "patterns.zip"),
            "--wheel-dir", os.path.join(kit, "windows", platform, "wheels"),
            "--out", log,
            "--log-mac-key", os.path.join(kit, "kit.key"),
            "--scan-id", "%s/%s/%s" % (kit_id, safe, stamp),
        ]  # fmt: skip
        say("scanning %s with %s (kit %s); this can take a while" % (host, sys.executable, kit_id))
        # The scanner's one-line JSON summary is not needed: the report reads the log itself.
        try:
            process = subprocess.Popen(command, cwd=tmp, env=env, stdout=subprocess.DEVNULL)
        except OSError as exc:
            raise KitStop(EXIT_DAMAGED, "cannot start %s: %s" % (sys.executable, exc)) from None
        code, stopped = wait_for(process)
        if stopped:
            raise Interrupted(stopped)
        if code != 0:
            raise KitStop(code, "the scanner stopped with exit code %d (see above)" % code)
    except Interrupted:
        if log is not None:
            say("interrupted: a partial log (complete: false) may be in %s" % log)
        else:
            say("interrupted")
        raise
    finally:
        if tmp is not None:
            catch_signals(signal.SIG_IGN)
            remove_temp_dir(tmp)
    try:
        report(log)
    except OSError as exc:
        raise KitStop(EXIT_LOG, "the scanner wrote no readable log %s: %s" % (log, exc)) from None
    print(
        "Eject the stick (Safely Remove Hardware) and bring it back: plantsweep logs import <stick>"
    )
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if sys.version_info < (3, 6):
        say("ERROR: this needs Python 3.6 or newer")
        return EXIT_NO_PYTHON
    if os.name != "nt":
        os.umask(0o077)
    kit = os.path.dirname(os.path.abspath(__file__))
    catch_signals()
    try:
        for name in REQUIRED:
            if not os.path.isfile(os.path.join(kit, name)):
                raise KitStop(
                    EXIT_DAMAGED,
                    "%s is missing: not a complete plantsweep kit" % os.path.join(kit, name),
                )
        return scan(kit, argv)
    except KitStop as exc:
        say("ERROR: %s" % exc)
        return exc.code
    except Interrupted as exc:
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
