"""The bundle manifest: what a signature vouches for.

``manifest.json`` (UTF-8, sorted keys, 2-space indent, trailing newline)::

    {"format": 1, "name": "demo", "version": 3,
     "released": "2026-11-01", "expires": "2027-05-01",
     "files": [{"path": "rules/eicar.yar", "sha256": "<64 hex>", "size": 68}, ...],
     "yara": {"libyara": "4.5.1", "content_rules": 2, "path_rules": 1},
     "excluded": [{"path": "broken.yar", "rule": "Bad_Rule", "line": 7,
                   "reason": "undefined identifier \"foo\""}]}

``files`` is sorted by path; each path is relative to the bundle's ``patterns/`` folder. It
includes the compiled rule sets ``compiled/content.yarc`` and ``compiled/path.yarc`` when the
bundle has YARA rules. ``yara`` (only when the bundle has YARA rules) names the libyara that
compiled them and how many rules each set holds; ``excluded`` (only when not empty) lists the
rule files ``build --skip-broken`` left out and why. Both are optional, so manifests written
before they existed still parse.

``kind`` says what the bundle holds: ``"patterns"`` (the default, left out of the JSON so older
manifests and signatures stay byte-identical) or ``"knowledge"`` (the offline EOL/patch/KEV/OSV
data of orchestrator.knowledge). It is signed (in the manifest and the trusted comment), and
verify refuses a bundle of another kind than the caller expects, so a data bundle can never be
imported as patterns or the other way round.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import PurePosixPath
from typing import Any

FORMAT = 1
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.json.minisig"
PATTERNS_DIR = "patterns"
KINDS = ("patterns", "knowledge")

# The name becomes a directory of the store: keep it a plain, portable file name.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class ManifestError(ValueError):
    """The manifest is malformed (the caller adds the bundle's name)."""


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative POSIX path under patterns/
    sha256: str
    size: int


@dataclass(frozen=True)
class YaraInfo:
    libyara: str  # the libyara version that compiled compiled/*.yarc
    content_rules: int
    path_rules: int
    non_pe_rules: int | None = None  # rules of compiled/nonpe/ (see bundles/nonpe.py)


@dataclass(frozen=True)
class ExcludedFile:
    path: str  # relative path of the rule file in the source folder
    reason: str  # the compiler's message
    rule: str | None = None  # the rule around the error line
    line: int | None = None


@dataclass(frozen=True)
class Manifest:
    name: str
    version: int
    released: date
    expires: date
    files: tuple[FileEntry, ...]
    yara: YaraInfo | None = None
    excluded: tuple[ExcludedFile, ...] = ()
    kind: str = "patterns"

    def trusted_comment(self) -> str:
        """The signed comment: minisign -V prints it, and verify checks it matches."""
        text = (
            f"plantsweep bundle name:{self.name} version:{self.version} "
            f"released:{self.released.isoformat()} expires:{self.expires.isoformat()}"
        )
        return text if self.kind == "patterns" else f"{text} kind:{self.kind}"

    def to_json(self) -> bytes:
        data = {
            "format": FORMAT,
            "name": self.name,
            "version": self.version,
            "released": self.released.isoformat(),
            "expires": self.expires.isoformat(),
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in self.files],
        }
        if self.kind != "patterns":
            data["kind"] = self.kind
        if self.yara is not None:
            data["yara"] = {
                "libyara": self.yara.libyara,
                "content_rules": self.yara.content_rules,
                "path_rules": self.yara.path_rules,
            }
            if self.yara.non_pe_rules is not None:
                data["yara"]["non_pe_rules"] = self.yara.non_pe_rules
        if self.excluded:
            data["excluded"] = [
                {"path": e.path, "rule": e.rule, "line": e.line, "reason": e.reason}
                for e in self.excluded
            ]
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def is_safe_relpath(path: str) -> bool:
    """A relative POSIX path with no empty, '.', '..' or backslash parts (nothing to escape)."""
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ManifestError(f"bad bundle name {name!r} (letters, digits, '._-', max 64)")
    return name


def check_version(version: Any) -> int:
    # bool is an int subclass: `true` must not pass as version 1.
    if type(version) is not int or version < 1:
        raise ManifestError(f"bad version {version!r} (a positive integer)")
    return version


def check_kind(kind: Any) -> str:
    if kind not in KINDS:
        raise ManifestError(f"unknown bundle kind {kind!r} (one of {', '.join(KINDS)})")
    return str(kind)


def _date(data: dict[str, Any], key: str) -> date:
    value = data.get(key)
    try:
        if isinstance(value, str) and len(value) == 10:
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise ManifestError(f"bad {key} date {value!r} (YYYY-MM-DD)")


def parse_manifest(raw: bytes) -> Manifest:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"manifest is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ManifestError("manifest is not a JSON object")
    if data.get("format") != FORMAT:
        raise ManifestError(f"unsupported manifest format {data.get('format')!r}")
    files_data = data.get("files")
    if not isinstance(files_data, list):
        raise ManifestError("manifest 'files' is not a list")
    files: list[FileEntry] = []
    for item in files_data:
        if not isinstance(item, dict):
            raise ManifestError("manifest file entry is not an object")
        path, sha, size = item.get("path"), item.get("sha256"), item.get("size")
        if not isinstance(path, str) or not is_safe_relpath(path):
            raise ManifestError(f"unsafe path in manifest: {path!r}")
        if not isinstance(sha, str) or not _SHA256_RE.fullmatch(sha):
            raise ManifestError(f"bad sha256 for {path}")
        if type(size) is not int or size < 0:
            raise ManifestError(f"bad size for {path}")
        files.append(FileEntry(path, sha, size))
    paths = [f.path for f in files]
    if len(set(paths)) != len(paths):
        raise ManifestError("duplicate path in manifest")
    manifest = Manifest(
        name=check_name(data.get("name")),  # type: ignore[arg-type]
        version=check_version(data.get("version")),
        released=_date(data, "released"),
        expires=_date(data, "expires"),
        files=tuple(sorted(files, key=lambda f: f.path)),
        yara=_yara_info(data.get("yara")),
        excluded=_excluded(data.get("excluded", [])),
        kind=check_kind(data.get("kind", "patterns")),
    )
    if manifest.expires < manifest.released:
        raise ManifestError("expires is before released")
    return manifest


def _count(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise ManifestError(f"bad {what} {value!r} in manifest 'yara'")
    return value


def _yara_info(value: Any) -> YaraInfo | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("libyara"), str):
        raise ManifestError("manifest 'yara' is not an object with a libyara version")
    return YaraInfo(
        value["libyara"],
        _count(value.get("content_rules"), "content_rules"),
        _count(value.get("path_rules"), "path_rules"),
        None if value.get("non_pe_rules") is None else _count(value["non_pe_rules"], "non_pe"),
    )


def _excluded(value: Any) -> tuple[ExcludedFile, ...]:
    if not isinstance(value, list):
        raise ManifestError("manifest 'excluded' is not a list")
    found = []
    for item in value:
        ok = (
            isinstance(item, dict)
            and isinstance(item.get("path"), str)
            and isinstance(item.get("reason"), str)
            and isinstance(item.get("rule"), str | None)
            and (item.get("line") is None or type(item.get("line")) is int)
        )
        if not ok:
            raise ManifestError(f"bad entry in manifest 'excluded': {item!r}")
        found.append(ExcludedFile(item["path"], item["reason"], item.get("rule"), item.get("line")))
    return tuple(found)


def pattern_member(path: str) -> str:
    """The archive member name of a manifest path."""
    return str(PurePosixPath(PATTERNS_DIR, path))
