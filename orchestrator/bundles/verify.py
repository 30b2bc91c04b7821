"""Verify a bundle file without extracting it.

Checks, in this order (the first failure raises BundleError naming the bundle):

1. archive shape: every member a regular file with a safe relative name (no absolute path,
   no '..', no link/device/directory entries, no duplicates), only manifest.json,
   manifest.json.minisig and patterns/...;
2. signature: the key id must be one of the trusted keys, and both the manifest signature and
   the trusted-comment signature must verify; the trusted comment must match the manifest;
3. content: exactly the manifest's files, each with its size and SHA-256;
4. freshness: version > installed_version (no rollback, no re-install), released <= today,
   expires >= today.

Members are read into memory once, so what is verified is exactly what the store writes.
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from orchestrator.bundles import minisig
from orchestrator.bundles.errors import BundleError
from orchestrator.bundles.keys import PublicKey, load_public_key
from orchestrator.bundles.manifest import (
    MANIFEST_NAME,
    PATTERNS_DIR,
    SIGNATURE_NAME,
    Manifest,
    ManifestError,
    is_safe_relpath,
    parse_manifest,
)

#: A bundle bigger than this is refused before anything is read (signature-base is ~30 MB).
MAX_BUNDLE_CONTENT = 512 * 1024 * 1024


@dataclass(frozen=True)
class VerifiedBundle:
    manifest: Manifest
    manifest_bytes: bytes
    signature_text: str
    files: dict[str, bytes]  # manifest path -> content


def _member_kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hard link"
    if member.isdir():
        return "directory"
    if member.isdev():
        return "device or FIFO"
    return f"type {member.type!r}"


def _read_members(bundle: Path) -> dict[str, bytes]:
    fail = lambda msg: BundleError(msg, path=str(bundle))  # noqa: E731
    try:
        tar = tarfile.open(bundle, mode="r:*")  # noqa: SIM115 - closed by `with tar` below
    except (OSError, tarfile.TarError) as exc:
        raise fail(f"cannot open bundle: {exc}") from exc
    members: dict[str, bytes] = {}
    with tar:
        try:
            infos = tar.getmembers()
        except (OSError, tarfile.TarError) as exc:
            raise fail(f"corrupt archive: {exc}") from exc
        # Check every name before reading any data: a hostile archive is refused whole.
        total = 0
        for info in infos:
            name = info.name
            if name.startswith("/") or not is_safe_relpath(name):
                raise fail(f"archive member {name!r} would land outside the bundle folder")
            if not info.isreg():
                raise fail(f"archive member {name!r} is a {_member_kind(info)}, not a file")
            if name in members:
                raise fail(f"archive member {name!r} appears twice")
            if name not in (MANIFEST_NAME, SIGNATURE_NAME) and not name.startswith(
                PATTERNS_DIR + "/"
            ):
                raise fail(f"unexpected archive member {name!r} (not listed in the manifest)")
            members[name] = b""
            total += info.size
        if total > MAX_BUNDLE_CONTENT:
            raise fail(f"bundle content is {total} bytes, over the {MAX_BUNDLE_CONTENT} limit")
        for info in infos:
            fh = tar.extractfile(info)
            if fh is None:  # cannot happen for a regular file; keep the type checker honest
                raise fail(f"cannot read archive member {info.name!r}")
            members[info.name] = fh.read()
    return members


def _check_signature(
    bundle: Path, manifest_bytes: bytes, signature_text: str, keys: list[PublicKey]
) -> None:
    fail = lambda msg: BundleError(msg, path=str(bundle))  # noqa: E731
    try:
        sig = minisig.parse_signature(signature_text)
    except minisig.SignatureFormatError as exc:
        raise fail(f"bad signature file: {exc}") from exc
    matching = [k for k in keys if k.key_id == sig.key_id]
    if not matching:
        trusted = ", ".join(k.key_id_hex for k in keys) or "none"
        raise fail(
            f"signed by unknown key id {minisig.key_id_hex(sig.key_id)} (trusted: {trusted})"
        )
    if not any(minisig.verify(manifest_bytes, sig, k.raw) for k in matching):
        raise fail(
            f"signature does not verify with key {minisig.key_id_hex(sig.key_id)}: "
            "manifest or signature was modified"
        )


def check_freshness(
    bundle: Path, manifest: Manifest, installed_version: int | None, today: date
) -> None:
    """Refuse rollback/re-install, expired bundles and release dates in the future."""
    fail = lambda msg: BundleError(msg, path=str(bundle))  # noqa: E731
    if installed_version is not None and manifest.version <= installed_version:
        raise fail(
            f"rollback refused: bundle {manifest.name} version {manifest.version} is not newer "
            f"than installed version {installed_version}"
        )
    if manifest.expires < today:
        raise fail(f"bundle {manifest.name} expired on {manifest.expires.isoformat()}")
    if manifest.released > today:
        raise fail(
            f"bundle {manifest.name} release date {manifest.released.isoformat()} is in the future"
        )


def check_kind(where: Path, manifest: Manifest, kind: str) -> None:
    """Refuse a bundle of another kind (a data bundle offered as patterns, or the reverse)."""
    if manifest.kind != kind:
        raise BundleError(
            f"{manifest.name} is a {manifest.kind} bundle, not a {kind} bundle", path=str(where)
        )


def read_bundle(
    bundle_file: Path,
    trusted_keys: list[Path],
    installed_version: int | None = None,
    today: date | None = None,
    kind: str = "patterns",
) -> VerifiedBundle:
    """Verify ``bundle_file`` fully and return its manifest and content."""
    bundle = Path(bundle_file)
    fail = lambda msg: BundleError(msg, path=str(bundle))  # noqa: E731
    keys = [load_public_key(p) for p in trusted_keys]
    if not keys:
        raise fail("no trusted public keys configured")
    members = _read_members(bundle)
    manifest_bytes = members.pop(MANIFEST_NAME, None)
    signature_raw = members.pop(SIGNATURE_NAME, None)
    if manifest_bytes is None or signature_raw is None:
        raise fail(f"missing {MANIFEST_NAME} or {SIGNATURE_NAME}")
    try:
        signature_text = signature_raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail("bad signature file: not UTF-8") from exc
    _check_signature(bundle, manifest_bytes, signature_text, keys)

    # From here on the manifest is authentic; a malformed one means a broken build tool.
    try:
        manifest = parse_manifest(manifest_bytes)
    except ManifestError as exc:
        raise fail(str(exc)) from exc
    if minisig.parse_signature(signature_text).trusted_comment != manifest.trusted_comment():
        raise fail("signed trusted comment does not match the manifest")
    check_kind(bundle, manifest, kind)

    files: dict[str, bytes] = {}
    listed = {PATTERNS_DIR + "/" + f.path for f in manifest.files}
    for extra in sorted(set(members) - listed):
        raise fail(f"archive file {extra!r} is not listed in the manifest")
    for entry in manifest.files:
        data = members.get(PATTERNS_DIR + "/" + entry.path)
        if data is None:
            raise fail(f"file {entry.path!r} is listed in the manifest but missing")
        if len(data) != entry.size:
            raise fail(f"file {entry.path!r} size {len(data)} differs from manifest {entry.size}")
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise fail(f"file {entry.path!r} SHA-256 differs from the manifest")
        files[entry.path] = data

    check_freshness(bundle, manifest, installed_version, today or date.today())
    return VerifiedBundle(manifest, manifest_bytes, signature_text, files)


def verify_bundle(
    bundle_file: Path,
    trusted_keys: list[Path],
    installed_version: int | None = None,
    today: date | None = None,
    kind: str = "patterns",
) -> Manifest:
    """Verify ``bundle_file`` (see module doc); return its manifest or raise BundleError."""
    return read_bundle(bundle_file, trusted_keys, installed_version, today, kind).manifest


def verify_installed(
    bundle_dir: Path, trusted_keys: list[Path], today: date | None = None, kind: str = "patterns"
) -> tuple[Manifest, dict[str, bytes]]:
    """Check an installed bundle again before a scan uses it: the signature of its manifest,
    every file's size and SHA-256, no file more or less, and that it has not expired. The
    store sits on the controller's disk; what is pushed to plant hosts must be what was signed."""
    fail = lambda msg: BundleError(msg, path=str(bundle_dir))  # noqa: E731
    keys = [load_public_key(p) for p in trusted_keys]
    if not keys:
        raise fail("no trusted public keys configured")
    try:
        manifest_bytes = (bundle_dir / MANIFEST_NAME).read_bytes()
        signature_text = (bundle_dir / SIGNATURE_NAME).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read the installed manifest or signature: {exc}") from None
    _check_signature(bundle_dir, manifest_bytes, signature_text, keys)
    try:
        manifest = parse_manifest(manifest_bytes)
    except ManifestError as exc:
        raise fail(str(exc)) from exc
    check_kind(bundle_dir, manifest, kind)
    root = bundle_dir / PATTERNS_DIR
    present = {
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()
    }
    listed = {f.path for f in manifest.files}
    if present != listed:
        odd = sorted(present ^ listed)[:3]
        raise fail(f"installed files differ from the signed manifest: {', '.join(odd)}")
    files: dict[str, bytes] = {}
    for entry in manifest.files:
        path = root / entry.path
        if path.is_symlink():
            raise fail(f"installed file {entry.path!r} is a symlink")
        data = path.read_bytes()
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            raise fail(f"installed file {entry.path!r} differs from the signed manifest")
        files[entry.path] = data
    check_freshness(bundle_dir, manifest, None, today or date.today())
    return manifest, files
