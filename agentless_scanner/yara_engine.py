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

Rules come in two sets, so the controller can cache content verdicts per SHA-256:

- ``content_rules``: rule files that use none of the external variables. Their result depends
  on the bytes only. They are compiled *without* the externals, so a rule of this set cannot
  read a path: a file that ``uses_externals`` wrongly took for a content file fails to compile
  there and is moved to the path set (``compile_split``).
- ``path_rules``: rule files that mention ``filename``, ``filepath``, ``extension``,
  ``filetype`` or ``owner`` (see ``uses_externals``); compiled with the externals defined as
  empty strings and set per file at match time (LOKI/THOR conventions: ``extension`` includes
  the dot and is lower case, ``filetype`` is a short magic-number label such as ``EXE``).

Where they come from (``compile_rules``): a signed bundle built by ``plantsweep patterns
build`` carries both sets compiled on the controller (``compiled/content.yarc`` and
``compiled/path.yarc``) and its ``bundle.json`` names the libyara that compiled them. When the
loaded yara module has that same libyara they are loaded with ``yara.load()`` (no compiling on
the host). Otherwise (other libyara, a plain folder of rules, a compiled file that does not
load) every ``*.yar``/``*.yara`` file is compiled here, each file in its own namespace (its
relative path) with ``includes`` disabled, and the log says why. A file that fails to compile
is a pattern error naming the file (and the rule), never dropped silently; the others are
compiled together.

