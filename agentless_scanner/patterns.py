"""The pattern directory: hash IOC lists, YARA rule files and the bundle metadata.

Files (searched recursively, symlinks ignored and reported):

- ``*.txt``, ``*.ioc``, ``*.hashes``: hash IOCs, one per line: ``HASH``, ``HASH;description``,
  ``HASH;SCORE;description`` or ``HASH description``; ``#`` starts a comment line; blank lines
  are ignored. MD5, SHA-1 and SHA-256 are told apart by length (32/40/64 hex digits). SCORE is
  0-100 (default ``scoring.DEFAULT_HASH_SCORE``). A bad line is a pattern error (file, line,
  message) and the rest of the file still loads.
- ``*.filenames``: filename/path IOCs in LOKI's format, one per line:
  ``REGEX;SCORE`` or ``REGEX;SCORE;FALSE_POSITIVE_REGEX``. The regular expression (Python
  syntax, case-insensitive) is searched in the file's full path as the host writes it; a path
  that also matches the false-positive expression is not a finding. A ``#`` comment line is
  the description of the entries below it, up to the next comment or blank line.
- ``*.yar``, ``*.yara``: YARA rules, compiled together (see ``yara_engine``).
- ``bundle.json`` (top level only): ``{"name", "version", "date"}``. Without it the metadata is
  computed: name = directory name, version = ``bundle_version()`` (first 12 hex digits),
  date = newest modification time of a pattern file (ISO 8601 UTC).

Anything else (README.md, LICENSE, ...) is ignored.
"""

import hashlib
import json
import os
import re
import stat
import zipfile

from agentless_scanner import scoring
from agentless_scanner.scanlog import display_path
from agentless_scanner.timeutil import iso_utc

HASH_SUFFIXES = (".txt", ".ioc", ".hashes")
FILENAME_SUFFIXES = (".filenames",)
YARA_SUFFIXES = (".yar", ".yara")
BUNDLE_FILE = "bundle.json"
HASH_LENGTHS = {32: "md5", 40: "sha1", 64: "sha256"}
MAX_PATTERN_ERRORS = 200

_HEX = re.compile(r"^[0-9a-fA-F]+$")


class PatternSet(object):
    """Everything loaded from a pattern directory."""

    def __init__(self, root):
        self.root = root
        self.name = None
        self.version = None
        self.date = None
        self.source = None  # "bundle.json" | "computed" | None (no pattern dir)
        self.files = []  # [(relpath posix, abspath)] of every pattern file
        self.yara_files = []  # subset of files
        self.hashes = {}  # lower-case hex -> {algo, description, score, source, line}
        self.filename_iocs = []  # [FilenameIOC]
        self.errors = []  # [{file, line?, message}]
        self.errors_omitted = 0
        self.yara_rules = 0  # filled in after compiling

    def error(self, file, message, line=None):
        if len(self.errors) >= MAX_PATTERN_ERRORS:
            self.errors_omitted += 1
            return
        entry = {"file": file, "message": message} if file is not None else {"message": message}
        if line is not None:
            entry["line"] = line
        self.errors.append(entry)

    def as_log(self):
        return {
            "name": self.name,
            "version": self.version,
            "date": self.date,
            "source": self.source,
            "files": len(self.files),
            "yara_rules": self.yara_rules,
            "hash_iocs": len(self.hashes),
            "filename_iocs": len(self.filename_iocs),
            "errors": self.errors,
            "errors_omitted": self.errors_omitted,
        }


def empty_patterns():
    """The pattern set used when no --patterns directory is given."""
    return PatternSet(None)


def is_pattern_file(name):
    lower = name.lower()
    return lower.endswith(HASH_SUFFIXES + YARA_SUFFIXES + FILENAME_SUFFIXES)


