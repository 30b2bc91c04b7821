"""The controller's quarantine vault: files taken off plant hosts, encrypted at rest.

    vault = Vault.open()                          # $PLANTSWEEP_HOME/quarantine by default
    entry = vault.store(Path("copy"), draft)      # encrypted, decrypted again and re-hashed
    vault.decrypt_to(entry, Path("plain"))        # authenticated, re-hashed, or VaultError

Layout (folders 0700, files 0600, nothing executable)::

    VAULT/blobs/<sha256>.bin   AES-256-GCM, one blob per distinct content
    VAULT/index.json           {"version": 1, "entries": [...]}, rewritten atomically
    VAULT/.lock                flock'ed around every index update (threads and processes)

A blob is MAGIC | key id (8 bytes) | nonce (12) | ciphertext | GCM tag (16). The additional
data is MAGIC + key id + the content's SHA-256, so a blob renamed to another hash, encrypted
with another key or altered by one bit fails authentication before any byte is trusted.

The key (32 random bytes, hex in a 0600 file) is `$PLANTSWEEP_VAULT_KEY`, else
`$PLANTSWEEP_HOME/vault.key`, else `~/.config/plantsweep/vault.key`; it is created on the
first quarantine and never on a read, so a lost key is reported, not silently replaced.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from orchestrator.errors import PlantsweepError
from orchestrator.results import utc_now

MAGIC = b"PSVAULT1"
KEY_ID_SIZE = 8
NONCE_SIZE = 12
TAG_SIZE = 16
HEADER_SIZE = len(MAGIC) + KEY_ID_SIZE + NONCE_SIZE
CHUNK = 1 << 20
INDEX_VERSION = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")


class VaultError(PlantsweepError):
    """The vault, its key or one of its blobs cannot be used; `path` names the file."""


def vault_dir() -> Path:
    """`$PLANTSWEEP_HOME/quarantine`, else `~/.local/share/plantsweep/quarantine`."""
    home = os.environ.get("PLANTSWEEP_HOME")
    if home:
        return Path(home) / "quarantine"
    return Path.home() / ".local" / "share" / "plantsweep" / "quarantine"


def key_path() -> Path:
    """`$PLANTSWEEP_VAULT_KEY`, else `$PLANTSWEEP_HOME/vault.key`, else ~/.config/plantsweep."""
    explicit = os.environ.get("PLANTSWEEP_VAULT_KEY")
    if explicit:
        return Path(explicit)
    home = os.environ.get("PLANTSWEEP_HOME")
    if home:
        return Path(home) / "vault.key"
    return Path.home() / ".config" / "plantsweep" / "vault.key"


def controller_user() -> str:
    """Who ran the command on the controller (the "who" of the audit trail)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


@dataclass
class VaultEntry:
    """One file taken off one host. Several entries may share a blob (same SHA-256)."""

    id: str
    host: str
    path: str
    sha256: str
    size: int
    mode: int  # permission bits, set-id and sticky bits included
    uid: int
    gid: int
    owner: str | None
    group: str | None
    atime_ns: int
    mtime_ns: int
    quarantined_at: str
    quarantined_by: str
    scan_id: str | None = None
    log: str | None = None  # the scan log on the controller that records the action
    rule: str | None = None
    score: int | None = None
    level: str | None = None
    removed_at: str | None = None  # None: copied, but the file could not be removed
    restored_at: str | None = None
    restored_by: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.restored_at:
            return "restored"
        return "quarantined" if self.removed_at else "copied-only"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VaultEntry:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class FileFacts:
    """What the host said about a file before it was copied (restored exactly as it was)."""

    size: int
    mode: int
    uid: int
    gid: int
    owner: str | None
    group: str | None
    atime_ns: int
    mtime_ns: int


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"plantsweep vault key id\0" + key).digest()[:KEY_ID_SIZE]


