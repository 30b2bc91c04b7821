"""Optional YARA engine: yara-python from a shipped wheel, else from the interpreter.

Order of attempts:

1. ``--wheel-dir DIR`` (or ``wheels/`` next to the zipapp): the best yara-python wheel for
   this interpreter and platform (``wheels.select_wheel``) is unpacked with ``zipfile`` into
   a fresh directory inside the scanner's own temp dir and prepended to ``sys.path``. When
   the scanner does not run from a zipapp there is no own temp dir, and a private
   ``tempfile.mkdtemp()`` directory is used instead. Either way the scratch directory is
   removed again at the end of the run (``Yara.cleanup``).
2. ``import yara`` from the interpreter's own site-packages (a distribution package).
3. Otherwise YARA is unavailable: ``reason`` says why, and the scan goes on with hash IOCs.

Rules: every ``*.yar``/``*.yara`` file is compiled together, each file in its own namespace
(its relative path), with ``includes`` disabled (a bundle must be self-contained). If that
fails, each file is compiled alone to find the broken ones; those are reported as pattern
errors with the file name, and the remaining files are compiled together. The external
variables ``filename``, ``filepath``, ``extension``, ``filetype`` and ``owner`` are defined
as empty strings at compile time and set per file at match time (LOKI/THOR conventions:
``extension`` includes the dot and is lower case, ``filetype`` is a short magic-number label
such as ``EXE`` or ``ELF``).

Matching uses ``match(data=...)`` on the bytes that were already read for hashing, so each
file is read once, YARA sees exactly the hashed bytes, and YARA never opens a path itself
(no symlink or FIFO surprises). Memory is bounded by ``--max-size``.
"""

import os
import shutil
import sys
import tempfile
import zipfile

from agentless_scanner import wheels

EXTERNALS = ("filename", "filepath", "extension", "filetype", "owner")
MATCH_TIMEOUT_S = 60

# (offset, magic, label). Labels follow the THOR/LOKI ``filetype`` values used in public
# rule sets (for example signature-base uses "EXE", "ELF", "MACH-O", "RTF", "MDMP").
MAGIC = (
    (0, b"MZ", "EXE"),
    (0, b"\x7fELF", "ELF"),
    (0, b"\xfe\xed\xfa\xce", "MACH-O"),
    (0, b"\xfe\xed\xfa\xcf", "MACH-O"),
    (0, b"\xce\xfa\xed\xfe", "MACH-O"),
    (0, b"\xcf\xfa\xed\xfe", "MACH-O"),
    (0, b"\xca\xfe\xba\xbe", "MACH-O"),
    (0, b"{\\rtf", "RTF"),
    (0, b"MDMP", "MDMP"),
    (0, b"PK\x03\x04", "ZIP"),
    (0, b"%PDF", "PDF"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "OLE"),
    (0, b"#!", "SCRIPT"),
)


def file_type(head):
    """Short type label from the first bytes of a file ('' if unknown)."""
    for offset, magic, label in MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return label
    return ""


class Yara(object):
    """State of the YARA engine for one run."""

    def __init__(self):
        self.module = None
        self.available = False
        self.version = None
        self.libyara = None
        self.reason = None
        self.source = None  # "wheel" | "interpreter"
        self.wheel = None
        self.scratch = None
        self.rules = None
        self.rule_count = 0

    def as_log(self):
        return {
            "available": self.available,
            "version": self.version,
            "libyara": self.libyara,
            "source": self.source,
            "wheel": self.wheel,
            "rules_loaded": self.rule_count,
            "reason": self.reason,
        }

    def cleanup(self):
        """Remove the scratch directory the wheel was unpacked into (best effort)."""
        if self.scratch and os.path.isdir(self.scratch):
            shutil.rmtree(self.scratch, ignore_errors=True)
        removed = not (self.scratch and os.path.exists(self.scratch))
        if self.scratch in sys.path and removed:
            sys.path.remove(self.scratch)
        return removed


def _safe_members(archive):
    for info in archive.infolist():
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
            raise ValueError("unsafe member name in wheel: %r" % name)
    return archive.infolist()


