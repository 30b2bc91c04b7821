"""`run.sh`, the one script an operator runs from the stick on a Linux host (POSIX sh).

What it guarantees on the host: it uses an interpreter from a fixed list of absolute paths
(never the login shell's PATH), works in one private `mktemp -d` dir under /tmp that an EXIT
trap removes (also on Ctrl-C), runs the scanner with `-I -B` (no user site, no bytecode) and
`TMPDIR` inside that dir, and writes the log and its MAC only onto the stick. Before running,
it checks the copies it is about to run (and the wheels) against the SHA-256 in kit.json, so a
damaged stick is refused instead of scanning with half a rule set.
"""

from __future__ import annotations

import inspect
import shlex

from orchestrator.hostside import PYTHON_CANDIDATES
from orchestrator.kit import run_windows
from orchestrator.kit.registry import valid_kit_id

# The check of the stick and the report at the end are run_windows.py's own functions (the
# Windows script, a module here), run as `python3 -c` snippets: one code for both scripts.
_IMPORTS = "import hashlib, json, os, sys\n"

# The stick files run.sh checks before the scan (kit.json's `files` gives their SHA-256): the
# copies of scanner.pyz and patterns.zip, kit.key and the wheels. Single-quoted in the script.
_VERIFY = (
    _IMPORTS
    + inspect.getsource(run_windows.kit_damage)
    + """bad = kit_damage(sys.argv[1], sys.argv[2], ["wheels/"])
if bad:
    sys.stderr.write("plantsweep-kit: damaged or changed: %s\\n" % ", ".join(bad))
    sys.exit(1)
"""
)

# What the operator reads at the end: where the log went and its SHA-256.
_REPORT = (
    _IMPORTS
    + inspect.getsource(run_windows.report)
    + """report(sys.argv[1])
print("Unmount the stick and bring it back: plantsweep logs import <stick>")
"""
)

