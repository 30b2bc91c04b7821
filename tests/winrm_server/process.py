"""One command of a shell: a local process with its stdin, stdout and stderr pipes.

Behaviour taken from MS-WSMV:
* 3.1.4.11 Command: the command line is Command plus Arguments; WINRS_SKIP_CMD_SHELL=FALSE (what
  pywinrm sends) means Windows runs it through `cmd.exe /c`, here `/bin/sh -c`.
* 3.1.4.13 Send: stdin arrives in chunks, End="true" closes it, and input a finished command did
  not consume "MUST be discarded and ignored".
* 3.1.4.14 Receive: output is returned as soon as some is available, a stream that ends gets
  End="true", and the command is Done (with its ExitCode) once it ended and its output is out.
* 2.2.4.38 Signal: ctrl_c asks the command to stop like Control-C; terminate ends it. Windows
  runs a shell's processes in a job object and kills the job when the shell closes
  (pypsrp#32/#108, PowerShell-Docs#8020): each command here is a process group, killed whole.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

# After the process exits, how long Receive waits for its pipes to close (a background child
# may hold them open) before reporting the command Done anyway.
PIPE_GRACE = 0.5
CTRL_C_GRACE = 2.0  # then ctrl_c escalates to a kill, as the brief asks for


@dataclass
class Output:
    """What one Receive hands back."""

    streams: list[tuple[str, bytes]] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    done: bool = False
    exit_code: int | None = None


class Command:
    def __init__(self, command_id: str, command_line: str, cwd: str, env: dict[str, str]):
        self.command_id = command_id
        self.command_line = command_line
        self._cond = threading.Condition()
        self._buffers = {"stdout": bytearray(), "stderr": bytearray()}
        self._eof = {"stdout": False, "stderr": False}
        self._reported_end: set[str] = set()
        self._exit_code: int | None = None
        self._exited_at = 0.0
        self._stdin: queue.Queue[bytes | None] = queue.Queue()
        self.proc = subprocess.Popen(
            ["/bin/sh", "-c", command_line],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: the whole tree can be killed
        )
        assert self.proc.stdout and self.proc.stderr
        for name, pipe in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr)):
            threading.Thread(target=self._read, args=(name, pipe), daemon=True).start()
        threading.Thread(target=self._wait, daemon=True).start()
        threading.Thread(target=self._write_stdin, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def _read(self, name: str, pipe) -> None:
        fd = pipe.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self._cond:
                if not chunk:
                    self._eof[name] = True
                    self._cond.notify_all()
                    break
                self._buffers[name] += chunk
                self._cond.notify_all()
        pipe.close()

    def _wait(self) -> None:
        code = self.proc.wait()
        with self._cond:
            # Killed by a signal: report it like a shell does (128 + signal number).
            self._exit_code = code if code >= 0 else 128 - code
            self._exited_at = time.monotonic()
            self._cond.notify_all()

    def _write_stdin(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        while True:
            data = self._stdin.get()
            try:
                if data is None:
                    stdin.close()
                    return
                stdin.write(data)
                stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                # The command ended without reading it all: discard, as MS-WSMV says.
                with contextlib.suppress(OSError, ValueError):
                    stdin.close()
                return

    def send(self, data: bytes, end: bool) -> None:
        # Queued so a command that does not read yet cannot block the HTTP request.
        if data:
            self._stdin.put(data)
        if end:
            self._stdin.put(None)

    def _finished(self) -> bool:
        if self._exit_code is None:
            return False
        pipes_closed = all(self._eof.values())
        return pipes_closed or time.monotonic() - self._exited_at >= PIPE_GRACE

    def _has_news(self) -> bool:
        return (
            any(self._buffers.values())
            or any(self._eof[n] and n not in self._reported_end for n in self._eof)
            or self._finished()
        )

    def receive(self, timeout: float, max_bytes: int, stop: threading.Event) -> Output | None:
        """Wait up to `timeout` for output or the end; None means nothing happened."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._has_news():
                left = deadline - time.monotonic()
                if left <= 0 or stop.is_set():
                    return None
                # Short waits: the pipe grace period has no event of its own.
                self._cond.wait(min(left, 0.1))
            out = Output()
            budget = max_bytes
            for name in ("stdout", "stderr"):
                buf = self._buffers[name]
                if buf and budget > 0:
                    take = bytes(buf[:budget])
                    del buf[: len(take)]
                    budget -= len(take)
                    out.streams.append((name, take))
            drained = not any(self._buffers.values())
            for name in ("stdout", "stderr"):
                if (
                    drained
                    and (self._eof[name] or self._finished())
                    and name not in self._reported_end
                ):
                    self._reported_end.add(name)
                    out.ended.append(name)
            if drained and self._finished():
                out.done = True
                out.exit_code = self._exit_code
            return out

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def ctrl_c(self) -> None:
        self.kill(signal.SIGINT)
        timer = threading.Timer(CTRL_C_GRACE, self._kill_if_running)
        timer.daemon = True
        timer.start()

    def _kill_if_running(self) -> None:
        if self.running:
            self.kill()

    def close(self) -> None:
        """End the process tree and stop feeding it."""
        self.kill()
        self._stdin.put(None)
