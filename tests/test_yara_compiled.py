"""Compiled YARA rules in a bundle, and the pinned yara-python that loads them on the hosts.

The demo patterns (orchestrator/data/patterns) are built into a signed bundle, zipped as the
controller pushes them, and scanned with the real scanner zipapp under CPython 3.6, 3.8 and 3.11,
with the pinned yara-python (the bundle's compiled rules are loaded) and with another one (the
rules are compiled from source on the host, and the log says why). Findings must not differ.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
import threading
import tomllib
import zipfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import yara

from agentless_scanner import patterns as pattern_dir
from agentless_scanner import yara_engine
from orchestrator import payload as P
from orchestrator.bundles import build_bundle, generate_keypair, import_bundle
from orchestrator.pattern_source import pattern_archive

sys.path.insert(0, str(Path(__file__).resolve().parent / "scanner"))
import scanner_support as S  # noqa: E402

OTHER_YARA = "4.5.4"  # a yara-python release whose libyara differs from the pin
# Built by concatenation so this file never matches the demo rules itself.
ALERT = b"PLANTSWEEP-DEMO-" + b"SIGNATURE-ALERT"
MEDIUM = b"PLANTSWEEP-DEMO-" + b"SIGNATURE-MEDIUM"
DEMO_HASH_CONTENT = b"plantsweep demo hash IOC sample\n"


# -- the pin --------------------------------------------------------------------------------


def test_one_pinned_yara_python_everywhere():
    pyproject = tomllib.loads((S.REPO / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    pin = f"yara-python=={yara_engine.YARA_PYTHON_VERSION}"
    assert pin in extras["yara"] and pin in extras["test"]
    assert pin == P.YARA_REQUIREMENT
    assert yara.__version__ == yara.YARA_VERSION == yara_engine.YARA_PYTHON_VERSION  # the venv


def test_the_pinned_wheel_wins_over_a_newer_one(tmp_path):
    for name in (
        "yara_python-4.5.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "yara_python-4.5.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "yara_python-4.5.4-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    ):
        (tmp_path / name).write_bytes(b"")
    assert P.find_yara_wheel(tmp_path, (3, 11), "x86_64").name.startswith("yara_python-4.5.1-")
    # No pinned wheel for the target (4.5.1 has none for 3.13): the newest other one.
    assert P.find_yara_wheel(tmp_path, (3, 13), "x86_64").name.startswith("yara_python-4.5.4-")
    assert P.find_yara_wheel(tmp_path, (3, 11), "x86_64", version=None).name.startswith(
        "yara_python-4.5.4-"
    )


def test_wheel_cache_gets_the_pinned_release(wheel_dir):
    """The test cache held only 4.5.4 for cp311 before the pin: download_wheels must not take
    that for present, and the fixture's cache now has the pinned wheel for both targets."""
    got = P.download_wheels(wheel_dir, ["3.8", "3.11"], ["linux_x86_64"])
    assert [r.path.name.split("-")[1] for r in got if r.path] == ["4.5.1", "4.5.1"]
    assert all(r.note is None for r in got)


# -- the scanner with a bundle's compiled rules ---------------------------------------------


@pytest.fixture(scope="module")
def payload(tmp_path_factory) -> Path:
    return S.build_test_payload(tmp_path_factory)


