"""Process helpers: run commands, identify our processes safely, kill them by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

# A clean environment for everything we start, so the test runner's environment
# (virtualenv, pyenv shims, locale) never leaks into the simulated hosts.
CLEAN_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
}


class HarnessError(RuntimeError):
    """The simulated plant could not be built, used or torn down."""


def run(
    argv: Sequence[str],
    *,
    input: bytes | None = None,
    check: bool = True,
    timeout: float = 30.0,
) -> subprocess.CompletedProcess[bytes]:
    """Run a command to completion, capturing output; raise HarnessError on failure."""
    proc = subprocess.run(
        list(argv),
        input=input,
        capture_output=True,
        timeout=timeout,
        env=CLEAN_ENV,
        check=False,
    )
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise HarnessError(f"{' '.join(argv)} failed ({proc.returncode}): {err}")
    return proc


def cmdline(pid: int) -> list[str] | None:
    """The argv of a live process, or None if it is gone (or a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if not raw:  # zombies and kernel threads have an empty cmdline
        return None
    return [a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0")]


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid), or None once the PID is gone (reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Fields after the parenthesised command name: state, ppid, ...
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    """True while the PID exists and is not a zombie."""
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def parent(pid: int) -> int | None:
    st = _stat(pid)
    return st[1] if st else None


def netns_inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def in_netns(pid: int, ns_inode: int | None) -> bool:
    """True if the process lives in the network namespace with this inode."""
    if ns_inode is None:
        return False
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == ns_inode
    except OSError:
        return False


def kill_verified(
    pid: int, matches: Callable[[list[str]], bool], sig: int = signal.SIGKILL
) -> bool:
    """Signal a recorded PID only if its command line is still the one we started.

    PIDs are recycled: a crashed fleet's state file may name a PID that now belongs
    to something else, so never signal without checking.
    """
    argv = cmdline(pid)
    if argv is None or not matches(argv):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
        return True
    return False


def reap(pid: int) -> None:
    """Collect a child we started so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _settled(pid: int) -> bool:
    """Gone, or a zombie that nobody alive will reap (its parent is init or dead)."""
    st = _stat(pid)
    if st is None:
        return True
    state, ppid = st
    return state in ("Z", "X") and (ppid <= 1 or not alive(ppid))


def wait_reaped(pids: Iterable[int], timeout: float = 1.0) -> None:
    """Wait until killed processes are reaped by their (still running) parents.

    Killing leaf-first and waiting here keeps zombies from piling up: on this kind of
    machine PID 1 does not reap orphans.
    """
    pending = set(pids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            reap(pid)
            if _settled(pid):
                pending.discard(pid)
        if pending:
            time.sleep(0.005)


def wait_gone(pids: Iterable[int], timeout: float = 5.0) -> list[int]:
    """Wait until the PIDs have exited; return those still alive at the deadline."""
    pending = set(pids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            reap(pid)
            if not alive(pid):
                pending.discard(pid)
        if pending:
            time.sleep(0.01)
    return sorted(pending)


def kill_leaf_first(pids: Iterable[int]) -> list[int]:
    """SIGKILL a set of processes, children before parents, waiting for reaping."""
    pending = set(pids)

    def depth(pid: int) -> int:
        d, p = 0, parent(pid)
        while p is not None and p in pending and d < 64:
            d, p = d + 1, parent(p)
        return d

    by_depth: dict[int, list[int]] = {}
    for pid in pending:
        by_depth.setdefault(depth(pid), []).append(pid)
    killed: list[int] = []
    for d in sorted(by_depth, reverse=True):
        for pid in by_depth[d]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        wait_reaped(by_depth[d], timeout=1.0)
    return killed
