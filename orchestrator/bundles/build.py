"""Build a signed bundle from a pattern directory.

Bundle file: one uncompressed POSIX tar (rule files are small and compress well enough
for transfer with any tool; uncompressed keeps verification a plain read). Members, in order:

    manifest.json            the manifest (see manifest.py)
    manifest.json.minisig    minisign signature of manifest.json
    patterns/<path>          every file listed in the manifest, nothing else

When the folder has YARA rules, they are compiled here, once, with the controller's
yara-python (the same external variables, one namespace per file, includes disabled, as on
the hosts), into two more files listed in the manifest like any other:

    patterns/compiled/content.yarc   rule files that use no external variable
    patterns/compiled/path.yarc      rule files that use filename, filepath, extension, ...

and the manifest's ``yara`` entry records the libyara version and the rule counts. A host whose
yara module has the same libyara loads them instead of compiling (see
agentless_scanner/yara_engine.py). A rule file that does not compile stops the build with
every broken rule named (RuleCompileError), or with ``skip_broken`` is left out and listed in
the manifest's ``excluded`` entry with the reason.

Every member is a regular file (no directory, link or device entries) with mode 0644,
owner 0/0 and mtime = the release date, so the same inputs give the same archive bytes
except for the signature (Ed25519 is deterministic: it is identical too; so is the compiled
rules' serialisation for one libyara).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from agentless_scanner import yara_engine
from agentless_scanner.patterns import YARA_SUFFIXES, is_pattern_file
from orchestrator.bundles import minisig, nonpe
from orchestrator.bundles.errors import BundleError
from orchestrator.bundles.keys import SecretKey, load_secret_key
from orchestrator.bundles.manifest import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    ExcludedFile,
    FileEntry,
    Manifest,
    ManifestError,
    YaraInfo,
    check_kind,
    check_name,
    check_version,
    pattern_member,
)


@dataclass(frozen=True)
class BrokenRule:
    """A rule file the controller's yara-python does not compile."""

    path: str  # relative path in the source folder
    rule: str | None  # the rule declared at or before the error line
    line: int | None
    reason: str

    def describe(self) -> str:
        """``"sub/x.yar: rule Name, line 12: undefined identifier ..."``"""
        return f"{self.path}: {yara_engine.describe_place(self.rule, self.line)}{self.reason}"


class RuleCompileError(BundleError):
    """Rule files do not compile; ``broken`` names each one, its rule and the reason."""

    def __init__(self, broken: list[BrokenRule], src_dir: Path):
        names = ", ".join(f"{b.path} (rule {b.rule})" if b.rule else b.path for b in broken)
        super().__init__(
            f"{len(broken)} YARA rule file(s) do not compile: {names}; fix them or pass "
            "--skip-broken to leave them out of the bundle",
            path=str(src_dir),
        )
        self.broken = broken


@dataclass(frozen=True)
class CompiledRules:
    """The two compiled sets (serialised with ``Rules.save``; None when a set is empty)."""

    libyara: str
    content: bytes | None
    path: bytes | None
    combined: bytes | None  # both sets in one: one pass per file when no verdict is cached
    path_files: tuple[str, ...]  # the path set's namespaces, to split the combined matches
    content_rules: int
    path_rules: int
    broken: tuple[BrokenRule, ...]
    # The same sets for files that are not PE (compiled/nonpe/...), or () if not derived.
    non_pe: tuple[tuple[str, bytes], ...] = ()
    non_pe_rules: int | None = None


def collect_files(src_dir: Path) -> list[tuple[str, Path]]:
    """Sorted ``(relpath, path)`` of the pattern files under ``src_dir``.

    Symlinks anywhere, or anything resolving outside ``src_dir``, are refused: the bundle must
    be exactly the folder's own files.
    """
    root = Path(src_dir)
    if not root.is_dir() or root.is_symlink():
        raise BundleError("pattern directory not found (or a symlink)", path=str(root))
    real_root = root.resolve()
    found: list[tuple[str, Path]] = []
    for folder, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            child = Path(folder, name)
            if child.is_symlink():
                raise BundleError(
                    "symlinks are not allowed in a pattern directory", path=str(child)
                )
            if not child.resolve().is_relative_to(real_root):
                raise BundleError("file resolves outside the pattern directory", path=str(child))
        for name in files:
            child = Path(folder, name)
            if child.is_file() and is_pattern_file(name):
                found.append((child.relative_to(root).as_posix(), child))
    if not found:
        raise BundleError("no pattern files (.yar .yara .txt .ioc .hashes)", path=str(root))
    return sorted(found)


