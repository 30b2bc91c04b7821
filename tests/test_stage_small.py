"""FileScanner.stage_small, the walker's short way for a small file of a second host, gives
what stage gives: the same index lines, counters and hand-overs (filescan.py)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

from agentless_scanner import patterns, verdicts, yara_engine
from agentless_scanner.filescan import FileScanner, ScanOptions, _extension
from agentless_scanner.scanlog import Recorder


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pkey(path: Path, data: bytes) -> str:
    shown = str(path)
    base = path.name
    owner = str(os.stat(path).st_uid)
    try:
        import pwd

        owner = pwd.getpwuid(os.stat(path).st_uid).pw_name
    except KeyError:
        pass
    values = (base, shown, _extension(base), yara_engine.file_type(data), owner)
    return verdicts.path_key_of(_sha(data), values)


FILES = {"a.txt": b"alpha\n", "b.txt": b"bravo\n", "c.txt": b"charlie\n"}


def _scanner(tmp_path: Path, name: str, fast: bool) -> tuple[FileScanner, Recorder, Path]:
    tree = tmp_path / "tree"
    known = verdicts.Verdicts(
        clean=[_sha(FILES["a.txt"]), _sha(FILES["b.txt"])],
        path_clean=[_pkey(tree / "a.txt", FILES["a.txt"])],
    )
    options = ScanOptions(1 << 20)
    options.verdicts = known
    index_path = tmp_path / f"{name}.gz"
    options.index = verdicts.FileIndex(index_path, {"rules_id": "r"})
    engine = yara_engine.Yara()
    engine.content_count = 1
    engine.path_rules = object()  # path rules exist: path keys are looked up
    rec = Recorder()
    scanner = FileScanner(rec, patterns.empty_patterns(), engine, options)
    assert scanner._small_fast  # a plain YARA scan with verdicts to reuse
    scanner._small_fast = fast
    return scanner, rec, index_path


def _run(scanner: FileScanner, tree: Path) -> list:
    results = []
    for name in sorted(FILES):
        path = tree / name
        fd = os.open(path, os.O_RDONLY)
        try:
            staged = scanner.stage_small(fd, os.fsencode(path), os.fstat(fd))
        finally:
            os.close(fd)
        if staged is None:
            results.append((name, None))
        else:
            _path, _st, info, data, wanted = staged
            results.append((name, (data.sha256, bytes(data.data), info["known"], wanted)))
    scanner.options.index.close()
    return results


def test_the_short_way_gives_what_stage_gives(tmp_path, monkeypatch):
    tree = tmp_path / "tree"
    tree.mkdir()
    for name, data in FILES.items():
        (tree / name).write_bytes(data)
    fast, _rec, fast_index = _scanner(tmp_path, "fast", True)
    calls = []
    monkeypatch.setattr(fast, "stage", lambda *a, **k: calls.append(a))
    fast_results = _run(fast, tree)
    assert calls == []  # every file took the short way
    slow, _rec, slow_index = _scanner(tmp_path, "slow", False)
    assert _run(slow, tree) == fast_results
    # a.txt: both verdicts known and clean, done on the spot; b.txt: its path verdict is
    # unknown, c.txt: its content verdict is: both handed over with their bytes.
    assert [r[1] is None for r in fast_results] == [True, False, False]
    assert fast_results[1][1][:2] == (_sha(FILES["b.txt"]), FILES["b.txt"])
    for scanner in (fast, slow):
        assert (scanner.files_scanned, scanner.bytes_scanned) == (3, sum(map(len, FILES.values())))
        known = scanner.options.verdicts
        assert (known.hits, known.path_hits) == (1, 1)
    lines = gzip.decompress(fast_index.read_bytes()).decode().splitlines()
    assert lines == gzip.decompress(slow_index.read_bytes()).decode().splitlines()
    # Both verdicts from the cache: the line ends with the content state (no path key, the
    # controller learns nothing from it); a file still to match keeps nothing back.
    entry = [json.loads(line) for line in lines if "a.txt" in line]
    assert entry == [[str(tree / "a.txt"), 6, entry[0][2], entry[0][3], _sha(b"alpha\n"), "cached"]]


def test_a_file_that_changed_after_it_was_opened_goes_the_long_way(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    for name, data in FILES.items():
        (tree / name).write_bytes(data)
    scanner, rec, _index = _scanner(tmp_path, "changed", True)
    path = tree / "a.txt"
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        with open(path, "ab") as fh:
            fh.write(b"more\n")
        staged = scanner.stage_small(fd, os.fsencode(path), st)
    finally:
        os.close(fd)
    scanner.options.index.close()
    # stage read it again from the start and noted the change; its bytes are new content.
    assert rec.notes == {"changed-during-scan": 1}
    assert staged is not None and bytes(staged[3].data) == FILES["a.txt"] + b"more\n"
    assert staged[3].sha256 == _sha(FILES["a.txt"] + b"more\n")


def test_the_index_keeps_a_path_key_only_when_the_controller_can_learn_from_it(tmp_path):
    index_path = tmp_path / "files.gz"
    index = verdicts.FileIndex(index_path, {"rules_id": "r"})
    index.add("/a", 1, 2, 3, "s" * 64, "cached", "k" * 64, "cached")
    index.add("/b", 1, 2, 3, "s" * 64, "cached", "k" * 64, "clean")  # a fresh path verdict
    index.add("/c", 1, 2, 3, "s" * 64, "matched", "k" * 64, "cached")
    index.close()
    lines = gzip.decompress(index_path.read_bytes()).decode().splitlines()
    assert [json.loads(line) for line in lines[1:]] == [
        ["/a", 1, 2, 3, "s" * 64, "cached"],
        ["/b", 1, 2, 3, "s" * 64, "cached", "k" * 64, "clean"],
        ["/c", 1, 2, 3, "s" * 64, "matched", "k" * 64, "cached"],
    ]
