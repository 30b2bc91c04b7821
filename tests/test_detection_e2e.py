"""The controller's side of detection on simulated plant hosts: the fleet verdict cache,
--no-cache, --since-last and --min-level through `plantsweep scan`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.harness import files as planted_files
from tests.plantscan import run_scan_cli

RECIPE = "/srv/plant/recipes/recipe-001.csv"


def _matches(run, host: str) -> set[tuple[str, str, str]]:
    log = run.log(host)
    return {(f["path"], m["engine"], m["rule"]) for f in log["findings"] for m in f["matches"]}


def _patterns(dest: Path) -> Path:
    planted_files.write_test_patterns(dest)
    (dest / "eicar.yar").write_text((Path("orchestrator/data/patterns/eicar.yar")).read_text())
    return dest


def test_verdict_cache_and_since_last_keep_findings_identical(
    make_fleet, wheel_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("PLANTSWEEP_HOME", str(tmp_path / "home"))
    fleet = make_fleet(2)
    inventory = fleet.write_inventory(tmp_path / "fleet.yml")
    patterns = _patterns(tmp_path / "patterns")
    # The planted folders and this machine's /usr/bin, which every simulated host shares.
    folders = [a for p in ("/srv", "/home", "/root", "/usr/bin") for a in ("--path", p)]
    args = ["-i", str(inventory), "--type", "folders", *folders, "--patterns", str(patterns)]
    args += ["-f", "1", "--wheel-dir", str(wheel_dir)]
    hosts = [h.name for h in fleet]

    first = run_scan_cli(tmp_path / "first", *args)
    assert first.code == 1
    assert all(first.log(h)["engines"]["yara"]["available"] for h in hosts)
    perf = {h: first.log(h)["performance"] for h in hosts}
    # The first host starts with an empty cache; the second (forks 1: after it) gets the
    # first host's verdicts for the files they share.
    assert perf[hosts[0]]["cache_hits"] == 0 and "verdicts_loaded" not in perf[hosts[0]]
    assert perf[hosts[1]]["cache_hits"] > 0
    assert first.log(hosts[0])["verdict_cache"]["content"] > 0
    cache_files = list((tmp_path / "home" / "cache" / "verdicts").glob("*.json.gz"))
    assert len(cache_files) == 1

    second = run_scan_cli(tmp_path / "second", *args)
    for host in hosts:
        log = second.log(host)
        # Every file was seen before (same hosts): no content rule ran again.
        assert log["performance"]["cache_hits"] == log["stats"]["files_scanned"] > 100
        assert _matches(second, host) == _matches(first, host)

    nocache = run_scan_cli(tmp_path / "nocache", *args, "--no-cache")
    for host in hosts:
        assert nocache.log(host)["performance"]["cache_hits"] == 0
        assert "verdict_cache" not in nocache.log(host)
        assert _matches(nocache, host) == _matches(first, host)

    since = run_scan_cli(tmp_path / "since", *args, "--since-last")
    for host in hosts:
        log = since.log(host)
        assert log["performance"]["unchanged_since_last"] > 0.9 * log["stats"]["files_scanned"]
        assert _matches(since, host) == _matches(first, host)
    assert since.code == first.code == 1


def test_min_level_decides_what_counts(make_fleet, tmp_path, monkeypatch):
    monkeypatch.setenv("PLANTSWEEP_HOME", str(tmp_path / "home"))
    fleet = make_fleet(1)
    host = fleet.hosts[0]
    inventory = fleet.write_inventory(tmp_path / "fleet.yml")
    recipe = host.path(RECIPE).read_bytes()
    patterns = tmp_path / "notice"
    patterns.mkdir()
    digest = hashlib.sha256(recipe).hexdigest()
    (patterns / "notice.hashes").write_text(f"{digest};45;recipe seen on a bad USB stick\n")
    args = ["-i", str(inventory), "--type", "folders", "--path", "/srv/plant"]

    default = run_scan_cli(tmp_path / "default", *args, "--patterns", str(patterns))
    assert default.code == 0 and default.status(host.name) == "clean"
    finding = default.log(host.name)["findings"]
    assert [(f["path"], f["score"], f["level"]) for f in finding] == [(RECIPE, 45, "notice")]
    summary = json.loads((default.run_dir / "run.json").read_text())
    assert summary["hosts"][0]["findings"] == 0

    notice = run_scan_cli(
        tmp_path / "notice-run", *args, "--patterns", str(patterns), "--min-level", "notice"
    )
    assert notice.code == 1 and notice.status(host.name) == "findings"
    assert notice.host_summary(host.name)["findings"] == 1