def _import_yara(src_dir: Path) -> Any:
    try:
        import yara
    except ImportError as exc:
        raise BundleError(
            "yara-python is not installed on the controller, so the YARA rules cannot be "
            f"compiled (pip install 'plantsweep[yara]'): {exc}",
            path=str(src_dir),
        ) from None
    return yara


def _save(rules: Any) -> bytes | None:
    if rules is None:
        return None
    buffer = io.BytesIO()
    rules.save(file=buffer)
    return buffer.getvalue()


def compile_yara(sources: list[tuple[str, bytes]], src_dir: Path) -> CompiledRules:
    """Compile ``[(relpath, bytes)]`` of rule files into the content and path sets.

    The bytes are written to a private temp folder and compiled from there, so what is
    compiled is exactly what is hashed and signed (not whatever the source file holds a moment
    later). Broken files are reported in ``broken`` and left out of both sets.
    """
    yara = _import_yara(src_dir)
    by_rel = dict(sources)
    with tempfile.TemporaryDirectory(prefix="plantsweep-rules-") as tmp:
        files, data_at = [], {}
        for rel, data in sources:
            target = Path(tmp, *rel.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            files.append((rel, str(target)))
            data_at[str(target)] = data
        # The payload splits with the same function when it compiles from source.
        split = yara_engine.compile_split(yara, files, data_at.__getitem__)
        left_out = {rel for rel, _line, _reason in split.broken}
        good = [(rel, data) for rel, data in sources if rel not in left_out]
        non_pe, non_pe_rules = _compile_non_pe(yara, good, split.path_files, Path(tmp, ".nonpe"))
    content, path, broken = split.content, split.path, split.broken
    report = [
        BrokenRule(
            rel,
            yara_engine.rule_at_line(by_rel[rel], line) if line is not None else None,
            line or None,  # 0: libyara's "end of file"
            reason,
        )
        for rel, line, reason in broken
    ]
    return CompiledRules(
        libyara=str(yara.YARA_VERSION),
        content=_save(content),
        path=_save(path),
        combined=_save(split.combined),
        path_files=tuple(split.path_files),
        content_rules=sum(1 for _ in content) if content is not None else 0,
        path_rules=sum(1 for _ in path) if path is not None else 0,
        broken=tuple(report),
        non_pe=non_pe,
        non_pe_rules=non_pe_rules,
    )


def _compile_non_pe(
    yara: Any, good: list[tuple[str, bytes]], path_files: tuple[str, ...] | list[str], tmp: Path
) -> tuple[tuple[tuple[str, bytes], ...], int | None]:
    """The compiled sets for non-PE files, with the full sets' namespaces and scopes.

    Returns ``((relpath, bytes), ...)`` under NON_PE_DIR and their rule count (content + path);
    ``((), None)`` if a set does not compile (the bundle then works without them, slower)."""
    externals = dict.fromkeys(yara_engine.EXTERNALS, "")
    derived = nonpe.derive(yara, good, externals)
    on_path = set(path_files)
    files: dict[str, list[tuple[str, str]]] = {"content": [], "path": []}
    for rel, source in sorted(derived.sources.items()):
        if not source:
            continue  # no rule can match a non-PE file
        target = Path(tmp, *rel.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source)
        files["path" if rel in on_path else "content"].append((rel, str(target)))
    sets = {
        "content": (files["content"], None),
        "path": (files["path"], externals),
        "all": (files["content"] + files["path"], externals),
    }
    out, counts = [], {}
    for name, (set_files, set_externals) in sets.items():
        if name == "all" and not (files["content"] and files["path"]):
            continue  # like the full sets: no combined set when one scope is empty
        rules, broken = yara_engine.compile_set(yara, set_files, set_externals)
        if broken:
            return (), None
        counts[name] = sum(1 for _ in rules) if rules is not None else 0
        if rules is not None:
            out.append((yara_engine.NON_PE_DIR + name + ".yarc", _save(rules) or b""))
    return tuple(out), counts["content"] + counts["path"]


def compiled_files(compiled: CompiledRules) -> list[tuple[str, bytes]]:
    """The compiled sets as the bundle's ``compiled/`` files (relative path, bytes)."""
    scopes = None
    if compiled.combined is not None:
        scopes = (json.dumps({"path": list(compiled.path_files)}, indent=1) + "\n").encode()
    files = (
        (yara_engine.COMPILED_CONTENT, compiled.content),
        (yara_engine.COMPILED_PATH, compiled.path),
        (yara_engine.COMPILED_ALL, compiled.combined),
        (yara_engine.COMPILED_SCOPES, scopes),
    )
    return [(rel, data) for rel, data in files if data is not None] + list(compiled.non_pe)


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def build_bundle(
    src_dir: Path,
    dest_file: Path,
    secret_key_path: Path,
    name: str,
    version: int,
    released: date,
    expires: date,
    skip_broken: bool = False,
) -> Path:
    """Write the signed bundle ``dest_file`` (atomically) and return its path."""
    return build_bundle_manifest(
        src_dir, dest_file, secret_key_path, name, version, released, expires, skip_broken
    )[0]


def build_bundle_manifest(
    src_dir: Path,
    dest_file: Path,
    secret_key_path: Path,
    name: str,
    version: int,
    released: date,
    expires: date,
    skip_broken: bool = False,
) -> tuple[Path, Manifest]:
    """``build_bundle``, also returning the signed manifest (rule counts, excluded files)."""
    dest_file = Path(dest_file)
    _check_header(dest_file, name, version, released, expires)
    key = load_secret_key(secret_key_path)

    # Read each file once: the hash, the compiled rules and the archived bytes all come from
    # the same read.
    contents: list[tuple[str, bytes]] = []
    for rel, path in collect_files(src_dir):
        try:
            contents.append((rel, path.read_bytes()))
        except OSError as exc:
            raise BundleError(f"cannot read: {exc.strerror}", path=str(path)) from exc
    rule_files = [(rel, data) for rel, data in contents if rel.lower().endswith(YARA_SUFFIXES)]
    yara_info, excluded = None, ()
    if rule_files:
        compiled = compile_yara(rule_files, Path(src_dir))
        if compiled.broken and not skip_broken:
            raise RuleCompileError(list(compiled.broken), Path(src_dir))
        left_out = {b.path for b in compiled.broken}
        contents = [(rel, data) for rel, data in contents if rel not in left_out]
        excluded = tuple(ExcludedFile(b.path, b.reason, b.rule, b.line) for b in compiled.broken)
        contents.extend(compiled_files(compiled))
        contents.sort()
        yara_info = YaraInfo(
            compiled.libyara, compiled.content_rules, compiled.path_rules, compiled.non_pe_rules
        )
    manifest = _manifest(
        name, version, released, expires, contents, yara=yara_info, excluded=excluded
    )
    return write_signed(dest_file, key, manifest, contents), manifest


def _check_header(
    dest_file: Path, name: str, version: int, released: date, expires: date, kind: str | None = None
) -> None:
    """BundleError for a bad name, version, kind or date order (before anything is read)."""
    try:
        check_name(name)
        check_version(version)
        if kind is not None:
            check_kind(kind)
    except ManifestError as exc:
        raise BundleError(str(exc), path=str(dest_file)) from exc
    if expires < released:
        raise BundleError("expiry date is before the release date", path=str(dest_file))


def _manifest(
    name: str,
    version: int,
    released: date,
    expires: date,
    contents: list[tuple[str, bytes]],
    **extra: Any,
) -> Manifest:
    files = tuple(
        FileEntry(rel, hashlib.sha256(data).hexdigest(), len(data)) for rel, data in contents
    )
    return Manifest(name=name, version=version, released=released, expires=expires,
                    files=files, **extra)  # fmt: skip


def build_files_bundle(
    contents: list[tuple[str, bytes]],
    dest_file: Path,
    secret_key_path: Path,
    name: str,
    version: int,
    released: date,
    expires: date,
    kind: str,
) -> tuple[Path, Manifest]:
    """Sign ``[(relpath, bytes)]`` (already made, e.g. the knowledge data) as a bundle of
    ``kind``: the same archive, manifest and signature as pattern bundles, no YARA step."""
    dest_file = Path(dest_file)
    _check_header(dest_file, name, version, released, expires, kind)
    contents = sorted(contents)
    manifest = _manifest(name, version, released, expires, contents, kind=kind)
    return write_signed(dest_file, load_secret_key(secret_key_path), manifest, contents), manifest


def write_signed(
    dest_file: Path, key: SecretKey, manifest: Manifest, contents: list[tuple[str, bytes]]
) -> Path:
    """Write the archive (manifest, its signature, the files) atomically to ``dest_file``."""
    manifest_bytes = manifest.to_json()
    released = manifest.released
    signature = minisig.sign(manifest_bytes, key.private, key.key_id, manifest.trusted_comment())

    mtime = int(datetime(released.year, released.month, released.day, tzinfo=UTC).timestamp())
    dest_file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest_file.name}.", dir=dest_file.parent)
    try:
        with (
            os.fdopen(fd, "wb") as fh,
            tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            _add(tar, MANIFEST_NAME, manifest_bytes, mtime)
            _add(tar, SIGNATURE_NAME, signature.encode("ascii"), mtime)
            for rel, data in contents:
                _add(tar, pattern_member(rel), data, mtime)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest_file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest_file
