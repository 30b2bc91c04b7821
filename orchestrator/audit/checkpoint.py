"""Signed checkpoints of the audit trail: C2SP signed notes over the Merkle root.

    <origin>                      the store's install_id
    <size>                        the checkpoint covers entries 1..size
    <base64 Merkle root>          RFC 6962 root over their leaf hashes (merkle.py)

    — <key name> <base64(key id (4 bytes) || Ed25519 signature over the three lines above)>

(https://github.com/C2SP/C2SP signed-note.md and tlog-checkpoint.md). The key name is the origin;
the key id is the first 4 bytes of SHA-256(name || "\\n" || 0x01 || public key).

The signing key is an Ed25519 key in `$PLANTSWEEP_AUDIT_KEY`, else
`$PLANTSWEEP_HOME/audit/signing.key` (else ~/.local/share/plantsweep/audit/signing.key): PEM
PKCS#8, mode 0600 in a 0700 folder, created on the first checkpoint, never logged. Its public key
is beside it (`signing.pub`), and every public key the trail was ever signed with is kept in
`keys/<fingerprint>.pub` next to it, so checkpoints signed before a rotation still verify.

A checkpoint is stored in `audit_checkpoints` and then recorded as an `audit_checkpoint` entry,
in one transaction: the checkpoint covers the entries before that entry; the next checkpoint
covers the entry itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import Connection, func, insert, select

from orchestrator.audit import trail
from orchestrator.audit.identity import Actor, Where, os_actor
from orchestrator.audit.merkle import MerkleBuilder
from orchestrator.errors import PlantsweepError, UsageError
from orchestrator.store import Store, schema

ALG_ED25519 = 0x01
SIG_PREFIX = "\u2014 "  # em dash + space: a signature line of a signed note
PAGE = 10_000
FRONTIER_KEY = "audit_merkle_frontier"  # store_meta: the Merkle frontier at the last checkpoint


class AuditKeyError(PlantsweepError):
    """The audit signing key cannot be created, read or used."""


# -- the key ----------------------------------------------------------------------------------


def key_path() -> Path:
    override = os.environ.get("PLANTSWEEP_AUDIT_KEY")
    if override:
        return Path(override)
    home = os.environ.get("PLANTSWEEP_HOME")
    base = Path(home) if home else Path.home() / ".local" / "share" / "plantsweep"
    return base / "audit" / "signing.key"


def public_path(private: Path | None = None) -> Path:
    return (private or key_path()).with_suffix(".pub")


def keys_dir(private: Path | None = None) -> Path:
    return (private or key_path()).parent / "keys"


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(key: Ed25519PublicKey) -> str:
    """A name for a public key that does not depend on the trail: 16 hex digits."""
    return hashlib.sha256(raw_public(key)).hexdigest()[:16]


def key_id(name: str, key: Ed25519PublicKey) -> bytes:
    """The C2SP signed-note key id (4 bytes) of `key` under the key name `name`."""
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + raw_public(key)
    ).digest()[:4]


def verifier_key(name: str, key: Ed25519PublicKey) -> str:
    """The C2SP verifier key string: <name>+<hex key id>+<base64(0x01 || public key)>."""
    encoded = base64.b64encode(bytes([ALG_ED25519]) + raw_public(key)).decode("ascii")
    return f"{name}+{key_id(name, key).hex()}+{encoded}"


def _public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _write_atomic(path: Path, data: bytes, mode: int, *, replace: bool) -> bool:
    """Write via a temporary file; `replace=False` never overwrites (returns False if there)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # atomic, and fails if another process made one first
        except FileExistsError:
            return False
        return True
    finally:
        if tmp.exists():
            tmp.unlink()


def _make_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)


def _private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _archive_public(key: Ed25519PublicKey, private: Path) -> None:
    folder = keys_dir(private)
    _make_folder(folder)
    target = folder / f"{fingerprint(key)}.pub"
    if not target.exists():
        _write_atomic(target, _public_pem(key), 0o644, replace=False)


