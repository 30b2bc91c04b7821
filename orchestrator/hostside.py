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

TEMP_PREFIX = "plantsweep-"

# Lists the temp parent and $HOME (to prove later that nothing else was written), then makes the
# private temp dir the controller named (and journaled) beforehand: mode 0700, created
# atomically, refused if anything already has that name. Only cheap imports: this runs first.
_PROBE = r"""
import json, os, sys
d = sys.argv[1]
parent = os.path.dirname(d)
def ls(p):
    try:
        return sorted(os.listdir(p))
    except OSError:
        return None
home = os.path.expanduser('~')
before = {parent: ls(parent), home: ls(home)}
if sys.version_info < (3, 6):
    sys.stderr.write('python %d.%d is too old: the scanner needs 3.6+\n' % sys.version_info[:2])
    sys.exit(98)
try:
    os.mkdir(d, 0o700)
except OSError as exc:
    sys.stderr.write('cannot create the temp dir %s: %s\n' % (d, exc.strerror))
    sys.exit(99)
try:
    libc = os.confstr('CS_GNU_LIBC_VERSION') or ''
except (ValueError, OSError, AttributeError):
    libc = ''
u = os.uname()
print(json.dumps({'python': sys.executable, 'version': list(sys.version_info[:3]),
                  'machine': u.machine, 'system': u.sysname, 'libc': libc,
                  'temp_dir': d, 'home': home, 'before': before}))
"""

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


def probe_command(interpreter: str | None, temp_dir: str) -> str:
    """Find the interpreter, list, and make the private temp dir: one round trip."""
    return _find_python(interpreter) + f'exec "$PY" {_python(_PROBE)} {shlex.quote(temp_dir)}'


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
