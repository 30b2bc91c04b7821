"""Open shells, their commands, and the WinRS quotas that bound them.

Quotas and their defaults come from MS-WSMV 2.2.4.42 WinrsType (MaxShellsPerUser 30,
MaxProcessesPerShell 25) and 2.2.4.36 ServiceType (MaxConcurrentOperationsPerUser 1500). The
counting rules:
* MS-WSMV 3.1.4.5.2.1: Create past MaxShellsPerUser fails with wsman:QuotaLimit.
* MS-WSMV 3.1.4.11: each Command counts against MaxConcurrentOperationsPerUser; footnote <118>:
  Windows does not give it back on Signal Terminate in a cmd shell, only when the shell goes
  (the reason Ansible's winrm plugin re-creates its shell on 0x803381A6, ansible#83656).
* MaxProcessesPerShell is enforced by Windows with a job object; here it counts the shell's
  commands whose process is still alive.
* MS-WSMV 3.1.4.4.1: Delete terminates the commands still running and frees the shell.

In `cmd` mode (cmd_shell.py) a shell's WorkingDirectory is a Windows path, mapped onto the
emulated C: drive.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from . import faults
from .process import Command


@dataclass(frozen=True)
class Quotas:
    max_shells_per_user: int = 30
    max_processes_per_shell: int = 25
    max_operations_per_user: int = 1500


@dataclass
class Shell:
    shell_id: str
    owner: str
    working_directory: str
    environment: dict[str, str]
    input_streams: str = "stdin"
    output_streams: str = "stdout stderr"
    created: float = field(default_factory=time.monotonic)
    commands: dict[str, Command] = field(default_factory=dict)
    operations: int = 0  # commands started, as counted against the per-user quota


def new_id() -> str:
    # Windows hands out upper-case GUIDs for shells and commands.
    return str(uuid.uuid4()).upper()


class ShellTable:
    def __init__(
        self,
        quotas: Quotas,
        default_directory: str,
        base_env: dict[str, str],
        shell: str = "sh",
        map_directory: Callable[[str], str | None] | None = None,
    ):
        self.quotas = quotas
        self.default_directory = default_directory
        self._base_env = dict(base_env)
        self.shell = shell
        self._map_directory = map_directory
        self._lock = threading.Lock()
        self._shells: dict[str, Shell] = {}
        self._operations: Counter[str] = Counter()

    def create(
        self,
        owner: str,
        working_directory: str | None,
        environment: dict[str, str],
        input_streams: str,
        output_streams: str,
    ) -> Shell:
        with self._lock:
            owned = sum(1 for s in self._shells.values() if s.owner == owner)
            if owned >= self.quotas.max_shells_per_user:
                raise faults.max_shells(self.quotas.max_shells_per_user)
            env = {**self._base_env, **environment}
            directory = working_directory or self.default_directory
            if working_directory and self._map_directory is not None:
                # Unmapped (another drive): kept as is, Command then fails with the fault.
                directory = self._map_directory(working_directory) or working_directory
            shell = Shell(
                new_id(),
                owner,
                directory,
                env,
                input_streams,
                output_streams,
            )
            self._shells[shell.shell_id] = shell
            return shell

    def get(self, owner: str, shell_id: str | None) -> Shell:
        with self._lock:
            shell = self._shells.get((shell_id or "").upper())
        # Another user's shell is invisible, as on Windows.
        if shell is None or shell.owner != owner:
            raise faults.shell_not_found(shell_id or "")
        return shell

    def command(self, shell: Shell, command_id: str | None) -> Command:
        with self._lock:
            command = shell.commands.get((command_id or "").upper())
        if command is None:
            raise faults.invalid_parameter()
        return command

    def start(self, shell: Shell, command_line: str) -> Command:
        with self._lock:
            if self._operations[shell.owner] >= self.quotas.max_operations_per_user:
                raise faults.max_operations(self.quotas.max_operations_per_user)
            alive = sum(1 for c in shell.commands.values() if c.running)
            if alive >= self.quotas.max_processes_per_shell:
                raise faults.max_processes()
            if not os.path.isdir(shell.working_directory):
                raise faults.invalid_directory()
            command = Command(
                new_id(), command_line, shell.working_directory, shell.environment, self.shell
            )
            shell.commands[command.command_id] = command
            shell.operations += 1
            self._operations[shell.owner] += 1
            return command

    def forget(self, shell: Shell, command: Command) -> None:
        """Signal Terminate: end the command and drop its state (the quota is kept)."""
        command.close()
        with self._lock:
            shell.commands.pop(command.command_id, None)

    def delete(self, owner: str, shell_id: str | None) -> None:
        shell = self.get(owner, shell_id)
        with self._lock:
            self._shells.pop(shell.shell_id, None)
            self._operations[owner] -= shell.operations
            commands = list(shell.commands.values())
            shell.commands.clear()
        for command in commands:
            command.close()

    def close_all(self) -> None:
        with self._lock:
            shells = list(self._shells.values())
            self._shells.clear()
            self._operations.clear()
        for shell in shells:
            for command in shell.commands.values():
                command.close()

    def count(self) -> int:
        with self._lock:
            return len(self._shells)

    def pids(self) -> list[int]:
        """Process ids of every command still known, for tests that check cleanup."""
        with self._lock:
            return [c.pid for s in self._shells.values() for c in s.commands.values()]

    def has_running_command(self, shell_id: str | None) -> bool:
        with self._lock:
            shell = self._shells.get((shell_id or "").upper())
            return bool(shell) and any(c.running for c in shell.commands.values())
