"""Local transport: the controller itself, or a mounted USB stick / laptop disk at the gate."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from orchestrator.connections.base import CommandResult, Connection
from orchestrator.connections.target import Target
from orchestrator.errors import StepFailed


class LocalConnection(Connection):
    """Runs commands with /bin/sh on the controller; files are plain copies."""

    def __init__(self, target: Target):
        self.name = target.name
        self.target = target

    def open(self) -> None:
        """Nothing to connect to."""

    def close(self) -> None:
        """Nothing to release."""

    def run(self, command: str, timeout: float) -> CommandResult:
        try:
            proc = subprocess.run(
                ["/bin/sh", "-c", command],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                start_new_session=True,  # a Ctrl-C on the controller is ours to handle
            )
        except subprocess.TimeoutExpired:
            raise StepFailed(self.name, f"command timed out after {timeout:g}s") from None
        return CommandResult(proc.returncode, proc.stdout, proc.stderr)

    def put(self, local: Path, remote: str, timeout: float) -> None:
        try:
            shutil.copyfile(local, remote)
        except OSError as exc:
            raise StepFailed(self.name, f"copy of {local.name} to {remote} failed: {exc}") from None

    def get(self, remote: str, local: Path, timeout: float) -> None:
        try:
            shutil.copyfile(remote, local)
        except OSError as exc:
            raise StepFailed(self.name, f"copy of {remote} failed: {exc}") from None