def list_pattern_files(root, errors=None):
    """Sorted ``[(relpath_posix, abspath)]`` of pattern files under ``root``.

    Symlinks (to files or directories) are never followed; each one is reported through
    ``errors(relpath, message)`` if given.
    """
    found = []
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        abs_dir = os.path.join(root, rel_dir) if rel_dir else root
        try:
            names = sorted(os.listdir(abs_dir))
        except OSError as exc:
            if errors:
                errors(rel_dir or ".", "cannot list directory: %s" % exc.strerror)
            continue
        for name in names:
            rel = rel_dir + "/" + name if rel_dir else name
            path = os.path.join(abs_dir, name)
            try:
                st = os.lstat(path)
            except OSError as exc:
                if errors:
                    errors(rel, "cannot stat: %s" % exc.strerror)
                continue
            if stat.S_ISLNK(st.st_mode):
                if errors and (is_pattern_file(name) or _is_dir(path)):
                    errors(rel, "symlink ignored: pattern files must be regular files")
            elif stat.S_ISDIR(st.st_mode):
                stack.append(rel)
            elif stat.S_ISREG(st.st_mode) and is_pattern_file(name):
                found.append((rel, path))
    found.sort()
    return found


def _is_dir(path):
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return False


def bundle_version(files):
    """Content version of a pattern set: 12 hex digits, independent of mtimes and order.

    The first 12 hex digits of ``content_id`` over the pattern files. ``orchestrator``
    computes the same value.
    """
    return content_id((rel, file_sha256(path)) for rel, path in files)[:12]


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def content_id(entries):
    """Identity of a set of files: sha256 over ``relpath NUL sha256 LF``, sorted by relpath.

    ``entries`` are ``(relpath in POSIX form, sha256 hex of the content)``; the scanner and
    the controller (which reads the files out of the pattern zip) compute it the same way.
    """
    outer = hashlib.sha256()
    for rel, digest in sorted(entries):
        outer.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        outer.update(digest.encode("ascii") + b"\n")
    return outer.hexdigest()


def parse_hash_line(text):
    """Parse one IOC line. Returns None for blank/comment lines, else
    (hash, algo, description, score).

    Raises ValueError with a message for a malformed line.
    """
    line = text.strip()
    if not line or line.startswith("#"):
        return None
    score = scoring.DEFAULT_HASH_SCORE
    if ";" in line:
        value, _, description = line.partition(";")
        first, sep, rest = description.partition(";")
        if sep and first.strip().isdigit():
            if int(first) > 100:
                raise ValueError("score %s is not 0-100" % first.strip())
            score, description = int(first), rest
    else:
        parts = line.split(None, 1)
        value = parts[0]
        description = parts[1] if len(parts) > 1 else ""
    value = value.strip()
    description = description.strip()
    if not _HEX.match(value) or len(value) not in HASH_LENGTHS:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise ValueError(
            "not an MD5, SHA-1 or SHA-256 hex digest (32/40/64 hex digits): %r" % shown
        )
    return value.lower(), HASH_LENGTHS[len(value)], description, score


class FilenameIOC(object):
    __slots__ = ("regex", "score", "false_positive", "description", "source", "line")

    def __init__(self, regex, score, false_positive, description, source, line):
        self.regex = regex
        self.score = score
        self.false_positive = false_positive
        self.description = description
        self.source = source
        self.line = line

    def matches(self, path):
        return bool(self.regex.search(path)) and not (
            self.false_positive is not None and self.false_positive.search(path)
        )


def parse_filename_line(text):
    """``REGEX;SCORE[;FP_REGEX]`` -> (regex, score, fp_regex or None). Raises ValueError."""
    parts = text.strip().split(";")
    if len(parts) < 2 or len(parts) > 3:
        raise ValueError("expected REGEX;SCORE or REGEX;SCORE;FALSE_POSITIVE_REGEX")
    if not parts[1].strip().isdigit() or int(parts[1]) > 100:
        raise ValueError("score %r is not an integer 0-100" % parts[1].strip())
    try:
        regex = re.compile(parts[0], re.IGNORECASE)
        fp = re.compile(parts[2], re.IGNORECASE) if len(parts) == 3 and parts[2] else None
    except re.error as exc:
        raise ValueError("bad regular expression: %s" % exc) from None
    return regex, int(parts[1]), fp


