"""The controller's bundle store: verified bundles, extracted, one folder per version.

Layout::

    STORE/<name>/installed.json          {"name", "version", "released", "expires"}
    STORE/<name>/<version>/manifest.json
    STORE/<name>/<version>/manifest.json.minisig
    STORE/<name>/<version>/patterns/...  the pattern folder for `scan --patterns`
    STORE/<name>/.lock                   serialises imports of the same name

Files are written by us from verified bytes (never ``tarfile.extract``), into a fresh temp
folder with O_EXCL|O_NOFOLLOW, then renamed into place, so nothing lands outside the folder.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from orchestrator.bundles.errors import BundleError
from orchestrator.bundles.manifest import (
    MANIFEST_NAME,
    PATTERNS_DIR,
    SIGNATURE_NAME,
    ManifestError,
    check_name,
    check_version,
    is_safe_relpath,
)
from orchestrator.bundles.verify import check_freshness, read_bundle

INSTALLED_FILE = "installed.json"


@dataclass(frozen=True)
class InstalledBundle:
    name: str
    version: int
    path: Path  # STORE/<name>/<version>


def _write_file(root: Path, rel: str, data: bytes) -> None:
    # rel was checked by is_safe_relpath; mkdir + O_NOFOLLOW keep writes inside a folder we
    # created ourselves moments ago.
    if not is_safe_relpath(rel):
        raise BundleError(f"unsafe path {rel!r}", path=str(root))
    target = root.joinpath(*rel.split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.parent.resolve().is_relative_to(root.resolve()):
        raise BundleError(f"path {rel!r} would land outside the store", path=str(root))
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def installed(store_dir: Path, name: str) -> tuple[int, Path] | None:
    """``(version, folder)`` of the installed bundle ``name``, or None."""
    try:
        check_name(name)
    except ManifestError as exc:
        raise BundleError(str(exc), path=str(store_dir)) from exc
    record = Path(store_dir, name, INSTALLED_FILE)
    try:
        data = json.loads(record.read_text("utf-8"))
        version = check_version(data["version"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # A broken record must not silently allow a rollback: refuse instead.
        raise BundleError(f"unreadable install record: {exc}", path=str(record)) from exc
    return version, Path(store_dir, name, str(version))


def list_bundles(store_dir: Path) -> list[InstalledBundle]:
    """Every installed bundle in the store, sorted by name."""
    root = Path(store_dir)
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.is_symlink() and (child / INSTALLED_FILE).is_file():
            current = installed(root, child.name)
            if current:
                found.append(InstalledBundle(child.name, current[0], current[1]))
    return found


def import_bundle(
    bundle_file: Path,
    store_dir: Path,
    trusted_keys: list[Path],
    today: date | None = None,
    kind: str = "patterns",
) -> Path:
    """Verify ``bundle_file``, extract it to ``STORE/<name>/<version>/`` and mark it installed.

    Refuses (BundleError) anything ``verify_bundle`` refuses, and any version not newer than
    the one installed under the same name. Returns the version folder.
    """
    bundle = Path(bundle_file)
    # Verify without the installed version first: the name is only known from the manifest.
    verified = read_bundle(bundle, trusted_keys, today=today, kind=kind)
    manifest = verified.manifest
    name_dir = Path(store_dir, manifest.name)
    name_dir.mkdir(parents=True, exist_ok=True)
    with open(name_dir / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two imports of one name must not both pass the check
        current = installed(store_dir, manifest.name)
        check_freshness(bundle, manifest, current[0] if current else None, today or date.today())
        final = name_dir / str(manifest.version)
        if final.exists() or final.is_symlink():
            # Left by an import that died between rename and record: not installed, redo it.
            if final.is_dir() and not final.is_symlink():
                shutil.rmtree(final)
            else:
                final.unlink()
        tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=name_dir))
        try:
            _write_file(tmp, MANIFEST_NAME, verified.manifest_bytes)
            _write_file(tmp, SIGNATURE_NAME, verified.signature_text.encode("utf-8"))
            (tmp / PATTERNS_DIR).mkdir()
            for rel, data in verified.files.items():
                _write_file(tmp / PATTERNS_DIR, rel, data)
            tmp.chmod(0o755)
            os.replace(tmp, final)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise BundleError(f"cannot extract: {exc}", path=str(bundle)) from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        record = {
            "name": manifest.name,
            "version": manifest.version,
            "released": manifest.released.isoformat(),
            "expires": manifest.expires.isoformat(),
        }
        tmp_record = name_dir / f".{INSTALLED_FILE}.tmp"
        tmp_record.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", "utf-8")
        os.replace(tmp_record, name_dir / INSTALLED_FILE)  # atomic: the record is old or new
    return final