_TEMPLATE = r"""#!/bin/sh
# plantsweep offline kit @KIT_ID@: scan this Linux host, write the scan log onto the stick.
#
#   sh run.sh [--python /abs/path/python3] [--type quick|full|folders|asset] [--path DIR ...]
#             [other scanner options, e.g. --exclude DIR --low-impact --scan-archives]
#
# On the host it writes nothing but one private temp dir under /tmp (mktemp -d), removed on
# exit (also on Ctrl-C); the log and its MAC go to logs/ next to this script. See README.txt.
# Exit codes: 0 log written; 2 kit damaged or no temp dir; 3 bad option; 5 log not written;
# 97 no Python 3.6+; 130 interrupted; anything else: the scanner failed.
set -u
umask 077
KIT_ID='@KIT_ID@'

say() { printf 'plantsweep-kit: %s\n' "$*" >&2; }
die() { code=$1; shift; say "ERROR: $*"; exit "$code"; }
usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }

KIT_DIR=$(CDPATH= cd -- "$(dirname -- "$0")" 2>/dev/null && pwd -P) \
    || die 2 "cannot find the kit folder of $0"
for f in @REQUIRED@; do
    [ -f "$KIT_DIR/$f" ] || die 2 "$KIT_DIR/$f is missing: not a complete plantsweep kit"
done

PY=
HAVE_TYPE=no
n=$#
while [ "$n" -gt 0 ]; do
    arg=$1
    shift
    n=$((n - 1))
    case $arg in
        --python)
            [ "$n" -gt 0 ] || die 3 "--python needs a path"
            PY=$1
            shift
            n=$((n - 1)) ;;
        --python=*) PY=${arg#--python=} ;;
        @KIT_OPTIONS@)
            die 3 "$arg is set by the kit itself" ;;
        -h | --help) usage; exit 0 ;;
        --type | --type=*) HAVE_TYPE=yes; set -- "$@" "$arg" ;;
        *) set -- "$@" "$arg" ;;
    esac
done
[ "$HAVE_TYPE" = yes ] || set -- --type quick "$@"

# Python 3.6+ from absolute paths only: never the login shell's PATH or its init files.
py_ok() {
    case $1 in /*) ;; *) return 1 ;; esac
    [ -x "$1" ] || return 1
    "$1" -I -B -c 'import sys; sys.exit(0 if sys.version_info >= (3, 6) else 1)' \
        >/dev/null 2>&1
}
if [ -n "$PY" ]; then
    py_ok "$PY" || die 97 "--python $PY is not an absolute path to Python 3.6 or newer"
else
    for cand in @CANDIDATES@; do
        if py_ok "$cand"; then
            PY=$cand
            break
        fi
    done
    [ -n "$PY" ] || die 97 "no Python 3.6+ found in: @CANDIDATES@ (give one: --python PATH)"
fi

# The only place the kit writes on the host; the trap removes it however the script ends.
TMP_DIR=
cleanup() {
    cd / 2>/dev/null
    if [ -n "$TMP_DIR" ]; then
        rm -rf -- "$TMP_DIR"
        [ ! -e "$TMP_DIR" ] || say "WARNING: could not remove $TMP_DIR: remove it by hand"
    fi
}
LOG=
on_signal() {
    # The scanner stops at the same signal and still writes its partial log and MAC.
    say "interrupted${LOG:+: a partial log (complete: false) may be in $LOG}"
    exit "$1"
}
trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP
TMP_DIR=$(mktemp -d /tmp/plantsweep-kit.XXXXXXXXXX 2>/dev/null) \
    || TMP_DIR=$("$PY" -I -B -c \
        'import tempfile; print(tempfile.mkdtemp(prefix="plantsweep-kit.", dir="/tmp"))') \
    || { TMP_DIR=; die 2 "cannot create a private temp dir under /tmp"; }

# Run copies from the temp dir (the scanner unpacks patterns and the yara wheel next to
# itself), and check exactly those copies against the kit's manifest.
cp "$KIT_DIR/scanner.pyz" "$KIT_DIR/patterns.zip" "$TMP_DIR/" \
    || die 2 "cannot copy the scanner into $TMP_DIR"
"$PY" -I -B -c '@VERIFY@' "$KIT_DIR" "$TMP_DIR" \
    || die 2 "the kit on this stick is damaged or was changed: build a new one"

HOST=$(uname -n 2>/dev/null) || HOST=
SAFE=$(printf '%s' "$HOST" | tr -c 'A-Za-z0-9._-' '_')
[ -n "$SAFE" ] || SAFE=host
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$KIT_DIR/logs" || die 5 "cannot create $KIT_DIR/logs (is the stick read-only?)"
LOG=$KIT_DIR/logs/$SAFE-$STAMP.json
i=1
while [ -e "$LOG" ] || [ -e "$LOG.mac" ]; do
    i=$((i + 1))
    LOG=$KIT_DIR/logs/$SAFE-$STAMP-$i.json
done

cd "$TMP_DIR" || die 2 "cannot enter $TMP_DIR"
say "scanning $HOST with $PY (kit $KIT_ID); this can take a while"
# The scanner's one-line JSON summary is not needed: the report reads the log itself.
TMPDIR=$TMP_DIR "$PY" -I -B "$TMP_DIR/scanner.pyz" "$@" \
    --patterns "$TMP_DIR/patterns.zip" --wheel-dir "$KIT_DIR/wheels" \
    --out "$LOG" --log-mac-key "$KIT_DIR/kit.key" --scan-id "$KIT_ID/$SAFE/$STAMP" >/dev/null
rc=$?
[ "$rc" -eq 0 ] || die "$rc" "the scanner stopped with exit code $rc (see above)"
"$PY" -I -B -c '@REPORT@' "$LOG"
exit 0
"""


def _kit_options() -> str:
    """The case pattern of the options the kit sets itself (`--out | --out=* | ...`)."""
    patterns = [f"{option} | {option}=*" for option in run_windows.KIT_OPTIONS]
    return " \\\n        | ".join(patterns)


def render(kit_id: str) -> str:
    """The script for one kit (its id is fixed in it, for the scan id and messages)."""
    if not valid_kit_id(kit_id):
        raise ValueError(f"bad kit id {kit_id!r}")
    for name, code in (("verify", _VERIFY), ("report", _REPORT)):
        if "'" in code:
            raise ValueError(f"the {name} snippet must not hold a single quote")
    return (
        _TEMPLATE.replace("@KIT_ID@", kit_id)
        .replace("@CANDIDATES@", " ".join(shlex.quote(c) for c in PYTHON_CANDIDATES))
        .replace("@REQUIRED@", " ".join(run_windows.REQUIRED))
        .replace("@KIT_OPTIONS@", _kit_options())
        .replace("@VERIFY@", _VERIFY.strip("\n"))
        .replace("@REPORT@", _REPORT.strip("\n"))
    )
