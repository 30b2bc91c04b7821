"""`plantsweep assets`, `assets show` and `assets diff` over a real store (SQLite and
PostgreSQL): real scanner asset logs of this machine (Debian 12), and Windows hosts whose asset
objects come from the Windows collectors run on the recorded fixtures."""

from __future__ import annotations

import copy
import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main
from tests.store_logs import ROOT
from tests.test_asset_windows import collect as collect_windows

WIN10_LTSC_HOTFIXES = {"KB4486153", "KB5005112", "KB5087538"}  # the fixture's wmic output


@pytest.fixture(scope="module")
def linux_asset_log(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("asset") / "asset.json"
    subprocess.run(
        [sys.executable, "-m", "agentless_scanner", "--type", "asset", "--out", str(out),
         "--host-name", "gw-01"],
        check=True, cwd=ROOT, capture_output=True, timeout=120,
    )  # fmt: skip
    return json.loads(out.read_text())


def host_log(
    base: dict[str, Any],
    host: str,
    scan_id: str,
    finished: str,
    asset: dict[str, Any] | None = None,
    line: str = "packaging-1",
) -> dict[str, Any]:
    log = copy.deepcopy(base)
    log.update(scan_id=scan_id, host=host, started=finished, finished=finished)
    log["inventory"] = {"site": "basel", "area": "fill-finish", "line": line,
                        "criticality": "standard"}  # fmt: skip
    if asset is not None:
        log["asset"] = asset
    return log


def windows_asset(base: dict[str, Any], layout: str) -> dict[str, Any]:
    """The Linux log's asset with the Windows sections merged in as asset.py does on Windows."""
    asset = copy.deepcopy(base["asset"])
    sections = collect_windows(layout)
    asset["os"] = {"name": None, "version": None, "id": None, "pretty_name": None,
                   "kernel": None, "source": "registry"}  # fmt: skip
    asset["os"].update(sections.pop("os", {}))
    asset.update(sections)
    return asset


def cli(store: Any, *argv: str) -> int:
    return main(["--store", store.url, *argv])


@pytest.fixture
def plant(store: Any, linux_asset_log: dict[str, Any], tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Path:  # fmt: skip
    """gw-01 (Debian 12, two scans: a package and a port appear in the second), hmi-07
    (Windows 7 SP1), ews-02 (Windows 10 LTSC 2019), in the store."""
    monkeypatch.setenv("PLANTSWEEP_HOME", str(tmp_path / "home"))
    later = copy.deepcopy(linux_asset_log["asset"])
    later["packages"]["items"].append(
        {"name": "telnetd", "version": "0.17-44", "arch": "amd64", "source": "netkit-telnet"}
    )
    later["packages"]["count"] += 1
    later["network"]["listening"].append(
        {"proto": "tcp", "address": "0.0.0.0", "port": 23, "pid": 4242, "process": "inetd"}
    )
    logs = {
        "gw-01-a.json": host_log(linux_asset_log, "gw-01", "a" * 32, "2026-11-20T10:00:00.000Z"),
        "gw-01-b.json": host_log(linux_asset_log, "gw-01", "b" * 32, "2026-11-24T10:00:00.000Z",
                                 later),
        "hmi-07.json": host_log(linux_asset_log, "hmi-07", "c" * 32, "2026-11-23T08:00:00.000Z",
                                windows_asset(linux_asset_log, "win7-sp1-pro")),
        "ews-02.json": host_log(linux_asset_log, "ews-02", "d" * 32, "2026-11-23T09:00:00.000Z",
                                windows_asset(linux_asset_log, "win10-ltsc2019"), line="lab"),
    }  # fmt: skip
    folder = tmp_path / "logs"
    folder.mkdir()
    for name, log in logs.items():
        (folder / name).write_text(json.dumps(log))
    assert cli(store, "logs", "import", *(str(folder / n) for n in logs)) == 0
    return folder


def test_list_shows_eol_status_and_filters(
    store: Any, plant: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("orchestrator.knowledge.data._warned", set())  # once per process
    capsys.readouterr()
    assert cli(store, "assets", "--format", "json") == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["data"]["date"] == "2026-08-21"  # the shipped data's date, said with the result
    hosts = {h["host"]: h for h in doc["hosts"]}
    assert set(hosts) == {"gw-01", "hmi-07", "ews-02"}
    assert hosts["hmi-07"]["eol_status"] == "eol"
    assert hosts["hmi-07"]["assessment"]["eol"]["eol_date"] == "2020-01-14"
    assert hosts["gw-01"]["scan_id"] == "b" * 32  # the newest record of the host
    assert hosts["gw-01"]["eol_status"] in ("supported", "extended")
    assert "days old" in captured.err  # the 2026-08 data is older than 90 days: warned

    assert cli(store, "assets", "--status", "eol", "--format", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out.split("# ")[0])))
    assert [r["host"] for r in rows] == ["hmi-07"]
    assert rows[0]["os"].startswith("Windows 7") and rows[0]["risk"] == "high"


def test_table_lists_never_collected_inventory_hosts(
    store: Any, plant: Path, tmp_path: Path, capsys: Any
) -> None:
    inventory = tmp_path / "plant.yml"
    inventory.write_text(
        "all:\n  children:\n    hmis:\n      hosts:\n        hmi-07:\n        hmi-08:\n"
        "    gateways:\n      hosts:\n        gw-01:\n"
    )
    capsys.readouterr()
    assert cli(store, "assets", "-i", str(inventory), "--group", "hmis") == 0
    out = capsys.readouterr().out
    assert "hmi-07" in out and "END OF LIFE since 2020-01-14" in out
    assert "hmi-08" in out and "no asset record" in out
    assert "gw-01" not in out  # not in the group
    assert "1 host(s) assessed, 1 never collected" in out


def test_required_patches_respect_supersedence(
    store: Any, plant: Path, tmp_path: Path, capsys: Any
) -> None:
    # ews-02 runs 17763.8755 (KB5087538, May 2026). KB5071544 (December 2025) is superseded by
    # that cumulative update although it is not in the hotfix list; KB5099538 (July 2026) is not
    # installed.
    assert "KB5071544" not in WIN10_LTSC_HOTFIXES
    inventory = tmp_path / "plant.yml"
    inventory.write_text(
        "all:\n  hosts:\n    ews-02:\n  vars:\n    required_patches: [KB5071544, KB5099538]\n"
    )
    capsys.readouterr()
    assert cli(store, "assets", "show", "ews-02", "-i", str(inventory), "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    patch = doc["assessment"]["patch_level"]
    assert patch["missing_required"] == ["KB5099538"]
    assert patch["latest_installed"]["kb"] == "KB5087538"
    assert patch["months_behind"] == 3  # August 2026 is the newest update in the data
    assert doc["eol_status"] in ("supported", "extended")

    assert cli(store, "assets", "show", "ews-02", "-i", str(inventory)) == 0
    text = capsys.readouterr().out
    assert "missing KB5099538" in text and "KB5071544" not in text
    assert "knowledge data 1 of 2026-08-21" in text


def test_diff_names_the_new_package_and_port(store: Any, plant: Path, capsys: Any) -> None:
    capsys.readouterr()
    assert cli(store, "assets", "diff", "gw-01") == 0
    out = capsys.readouterr().out
    assert "+ package telnetd:amd64 0.17-44" in out
    assert "+ port tcp/0.0.0.0:23 (inetd)" in out
    assert cli(store, "assets", "diff", "gw-01", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["from"]["scan_id"] == "a" * 32 and doc["to"]["scan_id"] == "b" * 32
    assert doc["changes"]["packages"]["added"] == [{"name": "telnetd:amd64", "version": "0.17-44"}]
    # One record only: a clear one-line error, not a traceback.
    assert cli(store, "assets", "diff", "hmi-07") == 4
    err = capsys.readouterr().err
    assert err.startswith("ERROR: ") and "only one asset record" in err


def test_status_names_end_of_life_hosts_per_line(
    store: Any, plant: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # one table row per line
    capsys.readouterr()
    assert cli(store, "status", "--json") == 0
    lines = {(s["site"], s["line"]): s for s in json.loads(capsys.readouterr().out)}
    packaging = lines[("basel", "packaging-1")]
    assert packaging["end_of_life"] == ["hmi-07"]  # Windows 7
    assert packaging["extended_support"] == ["gw-01"]  # Debian 12: LTS only, by the data
    assert lines[("basel", "lab")]["end_of_life"] == []  # Windows 10 LTSC 2019
    assert cli(store, "status") == 0
    out = capsys.readouterr().out
    assert "end of life" in out and "1: hmi-07" in out
    assert "knowledge data of" in out and "2026-08-21" in out  # the title may wrap
