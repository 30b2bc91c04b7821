"""Detection in the payload: scores and levels, filename IOCs, hash IOC scores, threads, the
fleet verdict cache and --since (identical findings with and without them)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from agentless_scanner import scoring
from agentless_scanner.patterns import parse_filename_line, parse_hash_line
from orchestrator.verdict_cache import VerdictCache, archive_ids, read_files_index

sys.path.insert(0, str(Path(__file__).resolve().parent / "scanner"))
import scanner_support as S  # noqa: E402

# -- scores and levels ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "level"),
    [(0, "info"), (39, "info"), (40, "notice"), (59, "notice"), (60, "warning"), (80, "alert")],
)
def test_levels(score, level):
    assert scoring.level_of(score) == level


def test_combined_score_adds_halves_and_caps():
    assert scoring.combine([50]) == 50
    assert scoring.combine([60, 60]) == 90  # two warnings make an alert
    assert scoring.combine([40, 20, 20]) == 55
    assert scoring.combine([100, 100]) == 100


@pytest.mark.parametrize(
    ("meta", "score"),
    [
        ({"score": 85}, 85),
        ({"score": "45"}, 45),
        ({"score": 250}, 100),
        ({"severity": "high"}, 80),
        ({"severity": "Low"}, 40),
        ({"severity": 65}, 65),
        ({"severity": "weird"}, scoring.DEFAULT_YARA_SCORE),
        ({}, scoring.DEFAULT_YARA_SCORE),
    ],
)
def test_yara_score_from_meta(meta, score):
    assert scoring.yara_score(meta) == score


def test_min_level_ordering():
    assert scoring.level_at_least("alert", "warning")
    assert scoring.level_at_least("warning", "warning")
    assert not scoring.level_at_least("notice", "warning")
    assert not scoring.level_at_least("info", "notice")


def test_hash_line_with_score():
    digest = "a" * 64
    assert parse_hash_line(f"{digest};45;Vendor tool") == (digest, "sha256", "Vendor tool", 45)
    assert parse_hash_line(f"{digest};Known bad") == (digest, "sha256", "Known bad", 100)
    with pytest.raises(ValueError, match="0-100"):
        parse_hash_line(f"{digest};101;too high")


def test_filename_line():
    regex, score, fp = parse_filename_line(r"\\Temp\\[a-z]{8}\.exe$;70;\\Temp\\setup")
    assert score == 70 and regex.search("C:\\Windows\\Temp\\abcdefgh.EXE")
    assert fp is not None and fp.search("C:\\Windows\\Temp\\setup")
    for bad in ("justaregex", "(unclosed;50", "x;notanumber", "x;150"):
        with pytest.raises(ValueError):
            parse_filename_line(bad)


# -- the payload on a planted tree ----------------------------------------------------------

HARMLESS = b"PLANTSWEEP-DETECTION-SCORED-2b71"
NOTICE_ONLY = b"plantsweep notice-level sample\n"

RULES = """
rule Detection_HighScore
{
    meta:
        description = "scored test rule"
        score = 85
    strings:
        $a = "PLANTSWEEP-DETECTION-SCORED-2b71"
    condition:
        $a
}

