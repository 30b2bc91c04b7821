"""Several threads match files while the walker goes on listing.

yara-python and hashlib release the GIL while they work on a buffer, so N threads use N
cores for the expensive part. The walker opens each file safely (see walker.py) and hands a
duplicate of the descriptor to a bounded queue: at most ``2 * threads`` files wait, so open
descriptors and memory stay bounded whatever the tree's size.
"""

import os
import queue
import threading

from agentless_scanner.walker import DeadlineReached


class ThreadedScan(object):
    """Callable like FileScanner (``on_file(fd, path, st)``), running it on worker threads."""

    def __init__(self, scan_one, threads, recorder):
        self.scan_one = scan_one
        self.recorder = recorder
        self.queue = queue.Queue(maxsize=2 * threads)
        self.stopped = False
        self.closed = False
        self.workers = [
            threading.Thread(target=self._work, name="scan-%d" % i) for i in range(threads)
        ]
        for worker in self.workers:
            worker.daemon = True
            worker.start()

    def __call__(self, fd, path, st):
        if self.stopped:
            raise DeadlineReached()
        # The walker closes its descriptor when this returns; the worker owns the duplicate.
        self.queue.put((os.dup(fd), path, st))

    def _work(self):
        while True:
            item = self.queue.get()
            if item is None:
                return
            fd, path, st = item
            try:
                if self.stopped:
                    self.recorder.skip(path, "deadline", "queued when the walk was stopped")
                else:
                    self.scan_one(fd, path, st)
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