def _make_scratch(scratch_parent):
    if scratch_parent:
        return tempfile.mkdtemp(prefix="yara-wheel-", dir=scratch_parent)
    return tempfile.mkdtemp(prefix="plantsweep-yara-")


def _unpack(wheel_path, target):
    with zipfile.ZipFile(wheel_path) as archive:
        archive.extractall(target, members=_safe_members(archive))


def _import_yara():
    import yara

    return yara


def load_yara(wheel_dir, scratch_parent, want=True):
    """Find, unpack and import yara-python. Never raises; see ``Yara.reason``."""
    engine = Yara()
    if not want:
        engine.reason = "not used for this scan type"
        return engine
    reasons = []
    if wheel_dir:
        if not os.path.isdir(wheel_dir):
            reasons.append("wheel dir %s does not exist" % wheel_dir)
        else:
            machine, libc, libc_version = wheels.host_platform()
            try:
                names = sorted(os.listdir(wheel_dir))
            except OSError as exc:
                names = []
                reasons.append("cannot list wheel dir %s: %s" % (wheel_dir, exc.strerror))
            chosen, why = wheels.select_wheel(
                names, sys.version_info[:2], machine, libc, libc_version
            )
            if chosen is None:
                reasons.append(why)
            else:
                try:
                    engine.scratch = _make_scratch(scratch_parent)
                    _unpack(os.path.join(wheel_dir, chosen), engine.scratch)
                    sys.path.insert(0, engine.scratch)
                    module = _import_yara()
                    engine.module = module
                    engine.source = "wheel"
                    engine.wheel = chosen
                except Exception as exc:  # ImportError, OSError, BadZipFile, ValueError
                    reasons.append(
                        "wheel %s could not be imported: %s: %s" % (chosen, type(exc).__name__, exc)
                    )
                    if engine.scratch in sys.path:
                        sys.path.remove(engine.scratch)
                    sys.modules.pop("yara", None)
    else:
        reasons.append("no wheel dir given")
    if engine.module is None:
        try:
            engine.module = _import_yara()
            engine.source = "interpreter"
        except Exception as exc:
            reasons.append(
                "no yara module in this interpreter (%s: %s)" % (type(exc).__name__, exc)
            )
    if engine.module is None:
        engine.reason = "; ".join(reasons)
        return engine
    engine.available = True
    engine.version = getattr(engine.module, "__version__", None)
    engine.libyara = getattr(engine.module, "YARA_VERSION", None)
    if reasons and engine.source == "interpreter":
        engine.reason = "using the interpreter's yara module: " + "; ".join(reasons)
    return engine


def _count_rules(rules):
    try:
        return sum(1 for _ in rules)
    except TypeError:
        return 0


def compile_rules(engine, patterns):
    """Compile ``patterns.yara_files`` into ``engine.rules``; errors go to ``patterns``."""
    if not engine.available or not patterns.yara_files:
        return
    yara = engine.module
    externals = dict((name, "") for name in EXTERNALS)
    files = dict(patterns.yara_files)
    try:
        engine.rules = yara.compile(filepaths=files, externals=externals, includes=False)
    except Exception:
        good = {}
        for rel, path in sorted(files.items()):
            try:
                yara.compile(filepaths={rel: path}, externals=externals, includes=False)
                good[rel] = path
            except Exception as exc:
                patterns.error(rel, "YARA compile error: %s" % exc)
        if good:
            try:
                engine.rules = yara.compile(filepaths=good, externals=externals, includes=False)
            except Exception as exc:
                for rel in sorted(good):
                    patterns.error(rel, "YARA compile error (compiled together): %s" % exc)
                engine.rules = None
    if engine.rules is not None:
        engine.rule_count = _count_rules(engine.rules)
    patterns.yara_rules = engine.rule_count


def match(engine, data, externals, timeout):
    """Run the compiled rules on ``data``. Returns [(rule, namespace, tags, meta)]."""
    matches = engine.rules.match(data=data, externals=externals, timeout=int(max(1, timeout)))
    return [(m.rule, m.namespace, list(m.tags), dict(m.meta)) for m in matches]
