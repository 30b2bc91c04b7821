"""Build a signed bundle from a pattern directory.

Bundle file: one uncompressed POSIX tar (rule files are small and compress well enough
for transfer with any tool; uncompressed keeps verification a plain read). Members, in order:

    manifest.json            the manifest (see manifest.py)
    manifest.json.minisig    minisign signature of manifest.json
    patterns/<path>          every file listed in the manifest, nothing else

Every member is a regular file (no directory, link or device entries) with mode 0644,
owner 0/0 and mtime = the release date, so the same inputs give the same archive bytes
except for the signature (Ed25519 is deterministic: it is identical too).
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

from agentless_scanner.patterns import is_pattern_file
from orchestrator.bundles import minisig
from orchestrator.bundles.errors import BundleError
from orchestrator.bundles.keys import load_secret_key
from orchestrator.bundles.manifest import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    FileEntry,
    Manifest,
    ManifestError,
    check_name,
    check_version,
    pattern_member,
)


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
) -> Path:
    """Write the signed bundle ``dest_file`` (atomically) and return its path."""
    dest_file = Path(dest_file)
    try:
        check_name(name)
        check_version(version)
    except ManifestError as exc:
        raise BundleError(str(exc), path=str(dest_file)) from exc
    if expires < released:
        raise BundleError("expiry date is before the release date", path=str(dest_file))
    key = load_secret_key(secret_key_path)

    # Read each file once: the hash and the archived bytes come from the same read.
    contents: list[tuple[str, bytes]] = []
    for rel, path in collect_files(src_dir):
        try:
            contents.append((rel, path.read_bytes()))
        except OSError as exc:
            raise BundleError(f"cannot read: {exc.strerror}", path=str(path)) from exc
    manifest = Manifest(
        name=name,
        version=version,
        released=released,
        expires=expires,
        files=tuple(
            FileEntry(rel, hashlib.sha256(data).hexdigest(), len(data)) for rel, data in contents
        ),
    )
    manifest_bytes = manifest.to_json()
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
