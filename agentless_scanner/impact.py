"""Being gentle with weak hosts: worker threads, CPU and I/O priority, a CPU limit.

``--threads N`` scanner threads (default: the host's CPUs, at most 4); ``--low-impact`` means
one thread, the lowest CPU priority (nice 19; on Windows the idle priority class) and idle
I/O priority (Linux ``ionice -c 3``), plus ``--cpu-limit 50`` unless another limit is given.
``--cpu-limit PCT`` keeps the scanner's CPU time (all threads) at or below PCT percent of one
CPU over the run, by sleeping between files.
"""

import os
import subprocess
import threading
import time

MAX_DEFAULT_THREADS = 4
LOW_IMPACT_CPU_LIMIT = 50


def default_threads():
    return max(1, min(MAX_DEFAULT_THREADS, os.cpu_count() or 1))


def lower_priority():
    """Lowest CPU and I/O priority for this process (threads started later inherit it).

    Returns what was applied, for the log."""
    applied = {}
    if os.name == "nt":
        try:
            import ctypes

            idle_priority_class = 0x40
            handle = ctypes.windll.kernel32.GetCurrentProcess()
            applied["priority_class"] = (
                "idle"
                if ctypes.windll.kernel32.SetPriorityClass(handle, idle_priority_class)
                else "unchanged"
            )
        except Exception as exc:  # ctypes missing or refused: scan anyway
            applied["priority_class"] = "failed: %s" % exc
        return applied
    try:
        applied["nice"] = os.nice(19 - os.nice(0))
    except OSError as exc:
        applied["nice"] = "failed: %s" % exc.strerror
    try:
        code = subprocess.call(
            ["ionice", "-c", "3", "-p", str(os.getpid())],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        applied["ionice"] = "idle" if code == 0 else "failed: exit %d" % code
    except OSError:
        applied["ionice"] = "not available"
    return applied


class CpuLimit(object):
    """Sleep between files so that process CPU time / wall time stays <= percent / 100."""

    def __init__(self, percent):
        self.fraction = percent / 100.0
        self.started = time.monotonic()
        self.cpu_at_start = time.process_time()
        self.slept = 0.0
        self._lock = threading.Lock()

    def pause(self):
        cpu = time.process_time() - self.cpu_at_start
        wall = time.monotonic() - self.started
        behind = cpu / self.fraction - wall
        if behind > 0.005:
            wait = min(behind, 1.0)
            with self._lock:
                self.slept += wait
            time.sleep(wait)

    def as_log(self):
        return {"cpu_limit_percent": int(self.fraction * 100), "slept_s": round(self.slept, 3)}