@pytest.fixture(scope="module")
def demo_zip(tmp_path_factory) -> Iterator[Path]:
    """The shipped demo patterns as a signed bundle, imported, zipped for a host."""
    base = tmp_path_factory.mktemp("demo-bundle")
    home = base / "home"
    (home / "trusted-keys").mkdir(parents=True)
    generate_keypair(base / "demo.key", home / "trusted-keys" / "demo.pub", "test")
    today = date.today()
    bundle = build_bundle(
        P.default_patterns_dir(),
        base / "demo-1.tar",
        base / "demo.key",
        "demo",
        1,
        today,
        today + timedelta(days=30),
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLANTSWEEP_HOME", str(home))
        import_bundle(bundle, home / "patterns", [home / "trusted-keys" / "demo.pub"])
        archive, has_yara = pattern_archive("bundle:demo", base / "patterns.zip")
    assert has_yara
    yield archive


@pytest.fixture(scope="module")
def other_wheel() -> Path:
    """yara-python 4.5.4 for CPython 3.11 (from the test wheel cache)."""
    got = P.download_wheels(
        S.WHEEL_CACHE, ["3.11"], ["linux_x86_64"], requirement=f"yara-python=={OTHER_YARA}"
    )
    assert got[0].path is not None, got
    return got[0].path


def demo_tree(root: Path) -> set[tuple[str, str]]:
    """Files for the demo rules; returns the expected (path, rule) of every match."""
    files = {
        "drop/alert.bin": b"junk " + ALERT + b" junk\n",
        "drop/medium.txt": MEDIUM + b"\n",
        "drop/plantsweep-demo-dropper.cmd": b"@echo off\r\n",
        "drop/other-dropper.cmd": b"@echo off\r\n",  # same bytes, another name: clean
        "drop/sample.dat": DEMO_HASH_CONTENT,
        "drop/eicar.com": S.EICAR,
        "drop/clean.txt": b"nothing here\n",
    }
    for rel, data in files.items():
        S.write(root / rel, data)
    sha = hashlib.sha256
    return {
        (str(root / "drop/alert.bin"), "PlantSweep_Demo_Alert"),
        (str(root / "drop/medium.txt"), "PlantSweep_Demo_Medium"),
        (str(root / "drop/plantsweep-demo-dropper.cmd"), "PlantSweep_Demo_Dropper_Name"),
        (str(root / "drop/sample.dat"), "sha256:" + sha(DEMO_HASH_CONTENT).hexdigest()),
        (str(root / "drop/eicar.com"), "EICAR_Test_File"),
        (str(root / "drop/eicar.com"), "sha256:" + S.EICAR_SHA256),
    }


def scan(tmp_path: Path, name: str, python: str, pyz: Path, patterns: Path, tree: Path, *more):
    """Run the zipapp as the controller does: payload and patterns.zip in one private dir."""
    own = tmp_path / name
    S.install_payload(pyz, own)
    shutil.copy2(patterns, own / "patterns.zip")
    args = ["--type", "folders", "--path", str(tree), "--patterns", str(own / "patterns.zip")]
    run = S.run_scanner(python, own / "scanner.pyz", args + list(more), tmp_path / f"{name}.json")
    assert run.log is not None, run.stderr
    S.validate(run.log)
    return run.log


def matched(log: dict) -> set[tuple[str, str]]:
    return {(f["path"], m["rule"]) for f in log["findings"] for m in f["matches"]}


def test_hosts_with_the_pinned_libyara_load_the_compiled_rules(
    tmp_path, payload, demo_zip, wheel_dir, other_wheel
):
    expected = demo_tree(tmp_path / "tree")
    tree = tmp_path / "tree"

    venv = scan(tmp_path, "venv", S.PY311, payload, demo_zip, tree)
    engine = venv["engines"]["yara"]
    assert (engine["source"], engine["libyara"]) == ("interpreter", "4.5.1")
    assert (engine["compiled_from"], engine["compile_note"]) == ("bundle", None)
    assert (engine["content_rules"], engine["path_rules"], engine["rules_loaded"]) == (3, 1, 4)
    assert engine["single_pass"] is True  # compiled/all.yarc: one pass per file
    assert engine["non_pe_rules"] == 4  # compiled/nonpe/: no demo rule needs a PE file
    assert venv["patterns"]["name"] == "demo" and venv["patterns"]["errors"] == []
    assert matched(venv) == expected
    levels = {f["path"].rsplit("/", 1)[1]: f["level"] for f in venv["findings"]}
    assert levels["alert.bin"] == "alert" and levels["medium.txt"] == "warning"
    assert levels["plantsweep-demo-dropper.cmd"] == "notice"

    # CPython 3.8 with the pinned wheel pushed next to the zipapp: loaded, not compiled.
    own38 = tmp_path / "py38"
    (own38 / "wheels").mkdir(parents=True)
    cp38 = P.find_yara_wheel(wheel_dir, (3, 8), "x86_64")
    shutil.copy2(cp38, own38 / "wheels" / cp38.name)
    py38 = scan(tmp_path, "py38", S.PY38, payload, demo_zip, tree)
    assert py38["engines"]["yara"]["wheel"] == cp38.name
    assert py38["engines"]["yara"]["compiled_from"] == "bundle"
    assert matched(py38) == expected

    # A wheel dir holding both releases: the payload takes the pinned one.
    both = tmp_path / "both-wheels"
    both.mkdir()
    for wheel in (other_wheel, P.find_yara_wheel(wheel_dir, (3, 11), "x86_64")):
        shutil.copy2(wheel, both / wheel.name)
    pinned = scan(tmp_path, "both", S.PY311, payload, demo_zip, tree, "--wheel-dir", str(both))
    assert pinned["engines"]["yara"]["wheel"].startswith("yara_python-4.5.1-cp311-")
    assert pinned["engines"]["yara"]["compiled_from"] == "bundle"

    # CPython 3.6: no yara-python at all, hash IOCs only.
    py36 = scan(tmp_path, "py36", S.PY36, payload, demo_zip, tree)
    assert py36["engines"]["yara"]["available"] is False
    assert matched(py36) == {m for m in expected if m[1].startswith("sha256:")}


def test_another_libyara_compiles_from_source_with_the_same_findings(
    tmp_path, payload, demo_zip, other_wheel
):
    expected = demo_tree(tmp_path / "tree")
    only_other = tmp_path / "other-wheels"
    only_other.mkdir()
    shutil.copy2(other_wheel, only_other / other_wheel.name)
    log = scan(
        tmp_path, "other", S.PY311, payload, demo_zip, tmp_path / "tree", "--wheel-dir", only_other
    )
    engine = log["engines"]["yara"]
    assert (engine["wheel"], engine["libyara"]) == (other_wheel.name, OTHER_YARA)
    assert engine["compiled_from"] == "source"
    assert engine["compile_note"] == (
        f"libyara {OTHER_YARA} differs from the bundle's 4.5.1: compiled from source"
    )
    assert (engine["content_rules"], engine["path_rules"]) == (3, 1)
    assert engine["single_pass"] is True and engine["non_pe_rules"] is None
    assert matched(log) == expected


def test_a_plain_folder_is_compiled_on_the_host(tmp_path, payload):
    expected = demo_tree(tmp_path / "tree")
    folder = tmp_path / "folder-patterns.zip"
    with zipfile.ZipFile(folder, "w") as zf:
        for path in P.pattern_files(P.default_patterns_dir()):
            zf.write(path, path.name)
    log = scan(tmp_path, "folder", S.PY311, payload, folder, tmp_path / "tree")
    engine = log["engines"]["yara"]
    assert engine["compiled_from"] == "source"
    assert engine["compile_note"] == "the pattern set has no compiled rules: compiled from source"
    assert matched(log) == expected


# -- in-process: loading, the fallbacks, match_rules ----------------------------------------


@pytest.fixture
def unpacked(tmp_path, demo_zip) -> Path:
    return Path(pattern_dir.unpack_pattern_archive(str(demo_zip), str(tmp_path / "p")))


def load(root: Path) -> tuple[yara_engine.Yara, pattern_dir.PatternSet]:
    patterns = pattern_dir.load_patterns(str(root))
    engine = yara_engine.load_yara(None, None)
    yara_engine.compile_rules(engine, patterns)
    return engine, patterns


def test_match_rules_per_set(unpacked):
    engine, patterns = load(unpacked)
    assert engine.compiled_from == "bundle" and patterns.yara_rules == 4
    # The combined set is loaded instead of the content set (one copy of those rules).
    assert engine.rules == (engine.all_rules,) and engine.content_rules is None
    assert (engine.content_count, engine.path_count) == (3, 1)
    assert engine.path_namespaces == {"plantsweep-demo-filename.yar"}
    externals = dict.fromkeys(yara_engine.EXTERNALS, "")
    found = yara_engine.match_rules(engine, engine.all_rules, ALERT, externals, 5)
    assert [(r, ns) for r, ns, _t, _m in found] == [
        ("PlantSweep_Demo_Alert", "plantsweep-demo-markers.yar")
    ]
    assert found[0][3]["score"] == 85
    named = dict(externals, filename="plantsweep-demo-dropper.cmd")
    assert [r for r, *_ in yara_engine.match_rules(engine, engine.path_rules, b"x", named, 5)] == [
        "PlantSweep_Demo_Dropper_Name"
    ]
    assert yara_engine.match_rules(engine, engine.path_rules, b"x", externals, 5) == []
    assert yara_engine.match_rules(engine, None, b"x", externals, 5) == []
    # Files that do not start with "MZ" get the bundle's compiled/nonpe/ variant of a set.
    assert engine.non_pe_count == 4
    assert engine.all_rules.has_non_pe and engine.path_rules.has_non_pe
    full, variant = engine.all_rules.form("full"), engine.all_rules.form("non_pe")
    assert variant is not full
    assert yara_engine.rules_for(engine, engine.all_rules, ALERT) is variant
    assert yara_engine.rules_for(engine, engine.all_rules, b"MZ" + ALERT) is full
    assert yara_engine.rules_for(engine, engine.all_rules, memoryview(b"MZ")) is full
    # The old entry point runs every loaded set (here the combined one).
    assert sorted(r for r, *_ in yara_engine.match(engine, ALERT, named, 5)) == [
        "PlantSweep_Demo_Alert",
        "PlantSweep_Demo_Dropper_Name",
    ]


def test_compiled_file_that_does_not_load_falls_back_to_source(unpacked):
    (unpacked / "compiled" / "all.yarc").write_bytes(b"YARA but not really")
    engine, patterns = load(unpacked)
    assert engine.compiled_from == "source" and engine.rule_count == 4
    assert re.match(r"compiled rules compiled/all.yarc could not be loaded", engine.compile_note)
    assert patterns.errors == []


def test_missing_non_pe_sets_only_cost_speed(unpacked):
    (unpacked / "compiled" / "nonpe" / "path.yarc").unlink()
    engine, patterns = load(unpacked)
    assert engine.compiled_from == "bundle" and not engine.all_rules.has_non_pe
    assert engine.non_pe_count is None and patterns.errors == []
    assert yara_engine.rules_for(engine, engine.all_rules, ALERT) is engine.all_rules.form("full")


def test_the_path_set_waits_on_disk_until_a_cached_file_needs_it(unpacked):
    engine, _ = load(unpacked)
    # A first scan runs the combined set only: the path set is not kept in memory...
    assert not engine.path_rules.is_loaded("full") and not engine.path_rules.is_loaded("non_pe")
    named = dict(dict.fromkeys(yara_engine.EXTERNALS, ""), filename="plantsweep-demo-dropper.cmd")
    # ...and is loaded from the bundle when a file needs it, with the same matches.
    found = yara_engine.match_rules(engine, engine.path_rules, b"x", named, 5)
    assert [r for r, *_ in found] == ["PlantSweep_Demo_Dropper_Name"]
    assert engine.path_rules.is_loaded("non_pe") and not engine.path_rules.is_loaded("full")


def test_a_large_file_is_matched_with_the_other_form_released(unpacked, monkeypatch):
    engine, _ = load(unpacked)
    rules = engine.all_rules
    externals = dict.fromkeys(yara_engine.EXTERNALS, "")
    small = yara_engine.match_rules(engine, rules, ALERT, externals, 5)
    monkeypatch.setattr(yara_engine, "SOLO_FORM_BYTES", len(ALERT))  # ALERT counts as large
    seen = []
    real_form = rules.form

    def form(name):  # what is in memory while the large file is matched
        seen.append((name, rules.is_loaded("full"), rules.is_loaded("non_pe")))
        return real_form(name)

    monkeypatch.setattr(rules, "form", form)
    large = yara_engine.match_rules(engine, rules, ALERT, externals, 5)
    assert large == small  # the same matches
    assert seen == [("non_pe", False, True)]  # not MZ: the full form was released first
    # The next MZ file loads the full form again from the bundle file (same matches).
    mz = yara_engine.match_rules(engine, rules, b"MZ" + ALERT, externals, 5)
    assert rules.is_loaded("full") and [r for r, *_ in mz] == [r for r, *_ in small]
    # An MZ file that large releases the non-PE form instead.
    seen.clear()
    yara_engine.match_rules(engine, rules, b"MZ" + ALERT, externals, 5)
    assert seen == [("full", True, False)]


def test_a_released_form_waits_for_the_large_match_to_end(unpacked):
    engine, _ = load(unpacked)
    rules = engine.all_rules
    got = []
    with rules.solo("non_pe"):  # a large non-PE file is being matched
        waiter = threading.Thread(target=lambda: got.append(rules.form("full")))
        waiter.start()
        waiter.join(0.3)
        assert waiter.is_alive() and got == []  # the full form stays out of memory meanwhile
    waiter.join(5)
    assert not waiter.is_alive() and got == [rules.form("full")]


def test_bundle_json_without_libyara_compiles_from_source(unpacked):
    (unpacked / "bundle.json").write_text('{"name": "demo", "version": "1", "date": "2026-01-01"}')
    engine, _ = load(unpacked)
    assert engine.compiled_from == "source"
    assert "does not say which libyara" in engine.compile_note


def test_broken_source_rule_is_a_pattern_error_naming_file_and_rule(tmp_path):
    (tmp_path / "good.yar").write_text('rule good { strings: $a = "abc" condition: $a }\n')
    (tmp_path / "named.yar").write_text('rule by_name { condition: filename == "x" }\n')
    (tmp_path / "bad.yar").write_text(
        "rule fine { condition: true }\n\nrule bad_one {\n  condition:\n    nonsense\n}\n"
    )
    engine, patterns = load(tmp_path)
    assert (engine.content_count, engine.path_count) == (1, 1)
    assert patterns.errors == [
        {
            "file": "bad.yar",
            "message": 'YARA compile error: rule bad_one, line 5: undefined identifier "nonsense"',
        }
    ]


def test_uses_externals():
    assert yara_engine.uses_externals('rule a { condition: filename == "x.exe" }')
    assert yara_engine.uses_externals(b'rule a { condition: extension == ".ps1" and true }')
    assert yara_engine.uses_externals("rule a { condition: pe.filetype }")  # errs on the safe side
    for text in (
        'rule a { meta: d = "the filename" strings: $s = "owner" condition: $s }',
        'rule a { strings: $filename = "x" condition: #filename > 1 and @filename[1] > 0 }',
        "rule a { condition: !filepath[1] > 0 }",
        "// filepath\nrule a { /* extension */ condition: true }",
        "rule get_filename_x { condition: true }",
    ):
        assert not yara_engine.uses_externals(text), text
