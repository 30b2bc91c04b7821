"""The controller's record of every offline USB kit it built, with the kit's log key.

    $PLANTSWEEP_HOME/kits/<kit-id>.json            (else ~/.local/share/plantsweep/kits/)
    $PLANTSWEEP_HOME/kits/<kit-id>.imports.jsonl   logs already imported from that kit

A record is written 0600 (it holds the 32-byte key that checks the kit's log MACs) in a 0700
folder, atomically. A stick whose kit has no record here is "unknown": its logs are refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from agentless_scanner.logmac import KEY_BYTES, KIT_ID_RE
from orchestrator.errors import PlantsweepError

RECORD_FORMAT = "plantsweep-kit-record/1"
IMPORTS_SUFFIX = ".imports.jsonl"


def kits_dir() -> Path:
    home = os.environ.get("PLANTSWEEP_HOME")
    if home:
        return Path(home) / "kits"
    return Path.home() / ".local" / "share" / "plantsweep" / "kits"


def new_kit_id() -> str:
    """Sortable and unique: kit-20261126-3f9a1c2b."""
    return f"kit-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def valid_kit_id(kit_id: str) -> bool:
    return bool(KIT_ID_RE.match(kit_id))


@dataclass(frozen=True)
class KitRecord:
    kit_id: str
    created: str
    name: str | None
    plantsweep: str
    patterns: dict[str, Any]
    scanner_sha256: str
    files: dict[str, str]  # path in the kit -> sha256
    usb: str  # where it was written (for the operator's memory, never trusted)
    key: bytes = field(repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "format": RECORD_FORMAT,
            "kit_id": self.kit_id,
            "created": self.created,
            "name": self.name,
            "plantsweep": self.plantsweep,
            "patterns": self.patterns,
            "scanner_sha256": self.scanner_sha256,
            "files": self.files,
            "usb": self.usb,
            "key": self.key.hex(),
        }

    @classmethod
    def from_json(cls, data: Any, path: Path) -> KitRecord:
        try:
            if data.get("format") != RECORD_FORMAT:
                raise ValueError(f"format {data.get('format')!r}")
            key = bytes.fromhex(data["key"])
            if len(key) != KEY_BYTES:
                raise ValueError("key length")
            return cls(
                kit_id=str(data["kit_id"]),
                created=str(data["created"]),
                name=data.get("name"),
                plantsweep=str(data["plantsweep"]),
                patterns=dict(data["patterns"]),
                scanner_sha256=str(data["scanner_sha256"]),
                files={str(k): str(v) for k, v in data["files"].items()},
                usb=str(data.get("usb", "")),
                key=key,
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise PlantsweepError(f"malformed kit record ({exc})", path=str(path)) from None


def _private_dir(directory: Path) -> Path:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise PlantsweepError(
            f"cannot create the kit registry: {exc.strerror or exc}", path=str(directory)
        ) from None
    return directory


def record_path(kit_id: str, directory: Path | None = None) -> Path:
    if not valid_kit_id(kit_id):
        raise PlantsweepError(f"bad kit id {kit_id!r}")
    return (directory or kits_dir()) / f"{kit_id}.json"


def save(record: KitRecord, directory: Path | None = None) -> Path:
    """Write the record 0600, atomically; an existing kit id is never overwritten."""
    target = record_path(record.kit_id, _private_dir(directory or kits_dir()))
    if target.exists():
        raise PlantsweepError("a kit with this id is already registered", path=str(target))
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    data = (json.dumps(record.as_json(), indent=2) + "\n").encode()
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise PlantsweepError(
            f"cannot write the kit record: {exc.strerror or exc}", path=str(target)
        ) from None
    return target


def load(kit_id: str, directory: Path | None = None) -> KitRecord | None:
    """The record of `kit_id`, or None if this controller never built (or forgot) that kit."""
    if not valid_kit_id(kit_id):
        return None
    path = record_path(kit_id, directory)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise PlantsweepError(f"cannot read the kit record: {exc}", path=str(path)) from None
    record = KitRecord.from_json(data, path)
    if record.kit_id != kit_id:
        raise PlantsweepError(f"kit record names kit {record.kit_id!r}", path=str(path))
    return record


def forget(kit_id: str, directory: Path | None = None) -> None:
    """Drop a record (a kit build that failed before it reached the stick)."""
    record_path(kit_id, directory).unlink(missing_ok=True)


def all_kits(directory: Path | None = None) -> list[KitRecord]:
    folder = directory or kits_dir()
    if not folder.is_dir():
        return []
    names = sorted(p.name[: -len(".json")] for p in folder.glob("kit-*.json"))
    return [r for r in (load(n, folder) for n in names) if r is not None]


class ImportIndex:
    """Logs already imported from one kit, by the SHA-256 of their exact bytes.

    One JSON line per import, appended and fsynced; held under an flock for the whole import,
    so two imports of one stick at once cannot both store a log.
    """

    def __init__(self, kit_id: str, directory: Path | None = None):
        folder = _private_dir(directory or kits_dir())
        self.path = folder / f"{record_path(kit_id, folder).stem}{IMPORTS_SUFFIX}"
        self._fh: IO[str] | None = None
        self._entries: dict[str, dict[str, Any]] = {}

    def __enter__(self) -> ImportIndex:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        self._fh = os.fdopen(fd, "a+", encoding="utf-8")
        fcntl.flock(self._fh, fcntl.LOCK_EX)
        self._fh.seek(0)
        for line in self._fh:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and isinstance(entry.get("sha256"), str):
                    self._entries.setdefault(entry["sha256"], entry)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def find(self, sha256: str) -> dict[str, Any] | None:
        return self._entries.get(sha256)

    def add(self, entry: dict[str, Any]) -> None:
        assert self._fh is not None, "use ImportIndex as a context manager"
        self._fh.write(json.dumps(entry, sort_keys=True) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._entries[entry["sha256"]] = entry

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._entries.values())