rule Detection_Severity : sev
{
    meta:
        severity = "medium"
    strings:
        $a = "PLANTSWEEP-DETECTION-SCORED-2b71"
    condition:
        $a
}
"""

# Rules are split into content and path sets per file: a file that uses an external
# variable is path-dependent as a whole.
PATH_RULES = """
rule Detection_PathDependent
{
    meta:
        score = 40
    strings:
        $a = "PLANTSWEEP-DETECTION-SCORED-2b71"
    condition:
        $a and filename == "dropper.exe"
}
"""


@pytest.fixture(scope="module")
def payload(tmp_path_factory) -> Path:
    return S.build_test_payload(tmp_path_factory)


@pytest.fixture(scope="module")
def wheels() -> Path:
    return S.fetch_test_wheels()


def _patterns(dest: Path) -> Path:
    S.combined_patterns(dest)
    (dest / "detection.yar").write_text(RULES)
    (dest / "detection-path.yar").write_text(PATH_RULES)
    (dest / "scored.hashes").write_text(f"{S.sha256(NOTICE_ONLY)};45;notice-level test hash\n")
    (dest / "test.filenames").write_text(
        "# Dropper names in a temp folder\n"
        r"/tmp[0-9]*/[a-z]+\.scr$;65;/tmp[0-9]*/allowed\.scr$" + "\n"
    )
    return dest


def _tree(root: Path, copies: int = 1) -> None:
    S.plant_tree(root)
    for i in range(copies):
        base = root / f"copy{i}"
        S.write(base / "dropper.exe", b"MZ junk " + HARMLESS)
        S.write(base / "other.bin", b"junk " + HARMLESS)
        S.write(base / "notice.txt", NOTICE_ONLY)
        S.write(base / "tmp1" / "evil.scr", b"not even malware")
        S.write(base / "tmp1" / "allowed.scr", b"not even malware")
        for j in range(30):
            S.write(base / "filler" / f"f{j}.txt", f"clean filler {i} {j}\n".encode())


def _scan(
    tmp_path: Path,
    payload: Path,
    wheels: Path,
    tree: Path,
    patterns: Path,
    name: str,
    *extra: str,
    python: str = S.PY311,
) -> dict:
    pyz = tmp_path / "own" / "scanner.pyz"
    if not pyz.exists():
        S.install_payload(payload, pyz.parent)
    args = [
        "--type",
        "folders",
        "--path",
        str(tree),
        "--patterns",
        str(patterns),
        "--wheel-dir",
        str(wheels),
        "--scan-id",
        "t",
        "--host-name",
        "h",
        *extra,
    ]
    run = S.run_scanner(python, pyz, args, tmp_path / name)
    assert run.rc == 0, run.stderr
    S.validate(run.log)
    return run.log


def _comparable(log: dict) -> list[dict]:
    return sorted(
        (json.dumps(f, sort_keys=True) for f in log["findings"]),
    )


def test_scores_levels_and_every_engine(tmp_path, payload, wheels):
    tree = tmp_path / "tree"
    _tree(tree)
    log = _scan(tmp_path, payload, wheels, tree, _patterns(tmp_path / "p"), "a.json")
    found = {f["path"][len(str(tree)) + 1 :]: f for f in log["findings"]}

    dropper = found["copy0/dropper.exe"]
    assert [m["rule"] for m in dropper["matches"]] == [
        "Detection_HighScore",
        "Detection_Severity",
        "Detection_PathDependent",
    ]
    assert [m["score"] for m in dropper["matches"]] == [85, 60, 40]
    assert [m["scope"] for m in dropper["matches"]] == ["content", "content", "path"]
    assert dropper["score"] == 100 and dropper["level"] == "alert"  # 85 + 30 + 10
    assert dropper["rule"] == "Detection_HighScore" and dropper["engine"] == "yara"

    other = found["copy0/other.bin"]  # same bytes, other name: the path rule does not match
    assert [m["rule"] for m in other["matches"]] == ["Detection_HighScore", "Detection_Severity"]
    assert other["score"] == 100

    notice = found["copy0/notice.txt"]
    assert notice["engine"] == "hash" and notice["score"] == 45 and notice["level"] == "notice"

    evil = found["copy0/tmp1/evil.scr"]
    assert evil["engine"] == "filename" and evil["score"] == 65 and evil["level"] == "warning"
    assert evil["description"] == "Dropper names in a temp folder"
    assert "copy0/tmp1/allowed.scr" not in found  # the false-positive filter

    eicar = found["eicar.com"]  # YARA and a hash IOC: one finding, two matches
    assert {m["engine"] for m in eicar["matches"]} == {"yara", "hash"}
    assert log["patterns"]["filename_iocs"] == 1


def test_threads_give_the_same_findings(tmp_path, payload, wheels):
    tree = tmp_path / "tree"
    _tree(tree, copies=4)
    patterns = _patterns(tmp_path / "p")
    one = _scan(tmp_path, payload, wheels, tree, patterns, "1.json", "--threads", "1")
    four = _scan(tmp_path, payload, wheels, tree, patterns, "4.json", "--threads", "4")
    assert one["performance"]["threads"] == 1 and four["performance"]["threads"] == 4
    assert one["stats"]["files_scanned"] == four["stats"]["files_scanned"] > 100
    assert _comparable(one) == _comparable(four)
    assert len(one["findings"]) >= 4 * 4


def test_low_impact_mode_is_recorded(tmp_path, payload, wheels):
    tree = tmp_path / "tree"
    _tree(tree)
    patterns = _patterns(tmp_path / "p")
    plain = _scan(tmp_path, payload, wheels, tree, patterns, "plain.json")
    gentle = _scan(tmp_path, payload, wheels, tree, patterns, "gentle.json", "--low-impact")
    perf = gentle["performance"]
    assert perf["threads"] == 1 and perf["cpu_limit_percent"] == 50
    assert perf["priority"]["nice"] == 19
    assert perf["priority"]["ionice"] in ("idle", "not available")
    assert _comparable(plain) == _comparable(gentle)


def _verdicts_from(
    cache: VerdictCache, host: str, index: Path, log: dict, patterns: Path, tmp: Path
) -> Path:
    learned = cache.absorb(host, index, log)
    assert learned["content"] > 0 and learned["path"] > 0
    archive = tmp / "patterns.zip"
    shutil.make_archive(str(archive.with_suffix("")), "zip", patterns)
    dest = tmp / "verdicts.json.gz"
    assert cache.export(archive_ids(archive).rules_id, dest)
    return dest


def test_verdict_cache_gives_identical_findings(tmp_path, payload, wheels):
    tree = tmp_path / "tree"
    _tree(tree, copies=2)
    patterns = _patterns(tmp_path / "p")
    index = tmp_path / "files1.json.gz"
    first = _scan(
        tmp_path, payload, wheels, tree, patterns, "first.json", "--files-out", str(index)
    )
    header, entries = read_files_index(index)
    assert header["rules_id"] == first["performance"]["rules_id"]
    states = {e[0][len(str(tree)) + 1 :]: e[5] for e in entries}
    assert states["copy0/dropper.exe"] == "matched" and states["clean/readme.txt"] == "clean"
    assert len(entries) == first["stats"]["files_scanned"]

    cache = VerdictCache(tmp_path / "cache")
    verdicts = _verdicts_from(cache, "h", index, first, patterns, tmp_path)
    second = _scan(
        tmp_path, payload, wheels, tree, patterns, "second.json", "--verdicts", str(verdicts)
    )
    assert second["performance"]["cache_hits"] == second["stats"]["files_scanned"]
    # With verdicts, worker threads only get files that still need YARA (pool.py).
    threads = second["performance"]["threads"]
    assert second["performance"]["hand_over"] == ("after lookup" if threads > 1 else "whole file")
    assert first["performance"]["hand_over"] == ("whole file")
    # Same bytes at the same path: the path rules' verdicts came from the cache too.
    assert second["performance"]["path_cache_hits"] == second["stats"]["files_scanned"]
    # Within one scan, a second file with the same bytes reuses the first one's verdict.
    assert first["performance"]["duplicates_reused"] > 0
    assert _comparable(first) == _comparable(second)
    # The path-dependent rule still ran per file although the content verdict was cached.
    assert "Detection_PathDependent" in {
        m["rule"] for f in second["findings"] for m in f["matches"]
    }
    # Four threads, and a file whose bytes are new: it is handed over to a worker and matched.
    changed = tree / "copy1" / "filler" / "f7.txt"
    changed.write_bytes(b"new " + HARMLESS)
    mixed = _scan(
        tmp_path,
        payload,
        wheels,
        tree,
        patterns,
        "mixed.json",
        "--verdicts",
        str(verdicts),
        "--threads",
        "4",
    )
    assert mixed["performance"]["hand_over"] == "after lookup"
    assert mixed["performance"]["cache_hits"] == mixed["stats"]["files_scanned"] - 1
    full = _scan(tmp_path, payload, wheels, tree, patterns, "full.json", "--threads", "1")
    assert _comparable(mixed) == _comparable(full)
    assert str(changed) in {f["path"] for f in mixed["findings"]}
    changed.write_bytes(b"clean filler 1 7\n")
    nocache = _scan(tmp_path, payload, wheels, tree, patterns, "nocache.json")
    assert nocache["performance"]["cache_hits"] == 0
    assert _comparable(nocache) == _comparable(second)


@pytest.mark.parametrize("python", [S.PY311, S.PY38], ids=["py311", "py38"])
def test_large_files_are_hashed_first_when_verdicts_are_reused(tmp_path, payload, wheels, python):
    """With verdicts, a file over 1 MiB is first hashed without keeping its bytes: a known
    clean one is done; a known matched one is read again for its SHA-1 and MD5; an unknown one
    is read again whole and matched. Findings equal those of a scan without verdicts."""
    tree = tmp_path / "tree"
    _tree(tree)
    big = 3 << 20
    S.write(tree / "large" / "clean.bin", b"\0" * big)
    S.write(tree / "large" / "matched.exe", b"MZ" + b"\1" * big + HARMLESS)
    # Rules only: no SHA-1 or MD5 IOCs, so those digests are computed for findings alone.
    patterns = tmp_path / "p"
    patterns.mkdir()
    (patterns / "detection.yar").write_text(RULES)
    (patterns / "detection-path.yar").write_text(PATH_RULES)
    index = tmp_path / "files1.json.gz"
    first = _scan(
        tmp_path,
        payload,
        wheels,
        tree,
        patterns,
        "first.json",
        "--files-out",
        str(index),
        python=python,
    )
    verdicts = _verdicts_from(
        VerdictCache(tmp_path / "cache"), "h", index, first, patterns, tmp_path
    )
    new = tree / "large" / "new.bin"
    S.write(new, b"\2" * big + HARMLESS)  # bytes no verdict knows
    # Known bytes at a new path: the content verdict is cached, the path rules run again.
    moved = tree / "moved" / "dropper.exe"
    S.write(moved, b"MZ junk " + HARMLESS)
    args = ("--verdicts", str(verdicts), "--threads", "2")
    second = _scan(tmp_path, payload, wheels, tree, patterns, "second.json", *args, python=python)
    full = _scan(
        tmp_path, payload, wheels, tree, patterns, "full.json", "--threads", "1", python=python
    )
    assert _comparable(second) == _comparable(full)
    found = {f["path"]: f for f in second["findings"]}
    matched = found[str(tree / "large" / "matched.exe")]
    data = (tree / "large" / "matched.exe").read_bytes()
    assert (matched["sha1"], matched["md5"]) == (
        hashlib.sha1(data).hexdigest(),
        hashlib.md5(data).hexdigest(),
    )
    assert str(new) in found and str(tree / "large" / "clean.bin") not in found
    assert "Detection_PathDependent" in {m["rule"] for m in found[str(moved)]["matches"]}
    assert second["performance"]["cache_hits"] == second["stats"]["files_scanned"] - 1
    assert second["performance"]["path_cache_hits"] == second["stats"]["files_scanned"] - 2
    assert second["stats"]["files_scanned"] == full["stats"]["files_scanned"]  # once each


def test_verdict_cache_for_other_rules_is_ignored(tmp_path, payload, wheels):
    tree = tmp_path / "tree"
    _tree(tree)
    patterns = _patterns(tmp_path / "p")
    bogus = tmp_path / "bogus.json.gz"
    with gzip.open(bogus, "wt") as fh:
        json.dump(
            {"format": 1, "rules_id": "0" * 64, "libyara": "4.5.1", "clean": [], "matched": {}}, fh
        )
    log = _scan(tmp_path, payload, wheels, tree, patterns, "x.json", "--verdicts", str(bogus))
    assert log["performance"]["cache_hits"] == 0
    assert log["performance"]["notes"] == [
        "verdict cache not used: verdict cache is for other rules"
    ]


def _first_scan_and_since_file(tmp_path, payload, wheels, tree, patterns):
    """A first scan with its file index, absorbed by a controller cache: (log, --since file)."""
    index = tmp_path / "files1.json.gz"
    first = _scan(
        tmp_path, payload, wheels, tree, patterns, "first.json", "--files-out", str(index)
    )
    cache = VerdictCache(tmp_path / "cache")
    cache.absorb("h", index, first)
    since = tmp_path / "since.json.gz"
    assert cache.previous_scan("h", since)
    return first, since


def test_since_last_gives_identical_findings_and_rescans_changes(tmp_path, payload, wheels):
    tree = tmp_path / "tree"
    _tree(tree, copies=2)
    patterns = _patterns(tmp_path / "p")
    first, since = _first_scan_and_since_file(tmp_path, payload, wheels, tree, patterns)

    second = _scan(tmp_path, payload, wheels, tree, patterns, "second.json", "--since", str(since))
    assert second["performance"]["unchanged_since_last"] == first["stats"]["files_scanned"]
    assert second["stats"]["files_scanned"] == first["stats"]["files_scanned"]  # still covered
    assert _comparable(first) == _comparable(second)

    # A changed file is matched again: a clean filler becomes a detection.
    changed = tree / "copy1" / "filler" / "f3.txt"
    changed.write_bytes(b"now " + HARMLESS)
    os.utime(changed, (1, 1))
    third = _scan(tmp_path, payload, wheels, tree, patterns, "third.json", "--since", str(since))
    assert third["performance"]["unchanged_since_last"] == first["stats"]["files_scanned"] - 1
    assert str(changed) in {f["path"] for f in third["findings"]}
    full = _scan(tmp_path, payload, wheels, tree, patterns, "full.json")
    assert _comparable(full) == _comparable(third)


def test_since_last_with_other_patterns_is_not_used(tmp_path, payload, wheels):
    tree = tmp_path / "tree"
    _tree(tree)
    patterns = _patterns(tmp_path / "p")
    first, since = _first_scan_and_since_file(tmp_path, payload, wheels, tree, patterns)
    (patterns / "more.hashes").write_text(f"{S.sha256(b'x')};extra\n")
    log = _scan(tmp_path, payload, wheels, tree, patterns, "second.json", "--since", str(since))
    assert log["performance"]["unchanged_since_last"] == 0
    assert log["performance"]["notes"] == ["--since not used: previous scan used other patterns"]
