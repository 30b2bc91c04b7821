"""One host's session: connect, private temp dir, push, run, fetch, then remove and prove it.

    with HostSession(conn, target, timeouts) as session:
        session.push(Path("scanner.pyz"))
        session.run("...", timeout=60)
    session.proof  # CleanupProof: temp dir gone, nothing else written

Cleanup runs whatever happened inside the block (a failed step, a timeout, Ctrl-C).
"""

from __future__ import annotations

import json
import shlex
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

from orchestrator import hostside
from orchestrator.connections import CommandResult, Connection, Target, Timeouts
from orchestrator.errors import HostError, StepFailed
from orchestrator.journal import Journal


@dataclass(frozen=True)
class HostFacts:
    """What the probe learned about the host before anything was written to it."""

    python: str
    version: tuple[int, ...]
    machine: str
    system: str
    libc: str
    temp_dir: str
    home: str
    before: dict[str, list[str] | None]


@dataclass
class CleanupProof:
    """Evidence that the host is as we found it: the scan log's `cleanup` section."""

    temp_dir: str | None
    removed: bool
    residue: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    verified_at: str = ""

    @property
    def clean(self) -> bool:
        return self.removed and not self.residue and not self.errors

    def as_log(self) -> dict[str, Any]:
        return {
            "temp_dir": self.temp_dir,
            "removed": self.removed,
            "residue": self.residue,
            "errors": self.errors,
            "checked": self.checked,
            "verified_at": self.verified_at,
        }


def _json_line(result: CommandResult, host: str, what: str) -> dict[str, Any]:
    try:
        return json.loads(result.stdout.decode("utf-8", "surrogateescape").strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise StepFailed(host, f"{what} gave no usable answer: {result.stderr_tail()}") from None


Listing = dict[str, list[str] | None]


def _new_entries(before: Listing, after: Listing) -> list[str]:
    residue = []
    for place, names in after.items():
        old = set(before.get(place) or [])
        residue += [str(PurePosixPath(place) / n) for n in names or [] if n not in old]
    return sorted(residue)


class HostSession:
    """Owns the connection and the temp dir of one host; steps check `cancel` between them."""

    def __init__(
        self,
        conn: Connection,
        target: Target,
        timeouts: Timeouts,
        cancel: threading.Event | None = None,
        journal: Journal | None = None,
    ):
        self.conn = conn
        self.journal = journal
        self.target = target
        self.timeouts = timeouts
        self.cancel = cancel or threading.Event()
        self.facts: HostFacts | None = None
        self.proof: CleanupProof | None = None
        # Remote name -> local file already pushed, so each file goes once per session.
        self.pushed: dict[str, Path] = {}

    @property
    def name(self) -> str:
        return self.target.name

    def __enter__(self) -> HostSession:
        self.conn.open()
        temp_dir = hostside.new_temp_dir(self.target.remote_tmp)
        if self.journal is not None:
            self.journal.creating(self.target, temp_dir)  # before it can exist
        try:
            self.facts = self._probe(temp_dir)
        except BaseException:
            self._undo_probe(temp_dir)
            self.conn.close()
            raise
        return self

    def _undo_probe(self, temp_dir: str) -> None:
        """The probe failed: remove the (empty) dir if it was made, with the shell alone."""
        q = shlex.quote(temp_dir)
        try:
            result = self.conn.run(
                f"rmdir -- {q} 2>/dev/null; if [ -e {q} ]; then echo present; fi",
                self.timeouts.command,
            )
        except HostError:
            return  # unreachable: the journal keeps the entry for `plantsweep cleanup`
        if b"present" not in result.stdout and self.journal is not None:
            self.journal.removed(self.name, temp_dir)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.proof is None:
                self.cleanup()
        finally:
            self.conn.close()

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise StepFailed(self.name, "cancelled")

    def _probe(self, temp_dir: str) -> HostFacts:
        command = hostside.probe_command(self.target.python_interpreter, temp_dir)
        result = self.conn.run(command, self.timeouts.command)
        if result.rc == hostside.NO_PYTHON_RC:
            raise StepFailed(self.name, result.stderr_tail() or "no Python 3 interpreter found")
        if not result.ok:
            raise StepFailed(self.name, f"probe failed (rc {result.rc}): {result.stderr_tail()}")
        data = _json_line(result, self.name, "probe")
        # Trust the answer only if it names the dir we asked for: later steps delete inside it.
        if data.get("temp_dir") != temp_dir:
            raise StepFailed(self.name, f"probe answered for another temp dir: {data!r:.200}")
        return HostFacts(
            python=str(data["python"]),
            version=tuple(data["version"]),
            machine=str(data["machine"]),
            system=str(data["system"]),
            libc=str(data["libc"]),
            temp_dir=temp_dir,
            home=str(data["home"]),
            before=data["before"],
        )

    def remote_path(self, name: str) -> str:
        """A path inside our temp dir; names with separators or '..' are refused."""
        assert self.facts is not None
        if not name or "/" in name or name in (".", ".."):
            raise StepFailed(self.name, f"refusing remote file name {name!r}")
        return str(PurePosixPath(self.facts.temp_dir) / name)

    def push(self, local: Path, name: str | None = None) -> str:
        self._check_cancel()
        remote = self.remote_path(name or local.name)
        self.conn.put(local, remote, self.timeouts.transfer)
        return remote

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        self._check_cancel()
        return self.conn.run(command, timeout or self.timeouts.command, self.cancel)

    def fetch(self, name: str, local: Path) -> None:
        self._check_cancel()
        self.conn.get(self.remote_path(name), local, self.timeouts.transfer)

    def cleanup(self) -> CleanupProof:
        """Remove the temp dir and prove it: the dir is gone and no new entry appeared in the
        temp parent or the home dir since the probe. Never raises for a host problem."""
        facts = self.facts
        if facts is None:
            self.proof = CleanupProof(temp_dir=None, removed=True)
            return self.proof
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        checked = sorted(facts.before)
        try:
            result = self.conn.run(
                hostside.cleanup_command(
                    facts.python, facts.temp_dir, self.target.remote_tmp, facts.home
                ),
                self.timeouts.command,
            )
            data = _json_line(result, self.name, "cleanup")
            self.proof = CleanupProof(
                temp_dir=facts.temp_dir,
                removed=data["removed"] is True,
                residue=_new_entries(facts.before, data["after"]),
                errors=[str(e) for e in data["errors"]],
                checked=checked,
                verified_at=now,
            )
            if self.proof.removed and self.journal is not None:
                self.journal.removed(self.name, facts.temp_dir)
        except HostError as exc:
            self.proof = CleanupProof(
                temp_dir=facts.temp_dir,
                removed=False,
                errors=[f"cleanup could not run: {exc.message}"],
                checked=checked,
                verified_at=now,
            )
        return self.proof
