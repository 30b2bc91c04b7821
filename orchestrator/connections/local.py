"""Local transport: the controller itself, or a mounted USB stick / laptop disk at the gate."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
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

    def run(
        self, command: str, timeout: float, cancel: threading.Event | None = None
    ) -> CommandResult:
        deadline = time.monotonic() + timeout
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: stopped as a whole below
        )
        while True:
            try:
                out, err = proc.communicate(
                    timeout=min(0.25, max(0.0, deadline - time.monotonic()))
                )
                return CommandResult(proc.returncode, out, err)
            except subprocess.TimeoutExpired:
                if cancel is not None and cancel.is_set():
                    reason = "cancelled"
                elif time.monotonic() >= deadline:
                    reason = f"command timed out after {timeout:g}s"
                else:
                    continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise StepFailed(self.name, reason)

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
