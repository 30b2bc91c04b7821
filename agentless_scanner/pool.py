"""Several threads match files while the walker goes on listing.

yara-python and hashlib release the GIL while they work on a buffer, so N worker threads use
N cores for the expensive part. Two ways to feed them (measured on the benchmark corpus:
README, "Detection against the reference"):

- ``stage=False`` (no verdicts to reuse: the first host): the walker opens each file safely
  (see walker.py) and hands a duplicate of the descriptor to a bounded queue (at most
  2 x threads files wait); a worker reads, hashes and matches it.
- ``stage=True`` (a verdict cache or a previous scan was given: most files are expected to
  be known): the walker's thread also reads, hashes and looks up each small file (up to
  INLINE_MAX; ``FileScanner.stage``); only one that still needs YARA goes, with a copy of
  its bytes, to a worker (``FileScanner.finish``). Known files never pay for a hand-over
  between threads, whose lock traffic costs more than the work itself for a small file. At
  most BUDGET bytes wait or are being matched (one larger file alone). Larger files (4 % of
  the files but 86 % of the bytes of the benchmark corpus) go whole to the workers, so their
  reading and hashing run beside the walker's: up to LARGE_FILE in batches (at most
  BATCH_FILES descriptors or BATCH_BYTES of files per hand-over, 2 x threads batches
  waiting), larger ones one by one as below.

Memory: a worker keeps a buffer as large as the largest file it has read (filescan.read_file).
So that two threads never hold two large files at once, files above LARGE_FILE go to a lane
that only the first worker takes from (it takes the other files too when no large one waits):
the peak is about the largest file plus LARGE_FILE per other worker, not threads x the largest
file. Only descriptors wait in that lane, no bytes.
"""

import collections
import os
import sys
import threading
import time

from agentless_scanner.walker import DeadlineReached

#: Bytes of staged files waiting for or being matched by the workers.
BUDGET = 64 << 20
#: Files larger than this are matched one at a time (by the first worker).
LARGE_FILE = 4 << 20
#: Descriptors of large files that may wait for the first worker.
LARGE_WAITING = 256
#: In stage mode, files up to this size are read and looked up on the walker's thread.
INLINE_MAX = 64 << 10
#: In stage mode, the other files up to LARGE_FILE go to the workers in batches of at most
#: this many files or bytes (one hand-over between threads per batch, not per file).
BATCH_FILES = 32
BATCH_BYTES = 8 << 20


#: In stage mode, how much lower the workers' scheduling priority is (nice) than the walker's.
WORKER_NICE = 10
#: In stage mode, the interpreter's switch interval (seconds; CPython's default is 0.005).
#: A worker that finished hashing a chunk without the interpreter lock waits for the walker
#: to give the lock back; the walker gives it at its next system call, but as it wants it
#: again at once, a waiting worker often gets it only when the interval forces a switch.
#: Measured on the benchmark corpus (second host, 2 threads, interleaved runs): median
#: wall time 2.84 s with 0.0005 or 0.0002 against 2.94 s with the default.
STAGE_SWITCH_INTERVAL = 0.0005


def _yield_to_walker():
    """In stage mode the walker's thread sets the pace (it lists, opens, reads and looks up
    nearly every file itself), while the workers only hash the larger files. When more
    threads want to run than there are cores, the kernel should run the walker first: this
    worker's nice value goes up by WORKER_NICE (measured on the benchmark corpus: the second
    host's median wall time 2.73 s instead of 2.89 s on 2 cores, the same CPU time).

    Linux only, where the nice value belongs to each thread (elsewhere a thread id given to
    setpriority could name another process), and Python 3.8+ (threading.get_native_id);
    nothing happens otherwise or if the call fails."""
    native_id = getattr(threading, "get_native_id", None)
    if native_id is None or not sys.platform.startswith("linux"):
        return
    try:
        tid = native_id()
        nice = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, nice + WORKER_NICE))
    except (AttributeError, OSError):
        pass


class Lanes(object):
    """Two FIFO queues under one lock: every worker takes from ``small``, the first worker
    takes from ``large`` first. ``put`` blocks while the item's lane is full."""

    def __init__(self, small_max, large_max):
        self.cond = threading.Condition()
        self.small = collections.deque()
        self.large = collections.deque()
        self.small_max = small_max
        self.large_max = large_max

    def put(self, item, large=False):
        lane, limit = (self.large, self.large_max) if large else (self.small, self.small_max)
        with self.cond:
            while len(lane) >= limit:
                self.cond.wait()
            lane.append(item)
            self.cond.notify_all()

    def get(self, takes_large):
        with self.cond:
            while True:
                if takes_large and self.large:
                    item = self.large.popleft()
                    break
                if self.small:
                    item = self.small.popleft()
                    break
                self.cond.wait()
            self.cond.notify_all()
            return item


class ThreadedScan(object):
    """Callable like FileScanner (``on_file(fd, path, st)``), matching on worker threads."""

    def __init__(self, scanner, threads, recorder, stage=False):
        self.scanner = scanner
        self.stage = stage
        self.recorder = recorder
        self.queue = Lanes(2 * threads, LARGE_WAITING)
        self.threads = threads
        self.stopped = False
        self.closed = False
        self._in_flight = 0
        self._batch = []
        self._batch_bytes = 0
        self._room = threading.Condition()
        self._switch_interval = None
        if stage:
            self._switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(self._switch_interval, STAGE_SWITCH_INTERVAL))
        self.workers = [
            threading.Thread(target=self._work, args=(i == 0,), name="scan-%d" % i)
            for i in range(threads)
        ]
        for worker in self.workers:
            worker.daemon = True
            worker.start()

    def __call__(self, fd, path, st):
        if self.stopped:
            raise DeadlineReached()
        if not self.stage or st.st_size > LARGE_FILE:
            # The walker closes its descriptor when this returns; the worker owns the duplicate.
            large = self.threads > 1 and st.st_size > LARGE_FILE
            self.queue.put((os.dup(fd), path, st), large)
            return
        if st.st_size > INLINE_MAX:
            batch = self._batch
            batch.append((os.dup(fd), path, st))
            self._batch_bytes += st.st_size
            if len(batch) >= BATCH_FILES or self._batch_bytes >= BATCH_BYTES:
                self._flush()
            return
        staged = self.scanner.stage_small(fd, path, st)
        if staged is None:
            return
        size = staged[3].size
        with self._room:
            while self._in_flight and self._in_flight + size > BUDGET:
                self._room.wait()
            self._in_flight += size
        self.queue.put(staged)

    def _flush(self):
        if self._batch:
            batch, self._batch, self._batch_bytes = self._batch, [], 0
            self.queue.put(batch)

    def _work(self, takes_large):
        if self.stage:
            _yield_to_walker()
        while True:
            staged = self.queue.get(takes_large)
            if staged is None:
                return
            if type(staged) is list:  # whole files, in a batch
                for item in staged:
                    self._scan_whole(*item)
                continue
            if len(staged) == 3:  # (fd, path, st): a whole file
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
                if self.stage:
                    # Verdicts to reuse: hashed first, read whole only if YARA must run.
                    staged = self.scanner.stage(fd, path, st, hash_first=True)
                    if staged is not None:
                        self.scanner.finish(staged)
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
        self._flush()
        for _worker in self.workers:
            self.queue.put(None)
        for worker in self.workers:
            worker.join()
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