def load_filename_file(patterns, rel, path):
    with open(path, "rb") as fh:
        text = fh.read().decode("utf-8", "replace")
    description = ""
    for number, line in enumerate(text.lstrip("\ufeff").splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            description = ""
            continue
        if stripped.startswith("#"):
            description = stripped.lstrip("#").strip()
            continue
        try:
            regex, score, fp = parse_filename_line(stripped)
        except ValueError as exc:
            patterns.error(rel, str(exc), line=number)
            continue
        patterns.filename_iocs.append(FilenameIOC(regex, score, fp, description, rel, number))


def load_hash_file(patterns, rel, path):
    with open(path, "rb") as fh:
        data = fh.read()
    text = data.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    for number, line in enumerate(text.splitlines(), 1):
        try:
            parsed = parse_hash_line(line)
        except ValueError as exc:
            patterns.error(rel, str(exc), line=number)
            continue
        if parsed is None:
            continue
        value, algo, description, score = parsed
        if value not in patterns.hashes:
            patterns.hashes[value] = {
                "algo": algo,
                "description": description,
                "score": score,
                "source": rel,
                "line": number,
            }


def _load_bundle_json(patterns, path):
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read().decode("utf-8"))
    except (OSError, ValueError) as exc:
        patterns.error(BUNDLE_FILE, "unreadable, metadata computed instead: %s" % exc)
        return False
    if not isinstance(data, dict):
        patterns.error(BUNDLE_FILE, "not a JSON object, metadata computed instead")
        return False
    missing = [k for k in ("name", "version", "date") if not isinstance(data.get(k), str)]
    if missing:
        patterns.error(
            BUNDLE_FILE,
            "missing or non-string %s, metadata computed instead" % ", ".join(missing),
        )
        return False
    patterns.name = data["name"]
    patterns.version = data["version"]
    patterns.date = data["date"]
    patterns.source = BUNDLE_FILE
    return True


class PatternArchiveError(Exception):
    """The pattern archive cannot be read or holds a member that would land outside."""


def unpack_pattern_archive(archive, dest):
    """Unpack the controller's pattern zip into ``dest`` (inside the scanner's own dir).

    One archive instead of one transfer per rule file, unpacked here instead of by a second
    interpreter start. Members must be plain relative paths: nothing may land outside dest.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            os.mkdir(dest, 0o700)
            for info in zf.infolist():
                parts = info.filename.split("/")
                if info.filename.startswith("/") or ".." in parts or "\\" in info.filename:
                    raise PatternArchiveError("unsafe member name %r" % info.filename)
                if info.is_dir():
                    continue
                target = os.path.join(dest, *parts)
                parent = os.path.dirname(target)
                if not os.path.isdir(parent):
                    os.makedirs(parent, 0o700)
                with zf.open(info) as src, open(target, "xb") as out:
                    while True:
                        chunk = src.read(1 << 20)
                        if not chunk:
                            break
                        out.write(chunk)
    except (OSError, zipfile.BadZipFile) as exc:
        raise PatternArchiveError(str(exc)) from None
    return dest


def load_patterns(root):
    """Load a pattern directory. Never raises for bad content: problems go to ``errors``."""
    patterns = PatternSet(root)
    patterns.files = list_pattern_files(root, lambda rel, msg: patterns.error(rel, msg))
    for rel, path in patterns.files:
        if rel.lower().endswith(YARA_SUFFIXES):
            patterns.yara_files.append((rel, path))
            continue
        loader = load_filename_file if rel.lower().endswith(FILENAME_SUFFIXES) else load_hash_file
        try:
            loader(patterns, rel, path)
        except OSError as exc:
            patterns.error(rel, "cannot read: %s" % exc)
    bundle = os.path.join(root, BUNDLE_FILE)
    have_bundle = False
    if os.path.lexists(bundle):
        if os.path.islink(bundle) or not os.path.isfile(bundle):
            patterns.error(BUNDLE_FILE, "not a regular file, metadata computed instead")
        else:
            have_bundle = _load_bundle_json(patterns, bundle)
    if not have_bundle:
        patterns.name = display_path(os.path.basename(os.path.normpath(root)))
        try:
            patterns.version = bundle_version(patterns.files)
        except OSError as exc:
            patterns.error(".", "cannot compute the bundle version: %s" % exc)
        newest = None
        for _rel, path in patterns.files:
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                continue
            newest = mtime if newest is None else max(newest, mtime)
        patterns.date = iso_utc(newest) if newest is not None else None
        patterns.source = "computed"
    return patterns
