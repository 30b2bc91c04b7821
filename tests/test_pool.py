"""agentless_scanner/pool.py: large files go to the first worker only, one at a time."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from agentless_scanner import pool


def test_only_the_first_worker_takes_large_items_and_prefers_them():
    lanes = pool.Lanes(small_max=4, large_max=4)
    lanes.put("s1")
    lanes.put("L1", large=True)
    lanes.put("s2")
    assert lanes.get(takes_large=False) == "s1"
    assert lanes.get(takes_large=True) == "L1"  # before the waiting small one
    assert lanes.get(takes_large=True) == "s2"  # no large left: a small one
    got: list[str] = []
    other = threading.Thread(target=lambda: got.append(lanes.get(takes_large=False)))
    other.start()
    lanes.put("L2", large=True)
    time.sleep(0.2)
    assert got == []  # the other worker never takes a large item ...
    lanes.put("s3")
    other.join(5)
    assert got == ["s3"]  # ... it waits for a small one
    assert lanes.get(takes_large=True) == "L2"


def test_a_full_lane_blocks_the_walker_until_a_worker_takes_one():
    lanes = pool.Lanes(small_max=1, large_max=1)
    lanes.put("L1", large=True)
    lanes.put("s1")  # the small lane is not full: no wait
    done = threading.Event()

    def walker():
        lanes.put("L2", large=True)
        done.set()

    threading.Thread(target=walker).start()
    assert not done.wait(0.2)
    assert lanes.get(takes_large=True) == "L1"
    assert done.wait(5)


class Recorder:
    def __init__(self):
        self.errors: list[tuple] = []

    def error(self, *args):
        self.errors.append(args)

    def skip(self, *args):
        self.errors.append(args)


@pytest.mark.parametrize("stage", [False, True])
def test_large_files_are_matched_on_one_thread_and_never_two_at_once(tmp_path, monkeypatch, stage):
    monkeypatch.setattr(pool, "LARGE_FILE", 1000)
    monkeypatch.setattr(pool, "INLINE_MAX", 100)
    sizes = [5000 if i % 3 == 0 else 10 for i in range(30)]
    in_large = []
    busy = threading.Lock()
    threads_of_large = set()

    class Scanner:
        deadline_at = None

        def __call__(self, fd, path, st):
            if st.st_size > pool.LARGE_FILE:
                threads_of_large.add(threading.current_thread().name)
                assert busy.acquire(blocking=False), "two large files at once"
                time.sleep(0.01)
                in_large.append(path)
                busy.release()

        def stage(self, fd, path, st, copy=False, hash_first=False):
            if hash_first:  # a whole file handed to a worker in stage mode
                self(fd, path, st)
            return None  # small files: known, done on the walker's thread

        def stage_small(self, fd, path, st):
            return self.stage(fd, path, st, copy=True)

    scan = pool.ThreadedScan(Scanner(), 3, Recorder(), stage=stage)
    for i, size in enumerate(sizes):
        path = tmp_path / f"f{i}"
        path.write_bytes(b"x" * size)
        fd = os.open(path, os.O_RDONLY)
        try:
            scan(fd, str(path), os.fstat(fd))
        finally:
            os.close(fd)
    scan.close()
    assert len(in_large) == sizes.count(5000)
    assert threads_of_large == {"scan-0"}


def test_stage_mode_shortens_the_switch_interval_and_gives_the_old_one_back():
    class Scanner:
        deadline_at = None

    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.004)
        scan = pool.ThreadedScan(Scanner(), 2, Recorder(), stage=True)
        assert sys.getswitchinterval() == pytest.approx(pool.STAGE_SWITCH_INTERVAL)
        scan.close()
        assert sys.getswitchinterval() == pytest.approx(0.004)
        whole = pool.ThreadedScan(Scanner(), 2, Recorder(), stage=False)
        assert sys.getswitchinterval() == pytest.approx(0.004)  # matching: YARA has no lock
        whole.close()
    finally:
        sys.setswitchinterval(before)
