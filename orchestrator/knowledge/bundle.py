"""Build, verify and import knowledge data bundles: pattern bundles of kind "knowledge".

    build_data_bundle(source, key, version, out)     -> (Path, Manifest)
    verify_data_bundle(bundle, trusted_keys)         -> Manifest (also refuses an older version)
    import_data_bundle(bundle, trusted_keys)         -> Knowledge (installed, verified, loaded)
    write_default(source, folder, version)           -> the unsigned default data files

The archive, manifest, signature, anti-rollback and store are orchestrator.bundles' own; only
the content differs (the five files of sources.DATA_FILES) and the manifest says
``"kind": "knowledge"``, so neither kind can be imported as the other.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from orchestrator import bundles
from orchestrator.bundles.manifest import Manifest
from orchestrator.knowledge.data import BUNDLE_NAME, KIND, Knowledge, load_knowledge, store_dir
from orchestrator.knowledge.errors import KnowledgeError
from orchestrator.knowledge.sources import DATA_FILES, build_files

#: A data bundle expires this long after its release unless --expires says otherwise.
DEFAULT_VALIDITY = timedelta(days=365)


def build_data_bundle(
    source: Path,
    secret_key: Path,
    version: int,
    out: Path,
    released: date | None = None,
    expires: date | None = None,
    name: str = BUNDLE_NAME,
) -> tuple[Path, Manifest]:
    """Parse the public source files under ``source`` and sign them as a data bundle."""
    released = released or date.today()
    files = build_files(Path(source), version)
    return bundles.build_files_bundle(
        sorted(files.items()),
        Path(out),
        Path(secret_key),
        name,
        version,
        released,
        expires or released + DEFAULT_VALIDITY,
        KIND,
    )


def _installed_version(name: str) -> int | None:
    found = bundles.installed(store_dir(), name)
    return found[0] if found else None


def verify_data_bundle(
    bundle: Path, trusted_keys: list[Path], today: date | None = None
) -> Manifest:
    """Verify signature, hashes, kind and dates, and that it is newer than the installed one."""
    manifest = bundles.verify_bundle(Path(bundle), trusted_keys, today=today, kind=KIND)
    _check_content(bundle, manifest)
    return bundles.verify_bundle(
        Path(bundle), trusted_keys, _installed_version(manifest.name), today, kind=KIND
    )


def _check_content(bundle: Path, manifest: Manifest) -> None:
    if manifest.name != BUNDLE_NAME:
        raise KnowledgeError(
            f"data bundle is named {manifest.name!r}; plantsweep loads {BUNDLE_NAME!r}",
            path=str(bundle),
        )
    missing = set(DATA_FILES) - {f.path for f in manifest.files}
    if missing:
        raise KnowledgeError(f"data bundle lacks {', '.join(sorted(missing))}", path=str(bundle))


def import_data_bundle(
    bundle: Path, trusted_keys: list[Path], today: date | None = None
) -> tuple[Manifest, Knowledge]:
    """Verify and install ``bundle``; return its manifest and the data now in use."""
    manifest = bundles.verify_bundle(Path(bundle), trusted_keys, today=today, kind=KIND)
    _check_content(bundle, manifest)
    bundles.import_bundle(Path(bundle), store_dir(), trusted_keys, today, kind=KIND)
    return manifest, load_knowledge(today)


def write_default(source: Path, folder: Path, version: int) -> dict[str, int]:
    """Regenerate the unsigned default data in ``folder``; returns ``{file: size}``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for name, data in build_files(Path(source), version).items():
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(folder / name)
        sizes[name] = len(data)
    return sizes
