"""A campaign under faults: dead and hung hosts, host keys, passwords, timeouts, hostile trees.

Each test gets a fresh small fleet (`make_fleet`) so breaking hosts never affects the others.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import paramiko
import pytest
import yaml
from plantscan import TEMP_PREFIX, run_scan_cli

from orchestrator.connections import SSHConnection, SSHOptions, Target, Timeouts
from orchestrator.errors import StepFailed
from orchestrator.journal import Journal, leftovers
from orchestrator.session import HostSession
from tests.harness import PLANTOPS_PASSWORD, PLANTOPS_USER
from tests.store_logs import audit_entries


def _inventory(fleet, tmp_path: Path) -> Path:
    return fleet.write_inventory(tmp_path / "fleet.yml")


def _root_target(fleet, host, **changes) -> Target:
    """What a connection needs to reach `host` as root with the fleet's key."""
    fields = dict(
        name=host.name,
        address=host.address,
        user="root",
        private_key_file=str(fleet.client_key.private),
        python_interpreter=host.python,
    )
    return Target(**{**fields, **changes})


def _temp_dirs(host) -> list[str]:
    return [n for n in host.listdir("/tmp") if n.startswith(TEMP_PREFIX)]


def test_dead_and_hung_hosts_are_unreachable_while_others_finish(make_fleet, tmp_path):
    fleet = make_fleet(4)
    inventory = _inventory(fleet, tmp_path)
    ok, dead, hung, cut = list(fleet)
    dead.kill_sshd()
    hung.stop()  # TCP still accepted, no SSH banner ever comes
    cut.link_down()  # cable pulled: the TCP connect times out
    try:
        run = run_scan_cli(
            tmp_path / "out",
            "-i",
            str(inventory),
            "--type",
            "folders",
            "--path",
            "/srv/plant",
            "--connect-timeout",
            "2",
        )
    finally:
        hung.cont()
        cut.link_up()
    assert run.status(cut.name) == "unreachable"
    assert "timed out" in run.host_summary(cut.name)["message"]
    assert run.status(dead.name) == "unreachable"
    assert "refused" in run.host_summary(dead.name)["message"].lower()
    assert run.status(hung.name) == "unreachable"
    assert "banner" in run.host_summary(hung.name)["message"].lower()
    assert run.status(ok.name) in ("clean", "findings")
    assert run.log(ok.name)["cleanup"]["removed"] is True
    assert not (run.run_dir / f"{dead.name}.json").exists()
    assert run.code & 2  # a host was unreachable
    assert _temp_dirs(ok) == []


def test_unknown_host_key_is_refused_then_trusted_on_first_use(make_fleet, tmp_path):
    fleet = make_fleet(2)
    inventory = _inventory(fleet, tmp_path)
    known = tmp_path / "known_hosts"
    known.write_text("")
    args = ["-i", str(inventory), "--type", "asset", "-e", f"plantsweep_known_hosts={known}"]

    refused = run_scan_cli(tmp_path / "out1", *args)
    assert refused.code == 2
    for host in fleet:
        assert refused.status(host.name) == "unreachable"
        assert "not in" in refused.host_summary(host.name)["message"]
    assert known.read_text() == ""

    trusted = run_scan_cli(tmp_path / "out2", *args, "--trust-on-first-use")
    assert trusted.code == 0
    recorded = known.read_text()
    for host in fleet:
        assert host.address in recorded

    # Now the key is pinned: a different key under the same address is an attack, refused
    # even with --trust-on-first-use.
    other = paramiko.Ed25519Key.from_private_key_file(str(fleet.client_key.private))
    first = fleet.hosts[0]
    lines = [
        f"{first.address} ssh-ed25519 {other.get_base64()}"
        if line.startswith(first.address + " ")
        else line
        for line in recorded.splitlines()
    ]
    known.write_text("\n".join(lines) + "\n")
    changed = run_scan_cli(tmp_path / "out3", *args, "--trust-on-first-use")
    assert changed.status(first.name) == "unreachable"
    assert "HOST KEY CHANGED" in changed.host_summary(first.name)["message"]
    assert changed.status(fleet.hosts[1].name) == "clean"


