"""Offline knowledge data: OS end-of-life dates, Windows cumulative-update builds, CISA KEV, OSV.

    from orchestrator.knowledge import load_knowledge, build_data_bundle
    k = load_knowledge()   # the imported signed bundle, else the default shipped in the package
    print(k.date, k.version)

    build_files(source, version) -> {name: bytes}        (sources.py: the normalised files)
    build_data_bundle(source, secret_key, version, out, released=None, expires=None)
    verify_data_bundle(bundle, trusted_keys, today=None) -> Manifest
    import_data_bundle(bundle, trusted_keys, today=None) -> (Manifest, Knowledge)
    write_default(source, folder, version) -> {file: size}
    load_knowledge(today=None) -> Knowledge; load_default(folder) -> Knowledge
    warn_if_stale(knowledge, max_age=None, today=None) -> bool; max_age_days(value=None) -> int
    use_knowledge(max_age=None, today=None) -> Knowledge   (load + one staleness warning)

A data bundle is a pattern bundle of kind "knowledge" (orchestrator.bundles): same archive,
manifest, minisign signature, anti-rollback and store. The CLI is knowledge/cli.py.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.knowledge.bundle import (
        build_data_bundle,
        import_data_bundle,
        verify_data_bundle,
        write_default,
    )
    from orchestrator.knowledge.data import (
        DEFAULT_DIR,
        Knowledge,
        load_default,
        load_knowledge,
        max_age_days,
        store_dir,
        use_knowledge,
        warn_if_stale,
    )
    from orchestrator.knowledge.errors import KnowledgeError
    from orchestrator.knowledge.sources import DATA_FILES, build_files

# Imported on first use (PEP 562): `plantsweep --help` and every other command build the `data`
# parser from knowledge/cli.py without loading the bundle and crypto code.
_HOME = {
    "build_data_bundle": "bundle",
    "import_data_bundle": "bundle",
    "verify_data_bundle": "bundle",
    "write_default": "bundle",
    "DEFAULT_DIR": "data",
    "Knowledge": "data",
    "load_default": "data",
    "load_knowledge": "data",
    "max_age_days": "data",
    "store_dir": "data",
    "use_knowledge": "data",
    "warn_if_stale": "data",
    "KnowledgeError": "errors",
    "DATA_FILES": "sources",
    "build_files": "sources",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)


__all__ = [
    "DATA_FILES",
    "DEFAULT_DIR",
    "Knowledge",
    "KnowledgeError",
    "build_data_bundle",
    "build_files",
    "import_data_bundle",
    "load_default",
    "load_knowledge",
    "max_age_days",
    "store_dir",
    "use_knowledge",
    "verify_data_bundle",
    "warn_if_stale",
    "write_default",
]
