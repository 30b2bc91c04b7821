"""End to end: `plantsweep scan` against the simulated plant (real sshd per host over SSH).

The session `plant` fleet has 5 hosts: 02 runs Python 3.6 (no yara wheel exists for it, so
hash IOCs only), 03 runs Python 3.8 (yara from the pushed cp38 wheel), the rest Debian's 3.11.
"""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
from plantscan import TEMP_PREFIX, finding_keys, run_scan_cli

from orchestrator.payload import scan_log_schema
from tests.harness import files as planted

PY36_HOST = "plant-host-02"
PY38_HOST = "plant-host-03"

# Where the planted files sit relative to the quick-scan folders (see agentless_scanner/locations)
QUICK_PREFIXES = ("/tmp/", "/var/tmp/", "/home/operator/Downloads/", "/root/.local/bin/")


@pytest.fixture(scope="session")
def scan_setup(plant, wheel_dir, tmp_path_factory):
    """Inventory + test patterns for the plant, and the extra hash-IOC file on the 3.6 host."""
    base = tmp_path_factory.mktemp("e2e")
    inventory = plant.write_inventory(base / "plant.yml")
    patterns = plant.write_test_patterns(base / "patterns")["yara"].parent
    plant.plant_files(
        PY36_HOST,
        {"/tmp/vendor/old-tool.bin": planted.HASH_IOC_CONTENT},
        kind="hash",
        indicator=f"hash:{planted.HASH_IOC_NAME}",
    )
    common = ["-i", str(inventory), "--patterns", str(patterns), "--wheel-dir", str(wheel_dir)]
    return base, common


def expected(plant, host: str, prefixes: tuple[str, ...] | None) -> set[tuple[str, str, str]]:
    keys = set()
    for f in plant.expected_findings(host):
        if prefixes is not None and not f.path.startswith(prefixes):
            continue
        if host == PY36_HOST and f.indicator.startswith("yara:"):
            continue  # no yara engine on Python 3.6: asserted separately below
        keys.add((f.path, f.sha256, f.indicator))
    return keys


def assert_no_temp_dirs(plant) -> None:
    for host in plant:
        left = [n for n in host.listdir("/tmp") if n.startswith(TEMP_PREFIX)]
        assert left == [], f"{host.name}: temp dirs left: {left}"


def _fingerprints(plant) -> dict[tuple[str, str], tuple[int, int, bytes]]:
    """mtime, ctime and content of every planted file, seen from the controller."""
    prints = {}
    for host in plant:
        for f in host.planted:
            st = host.path(f.path).stat()
            prints[(host.name, f.path)] = (
                st.st_mtime_ns,
                st.st_ctime_ns,
                host.path(f.path).read_bytes(),
            )
    return prints


def test_quick_scan_finds_exactly_the_planted_files(plant, scan_setup):
    base, common = scan_setup
    before = _fingerprints(plant)
    run = run_scan_cli(base / "out-quick", *common, "--type", "quick")
    assert run.code == 1  # findings, no failures
    # Log-only: nothing planted (malicious or not) was touched, moved or deleted.
    assert _fingerprints(plant) == before
    schema = scan_log_schema()
    for host in plant:
        log = run.log(host.name)
        jsonschema.Draft202012Validator(schema).validate(log)  # as stored, cleanup included
        assert log["scan_type"] == "quick"
        assert log["action"] == "log-only"
        assert finding_keys(log) == expected(plant, host.name, QUICK_PREFIXES), host.name
        assert log["stats"]["files_scanned"] > 100  # /usr/bin and friends
        assert log["cleanup"]["removed"] is True and log["cleanup"]["residue"] == []
        assert log["inventory"]["criticality"] in ("mission-critical", "standard")
        summary = run.host_summary(host.name)
        assert summary["findings"] == len(log["findings"])
        assert summary["status"] == ("findings" if log["findings"] else "clean")
    assert_no_temp_dirs(plant)


def test_old_interpreters_run_the_payload(plant, scan_setup):
    base, common = scan_setup
    run = run_scan_cli(
        base / "out-old",
        *common,
        "--type",
        "folders",
        "--path",
        "/tmp",
        "--limit",
        f"{PY36_HOST}:{PY38_HOST}",
    )
    old = run.log(PY36_HOST)
    assert old["scanner"]["python"].startswith("3.6.")
    assert old["engines"]["yara"]["available"] is False
    assert old["engines"]["yara"]["reason"]
    # The hash IOC still finds the file planted for it on the 3.6 host.
    assert finding_keys(old) == expected(plant, PY36_HOST, ("/tmp/",))
    assert expected(plant, PY36_HOST, ("/tmp/",))  # the comparison above is not vacuous
    mid = run.log(PY38_HOST)
    assert mid["scanner"]["python"].startswith("3.8.")
    assert mid["engines"]["yara"]["available"] is True
    assert mid["engines"]["yara"]["wheel"].startswith("yara_python-")
    assert set(run.summary["hosts"][i]["host"] for i in range(2)) == {PY36_HOST, PY38_HOST}


def test_folders_scan_covers_only_the_given_paths(plant, scan_setup):
    base, common = scan_setup
    run = run_scan_cli(base / "out-folders", *common, "--type", "folders", "--path", "/srv/plant")
    for host in plant:
        log = run.log(host.name)
        assert finding_keys(log) == expected(plant, host.name, ("/srv/plant/",)), host.name
        paths = [r["path"] for r in log["scope"]["roots"]]
        assert paths == ["/srv/plant"]
    assert run.code == 1
    assert_no_temp_dirs(plant)


def test_full_scan_walks_every_local_filesystem(plant, scan_setup):
    base, common = scan_setup
    # The hosts share this machine's / (tens of GB): keep the planted places, leave out the rest.
    excludes = [
        str(p)
        for p in Path("/").iterdir()
        if p.is_dir() and p.name not in ("srv", "home", "root", "tmp")
    ]
    args = [a for e in excludes for a in ("--exclude", e)]
    run = run_scan_cli(
        base / "out-full", *common, "--type", "full", "--include-mounts", "nfs4", *args
    )
    for host in plant:
        log = run.log(host.name)
        assert finding_keys(log) == expected(plant, host.name, None), host.name
        assert log["scope"]["include_mounts"] == ["nfs4"]
        assert "/proc" not in [r["path"] for r in log["scope"]["roots"]]
    assert run.code == 1
    assert_no_temp_dirs(plant)


def test_asset_scan_collects_asset_info_only(plant, scan_setup):
    base, common = scan_setup
    run = run_scan_cli(base / "out-asset", *common, "--type", "asset")
    assert run.code == 0
    for host in plant:
        log = run.log(host.name)
        assert log["findings"] == [] and log["stats"]["files_scanned"] == 0
        asset = log["asset"]
        assert asset["hostname"] == host.name  # each simulated host has its own UTS name
        assert host.address in {a for i in asset["interfaces"] for a in i["addresses"]} or any(
            a.startswith(host.address + "/") for i in asset["interfaces"] for a in i["addresses"]
        )
        assert asset["packages"]["manager"] == "dpkg" and asset["packages"]["count"] > 100
        assert asset["os"]["id"] == "debian"
    assert_no_temp_dirs(plant)