def test_password_from_environment_and_wrong_password(make_fleet, tmp_path, monkeypatch):
    fleet = make_fleet(1)
    host = fleet.hosts[0]
    inventory = tmp_path / "pw.yml"
    entry = {
        "ansible_host": host.address,
        "ansible_user": PLANTOPS_USER,
        "ansible_password": "{{ lookup('env', 'PLANT_PW') }}",
        "ansible_python_interpreter": host.python,
        "plantsweep_known_hosts": str(fleet.known_hosts),
    }
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {host.name: entry}}}))
    args = ["-i", str(inventory), "--type", "folders", "--path", "/srv/plant"]

    monkeypatch.setenv("PLANT_PW", PLANTOPS_PASSWORD)
    good = run_scan_cli(tmp_path / "good", *args)
    assert good.status(host.name) in ("clean", "findings")
    assert good.log(host.name)["cleanup"]["removed"] is True

    monkeypatch.setenv("PLANT_PW", "not-the-password")
    bad = run_scan_cli(tmp_path / "bad", *args)
    assert bad.status(host.name) == "unreachable"
    message = bad.host_summary(host.name)["message"]
    assert "authentication failed" in message and "not-the-password" not in message
    assert "not-the-password" not in (bad.run_dir / "run.json").read_text()


def test_deadline_gives_a_partial_log_reported_as_failed(make_fleet, tmp_path):
    fleet = make_fleet(1, plant=False)
    host = fleet.hosts[0]
    inventory = _inventory(fleet, tmp_path)
    # The scanner's deadline is the scan timeout minus 10 s, at least 1 s; a quick scan of
    # /usr/bin and friends with YARA on every file, one thread at half a CPU and no verdict
    # cache, takes several seconds here.
    run = run_scan_cli(
        tmp_path / "out",
        *("-i", str(inventory), "--scan-timeout", "5", "--all-types", "--low-impact"),
        "--no-cache",
    )
    assert run.status(host.name) == "failed"
    assert "incomplete" in run.host_summary(host.name)["message"]
    log = run.log(host.name)
    assert log["complete"] is False
    assert log["cleanup"]["removed"] is True
    assert run.code == 2
    assert _temp_dirs(host) == []


def test_hostile_tree_over_ssh_does_not_hang_or_crash(make_fleet, tmp_path):
    fleet = make_fleet(1, plant=False)
    host = fleet.hosts[0]
    hostile = "/srv/plant/hostile"
    host.exec(["mkdir", "-p", f"{hostile}/loop"])
    host.exec(["mkfifo", f"{hostile}/pipe"])
    host.exec(["ln", "-s", "..", f"{hostile}/loop/up"])
    host.exec(["mknod", f"{hostile}/null", "c", "1", "3"])
    host.exec(["python3", "-c", f"open(b'{hostile}/bad-\\xff-name', 'w').write('x')"])
    fleet.plant_files(host.name, {f"{hostile}/big.bin": b"\0" * 4096})
    inventory = _inventory(fleet, tmp_path)
    run = run_scan_cli(
        tmp_path / "out",
        "-i",
        str(inventory),
        "--type",
        "folders",
        "--path",
        hostile,
        "--max-size",
        "1024",
    )
    assert run.status(host.name) == "clean", run.host_summary(host.name)
    skipped = run.log(host.name)["stats"]["skipped"]
    assert skipped.get("symlink") == 1
    assert skipped.get("fifo") == 1
    assert skipped.get("char-device") == 1
    assert skipped.get("too-large") == 1
    assert run.log(host.name)["stats"]["files_scanned"] == 1  # the non-UTF-8 name


def test_cleanup_kills_leftover_processes_and_reports_residue(make_fleet):
    fleet = make_fleet(1, plant=False)
    host = fleet.hosts[0]
    target = _root_target(fleet, host)
    timeouts = Timeouts(connect=3, command=5)
    conn = SSHConnection(target, SSHOptions(known_hosts=fleet.known_hosts), timeouts)
    with HostSession(conn, target, timeouts) as session:
        assert session.facts is not None
        temp_dir = session.facts.temp_dir
        # A process still running from the temp dir (as a scanner past its timeout would be),
        # and a file written outside it.
        session.run(
            f"cd {temp_dir} && (nohup {host.python} -c 'import time; time.sleep(300)' "
            f"{temp_dir}/x >/dev/null 2>&1 &) && touch /tmp/stray-file"
        )
        pids = _pids_mentioning(temp_dir)
        assert pids, "the background process should be running"
    proof = session.proof
    assert proof is not None
    assert proof.removed is True
    assert proof.residue == ["/tmp/stray-file"]
    assert not proof.clean
    assert _pids_mentioning(temp_dir) == []
    assert _temp_dirs(host) == []


