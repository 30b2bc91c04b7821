"""Signed, versioned pattern bundles for air-gapped plants (library; the CLI is separate).

    generate_keypair(secret, public, comment) -> PublicKey
    build_bundle(src_dir, dest, secret_key, name, version, released, expires,
                 skip_broken=False) -> Path       (YARA rules compiled in; RuleCompileError)
    build_bundle_manifest(...) -> (Path, Manifest)
    build_files_bundle(contents, dest, secret_key, name, version, released, expires, kind)
                                                  (ready-made files, e.g. kind "knowledge")
    verify_bundle(bundle, trusted_keys, installed_version=None, today=None, kind="patterns")
    import_bundle(bundle, store_dir, trusted_keys, today=None, kind="patterns") -> Path
    list_bundles(store_dir) -> list[InstalledBundle]; installed(store_dir, name)

The bundle file layout is described in build.py, the store layout in store.py.
"""

from orchestrator.bundles.build import (
    BrokenRule,
    RuleCompileError,
    build_bundle,
    build_bundle_manifest,
    build_files_bundle,
)
from orchestrator.bundles.errors import BundleError
from orchestrator.bundles.keys import PublicKey, generate_keypair, load_public_key
from orchestrator.bundles.manifest import FileEntry, Manifest
from orchestrator.bundles.store import InstalledBundle, import_bundle, installed, list_bundles
from orchestrator.bundles.verify import verify_bundle

__all__ = [
    "BrokenRule",
    "BundleError",
    "FileEntry",
    "InstalledBundle",
    "Manifest",
    "PublicKey",
    "RuleCompileError",
    "build_bundle",
    "build_bundle_manifest",
    "build_files_bundle",
    "generate_keypair",
    "import_bundle",
    "installed",
    "list_bundles",
    "load_public_key",
    "verify_bundle",
]
