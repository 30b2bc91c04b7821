"""One command of a shell: a local process with its stdin, stdout and stderr pipes.

Behaviour taken from MS-WSMV:
* 3.1.4.11 Command: the command line is Command plus Arguments; WINRS_SKIP_CMD_SHELL=FALSE (what
  pywinrm sends) means Windows runs it through `cmd.exe /c`. Here it runs with `/bin/sh -c` in
  the server's `sh` mode and with the cmd.exe emulator (cmd_shell.py, `python -m
  tests.winrm_server.cmd_shell <line>`) in its `cmd` mode; the emulator writes cmd's full
  ERRORLEVEL (9009, -2147024894, ...) to a pipe, since an exit status holds only its low byte.
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
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .cmd_shell import EXIT_FD_VAR, HIDDEN_PYTHONPATH_VAR

SHELLS = ("sh", "cmd")
CMD_SHELL_MODULE = "tests.winrm_server.cmd_shell"
REPO = str(Path(__file__).resolve().parents[2])  # where `-m tests.winrm_server...` is found

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


def command_argv(
    shell: str, command_line: str, env: dict[str, str], exit_fd: int | None
) -> tuple[list[str], dict[str, str]]:
    """The process that runs one command line in a shell mode, and its environment."""
    if shell == "sh":
        return ["/bin/sh", "-c", command_line], env
    if shell != "cmd" or exit_fd is None:
        raise ValueError(f"shell must be one of {', '.join(SHELLS)}, not {shell!r}")
    env = {**env, EXIT_FD_VAR: str(exit_fd)}
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if REPO not in paths:
        env["PYTHONPATH"] = os.pathsep.join([REPO, *paths])
        hidden = [p for p in env.get(HIDDEN_PYTHONPATH_VAR, "").split(os.pathsep) if p]
        # the emulator hides it from its commands again
        env[HIDDEN_PYTHONPATH_VAR] = os.pathsep.join([*hidden, REPO])
    # -P (3.11+): not the command's working directory first on sys.path, where a "tests"
    # package of its own would shadow ours. A flag, so python.exe's children do not inherit it.
    safe = ["-P"] if sys.version_info >= (3, 11) else []
    return [sys.executable, *safe, "-m", CMD_SHELL_MODULE, command_line], env


class Command:
    def __init__(
        self,
        command_id: str,
        command_line: str,
        cwd: str,
        env: dict[str, str],
        shell: str = "sh",
    ):
        self.command_id = command_id
        self.command_line = command_line
        self._cond = threading.Condition()
        self._buffers = {"stdout": bytearray(), "stderr": bytearray()}
        self._eof = {"stdout": False, "stderr": False}
        self._reported_end: set[str] = set()
        self._exit_code: int | None = None
        self._exited_at = 0.0
        self._stdin: queue.Queue[bytes | None] = queue.Queue()
        # cmd mode: the emulator reports cmd's full exit code through this pipe.
        self._exit_pipe: int | None = None
        write_end: int | None = None
        if shell == "cmd":
            self._exit_pipe, write_end = os.pipe()
        argv, env = command_argv(shell, command_line, env, write_end)
        try:
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group: the whole tree can be killed
                pass_fds=() if write_end is None else (write_end,),
            )
        except BaseException:
            if self._exit_pipe is not None:
                os.close(self._exit_pipe)
            raise
        finally:
            if write_end is not None:
                os.close(write_end)
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

    def _reported_exit_code(self) -> int | None:
        """What the cmd emulator wrote before it exited (nothing if it was killed)."""
        if self._exit_pipe is None:
            return None
        data = b""
        try:
            while chunk := os.read(self._exit_pipe, 64):
                data += chunk
        except OSError:
            pass
        finally:
            os.close(self._exit_pipe)
        try:
            return int(data.decode("ascii"))
        except ValueError:
            return None

    def _wait(self) -> None:
        code = self.proc.wait()
        reported = self._reported_exit_code()
        with self._cond:
            # Killed by a signal: report it like a shell does (128 + signal number).
            self._exit_code = code if code >= 0 else 128 - code
            if reported is not None and code >= 0:
                self._exit_code = reported
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
