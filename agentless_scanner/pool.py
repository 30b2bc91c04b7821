"""Several threads match files while the walker goes on listing.

yara-python and hashlib release the GIL while they work on a buffer, so N worker threads use
N cores for the expensive part. Two ways to feed them (measured on the benchmark corpus:
README, "Detection against the reference"):

- ``stage=False`` (no verdicts to reuse: the first host): the walker opens each file safely
  (see walker.py) and hands a duplicate of the descriptor to a bounded queue (at most
  2 x threads files wait); a worker reads, hashes and matches it.
- ``stage=True`` (a verdict cache or a previous scan was given: most files are expected to
  be known): the walker's thread also reads, hashes and looks the file up
  (``FileScanner.stage``); only a file that still needs YARA goes, with a copy of its
  bytes, to a worker (``FileScanner.finish``). Known files never pay for a hand-over
  between threads, whose lock traffic costs more than the work itself. At most BUDGET
  bytes wait or are being matched (one larger file alone).
"""

import os
import queue
import threading
import time

from agentless_scanner.walker import DeadlineReached

#: Bytes of staged files waiting for or being matched by the workers.
BUDGET = 64 << 20


class ThreadedScan(object):
    """Callable like FileScanner (``on_file(fd, path, st)``), matching on worker threads."""

    def __init__(self, scanner, threads, recorder, stage=False):
        self.scanner = scanner
        self.stage = stage
        self.recorder = recorder
        self.queue = queue.Queue(maxsize=2 * threads)
        self.stopped = False
        self.closed = False
        self._in_flight = 0
        self._room = threading.Condition()
        self.workers = [
            threading.Thread(target=self._work, name="scan-%d" % i) for i in range(threads)
        ]
        for worker in self.workers:
            worker.daemon = True
            worker.start()

    def __call__(self, fd, path, st):
        if self.stopped:
            raise DeadlineReached()
        if not self.stage:
            # The walker closes its descriptor when this returns; the worker owns the duplicate.
            self.queue.put((os.dup(fd), path, st))
            return
        staged = self.scanner.stage(fd, path, st, copy=True)
        if staged is None:
            return
        size = staged[3].size
        with self._room:
            while self._in_flight and self._in_flight + size > BUDGET:
                self._room.wait()
            self._in_flight += size
        self.queue.put(staged)

    def _work(self):
        while True:
            staged = self.queue.get()
            if staged is None:
                return
            if not self.stage:
                self._scan_whole(*staged)
                continue
            path = staged[0]
            deadline_at = self.scanner.deadline_at
            if deadline_at is not None and time.monotonic() >= deadline_at:
                self.stopped = True
            try:
                if self.stopped:
                    self.recorder.skip(path, "deadline", "queued when the walk was stopped")
                else:
                    self.scanner.finish(staged)
            except DeadlineReached:
                self.stopped = True
            except Exception as exc:  # a bug must cost one file, not the scan
                self.recorder.error(path, "internal-error", "%s: %s" % (type(exc).__name__, exc))
            finally:
                with self._room:
                    self._in_flight -= staged[3].size
                    self._room.notify_all()

    def _scan_whole(self, fd, path, st):
        try:
            if self.stopped:
                self.recorder.skip(path, "deadline", "queued when the walk was stopped")
            else:
                self.scanner(fd, path, st)
        except DeadlineReached:
            self.stopped = True
        except Exception as exc:  # a bug must cost one file, not the scan
            self.recorder.error(path, "internal-error", "%s: %s" % (type(exc).__name__, exc))
        finally:
            os.close(fd)

    def close(self):
        """Wait until every queued file is done, then end the workers (idempotent)."""
        if self.closed:
            return
        self.closed = True
        for _worker in self.workers:
            self.queue.put(None)
        for worker in self.workers:
            worker.join()