Matching uses ``match(data=...)`` on the bytes that were already read for hashing, so each
file is read once, YARA sees exactly the hashed bytes, and YARA never opens a path itself
(no symlink or FIFO surprises). Memory is bounded by ``--max-size``.
"""

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import zipfile

from agentless_scanner import wheels

EXTERNALS = ("filename", "filepath", "extension", "filetype", "owner")
MATCH_TIMEOUT_S = 60

#: The yara-python release plantsweep pins (pyproject.toml and orchestrator/payload.py use this
#: one): the controller compiles bundles with it, so hosts must load the same libyara.
YARA_PYTHON_VERSION = "4.5.1"

#: Compiled rule sets inside a bundle's pattern folder (relative POSIX paths).
COMPILED_CONTENT = "compiled/content.yarc"
COMPILED_PATH = "compiled/path.yarc"
#: Both sets compiled together (with the externals): one pass over a file whose content
#: verdict is not known yet, instead of two. ``compiled/scopes.json`` names the path set's
#: namespaces (rule files), so the matches of that one pass can be split again.
COMPILED_ALL = "compiled/all.yarc"
COMPILED_SCOPES = "compiled/scopes.json"
#: The same sets for files that are not PE executables (do not start with "MZ"), derived on
#: the controller (orchestrator/bundles/nonpe.py): without the rules that cannot match such a
#: file and, where that is proven, without ``import "pe"``, whose per-file set-up costs more
#: than the rules themselves on small files. Same namespaces and scopes as the full sets.
NON_PE_DIR = "compiled/nonpe/"
#: A file at least this large is matched with its set's one form it needs, the other form
#: released first (and loaded again from the bundle when next needed): the largest files then
#: do not sit in memory beside both compiled forms (about 30 MiB for signature-base).
SOLO_FORM_BYTES = 32 << 20


def _return_free_memory():
    """Give the heap pages freed by a released form back to the system (glibc's malloc_trim):
    without it, freed rule memory stays in the process and a reloaded form takes new pages,
    so releasing would raise the peak instead of lowering it."""
    global _malloc_trim
    if _malloc_trim is None:
        _malloc_trim = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
            except (OSError, AttributeError):
                pass  # not glibc (musl): only the peak is higher
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim = None


class RuleSet(object):
    """One compiled set in its two forms: ``full`` (any file) and ``non_pe`` (files that do
    not start with "MZ"; absent when the bundle has none). A form loaded from a bundle file can
    be released and is loaded again from that file when next needed. Callers keep the RuleSet
    and hold a form only while one match runs, so a released form is freed at once."""

    def __init__(self, module, full, full_path=None):
        self.module = module
        self._forms = {"full": full, "non_pe": None}
        self._paths = {"full": full_path, "non_pe": None}
        self._solo = {"full": 0, "non_pe": 0}  # large matches that keep this form released
        self._cond = threading.Condition()

    def add_non_pe(self, rules, path=None):
        self._forms["non_pe"], self._paths["non_pe"] = rules, path

    @property
    def has_non_pe(self):
        return self._forms["non_pe"] is not None or self._paths["non_pe"] is not None

    def form_name(self, data):
        """ "non_pe" for data that does not start with "MZ" when that form exists: both forms
        give the same matches for such data."""
        return "non_pe" if self.has_non_pe and data[:2] != b"MZ" else "full"

    def is_loaded(self, name):
        return self._forms[name] is not None

    def form(self, name):
        """The compiled rules of form ``name``, loaded again if released; waits while a large
        match keeps it released."""
        with self._cond:
            while self._solo[name]:
                self._cond.wait()
            rules = self._forms[name]
            if rules is None:
                rules = self.module.load(filepath=self._paths[name])
                self._forms[name] = rules
            return rules

    def release(self, name):
        """Drop form ``name`` from memory if it can be loaded again."""
        with self._cond:
            if self._paths[name] is not None and self._forms[name] is not None:
                self._forms[name] = None
                _return_free_memory()

    @contextlib.contextmanager
    def solo(self, name):
        """While the block runs, only form ``name`` is in memory (when the other one can be
        loaded again)."""
        other = "full" if name == "non_pe" else "non_pe"
        if self._paths[other] is None:
            yield
            return
        with self._cond:
            self._solo[other] += 1
            if self._forms[other] is not None:
                self._forms[other] = None
                _return_free_memory()
        try:
            yield
        finally:
            with self._cond:
                self._solo[other] -= 1
                self._cond.notify_all()


# A bare word naming an external variable: not a $string, #count, @offset or !length
# reference and not part of a longer identifier. Searched after comments and "text strings"
# are blanked out; regular expressions and tags are kept, so the word there also counts.
# Erring that way only moves a content rule file to the path set (slower, never wrong). The
# other way round cannot go unnoticed: the content set is compiled without the externals, so
# a file that uses one fails there with "undefined identifier" and is moved (compile_split).
_EXTERNAL_RE = re.compile(r"(?<![$#@!\w])(?:%s)(?!\w)" % "|".join(EXTERNALS))
_NOT_CODE_RE = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:[^"\\\n]|\\.)*"', re.S)
_EXTERNAL_ERROR_RE = re.compile(r'undefined identifier "(?:%s)"' % "|".join(EXTERNALS))
_RULE_RE = re.compile(r"^[ \t]*(?:(?:private|global)[ \t]+)*rule[ \t]+([A-Za-z_][A-Za-z0-9_]*)")
_ERROR_RE = re.compile(r"^(.*)\((\d+)\): (.*)$", re.S)

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


# Every magic number above starts at offset 0 and is 2, 4, 5 or 8 bytes long: one dict
# lookup per length instead of a loop over the table (this runs for every file).
_MAGIC_BY_LENGTH = {}
for _offset, _magic, _label in MAGIC:
    _MAGIC_BY_LENGTH.setdefault(len(_magic), {}).setdefault(_magic, _label)
_MAGIC_LENGTHS = sorted(_MAGIC_BY_LENGTH, reverse=True)
# Their first two bytes: most files start with none of these and need no other lookup.
_MAGIC_STARTS = frozenset(_magic[:2] for _offset, _magic, _label in MAGIC)


def file_type(head):
    """Short type label from the first bytes of a file ('' if unknown)."""
    head = bytes(head[:8])
    if head[:2] not in _MAGIC_STARTS:
        return ""
    for length in _MAGIC_LENGTHS:
        label = _MAGIC_BY_LENGTH[length].get(head[:length])
        if label is not None:
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
        self.content_rules = None  # RuleSet: files that use no external variable
        self.path_rules = None  # RuleSet: files that use filename, filepath, ...
        self.all_rules = None  # RuleSet: both sets in one (see COMPILED_ALL)
        self.path_namespaces = frozenset()  # namespaces (rule files) of the path set
        self.rules = None  # tuple of the sets above that exist (None if neither)
        self.rule_count = 0  # content + path
        self.content_count = 0
        self.path_count = 0
        self.compiled_from = None  # "bundle" | "source"
        self.compile_note = None  # why the rules were compiled from source
        self.non_pe_count = None  # rules of the non-PE content + path sets, if loaded

    def as_log(self):
        return {
            "available": self.available,
            "version": self.version,
            "libyara": self.libyara,
            "source": self.source,
            "wheel": self.wheel,
            "rules_loaded": self.rule_count,
            "compiled_from": self.compiled_from,
            "compile_note": self.compile_note,
            "content_rules": self.content_count,
            "path_rules": self.path_count,
            "single_pass": self.all_rules is not None,
            "non_pe_rules": self.non_pe_count,
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


def _select_pinned(names, python_version, machine, libc, libc_version):
    """The pinned yara-python wheel if the folder has one for this host, else the best other
    (its libyara differs, so a bundle's compiled rules are then compiled again here)."""
    pinned = [
        n for n in names if (wheels.parse_wheel_name(n) or {}).get("version") == YARA_PYTHON_VERSION
    ]
    if pinned:
        chosen, why = wheels.select_wheel(pinned, python_version, machine, libc, libc_version)
        if chosen is not None:
            return chosen, why
    return wheels.select_wheel(names, python_version, machine, libc, libc_version)


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
            chosen, why = _select_pinned(names, sys.version_info[:2], machine, libc, libc_version)
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


# -- which set a rule file belongs to (also used by the controller's bundle build) -----------


def uses_externals(source):
    """True if a rule file's text (str or bytes) may use an external variable."""
    if isinstance(source, bytes):
        source = source.decode("latin-1")
    return _EXTERNAL_RE.search(_NOT_CODE_RE.sub(" ", source)) is not None


def split_by_scope(files, read=None):
    """Split ``[(rel, path)]`` into ``(content_files, path_files, unreadable)``.

    ``unreadable`` is ``[(rel, message)]``. ``read(path) -> bytes`` defaults to reading the file.
    """
    content, path, unreadable = [], [], []
    for rel, filepath in files:
        try:
            if read is not None:
                data = read(filepath)
            else:
                with open(filepath, "rb") as fh:
                    data = fh.read()
        except (IOError, OSError) as exc:
            unreadable.append((rel, "cannot read: %s" % (exc.strerror or exc)))
            continue
        (path if uses_externals(data) else content).append((rel, filepath))
    return content, path, unreadable


def rule_at_line(source, line):
    """Name of the rule declared at or before ``line`` (1-based) of ``source``, or None.

    Line 0 is what libyara reports for an error at the end of the file: the last rule.
    """
    if isinstance(source, bytes):
        source = source.decode("latin-1")
    name = None
    for number, text in enumerate(source.splitlines(), 1):
        if line and number > line:
            break
        m = _RULE_RE.match(text)
        if m:
            name = m.group(1)
    return name


def parse_compile_error(message):
    """``(file, line, reason)`` of a yara compile error ``"FILE(LINE): REASON"``;
    ``(None, None, message)`` if it has another shape."""
    m = _ERROR_RE.match(message)
    if not m:
        return None, None, message
    return m.group(1), int(m.group(2)), m.group(3)


def describe_place(rule, line):
    """``"rule R, line L: "`` (or the parts known) for an error message; line 0 is not shown."""
    parts = []
    if rule:
        parts.append("rule %s" % rule)
    if line:
        parts.append("line %d" % line)
    return ", ".join(parts) + ": " if parts else ""


def compile_set(yara, files, externals):
    """Compile ``[(rel, path)]`` together, one namespace per file, includes disabled.

    Returns ``(rules or None, broken)``, ``broken`` = ``[(rel, line or None, reason)]`` for
    every file that does not compile alone; the others are compiled together. Raises nothing
    for a bad rule file.
    """
    if not files:
        return None, []
    kwargs = {"includes": False}
    if externals:
        kwargs["externals"] = dict(externals)
    # yara.Error: SyntaxError and the other compile failures (a bug still propagates).
    try:
        return yara.compile(filepaths=dict(files), **kwargs), []
    except yara.Error:
        pass
    # One message names one file only: compile each file alone to find every broken one.
    good, broken = {}, []
    for rel, filepath in sorted(files):
        try:
            yara.compile(filepaths={rel: filepath}, **kwargs)
            good[rel] = filepath
        except yara.Error as exc:
            _file, line, reason = parse_compile_error(str(exc))
            broken.append((rel, line, reason))
    if not good:
        return None, broken
    try:
        return yara.compile(filepaths=good, **kwargs), broken
    except yara.Error as exc:
        reason = "compiled together with the other files: %s" % exc
        return None, broken + [(rel, None, reason) for rel in sorted(good)]


class SplitRules(object):
    """What ``compile_split`` gives: both compiled sets, the combined set, the path set's
    namespaces, and the files that did not compile or could not be read."""

    def __init__(self, content, path, combined, path_files, broken, unreadable):
        self.content = content
        self.path = path
        self.combined = combined
        self.path_files = path_files  # namespaces (relative paths) of the path set
        self.broken = broken
        self.unreadable = unreadable


def compile_split(yara, files, read=None):
    """Compile rule files ``[(rel, path)]`` into the content and the path set, and both
    together (only when both sets exist: else the one set is the combined set).

    ``broken`` is as ``compile_set`` gives it, ``unreadable`` as ``split_by_scope`` does. The
    controller's bundle build and the host's compile from source both use this, so they split
    the same way.
    """
    content_files, path_files, unreadable = split_by_scope(files, read)
    content, broken = compile_set(yara, content_files, None)
    # A file that uses an external variable after all belongs to the path set.
    moved = set(rel for rel, _line, reason in broken if _EXTERNAL_ERROR_RE.search(reason))
    if moved:
        broken = [b for b in broken if b[0] not in moved]
        path_files = sorted(path_files + [f for f in content_files if f[0] in moved])
    externals = dict((name, "") for name in EXTERNALS)
    path, more = compile_set(yara, path_files, externals)
    broken = sorted(broken + more)
    combined = None
    if content is not None and path is not None:
        left_out = set(rel for rel, _line, _reason in broken)
        good = [(rel, p) for rel, p in sorted(files) if rel not in left_out]
        combined, _again = compile_set(yara, good, externals)
    names = sorted(rel for rel, _p in path_files if rel not in set(b[0] for b in broken))
    return SplitRules(content, path, combined, names, broken, unreadable)


# -- loading the rules on the host -----------------------------------------------------------


def _bundle_libyara(root):
    """``(libyara, counts)`` from the pattern dir's bundle.json, or ``(None, None)``."""
    try:
        with open(os.path.join(root, "bundle.json"), "rb") as fh:
            data = json.loads(fh.read().decode("utf-8"))
    except (IOError, OSError, ValueError):
        return None, None
    if not isinstance(data, dict) or not isinstance(data.get("libyara"), str):
        return None, None
    counts = (data.get("content_rules"), data.get("path_rules"))
    return data["libyara"], counts


def _load_compiled(engine, root):
    """Load the bundle's compiled sets. Returns None on success, else why not.

    With ``compiled/all.yarc`` and ``compiled/scopes.json`` the combined and the path set are
    loaded (the combined set does the content set's work); else the content and path sets."""
    libyara, counts = _bundle_libyara(root)

    def there(rel):
        return os.path.isfile(os.path.join(root, *rel.split("/")))

    combined = there(COMPILED_ALL) and there(COMPILED_SCOPES)
    wanted = [COMPILED_PATH] + ([COMPILED_ALL] if combined else [COMPILED_CONTENT])
    present = [rel for rel in wanted if there(rel)]
    if not present:
        return "the pattern set has no compiled rules: compiled from source"
    if libyara is None:
        return "the pattern set does not say which libyara compiled its rules: compiled from source"
    if libyara != engine.libyara:
        return "libyara %s differs from the bundle's %s: compiled from source" % (
            engine.libyara,
            libyara,
        )
    yara = engine.module
    loaded = {}
    rel = None
    try:
        for rel in present + ([COMPILED_SCOPES] if combined else []):
            if rel == COMPILED_SCOPES:
                with open(os.path.join(root, *rel.split("/")), "rb") as fh:
                    namespaces = json.loads(fh.read().decode("utf-8"))["path"]
            else:
                loaded[rel] = yara.load(filepath=os.path.join(root, *rel.split("/")))
    except Exception as exc:
        return "compiled rules %s could not be loaded (%s: %s): compiled from source" % (
            rel,
            type(exc).__name__,
            exc,
        )
    path_rules = loaded.get(COMPILED_PATH)
    path_count = _count_rules(path_rules) if path_rules else 0
    if combined:
        content = None
        content_count = _count_rules(loaded[COMPILED_ALL]) - path_count
    else:
        content = loaded.get(COMPILED_CONTENT)
        content_count = _count_rules(content) if content else 0
    got = (content_count, path_count)
    if counts != (None, None) and tuple(counts) != got:
        return (
            "compiled rules hold %d content and %d path rules, the bundle says %s and %s: "
            "compiled from source" % (got[0], got[1], counts[0], counts[1])
        )
    sets = {
        rel: RuleSet(yara, rules, os.path.join(root, *rel.split("/")))
        for rel, rules in loaded.items()
    }
    engine.content_rules = sets.get(COMPILED_CONTENT) if not combined else None
    engine.path_rules = sets.get(COMPILED_PATH)
    engine.content_count, engine.path_count = got
    if combined:
        engine.all_rules = sets[COMPILED_ALL]
        engine.path_namespaces = frozenset(namespaces)
    engine.compiled_from = "bundle"
    _load_non_pe(engine, root, sets)
    if combined and engine.path_rules is not None:
        # A first scan runs the combined set only; the path set is for files whose content
        # verdict the cache already has: loaded again when the first such file comes.
        engine.path_rules.release("full")
        engine.path_rules.release("non_pe")
    return None


def _load_non_pe(engine, root, sets):
    """Load the non-PE form of every loaded set, all or none (they are an optimisation:
    without them every file gets the full forms)."""
    variants = {}
    for rel in sets:
        variant = os.path.join(root, *(NON_PE_DIR + rel.split("/")[-1]).split("/"))
        if not os.path.isfile(variant):
            return
        try:
            variants[rel] = (engine.module.load(filepath=variant), variant)
        except (engine.module.Error, IOError, OSError):
            return  # only costs speed: non_pe_rules stays null in the log
    for rel, (rules, path) in variants.items():
        sets[rel].add_non_pe(rules, path)
    # The combined set holds both scopes; else the content and path sets together.
    counted = [COMPILED_ALL] if COMPILED_ALL in sets else list(sets)
    engine.non_pe_count = sum(_count_rules(variants[rel][0]) for rel in counted)


def _compile_sources(engine, patterns):
    split = compile_split(engine.module, patterns.yara_files)

    def wrapped(rules):
        return RuleSet(engine.module, rules) if rules is not None else None

    engine.content_rules, engine.path_rules = wrapped(split.content), wrapped(split.path)
    engine.all_rules = wrapped(split.combined)
    engine.path_namespaces = frozenset(split.path_files)
    broken, unreadable = split.broken, split.unreadable
    for rel, message in unreadable:
        patterns.error(rel, message)
    sources = dict(patterns.yara_files)
    for rel, line, reason in broken:
        rule = None
        if line is not None:
            try:
                with open(sources[rel], "rb") as fh:
                    rule = rule_at_line(fh.read(), line)
            except (IOError, OSError):
                rule = None
        patterns.error(rel, "YARA compile error: %s%s" % (describe_place(rule, line), reason))
    engine.compiled_from = "source"


def compile_rules(engine, patterns):
    """Load (or compile) ``patterns.yara_files`` into ``engine.content_rules`` and
    ``engine.path_rules``; problems go to ``patterns.errors``, the reason to compile on the host
    to ``engine.compile_note``."""
    if not engine.available or not patterns.yara_files:
        return
    note = _load_compiled(engine, patterns.root) if patterns.root else "no pattern folder"
    if note is not None:
        engine.compile_note = note
        _compile_sources(engine, patterns)
    if engine.compiled_from == "source":
        engine.content_count = (
            _count_rules(engine.content_rules.form("full")) if engine.content_rules else 0
        )
        engine.path_count = _count_rules(engine.path_rules.form("full")) if engine.path_rules else 0
    if engine.all_rules is not None:
        # The combined set does the content set's work (its content-scope matches): keep
        # one copy of those rules in memory, not two.
        engine.content_rules = None
    engine.rule_count = engine.content_count + engine.path_count
    sets = (engine.all_rules,) if engine.all_rules is not None else ()
    sets = sets or tuple(r for r in (engine.content_rules, engine.path_rules) if r is not None)
    engine.rules = sets or None
    patterns.yara_rules = engine.rule_count


def rules_for(engine, rules, data):
    """The compiled form of RuleSet ``rules`` to run on ``data``: the non-PE form unless
    ``data`` starts with "MZ" (or there is none). Both give the same matches for such data."""
    return rules.form(rules.form_name(data))


def match_rules(engine, rules, data, externals, timeout):
    """Run one RuleSet (``engine.content_rules`` or ``engine.path_rules``, or the combined
    set) on ``data``.

    Returns ``[(rule, namespace, tags, meta)]``. The content set ignores ``externals`` (it was
    compiled without them). A file of ``SOLO_FORM_BYTES`` or more is matched with the other
    form of the set released.
    """
    if rules is None:
        return []
    kwargs = {"data": data, "timeout": int(max(1, timeout))}
    if rules is not engine.content_rules and externals:
        kwargs["externals"] = externals
    name = rules.form_name(data)
    if len(data) >= SOLO_FORM_BYTES:
        with rules.solo(name):
            matches = rules.form(name).match(**kwargs)
    else:
        matches = rules.form(name).match(**kwargs)
    return [(m.rule, m.namespace, list(m.tags), dict(m.meta)) for m in matches]


def match(engine, data, externals, timeout):
    """Run every compiled set on ``data`` (both sets, content first). Kept for callers that do
    not split by scope. Returns ``[(rule, namespace, tags, meta)]``."""
    found = []
    for rules in engine.rules or ():
        found.extend(match_rules(engine, rules, data, externals, timeout))
    return found
