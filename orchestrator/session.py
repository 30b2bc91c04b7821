"""One host's session: connect, private temp dir, push, run, fetch, then remove and prove it.

    with HostSession(conn, target, timeouts) as session:
        session.push(Path("scanner.pyz"))
        session.run("...", timeout=60)
    session.proof  # CleanupProof: temp dir gone, nothing else written

Cleanup runs whatever happened inside the block (a failed step, a timeout, Ctrl-C).
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import threading
from collections.abc import Callable
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
    # --wheel-dir for the scanner when the session brought the yara wheel itself (Windows kit)
    wheel_dir: str | None = None


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


def json_answer(result: CommandResult, host: str, what: str) -> dict[str, Any]:
    """The JSON object a host-side script printed last; StepFailed if there is none."""
    try:
        return json.loads(result.stdout.decode("utf-8", "surrogateescape").strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise StepFailed(host, f"{what} gave no usable answer: {result.stderr_tail()}") from None


Listing = dict[str, list[str] | None]


def _posix_join(place: str, name: str) -> str:
    return str(PurePosixPath(place) / name)


def new_entries(
    before: Listing, after: Listing, join: Callable[[str, str], str] = _posix_join
) -> list[str]:
    """What a place lists now that it did not list before the session."""
    residue = []
    for place, names in after.items():
        old = set(before.get(place) or [])
        residue += [join(place, n) for n in names or [] if n not in old]
    return sorted(residue)


class HostSession:
    """Owns the connection and the temp dir of one host; steps check `cancel` between them."""

    #: Host-side steps written for a POSIX host (quarantine, fetch_logs) can run here.
    posix = True

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
        self.may_be_running = False

    @property
    def name(self) -> str:
        return self.target.name

    def __enter__(self) -> HostSession:
        self.conn.open()
        try:
            temp_dir = self._new_temp_dir()
        except BaseException:
            self.conn.close()
            raise
        if self.journal is not None:
            self.journal.creating(self.target, temp_dir)  # before it can exist
        try:
            self.facts = self._probe(temp_dir)
        except BaseException:
            self._undo_probe(temp_dir)
            self.conn.close()
            raise
        return self

    def _new_temp_dir(self) -> str:
        return hostside.new_temp_dir(self.target.remote_tmp)

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
        marker = "@@" + secrets.token_hex(6)  # a file name cannot fake a section line
        command = hostside.probe_command(self.target.python_interpreter, temp_dir, marker)
        result = self.conn.run(command, self.timeouts.command)
        if result.rc == hostside.NO_PYTHON_RC:
            raise StepFailed(self.name, result.stderr_tail() or "no Python 3 interpreter found")
        if result.rc == hostside.NO_TEMP_DIR_RC:
            raise StepFailed(self.name, f"cannot create the temp dir: {result.stderr_tail()}")
        if not result.ok:
            raise StepFailed(self.name, f"probe failed (rc {result.rc}): {result.stderr_tail()}")
        found = hostside.sections(result.stdout, marker)
        home_key = next((k for k in found if k.startswith("home ")), None)
        python_key = next((k for k in found if k.startswith("python ")), None)
        if "end" not in found or home_key is None or python_key is None:
            raise StepFailed(self.name, f"probe gave no usable answer: {result.stderr_tail()}")
        version_text = " ".join(found[python_key])
        match = re.search(r"Python (\d+)\.(\d+)(?:\.(\d+))?", version_text)
        if match is None:
            raise StepFailed(self.name, f"cannot tell the Python version: {version_text[:100]!r}")
        version = tuple(int(v) for v in match.groups(default="0"))
        python = python_key[len("python ") :]
        if version < (3, 6):
            raise StepFailed(
                self.name, f"{python} is Python {version_text.split()[-1]}: 3.6+ needed"
            )
        home = home_key[len("home ") :]
        parent = str(PurePosixPath(temp_dir).parent)
        system, _, machine = " ".join(found.get("uname", [])).partition(" ")
        return HostFacts(
            python=python,
            version=version,
            machine=machine,
            system=system,
            libc=" ".join(found.get("libc", [])),
            temp_dir=temp_dir,
            home=home,
            before={parent: found.get("parent", []), home: found[home_key]},
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

    def run(
        self, command: str, timeout: float | None = None, *, leaves_nothing_running: bool = False
    ) -> CommandResult:
        """Run a command in the session. Unless the caller vouches that the command leaves
        nothing running once it returns (the scanner: it is exec'd and waited for), cleanup
        will look for and stop processes started from the temp dir."""
        self._check_cancel()
        if not leaves_nothing_running:
            self.may_be_running = True
        try:
            return self.conn.run(command, timeout or self.timeouts.command, self.cancel)
        except HostError:
            # Timed out, cancelled or cut off: the command may still run from the temp dir.
            self.may_be_running = True
            raise

    def arg_path(self, name: str) -> str:
        """How a command run by `run_python` names a file of the temp dir."""
        return self.remote_path(name)

    def require_posix(self, what: str) -> None:
        if not self.posix:
            raise StepFailed(self.name, f"{what} on Windows hosts is not built yet")

    def run_python(
        self,
        argv: list[str],
        timeout: float | None = None,
        *,
        leaves_nothing_running: bool = False,
    ) -> CommandResult:
        """Run the host's Python on argv[0] (a file of the temp dir) from inside the temp dir,
        with `-I -B` and the temp dir as its TMPDIR."""
        assert self.facts is not None
        command = hostside.payload_command(self.facts.python, self.facts.temp_dir, argv)
        return self.run(command, timeout, leaves_nothing_running=leaves_nothing_running)

    def fetch(self, name: str, local: Path) -> None:
        self._check_cancel()
        self.conn.get(self.remote_path(name), local, self.timeouts.transfer)

    def _remove(self, facts: HostFacts) -> dict[str, Any]:
        """The shell alone when every command ended normally; otherwise the interpreter, which
        also stops whatever still runs from the temp dir (a timed-out or cancelled scanner)."""
        parent = str(PurePosixPath(facts.temp_dir).parent)
        if self.may_be_running:
            result = self.conn.run(
                hostside.cleanup_command(facts.python, facts.temp_dir, parent, facts.home),
                self.timeouts.command,
            )
            return json_answer(result, self.name, "cleanup")
        marker = "@@" + secrets.token_hex(6)
        result = self.conn.run(
            hostside.quick_cleanup_command(facts.temp_dir, parent, facts.home, marker),
            self.timeouts.command,
        )
        found = hostside.sections(result.stdout, marker)
        if "end" not in found:
            raise StepFailed(self.name, f"cleanup gave no usable answer: {result.stderr_tail()}")
        errors = result.stderr.decode("utf-8", "replace").strip().splitlines()
        return {
            "removed": "present" not in found,
            "errors": errors if "present" in found else [],
            "after": {parent: found.get("parent", []), facts.home: found.get("home", [])},
        }

    def _residue(self, before: Listing, after: Listing) -> list[str]:
        return new_entries(before, after)

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
            data = self._remove(facts)
            self.proof = CleanupProof(
                temp_dir=facts.temp_dir,
                removed=data["removed"] is True,
                residue=self._residue(facts.before, data["after"]),
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


def new_session(
    conn: Connection,
    target: Target,
    timeouts: Timeouts,
    cancel: threading.Event | None = None,
    journal: Journal | None = None,
) -> HostSession:
    """The session the host's shell needs: Windows (WinRM into cmd) or POSIX (sh)."""
    if target.winrm is not None and target.winrm.shell_type != "sh":
        from orchestrator.windows_session import WindowsHostSession  # it builds on this module

        return WindowsHostSession(conn, target, timeouts, cancel, journal)
    return HostSession(conn, target, timeouts, cancel, journal)