def _pids_mentioning(text: str, also: bytes = b"sleep") -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline and also in cmdline:
                found.append(int(entry))
    return found


def test_local_connection_scans_a_mounted_folder(tmp_path):
    """The gate: a vendor's USB stick mounted on the controller, scanned with `local`."""
    from tests.harness.files import EICAR

    stick = tmp_path / "usb-stick"
    (stick / "tools").mkdir(parents=True)
    (stick / "tools" / "eicar.com").write_bytes(EICAR)
    (stick / "readme.txt").write_text("vendor tools\n")
    host_tmp = tmp_path / "controller-tmp"
    host_tmp.mkdir()
    inventory = tmp_path / "gate.ini"
    inventory.write_text(
        f"[gate]\nvendor-laptop ansible_connection=local ansible_remote_tmp={host_tmp}\n"
    )
    run = run_scan_cli(
        tmp_path / "out", "-i", str(inventory), "--type", "folders", "--path", str(stick)
    )
    assert run.code == 1
    log = run.log("vendor-laptop")
    # The shipped patterns find EICAR twice (one finding): by its YARA rule and its SHA-256.
    eicar = str(stick / "tools" / "eicar.com")
    assert sorted((f["path"], m["engine"]) for f in log["findings"] for m in f["matches"]) == [
        (eicar, "hash"),
        (eicar, "yara"),
    ]
    assert log["cleanup"]["removed"] is True and log["cleanup"]["residue"] == []
    assert list(host_tmp.iterdir()) == []


def test_a_running_command_stops_when_cancelled(make_fleet):
    fleet = make_fleet(1, plant=False)
    host = fleet.hosts[0]
    target = _root_target(fleet, host)
    timeouts = Timeouts(connect=3, command=5)
    cancel = threading.Event()
    conn = SSHConnection(target, SSHOptions(known_hosts=fleet.known_hosts), timeouts)
    with HostSession(conn, target, timeouts, cancel) as session:
        assert session.facts is not None
        temp_dir = session.facts.temp_dir
        threading.Timer(0.5, cancel.set).start()
        with pytest.raises(StepFailed, match="cancelled"):
            session.run(f"exec {host.python} -c 'import time; time.sleep(300)' {temp_dir}", 600)
    assert session.proof is not None and session.proof.clean
    assert _pids_mentioning(temp_dir) == []


def test_ctrl_c_stops_the_campaign_cleans_up_and_keeps_what_was_done(make_fleet, tmp_path):
    fleet = make_fleet(3, plant=False)
    inventory = _inventory(fleet, tmp_path)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "scan",
            "-i",
            str(inventory),
            "--out",
            str(out),
            "--type",
            "quick",
            "--forks",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # one plain line per host step (not a TTY)
        if line.startswith(f"[{fleet.hosts[0].name}] scan"):
            break
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    summary = json.loads(next(out.glob("*/run.json")).read_text())
    assert summary["interrupted"] is True
    assert [h["host"] for h in summary["hosts"]] == [fleet.hosts[0].name]
    assert summary["hosts"][0]["status"] == "failed"
    assert "cancelled" in summary["hosts"][0]["message"]
    assert summary["not_started"] == [h.name for h in fleet.hosts[1:]]
    cleanup = summary["hosts"][0]["cleanup"]
    assert cleanup["removed"] is True and cleanup["temp_dir"].startswith("/tmp/" + TEMP_PREFIX)
    assert _pids_mentioning(cleanup["temp_dir"], also=b"") == []  # the scanner was stopped
    for host in fleet:
        assert _temp_dirs(host) == []


