"""The shipped playbooks, end to end on the simulated plant, and `plantsweep run` behaviour:
check mode, serial with max_fail_percentage, tags, errors naming file and line."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.playbook.diff import asset_diff
from tests.harness import files as planted

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOKS = ROOT / "playbooks"
QUICK_PREFIXES = ("/tmp/", "/var/tmp/", "/home/operator/Downloads/", "/root/.local/bin/")
PY36_HOST = "plant-host-02"


def run_playbook(out: Path, playbook: Path, *args: str) -> tuple[int, Path, dict]:
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.iterdir())
    code = main(["run", str(playbook), "--out", str(out), *args])
    new = sorted(set(out.iterdir()) - before)
    assert len(new) == 1, f"one run folder expected, got {new} (exit {code})"
    return code, new[0], json.loads((new[0] / "run.json").read_text())


def temp_dirs(host) -> list[str]:
    return [n for n in host.listdir("/tmp") if n.startswith("plantsweep-")]


@pytest.fixture(scope="module")
def plant_inventory(plant, tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("pb")
    return plant.write_inventory(
        base / "plant.yml",
        groups={"packaging_line_1": ["plant-host-01", "plant-host-02", "plant-host-03"]},
    )


def test_downtime_scan_playbook(plant, plant_inventory, wheel_dir, tmp_path):
    code, run_dir, summary = run_playbook(
        tmp_path, PLAYBOOKS / "downtime-scan.yml", "-i", str(plant_inventory),
        "--wheel-dir", str(wheel_dir),
    )  # fmt: skip
    assert code == 1  # the planted EICAR files
    for host in plant:
        stats = next(h for h in summary["hosts"] if h["host"] == host.name)
        assert (stats["ok"], stats["failed"], stats["cleanup"]) == (3, 0, "verified")
        asset = json.loads((run_dir / f"{host.name}.asset.json").read_text())
        assert asset["scan_type"] == "asset" and asset["asset"]["hostname"] == host.name
        log = json.loads((run_dir / f"{host.name}.json").read_text())
        assert log["scan_type"] == "quick" and log["cleanup"]["removed"] is True
        # The shipped patterns know EICAR only: by hash everywhere, by YARA where a wheel exists.
        eicar = {
            f.path for f in host.planted if f.kind == "eicar" and f.path.startswith(QUICK_PREFIXES)
        }
        engines = {"hash"} if host.name == PY36_HOST else {"hash", "yara"}
        assert {(f["path"], m["engine"]) for f in log["findings"] for m in f["matches"]} == {
            (p, e) for p in eicar for e in engines
        }
        assert stats["findings"] == len(log["findings"])
        report = (run_dir / "reports" / f"{host.name}.md").read_text()
        assert f"Inspection record: {host.name}" in report
        assert f"| findings | {len(log['findings'])} |" in report
        if log["findings"]:  # a well-formed table: no blank line between header and rows
            assert "|---|---|---|---|\n| `" in report
        assert temp_dirs(host) == []
    assert any(f.kind == "eicar" for h in plant for f in h.planted)  # not vacuous


def test_asset_inventory_playbook(plant, plant_inventory, tmp_path):
    code, run_dir, summary = run_playbook(
        tmp_path, PLAYBOOKS / "asset-inventory.yml", "-i", str(plant_inventory)
    )
    assert code == 0
    for host in plant:
        report = (run_dir / "assets" / f"{host.name}.md").read_text()
        assert f"Asset record: {host.name}" in report and "Debian" in report
        assert host.address in report
        # Assessed offline: Debian 12 is past its regular security support in the shipped data.
        assert "- end of life: extended (end of security support 2026-07-11)" in report
        assert "assessed with knowledge data 1 of 2026-08-21" in report
        assert "tcp/22 (sshd)" in report
        assert not (run_dir / f"{host.name}.json").exists()  # no file scan
        assert temp_dirs(host) == []


def test_asset_facts_carry_the_assessment_for_conditions(make_fleet, tmp_path):
    fleet = make_fleet(1, plant=False)
    inventory = fleet.write_inventory(tmp_path / "inv.yml")
    playbook = tmp_path / "eol.yml"
    playbook.write_text(
        "- hosts: all\n  tasks:\n    - asset_info:\n"
        "    - name: only on end-of-life hosts\n      command: echo eol\n"
        "      when: asset.os.eol_status == 'eol'\n"
        "    - assert:\n        that: \"asset.os.eol_status == 'extended'\"\n"
        "    - assert:\n        that: \"asset.assessment.risk.level == 'medium'\"\n"
    )
    code, _, summary = run_playbook(tmp_path / "o", playbook, "-i", str(inventory))
    assert code == 0, summary
    assert summary["hosts"][0]["ok"] == 3 and summary["hosts"][0]["skipped"] == 1


def test_check_mode_leaves_hosts_untouched(plant, plant_inventory, tmp_path, monkeypatch):
    monkeypatch.setenv("PLANTSWEEP_HOME", str(tmp_path / "home"))
    before = {h.name: (h.listdir("/tmp"), h.listdir("/root")) for h in plant}
    code, run_dir, summary = run_playbook(
        tmp_path / "out", PLAYBOOKS / "downtime-scan.yml", "-i", str(plant_inventory), "--check"
    )
    assert code == 0
    assert summary["check"] is True
    assert {h.name: (h.listdir("/tmp"), h.listdir("/root")) for h in plant} == before
    assert not (tmp_path / "home" / "journal").exists()  # not one temp dir was even planned
    assert all(h["unreachable"] == 0 and h["cleanup"] == "not needed" for h in summary["hosts"])
    assert [p.name for p in run_dir.glob("*.json")] == ["run.json"]  # no log: nothing ran


def test_serial_campaign_stops_at_the_first_failed_host(make_fleet, tmp_path):
    fleet = make_fleet(3, plant=False)
    inventory = fleet.write_inventory(
        tmp_path / "line.yml", groups={"packaging_line_1": [h.name for h in fleet]}
    )
    first, broken, never = fleet.hosts
    broken.kill_sshd()
    code, run_dir, summary = run_playbook(
        tmp_path / "out", PLAYBOOKS / "line-by-line.yml", "-i", str(inventory),
        "--connect-timeout", "2",
    )  # fmt: skip
    hosts = {h["host"]: h for h in summary["hosts"]}
    assert hosts[first.name]["status"] == "clean" and hosts[first.name]["ok"] == 3
    assert hosts[broken.name]["status"] == "unreachable"
    assert never.name not in hosts  # the campaign stopped before the third host
    assert summary["aborted"] is True
    assert code == 2
    assert temp_dirs(first) == [] and temp_dirs(never) == []


def test_tags_select_tasks_and_failures_stop_the_host(make_fleet, tmp_path):
    fleet = make_fleet(1, plant=False)
    host = fleet.hosts[0]
    inventory = fleet.write_inventory(tmp_path / "inv.yml")
    playbook = tmp_path / "checks.yml"
    playbook.write_text(
        """