def load_key(*, create: bool = False) -> Ed25519PrivateKey:
    """The trail's signing key; `create` makes one if there is none yet."""
    path = key_path()
    try:
        if not path.exists():
            if not create:
                raise AuditKeyError("no audit signing key yet (made by the first checkpoint)",
                                    path=str(path))
            _make_folder(path.parent)
            _write_atomic(path, _private_pem(Ed25519PrivateKey.generate()), 0o600,
                          replace=False)
        data = path.read_bytes()
    except OSError as exc:
        raise AuditKeyError(f"cannot use the audit signing key: {exc.strerror or exc}",
                            path=str(path)) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise AuditKeyError("not an unencrypted Ed25519 PEM key", path=str(path)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError("the audit signing key is not an Ed25519 key", path=str(path))
    try:
        pub = public_path(path)
        if not pub.exists() or pub.read_bytes() != _public_pem(key.public_key()):
            _write_atomic(pub, _public_pem(key.public_key()), 0o644, replace=True)
        _archive_public(key.public_key(), path)
    except OSError as exc:
        raise AuditKeyError(f"cannot write the audit public key: {exc.strerror or exc}",
                            path=str(path.parent)) from None
    return key


def trusted_keys(private: Path | None = None) -> list[Ed25519PublicKey]:
    """Every public key kept beside the signing key (current and rotated-out ones)."""
    found: dict[bytes, Ed25519PublicKey] = {}
    candidates = [public_path(private)]
    folder = keys_dir(private)
    if folder.is_dir():
        candidates += sorted(folder.glob("*.pub"))
    for path in candidates:
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(key, Ed25519PublicKey):
            found[raw_public(key)] = key
    return list(found.values())


# -- signed notes -----------------------------------------------------------------------------


def note_body(origin: str, size: int, root: bytes) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode('ascii')}\n"


def sign_note(body: str, name: str, key: Ed25519PrivateKey) -> str:
    signature = key.sign(body.encode("utf-8"))
    blob = base64.b64encode(key_id(name, key.public_key()) + signature).decode("ascii")
    return f"{body}\n{SIG_PREFIX}{name} {blob}\n"


@dataclass
class Note:
    """A parsed checkpoint note (not yet verified)."""

    text: str
    origin: str
    size: int
    root: bytes
    signatures: list[tuple[str, bytes, bytes]] = field(default_factory=list)  # name, id, sig
    created: str | None = None  # known for stored checkpoints and annotated exports

    @property
    def body(self) -> str:
        return note_body(self.origin, self.size, self.root)

    def verified_by(self, keys: Iterable[Ed25519PublicKey]) -> str | None:
        """The fingerprint of the trusted key whose signature is valid, or None."""
        keys = list(keys)
        for name, kid, sig in self.signatures:
            for key in keys:
                if key_id(name, key) != kid:
                    continue
                try:
                    key.verify(sig, self.body.encode("utf-8"))
                except InvalidSignature:
                    continue
                return fingerprint(key)
        return None

    def key_ids(self) -> list[str]:
        return [kid.hex() for _, kid, _ in self.signatures]


class NoteError(ValueError):
    pass


def parse_note(text: str) -> Note:
    """Parse one signed note (C2SP); raises NoteError if malformed."""
    if "\n\n" not in text:
        raise NoteError("no blank line between the body and the signatures")
    body, _, sigs = text.partition("\n\n")
    lines = body.split("\n")
    if len(lines) != 3:
        raise NoteError("a checkpoint body has three lines: origin, size, root")
    origin, size_text, root_text = lines
    if not size_text.isdigit() or (size_text.startswith("0") and size_text != "0"):
        raise NoteError(f"bad size {size_text!r}")
    try:
        root = base64.b64decode(root_text, validate=True)
    except ValueError:
        raise NoteError("the root is not base64") from None
    if len(root) != 32:
        raise NoteError("the root is not a SHA-256 hash")
    note = Note(text=text, origin=origin, size=int(size_text), root=root)
    for line in sigs.rstrip("\n").split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise NoteError(f"not a signature line: {line[:40]!r}")
        name, _, blob = line[len(SIG_PREFIX):].rpartition(" ")
        try:
            raw = base64.b64decode(blob, validate=True)
        except ValueError:
            raise NoteError("a signature is not base64") from None
        if not name or len(raw) < 5:
            raise NoteError("a signature line is too short")
        note.signatures.append((name, raw[:4], raw[4:]))
    if not note.signatures:
        raise NoteError("no signature")
    return note


