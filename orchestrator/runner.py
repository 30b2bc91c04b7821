"""Run one piece of work per host on a bounded pool of workers.

The runner knows nothing of scans: it takes hosts and a function, keeps at most `forks` running,
reports each result as it lands and returns them in inventory order. Memory stays bounded: a
result is a small summary, the logs themselves are on disk.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

H = TypeVar("H")
R = TypeVar("R")


@dataclass
class RunOutcome(Generic[R]):
    results: list[R]  # in host order; hosts never started (after Ctrl-C) are absent
    interrupted: bool = False


def run_hosts(
    hosts: Sequence[H],
    work: Callable[[H, threading.Event], R],
    forks: int,
    on_result: Callable[[R], None] | None = None,
) -> RunOutcome[R]:
    """Call `work(host, cancel)` for every host, `forks` at a time.

    On Ctrl-C the cancel event is set: running work stops at once (commands watch the
    event) and cleans up, hosts not yet started are dropped, and the outcome says so. A
    second Ctrl-C while the running hosts clean up stops waiting for them.
    """
    cancel = threading.Event()
    results: dict[int, R] = {}
    pending = list(enumerate(hosts))
    pending.reverse()
    running: dict[Future[R], int] = {}
    with ThreadPoolExecutor(max_workers=max(1, forks), thread_name_prefix="host") as pool:
        # Submit lazily: only `forks` futures exist at once, whatever the host count.
        while pending or running:
            while pending and len(running) < forks and not cancel.is_set():
                index, host = pending.pop()
                running[pool.submit(work, host, cancel)] = index
            try:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                if cancel.is_set():
                    raise
                cancel.set()
                pending.clear()
                continue
            for future in done:
                index = running.pop(future)
                results[index] = future.result()
                if on_result:
                    on_result(results[index])
    return RunOutcome([results[i] for i in sorted(results)], interrupted=cancel.is_set())