- name: Checks
  hosts: all
  tasks:
    - name: uname
      command: uname -s
      register: uname
      tags: [info]
    - name: kernel is Linux
      assert:
        that: uname.stdout_lines[0] == 'Linux'
      tags: [info]
    - name: a failing check, ignored
      command: "false"
      ignore_errors: true
    - name: skipped by its condition
      command: echo never
      when: uname.rc != 0
    - name: a failing check
      command: "exit 3"
    - name: never reached
      command: echo unreachable
"""
    )
    code, _, summary = run_playbook(tmp_path / "a", playbook, "-i", str(inventory))
    stats = summary["hosts"][0]
    assert (stats["ok"], stats["ignored"], stats["skipped"], stats["failed"]) == (2, 1, 1, 1)
    assert "rc 3" in stats["message"]
    assert code == 2
    code, _, summary = run_playbook(
        tmp_path / "b", playbook, "-i", str(inventory), "--tags", "info"
    )
    stats = summary["hosts"][0]
    assert (stats["ok"], stats["failed"], code) == (2, 0, 0)
    assert temp_dirs(host) == []


@pytest.mark.parametrize(
    "text, line, needle",
    [
        ("- hosts: all\n  tasks:\n    - scna: {type: quick}\n", 3, "unknown action 'scna'"),
        ("- hosts: all\n  tasks:\n    - scan: {type: quick\n", 4, ""),
        ("- hosts: nosuchgroup\n  tasks:\n    - asset_info:\n", 1, "nosuchgroup"),
        ("- hosts: all\n  tasks:\n    - command: 'echo {{ x'\n", 3, ""),
    ],
)
def test_bad_playbooks_name_file_and_line(tmp_path, text: str, line: int, needle: str):
    inventory = tmp_path / "inv.ini"
    inventory.write_text("[plant]\nh1 ansible_host=10.203.99.1\n")
    playbook = tmp_path / "bad.yml"
    playbook.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", str(playbook), "-i", str(inventory)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [x for x in proc.stderr.splitlines() if x.startswith("ERROR: ")]
    assert len(errors) == 1
    assert errors[0].startswith(f"ERROR: {playbook}:{line}:"), errors[0]
    assert needle in errors[0]


def test_undefined_variable_fails_the_task_naming_file_and_line(make_fleet, tmp_path):
    fleet = make_fleet(1, plant=False)
    inventory = fleet.write_inventory(tmp_path / "inv.yml")
    playbook = tmp_path / "undef.yml"
    playbook.write_text("- hosts: all\n  tasks:\n    - command: 'echo {{ no_such_var }}'\n")
    code, _, summary = run_playbook(tmp_path / "o", playbook, "-i", str(inventory))
    assert code == 2
    message = summary["hosts"][0]["message"]
    assert message.startswith(f"{playbook}:3:") and "no_such_var" in message


def test_json_events_and_a_hung_host(make_fleet, tmp_path):
    fleet = make_fleet(2, plant=False)
    inventory = fleet.write_inventory(tmp_path / "inv.yml")
    good, hung = fleet.hosts
    hung.stop()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", "run", str(PLAYBOOKS / "asset-inventory.yml"),
             "-i", str(inventory), "--json", "--out", str(tmp_path / "out"),
             "--connect-timeout", "2"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        hung.cont()
    events = [json.loads(line) for line in proc.stdout.splitlines()]  # every line is JSON
    assert [e["event"] for e in events][0] == "play" and events[-1]["event"] == "recap"
    tasks = [(e["host"], e["status"]) for e in events if e["event"] == "task"]
    assert tasks.count((good.name, "ok")) == 2
    assert (hung.name, "unreachable") in tasks
    assert events[-1]["exit_code"] == 2 == proc.returncode
    recap = {h["host"]: h for h in events[-1]["hosts"]}
    assert recap[good.name]["status"] == "clean" and recap[hung.name]["status"] == "unreachable"
    assert "banner" in recap[hung.name]["message"]


def test_step_asks_once_per_task_for_all_hosts(make_fleet, tmp_path):
    fleet = make_fleet(2, plant=False)
    inventory = fleet.write_inventory(tmp_path / "inv.yml")
    playbook = tmp_path / "steps.yml"
    playbook.write_text(
        "- hosts: all\n  tasks:\n"
        + "".join(f"    - name: task {n}\n      command: echo {n}\n" for n in "abcd")
    )
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", str(playbook), "-i", str(inventory),
         "--step", "--json", "--out", str(tmp_path / "out")],
        input="y\nn\nc\n", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("Perform task:") == 3  # a, b, then c: (c)ontinue stops asking
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    for host in fleet:
        statuses = {e["task"]: e["status"] for e in events if e.get("host") == host.name}
        assert statuses == {"task a": "ok", "task b": "skipped", "task c": "ok", "task d": "ok"}


def _wait_for_scans(fleet, timeout: float = 60.0) -> None:
    """Until every host has a temp dir in which the scanner has unpacked its patterns."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        started = 0
        for host in fleet:
            dirs = temp_dirs(host)
            if dirs and "patterns" in host.listdir(f"/tmp/{dirs[0]}"):
                started += 1
        if started == len(fleet):
            return
        time.sleep(0.05)
    raise AssertionError("the scans did not start")