def _write_private(path: Path, data: bytes) -> None:
    """Write a 0600 file atomically (temp file + rename in the same folder)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class Vault:
    """Thread- and process-safe: index updates hold an flock on VAULT/.lock."""

    def __init__(self, root: Path, key_file: Path):
        self.root = root
        self.key_file = key_file
        self._key: bytes | None = None

    @classmethod
    def open(cls, root: Path | None = None, key_file: Path | None = None) -> Vault:
        vault = cls(root or vault_dir(), key_file or key_path())
        try:
            for folder in (vault.root, vault.blobs):
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise VaultError(
                f"cannot create the quarantine vault: {exc.strerror or exc}", path=str(vault.root)
            ) from None
        return vault

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    @property
    def index_file(self) -> Path:
        return self.root / "index.json"

    def blob_path(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise VaultError(f"not a SHA-256: {sha256!r}", path=str(self.index_file))
        return self.blobs / f"{sha256}.bin"

    # -- the key ---------------------------------------------------------------------------

    def ensure_key(self) -> None:
        """Create the key if there is none (first quarantine); check it otherwise."""
        if not self.key_file.exists():
            self._create_key()
        self._load_key()

    def _create_key(self) -> None:
        path = self.key_file
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".vault-key.", dir=path.parent)  # 0600
            try:
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_bytes(32).hex() + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                # link, not rename: a key another process created meanwhile is never replaced
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path)
            finally:
                os.unlink(tmp)
        except OSError as exc:
            raise VaultError(
                f"cannot create the vault key: {exc.strerror or exc}", path=str(path)
            ) from None

    def _load_key(self) -> bytes:
        if self._key is not None:
            return self._key
        path = self.key_file
        try:
            st = path.stat()
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            raise VaultError(
                "no vault key: the quarantined files cannot be decrypted without the key that "
                "encrypted them (restore it from your backup, or set PLANTSWEEP_VAULT_KEY)",
                path=str(path),
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise VaultError(f"cannot read the vault key: {exc}", path=str(path)) from None
        if st.st_mode & 0o077:
            raise VaultError(
                f"the vault key is readable by others (mode {st.st_mode & 0o777:04o}): "
                f"chmod 600 {path}",
                path=str(path),
            )
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise VaultError("not a vault key (expected 64 hex digits)", path=str(path))
        self._key = key
        return key

    @property
    def key_id(self) -> str:
        return _key_id(self._load_key()).hex()

    # -- blobs -----------------------------------------------------------------------------

    def _aad(self, key_id: bytes, sha256: str) -> bytes:
        return MAGIC + key_id + sha256.encode("ascii")

    def _encrypt(self, source: Path, sha256: str, dest: Path) -> None:
        key = self._load_key()
        key_id = _key_id(key)
        nonce = secrets.token_bytes(NONCE_SIZE)  # random per blob: never reused with the key
        encryptor = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(self._aad(key_id, sha256))
        fd, tmp = tempfile.mkstemp(prefix=f".{sha256[:16]}.", dir=dest.parent)  # 0600
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                out.write(MAGIC + key_id + nonce)
                while chunk := src.read(CHUNK):
                    out.write(encryptor.update(chunk))
                out.write(encryptor.finalize())
                out.write(encryptor.tag)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _decrypt(self, sha256: str, sink: IO[bytes] | None) -> tuple[str, int]:
        """Stream-decrypt a blob into `sink` (None: hash only); returns (sha256, size) of
        the plaintext. Raises VaultError for a wrong key or an altered blob; the caller must
        discard what went to `sink` then (GCM authenticates only at the end)."""
        path = self.blob_path(sha256)
        key = self._load_key()
        try:
            fh = path.open("rb")
        except FileNotFoundError:
            raise VaultError("blob is missing from the vault", path=str(path)) from None
        with fh:
            total = os.fstat(fh.fileno()).st_size
            header = fh.read(HEADER_SIZE)
            if total < HEADER_SIZE + TAG_SIZE or not header.startswith(MAGIC):
                raise VaultError("not a vault blob (bad header)", path=str(path))
            key_id = header[len(MAGIC) : len(MAGIC) + KEY_ID_SIZE]
            if key_id != _key_id(key):
                raise VaultError(
                    f"blob was encrypted with vault key {key_id.hex()}, but the key in use "
                    f"({self.key_file}) is {_key_id(key).hex()}: wrong vault key",
                    path=str(path),
                )
            nonce = header[len(MAGIC) + KEY_ID_SIZE :]
            fh.seek(total - TAG_SIZE)
            tag = fh.read(TAG_SIZE)
            fh.seek(HEADER_SIZE)
            decryptor = Cipher(algorithms.AES(key), modes.GCM(nonce, tag)).decryptor()
            decryptor.authenticate_additional_data(self._aad(key_id, sha256))
            digest = hashlib.sha256()
            remaining = total - HEADER_SIZE - TAG_SIZE
            size = 0
            while remaining > 0:
                chunk = fh.read(min(CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                plain = decryptor.update(chunk)
                digest.update(plain)
                size += len(plain)
                if sink is not None:
                    sink.write(plain)
            try:
                decryptor.finalize()
            except InvalidTag:
                raise VaultError(
                    "blob failed authentication: it was altered (or belongs to another hash)",
                    path=str(path),
                ) from None
        if digest.hexdigest() != sha256:
            raise VaultError("blob decrypts to other content than its name says", path=str(path))
        return sha256, size

    def verify_blob(self, sha256: str) -> int:
        """Decrypt and re-hash a blob without writing the plaintext; returns its size."""
        return self._decrypt(sha256, None)[1]

    def decrypt_to(self, entry: VaultEntry, dest: Path) -> None:
        """Write the original bytes of `entry` to `dest` (new file, 0600), verified."""
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                _, size = self._decrypt(entry.sha256, out)
            if size != entry.size:
                raise VaultError(
                    f"blob holds {size} bytes, the entry says {entry.size}",
                    path=str(self.blob_path(entry.sha256)),
                )
        except BaseException:
            dest.unlink(missing_ok=True)
            raise

    def _store_blob(self, source: Path, sha256: str) -> None:
        """One blob per content: reuse a blob that verifies, else (re)write and verify it."""
        blob = self.blob_path(sha256)
        if blob.exists():
            try:
                self.verify_blob(sha256)
                return
            except VaultError:
                pass  # altered or under another key: replaced by a good copy below
        self._encrypt(source, sha256, blob)
        self.verify_blob(sha256)

    # -- the index -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read_index(self) -> list[VaultEntry]:
        try:
            data = json.loads(self.index_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise VaultError(
                f"cannot read the vault index: {exc}", path=str(self.index_file)
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
            raise VaultError("not a vault index", path=str(self.index_file))
        return [VaultEntry.from_json(e) for e in data["entries"]]

    def _write_index(self, entries: list[VaultEntry]) -> None:
        text = json.dumps(
            {"version": INDEX_VERSION, "entries": [e.as_json() for e in entries]}, indent=2
        )
        _write_private(self.index_file, (text + "\n").encode("utf-8"))

    def entries(self, host: str | None = None) -> list[VaultEntry]:
        """Every entry (or one host's), oldest first."""
        found = self._read_index()
        return [e for e in found if host is None or e.host == host]

    def entry(self, entry_id: str) -> VaultEntry:
        for e in self._read_index():
            if e.id == entry_id:
                return e
        raise VaultError(f"no quarantined file with id {entry_id!r}", path=str(self.index_file))

    def store(
        self,
        source: Path,
        *,
        host: str,
        path: str,
        sha256: str,
        facts: FileFacts,
        **extra: Any,
    ) -> VaultEntry:
        """Encrypt `source` (a local copy of the host's file), check the blob decrypts to
        `sha256`, then index it. `extra`: scan_id, log, rule, score, level."""
        actual, size = _sha256_file(source)
        if actual != sha256 or size != facts.size:
            raise VaultError(
                f"the copy of {host}:{path} is {size} bytes with SHA-256 {actual}, expected "
                f"{facts.size} bytes with {sha256}",
                path=str(source),
            )
        self.ensure_key()
        self._store_blob(source, sha256)
        with self._locked():
            entries = self._read_index()
            taken = {e.id for e in entries}
            entry_id = secrets.token_hex(4)
            while entry_id in taken:
                entry_id = secrets.token_hex(4)
            entry = VaultEntry(
                id=entry_id,
                host=host,
                path=path,
                sha256=sha256,
                quarantined_at=utc_now(),
                quarantined_by=controller_user(),
                **asdict(facts),
                **extra,
            )
            self._write_index([*entries, entry])
        return entry

    def update(self, entry_id: str, **changes: Any) -> VaultEntry:
        """Set fields of one entry (removed_at, restored_at, notes, ...) atomically."""
        with self._locked():
            entries = self._read_index()
            for e in entries:
                if e.id == entry_id:
                    for name, value in changes.items():
                        setattr(e, name, value)
                    self._write_index(entries)
                    return e
        raise VaultError(f"no quarantined file with id {entry_id!r}", path=str(self.index_file))