def test_a_killed_run_leaves_temp_dirs_that_cleanup_removes(make_fleet, tmp_path):
    fleet = make_fleet(3, plant=False)
    inventory = _inventory(fleet, tmp_path)
    env = dict(os.environ, PLANTSWEEP_HOME=str(tmp_path / "home"))  # a journal of its own
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "scan",
            "-i",
            str(inventory),
            "--type",
            "quick",
            "--out",
            str(tmp_path / "out"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    run_id, scanning = None, set()
    for line in proc.stderr:
        if line.startswith("quick scan, run "):
            run_id = line.split()[3].rstrip(":")
        if line.rstrip().endswith("] scan"):
            scanning.add(line[1 : line.index("]")])
        if len(scanning) == len(fleet):
            break
    proc.kill()  # SIGKILL: no cleanup of any kind runs in the controller
    proc.wait()
    assert run_id is not None
    left = {h.name: _temp_dirs(h) for h in fleet}
    assert all(len(dirs) == 1 for dirs in left.values()), left

    cleanup = subprocess.run(
        [sys.executable, "-m", "orchestrator", "cleanup", "--run", run_id],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert "3 removed, 0 not removed" in cleanup.stdout
    for host in fleet:
        assert _temp_dirs(host) == []
        assert _pids_mentioning(f"/tmp/{left[host.name][0]}", also=b"") == []
    cleaned = audit_entries("cleanup", f"sqlite:///{tmp_path / 'home' / 'store.sqlite'}")
    assert sorted(e["what"]["new"]["host"] for e in cleaned) == sorted(h.name for h in fleet)
    assert all(e["what"]["object_id"] == run_id and e["what"]["new"]["removed"] for e in cleaned)
    again = subprocess.run(
        [sys.executable, "-m", "orchestrator", "cleanup", "--all"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert again.returncode == 0 and "0 removed, 0 not removed" in again.stdout


def test_journal_records_every_temp_dir_and_a_failed_probe_leaves_nothing(make_fleet, tmp_path):
    fleet = make_fleet(1, plant=False)
    host = fleet.hosts[0]
    journal = Journal.open(tmp_path, "run-1", ["inv.yml"])
    timeouts = Timeouts(connect=3, command=5)
    base = _root_target(fleet, host)
    options = SSHOptions(known_hosts=fleet.known_hosts)
    with HostSession(SSHConnection(base, options, timeouts), base, timeouts, journal=journal) as s:
        assert s.facts is not None
        assert leftovers(journal.path)[0].temp_dir == s.facts.temp_dir  # recorded while it exists
    assert leftovers(journal.path) == []  # marked removed after the proof

    broken = _root_target(fleet, host, python_interpreter="/nonexistent/python3")
    with (
        pytest.raises(StepFailed, match="no Python 3 interpreter"),
        HostSession(SSHConnection(broken, options, timeouts), broken, timeouts, journal=journal),
    ):
        pass
    assert leftovers(journal.path) == []
    events = [json.loads(line)["event"] for line in journal.path.read_text().splitlines()]
    assert events == ["run", "create", "removed", "create", "removed"]
    # A SIGKILL can cut the last line: the journal still reads.
    with journal.path.open("a") as fh:
        fh.write('{"event": "create", "host": "x", "tar')
    assert leftovers(journal.path) == []


def test_shell_cleanup_proves_residue_and_old_pythons_are_refused(make_fleet):
    fleet = make_fleet(1, plant=False)
    host = fleet.hosts[0]
    timeouts = Timeouts(connect=3, command=5)
    options = SSHOptions(known_hosts=fleet.known_hosts)
    base = _root_target(fleet, host)
    with HostSession(SSHConnection(base, options, timeouts), base, timeouts) as session:
        # Straight on the connection: the session believes nothing can still be running,
        # so its cleanup takes the shell-only path; the proof must still see the stray file.
        session.conn.run("touch /root/stray-in-home", 5)
    assert session.may_be_running is False
    assert session.proof is not None
    assert session.proof.removed and session.proof.residue == ["/root/stray-in-home"]
    assert _temp_dirs(host) == []

    old = _root_target(fleet, host, python_interpreter="/opt/pythons/2.7.18/bin/python2.7")
    with (
        pytest.raises(StepFailed, match=r"Python 2\.7\.18: 3\.6\+ needed"),
        HostSession(SSHConnection(old, options, timeouts), old, timeouts),
    ):
        pass
    assert _temp_dirs(host) == []