def test_killed_and_interrupted_playbook_runs(make_fleet, tmp_path):
    fleet = make_fleet(2, plant=False)
    inventory = fleet.write_inventory(tmp_path / "inv.yml")
    home = tmp_path / "home"
    env = dict(os.environ, PLANTSWEEP_HOME=str(home))
    playbook = str(PLAYBOOKS / "downtime-scan.yml")
    argv = [sys.executable, "-m", "orchestrator", "run", playbook, "-i", str(inventory),
            "--out", str(tmp_path / "out"), "--skip-tags", "asset"]  # fmt: skip

    # SIGKILL mid-scan: nothing in the controller cleans up; the journal knows what is left.
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_scans(fleet)
    proc.kill()
    proc.wait()
    assert all(len(temp_dirs(h)) == 1 for h in fleet)
    run_id = next((home / "journal").glob("*.jsonl")).stem
    cleanup = subprocess.run(
        [sys.executable, "-m", "orchestrator", "cleanup", "--run", run_id],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert cleanup.returncode == 0 and "2 removed, 0 not removed" in cleanup.stdout
    assert all(temp_dirs(h) == [] for h in fleet)

    # Ctrl-C mid-scan: running scans stop, temp dirs are removed, the recap is written.
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for_scans(fleet)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "PLAY RECAP" in stdout
    summary = json.loads(next((tmp_path / "out").glob("*/run.json")).read_text())
    assert summary["interrupted"] is True
    assert all(h["cleanup"] == "verified" for h in summary["hosts"])
    assert all(temp_dirs(h) == [] for h in fleet)


def test_diff_shows_what_changed_since_the_previous_run(make_fleet, wheel_dir, tmp_path):
    fleet = make_fleet(1, plant=False)
    host = fleet.hosts[0]
    inventory = fleet.write_inventory(tmp_path / "inv.yml")
    playbook = tmp_path / "diff.yml"
    playbook.write_text(
        "- hosts: all\n  tasks:\n    - asset_info:\n"
        "    - scan: {type: folders, paths: [/srv/plant]}\n"
    )
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "orchestrator", "run", str(playbook), "-i", str(inventory),
            "--out", str(out), "--diff", "--json", "--wheel-dir", str(wheel_dir)]  # fmt: skip

    def diffs() -> dict[str, list[str]]:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert proc.returncode in (0, 1), proc.stderr
        events = [json.loads(line) for line in proc.stdout.splitlines()]
        return {e["task"]: e["changes"] for e in events if e["event"] == "diff"}

    assert diffs() == {}  # the first run has nothing to compare with
    fleet.plant_files(host.name, {"/srv/plant/new/eicar.com": planted.EICAR})
    second = diffs()
    assert second["asset_info"] == []  # same packages, same OS
    assert second["scan"] == [
        "+ finding /srv/plant/new/eicar.com (EICAR_Test_File)",
        f"+ finding /srv/plant/new/eicar.com (sha256:{hashlib.sha256(planted.EICAR).hexdigest()})",
    ]
    fleet.remove_planted(host.name, "/srv/plant/new/eicar.com")
    assert [line[0] for line in diffs()["scan"]] == ["-", "-"]


def test_asset_diff_lists_package_and_os_changes():
    def log(os_name: str, packages: dict[str, str]) -> dict:
        items = [{"name": n, "version": v, "arch": "amd64"} for n, v in packages.items()]
        return {"asset": {"os": {"pretty_name": os_name}, "packages": {"items": items}}}

    before = log("Debian 11", {"openssh-server": "1:8.4", "telnetd": "0.17"})
    after = log("Debian 12", {"openssh-server": "1:9.2", "yara": "4.2"})
    assert asset_diff(before, after) == [
        "~ os Debian 11 -> Debian 12",
        "+ package yara:amd64 4.2",
        "- package telnetd:amd64 0.17",
        "~ package openssh-server:amd64 1:8.4 -> 1:9.2",
    ]