def parse_notes_file(path: Path) -> list[Note]:
    """Checkpoints exported by `audit checkpoints --export` (notes, each optionally preceded by
    a `# created <time>` line) or the JSON of `audit export --format json`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the checkpoints: {exc}", path=str(path)) from None
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
            items = data["header"]["checkpoints"]
            return [_annotated(parse_note(i["note"]), i.get("created")) for i in items]
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"not an audit export with checkpoints: {exc}",
                             path=str(path)) from None
    notes: list[Note] = []
    created: str | None = None
    block: list[str] = []
    in_sigs = False

    def flush() -> None:
        nonlocal block, in_sigs, created
        if block:
            try:
                notes.append(_annotated(parse_note("\n".join(block) + "\n"), created))
            except NoteError as exc:
                raise UsageError(f"checkpoint {len(notes) + 1}: {exc}", path=str(path)) from None
        block, in_sigs, created = [], False, None

    for line in text.split("\n"):
        if line.startswith("# "):
            flush()
            if line.startswith("# created "):
                created = line[len("# created "):].strip()
        elif line == "":
            if in_sigs:
                flush()
            elif block:
                block.append("")
        elif line.startswith(SIG_PREFIX):
            in_sigs = True
            block.append(line)
        else:
            if in_sigs:
                flush()
            block.append(line)
    flush()
    return notes


def _annotated(note: Note, created: str | None) -> Note:
    note.created = created
    return note


# -- making checkpoints -----------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    id: int
    size: int
    root_hash: str
    created: str
    note: str
    audit_seq: int  # the `audit_checkpoint` entry that records it


def _lock_head(conn: Connection) -> int:
    return int(
        conn.execute(
            select(schema.audit_head.c.seq).where(schema.audit_head.c.id == 1).with_for_update()
        ).scalar_one()
    )


def _last_checkpoint(conn: Connection) -> tuple[int, str] | None:
    row = conn.execute(
        select(schema.audit_checkpoints.c.size, schema.audit_checkpoints.c.root_hash)
        .order_by(schema.audit_checkpoints.c.id.desc())
        .limit(1)
    ).first()
    return (int(row.size), row.root_hash) if row else None


def _frontier(conn: Connection, size: int) -> MerkleBuilder:
    """The Merkle frontier for entries 1..size: from the one saved at the last checkpoint when
    it still matches that checkpoint's root, else recomputed from entry 1."""
    builder = MerkleBuilder()
    saved = conn.execute(
        select(schema.store_meta.c.value).where(schema.store_meta.c.key == FRONTIER_KEY)
    ).scalar()
    last = _last_checkpoint(conn)
    if saved and last:
        try:
            candidate = MerkleBuilder.from_state(json.loads(saved))
        except (ValueError, KeyError, TypeError):
            candidate = None
        if candidate and (candidate.size, candidate.root().hex()) == last and last[0] <= size:
            builder = candidate
    table = schema.audit_entries
    after = builder.size
    while True:  # in pages by seq (a server-side cursor does not mix with the writes after)
        page = conn.execute(
            select(table.c.seq, table.c.leaf_hash)
            .where(table.c.seq > after, table.c.seq <= size)
            .order_by(table.c.seq)
            .limit(PAGE)
        ).all()
        for seq, leaf in page:
            builder.add(leaf)
            after = seq
        if len(page) < PAGE:
            return builder


def _origin(conn: Connection) -> str:
    origin = conn.execute(
        select(schema.store_meta.c.value).where(schema.store_meta.c.key == "install_id")
    ).scalar()
    if not origin:
        raise AuditKeyError("the store has no install_id (origin of the audit trail)")
    return str(origin)


