"""One Windows host's session over WinRM: the same steps as a POSIX host, with the Windows kit.

    with WindowsHostSession(conn, target, timeouts) as session:   # probe, temp dir, kit pushed
        session.run_python([session.arg_path("scanner.pyz"), ...])

The probe (cmd built-ins, one round trip) learns the CPU and the Windows version, records
every place residue could appear (the temp dir's parent, the profile, services, the registry's
top-level software keys, Run/RunOnce, scheduled tasks) and makes the private temp dir. The
Windows kit that fits the host (kit/windows.py) is then pushed into `<temp>\\kit` once per
session: its Python runs every host-side script, the yara wheel goes with it. Cleanup removes
the temp dir with `rmdir /s /q` and takes the same snapshot again; any new entry is residue.
A command that may still run (a timeout, Ctrl-C) is ended by closing the WinRM shell: Windows
ends every process of a shell's job with it.
"""

from __future__ import annotations

import secrets
from pathlib import PureWindowsPath
from typing import Any

from orchestrator import hostside_windows as win
from orchestrator.connections import CommandResult
from orchestrator.errors import HostError, PayloadError, StepFailed
from orchestrator.kit.windows import WindowsKit, kit_for_host
from orchestrator.session import HostFacts, HostSession, Listing, new_entries

KIT_DIR = "kit"
SKIPPED_KIT_FILES = ("kit.json", "scanner.pyz")  # the scan pushes its own, current scanner


def _windows_join(place: str, name: str) -> str:
    kind, _, where = place.partition(" ")
    if kind == "dir":
        return str(PureWindowsPath(where) / name)
    return f"{place}: {name}"


class WindowsHostSession(HostSession):
    """A HostSession whose host-side steps are cmd commands and the kit's Python."""

    kit: WindowsKit | None = None
    posix = False

    def _new_temp_dir(self) -> str:
        try:
            return win.new_temp_dir(self.target.remote_tmp)
        except ValueError as exc:
            raise StepFailed(self.name, str(exc)) from None

    def _probe(self, temp_dir: str) -> HostFacts:
        marker = "@@" + secrets.token_hex(6)
        result = self.conn.run(win.probe_command(temp_dir, marker), self.timeouts.command)
        if result.rc == win.NO_TEMP_DIR_RC:
            raise StepFailed(self.name, f"cannot create the temp dir: {result.stderr_tail()}")
        found = win.sections(result.stdout, marker)
        arch_key = next((k for k in found if k.startswith("arch ")), None)
        home_key = next(
            (k for k in found if k.startswith("dir ") and k != f"dir {_parent(temp_dir)}"), None
        )
        version = win.parse_ver(found.get("ver", []))
        if not result.ok or "end" not in found or arch_key is None or home_key is None:
            raise StepFailed(
                self.name, f"probe failed (rc {result.rc}): {result.stderr_tail() or 'no answer'}"
            )
        if version is None:
            raise StepFailed(self.name, f"cannot tell the Windows version: {found.get('ver')}")
        arch = win.parse_arch(arch_key)
        try:
            self.kit = kit_for_host(arch, version.major_minor)
        except PayloadError as exc:
            raise StepFailed(self.name, exc.message) from None
        before = {k: v for k, v in found.items() if k.split(" ")[0] in _SNAPSHOT_KINDS}
        kit_dir = str(PureWindowsPath(temp_dir) / KIT_DIR)
        return HostFacts(
            python=str(PureWindowsPath(kit_dir) / "python" / "python.exe"),
            version=self.kit.python,
            machine=arch,
            system=f"Windows {version.text}",
            libc="",
            temp_dir=temp_dir,
            home=home_key[len("dir ") :],
            before=before,
            wheel_dir=f"{KIT_DIR}/wheels" if self.kit.wheel else None,
        )

    def __enter__(self) -> WindowsHostSession:
        super().__enter__()
        try:
            self._push_kit()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _push_kit(self) -> None:
        """Every file of the kit but its manifest and scanner, into <temp>\\kit."""
        assert self.facts is not None and self.kit is not None
        files = [
            p
            for p in sorted(self.kit.path.rglob("*"))
            if p.is_file() and p.relative_to(self.kit.path).as_posix() not in SKIPPED_KIT_FILES
        ]
        base = PureWindowsPath(self.facts.temp_dir) / KIT_DIR
        folders = sorted(
            {str(base.joinpath(*p.relative_to(self.kit.path).parent.parts)) for p in files}
        )
        self._check_cancel()
        made = self.conn.run(win.mkdirs_command(folders), self.timeouts.command)
        if not made.ok:
            raise StepFailed(self.name, f"cannot create {base}: {made.stderr_tail()}")
        for local in files:
            self._check_cancel()
            remote = base.joinpath(*local.relative_to(self.kit.path).parts)
            self.conn.put(local, str(remote), self.timeouts.transfer)

    def _undo_probe(self, temp_dir: str) -> None:
        try:
            result = self.conn.run(win.undo_probe_command(temp_dir), self.timeouts.command)
        except HostError:
            return  # unreachable: the journal keeps the entry for `plantsweep cleanup`
        if b"present" not in result.stdout and self.journal is not None:
            self.journal.removed(self.name, temp_dir)

    def remote_path(self, name: str) -> str:
        assert self.facts is not None
        if not name or any(c in name for c in "/\\:") or name in (".", ".."):
            raise StepFailed(self.name, f"refusing remote file name {name!r}")
        return str(PureWindowsPath(self.facts.temp_dir) / name)

    def arg_path(self, name: str) -> str:
        """Relative to the temp dir, which is the launcher's working directory."""
        self.remote_path(name)  # the same checks
        return name

    def run_python(
        self,
        argv: list[str],
        timeout: float | None = None,
        *,
        leaves_nothing_running: bool = False,
        code: str | None = None,
    ) -> CommandResult:
        """The kit's Python in the temp dir, with TEMP and TMP inside it; argv and the script
        travel through stdin (no cmd.exe quoting, no command-line length limit)."""
        assert self.facts is not None
        self._check_cancel()
        if not leaves_nothing_running:
            self.may_be_running = True
        tmp = self.facts.temp_dir
        request = win.python_request(argv, {"TEMP": tmp, "TMP": tmp}, code)
        command = win.python_command(tmp, self.facts.python)
        try:
            return self.conn.run(  # type: ignore[call-arg]
                command, timeout or self.timeouts.command, self.cancel, stdin=request
            )
        except HostError:
            self.may_be_running = True
            raise

    def _remove(self, facts: HostFacts) -> dict[str, Any]:
        if self.may_be_running:
            # Windows ends every process of the shell's job when the shell closes: nothing
            # started from the temp dir survives it, and nothing there stays locked.
            self.conn.restart_shell()  # type: ignore[attr-defined]
        marker = "@@" + secrets.token_hex(6)
        result = self.conn.run(win.cleanup_command(facts.temp_dir, marker), self.timeouts.command)
        found = win.sections(result.stdout, marker)
        if "end" not in found:
            raise StepFailed(self.name, f"cleanup gave no usable answer: {result.stderr_tail()}")
        removed = "present" not in found
        return {
            "removed": removed,
            "errors": [] if removed else [f"{facts.temp_dir} is still there (a file in use?)"],
            "after": {k: v for k, v in found.items() if k in facts.before},
        }

    def _residue(self, before: Listing, after: Listing) -> list[str]:
        return new_entries(before, after, _windows_join)


_SNAPSHOT_KINDS = ("dir", "services", "registry", "autostart", "scheduled")


def _parent(temp_dir: str) -> str:
    return str(PureWindowsPath(temp_dir).parent)
