"""The fleet's state folder: safety checks, lock, and the state file used for teardown."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any

from .proc import HarnessError

STATE_FILE = "fleet.json"
MARKER = ".plantsweep-fleet"
DEFAULT_BASE = Path("/var/lib/plantsweep-test")
# Replaced inside every host, or too broad to hold a fleet.
FORBIDDEN = (Path("/tmp"), Path("/root"), Path("/home"), Path("/srv"), Path("/opt"), Path("/run"))


def check_state_dir(path: Path) -> Path:
    """Refuse state folders that hosts cannot see or that we must not clean."""
    path = Path(os.path.abspath(path))
    if len(path.parts) < 3:
        raise HarnessError(f"state folder {path}: too close to / (use e.g. /var/lib/NAME)")
    for bad in FORBIDDEN:
        if path == bad or bad in path.parents:
            raise HarnessError(
                f"state folder {path}: must not be under {bad} (replaced inside each host)"
            )
    if path.exists() and any(path.iterdir()) and not (path / MARKER).exists():
        raise HarnessError(
            f"state folder {path} exists, is not empty and is not a plantsweep fleet folder"
        )
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).touch()
    return path


def read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((path / STATE_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def write(path: Path, data: dict[str, Any]) -> None:
    """Atomic replace: a crash mid-write must not lose what needs tearing down."""
    tmp = path / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path / STATE_FILE)


class Lock:
    """flock on the state folder: one live owner per fleet; freed by the kernel on crash."""

    def __init__(self, path: Path) -> None:
        self._path = path / "lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise HarnessError(
                f"fleet in {self._path.parent} is in use by process {owner or '?'}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
            self._fd = None
