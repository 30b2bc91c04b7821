"""The few commands a POSIX plant host runs for a session, built as shell strings.

Host-side logic runs under the host's own Python (3.6+), started with `-I -B` so it reads no
user site or environment and writes no bytecode: nothing lands outside our temp dir.
"""

from __future__ import annotations

import secrets
import shlex
from pathlib import PurePosixPath

# Interpreters tried in order when the inventory names none (absolute paths: we never rely on a
# login shell's PATH or init files, which on some hosts start pyenv and slow every command).
PYTHON_CANDIDATES = (
    "/usr/bin/python3",
    "/usr/libexec/platform-python",
    "/usr/local/bin/python3",
    "/usr/bin/python3.12",
    "/usr/bin/python3.11",
    "/usr/bin/python3.10",
    "/usr/bin/python3.9",
    "/usr/bin/python3.8",
    "/usr/bin/python3.7",
    "/usr/bin/python3.6",
)

NO_PYTHON_RC = 97
NO_TEMP_DIR_RC = 99

TEMP_PREFIX = "plantsweep-"

# Stops whatever still runs from the temp dir (a scanner that outlived its timeout: only
# processes whose command line names that dir), removes the dir without following symlinks out
# of it, and lists the places checked for residue.
_CLEANUP = r"""
import json, os, shutil, signal, sys, time
tmp, parent, home = sys.argv[1], sys.argv[2], sys.argv[3]
errors = []
def ours():
    found = []
    for name in os.listdir('/proc') if os.path.isdir('/proc') else []:
        if name.isdigit() and int(name) not in (os.getpid(), os.getppid()):
            try:
                with open('/proc/%s/cmdline' % name, 'rb') as fh:
                    if tmp.encode() in fh.read():
                        found.append(int(name))
            except OSError:
                pass
    return found
for sig in (signal.SIGTERM, signal.SIGKILL):
    pids = ours()
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass
    for _ in range(20):
        if not ours():
            break
        time.sleep(0.1)
def onerror(func, path, exc):
    errors.append('%s: %s' % (path, exc[1]))
if os.path.islink(tmp):
    errors.append('%s is a symlink: refused' % tmp)
elif os.path.lexists(tmp):
    shutil.rmtree(tmp, onerror=onerror)
def ls(p):
    try:
        return sorted(os.listdir(p))
    except OSError:
        return None
print(json.dumps({'removed': not os.path.lexists(tmp), 'errors': errors,
                  'after': {parent: ls(parent), home: ls(home)}}))
"""


def _python(script: str) -> str:
    return "-I -B -c " + shlex.quote(script)


def new_temp_dir(remote_tmp: str) -> str:
    """A fresh unguessable temp dir name under `remote_tmp`; the host creates it in the probe."""
    return str(PurePosixPath(remote_tmp) / (TEMP_PREFIX + secrets.token_hex(6)))


def _find_python(interpreter: str | None) -> str:
    """Shell that sets $PY to the first usable interpreter, or exits NO_PYTHON_RC."""
    candidates = (interpreter,) if interpreter else PYTHON_CANDIDATES
    missing = shlex.quote(f"no Python 3 interpreter found (tried {' '.join(candidates)})")
    return (
        "PY=''; for c in " + " ".join(shlex.quote(c) for c in candidates) + "; do "
        'if [ -x "$c" ]; then PY="$c"; break; fi; done; '
        f'if [ -z "$PY" ]; then echo {missing} >&2; exit {NO_PYTHON_RC}; fi; '
    )


def probe_command(interpreter: str | None, temp_dir: str, marker: str) -> str:
    """One round trip, shell only (no interpreter start): find the interpreter, list the temp
    parent and $HOME (to prove later that nothing else was written), make the private temp
    dir the controller named (and journaled) beforehand, mode 0700, refused if the name exists,
    and report the facts the controller needs. Sections start with `marker` lines."""
    q = shlex.quote
    parent = str(PurePosixPath(temp_dir).parent)
    m = q(marker)
    return _find_python(interpreter) + (
        f"printf '%s parent\\n' {m}; ls -A1 -- {q(parent)} 2>/dev/null; "
        f'printf \'%s home %s\\n\' {m} "$HOME"; ls -A1 -- "$HOME" 2>/dev/null; '
        f"umask 077; mkdir -m 700 -- {q(temp_dir)} || exit {NO_TEMP_DIR_RC}; "
        f'printf \'%s python %s\\n\' {m} "$PY"; "$PY" -V 2>&1; '
        f"printf '%s uname\\n' {m}; uname -sm; "
        f"printf '%s libc\\n' {m}; getconf GNU_LIBC_VERSION 2>/dev/null; "
        f"printf '%s end\\n' {m}"
    )


def quick_cleanup_command(temp_dir: str, parent: str, home: str, marker: str) -> str:
    """Remove the temp dir (rm does not follow symlinks) and list the places checked for
    residue; shell only. Used when no command can still be running from the temp dir."""
    q = shlex.quote
    m = q(marker)
    return (
        f"rm -rf -- {q(temp_dir)}; "
        f"if [ -e {q(temp_dir)} ] || [ -L {q(temp_dir)} ]; then printf '%s present\\n' {m}; fi; "
        f"printf '%s parent\\n' {m}; ls -A1 -- {q(parent)} 2>/dev/null; "
        f"printf '%s home\\n' {m}; ls -A1 -- {q(home)} 2>/dev/null; "
        f"printf '%s end\\n' {m}"
    )


def sections(output: bytes, marker: str) -> dict[str, list[str]]:
    """Split marked output into {section header: lines}; names keep undecodable bytes."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.decode("utf-8", "surrogateescape").split("\n"):
        if line.startswith(marker + " "):
            current = found.setdefault(line[len(marker) + 1 :], [])
        elif current is not None and line:
            current.append(line)
    return found


def payload_command(python: str, temp_dir: str, scanner_args: list[str]) -> str:
    """Run the scanner from inside its temp dir (it unpacks the pattern archive there)."""
    q = shlex.quote
    # TMPDIR: anything the scanner or yara might spill stays inside our temp dir.
    return f"cd {q(temp_dir)} && export TMPDIR={q(temp_dir)} && exec {q(python)} -I -B " + " ".join(
        q(a) for a in scanner_args
    )


def cleanup_command(python: str | None, temp_dir: str, parent: str, home: str) -> str:
    """Stop, remove, list. `python` None (recovery after a crash): discover it as the probe does."""
    q = shlex.quote
    args = f"{_python(_CLEANUP)} {q(temp_dir)} {q(parent)} {q(home)}"
    if python:
        return f"{q(python)} {args}"
    return _find_python(None) + f'exec "$PY" {args}'