def make_checkpoint(
    store: Store,
    note: str = "",
    *,
    actor: Actor | None = None,
    where: Where | None = None,
    _only_if_due: int | None = None,
) -> Checkpoint | None:
    """Sign a checkpoint over every entry so far, store it, and record it in the trail.

    Returns None only when `_only_if_due` is set and no checkpoint is due (checkpoint_if_due).
    """
    key = load_key(create=True)
    with store.begin() as conn:
        size = _lock_head(conn)  # no append can slip in between the root and the record
        if _only_if_due is not None:
            last = _last_checkpoint(conn)
            since = size - (last[0] if last else 0)
            if size == 0 or (last is not None and since < _only_if_due):
                return None
        origin = _origin(conn)
        builder = _frontier(conn, size)
        if builder.size != size:
            raise AuditKeyError(
                f"the audit trail has {builder.size} entries but its head says {size}: "
                "run `plantsweep audit verify`"
            )
        root = builder.root()
        signed = sign_note(note_body(origin, size, root), origin, key)
        created = trail.now_with_offset()[0]
        checkpoint_id = conn.execute(
            insert(schema.audit_checkpoints)
            .values(size=size, root_hash=root.hex(), created=created, note=signed)
            .returning(schema.audit_checkpoints.c.id)
        ).scalar_one()
        store.set_meta(conn, FRONTIER_KEY, json.dumps(builder.state()))
        seq = trail.append(
            conn, actor or os_actor(), "audit_checkpoint", "audit_checkpoint",
            str(checkpoint_id),
            new={"size": size, "root": root.hex(), "key_id": key_id(origin, key.public_key()).hex(),
                 "fingerprint": fingerprint(key.public_key()), "note": note or None},
            where=where,
        )
    return Checkpoint(checkpoint_id, size, root.hex(), created, signed, seq)


def checkpoint_if_due(
    store: Store, every: int = 100, *, actor: Actor | None = None, where: Where | None = None
) -> Checkpoint | None:
    """A checkpoint if `every` entries were appended since the last one, or if the trail has
    entries and no checkpoint yet; else None. Cheap when nothing is due (two indexed reads)."""
    with store.connect() as conn:
        size = int(conn.execute(select(schema.audit_head.c.seq)).scalar_one())
        last = _last_checkpoint(conn)
    if size == 0 or (last is not None and size - last[0] < every):
        return None
    return make_checkpoint(store, actor=actor, where=where, _only_if_due=every)


def stored_checkpoints(conn: Connection) -> list[Note]:
    """Every stored checkpoint, oldest first, parsed (malformed ones raise NoteError)."""
    notes = []
    table = schema.audit_checkpoints
    for row in conn.execute(select(table).order_by(table.c.id)):
        note = parse_note(row.note)
        note.created = row.created
        notes.append(note)
    return notes


def count_checkpoints(conn: Connection) -> int:
    total = conn.execute(select(func.count()).select_from(schema.audit_checkpoints))
    return int(total.scalar_one())


def export_checkpoints(store: Store, out: Path) -> int:
    """Write every stored signed note to `out` (each after a `# created <time>` line)."""
    parts = []
    with store.connect() as conn:
        for row in conn.execute(
            select(schema.audit_checkpoints.c.created, schema.audit_checkpoints.c.note)
            .order_by(schema.audit_checkpoints.c.id)
        ):
            parts.append(f"# created {row.created}\n{row.note}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts), encoding="utf-8")
    return len(parts)


# -- rotation ---------------------------------------------------------------------------------


def rotate_key(
    store: Store, reason: str, *, actor: Actor | None = None, where: Where | None = None
) -> tuple[Ed25519PublicKey, Ed25519PublicKey]:
    """Replace the signing key; the old public key stays trusted (keys/). Checkpoints with the
    old key first, so every entry before the rotation is signed by it. Returns (old, new)."""
    if not (reason and reason.strip()):
        raise UsageError("a reason is required to rotate the audit signing key (--reason)")
    old = load_key(create=True)
    checkpoint_if_due(store, every=1, actor=actor, where=where)
    new = Ed25519PrivateKey.generate()
    path = key_path()
    with store.begin() as conn:
        origin = _origin(conn)
        trail.append(
            conn, actor or os_actor(), "key_rotate", "audit_key", fingerprint(new.public_key()),
            old={"fingerprint": fingerprint(old.public_key()),
                 "key_id": key_id(origin, old.public_key()).hex()},
            new={"fingerprint": fingerprint(new.public_key()),
                 "key_id": key_id(origin, new.public_key()).hex()},
            reason=reason, where=where,
        )
        try:
            _archive_public(old.public_key(), path)
            _archive_public(new.public_key(), path)
            _write_atomic(path, _private_pem(new), 0o600, replace=True)
            _write_atomic(public_path(path), _public_pem(new.public_key()), 0o644, replace=True)
        except OSError as exc:
            raise AuditKeyError(f"cannot write the new audit key: {exc.strerror or exc}",
                                path=str(path)) from None
    return old.public_key(), new.public_key()
