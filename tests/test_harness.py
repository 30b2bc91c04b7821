"""The simulated plant itself: SSH, isolation, interpreters, planted files, faults, teardown."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import paramiko
import pytest
import yaml

from tests.harness import (
    EICAR,
    HASH_IOC_SHA256,
    PLANTOPS_PASSWORD,
    PLANTOPS_USER,
    TEST_HASH_IOCS,
    TEST_YARA_RULES,
    Fleet,
    Host,
)

ROOT = Path(__file__).resolve().parents[1]


def ssh_run(host: Host, command: str, user: str = "root") -> str:
    client = host.ssh(user)
    try:
        _, out, err = client.exec_command(command, timeout=10)
        status = out.channel.recv_exit_status()
        text = out.read().decode()
        assert status == 0, f"{host.name}: {command!r} -> {status}: {err.read().decode()}"
        return text
    finally:
        client.close()


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


def netns_names() -> list[str]:
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]


# -- the session fleet ----------------------------------------------------------------


def test_each_host_accepts_strict_ssh_and_has_its_own_hostname(plant: Fleet) -> None:
    assert len(plant) == 5
    root_hostname = socket.gethostname()
    for h in plant:
        out = ssh_run(h, "hostname; cat /etc/hostname; id -u")
        assert out.split() == [h.name, h.name, "0"]
    assert socket.gethostname() == root_hostname  # never leaks to the root namespace
    assert root_hostname not in {h.name for h in plant}


def test_host_key_verification_is_strict(plant: Fleet, tmp_path: Path) -> None:
    h1, h2 = plant.hosts[0], plant.hosts[1]
    # Unknown host: RejectPolicy refuses.
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        client.connect(
            h1.address,
            username="root",
            key_filename=str(plant.client_key.private),
            look_for_keys=False,
            allow_agent=False,
            timeout=3,
            banner_timeout=2,
        )
    client.close()
    # Host 2's key recorded for host 1's address: a mismatch is detected.
    wrong = tmp_path / "known_hosts"
    line2 = next(x for x in plant.known_hosts.read_text().splitlines() if x.startswith(h2.address))
    wrong.write_text(f"{h1.address} {' '.join(line2.split()[1:])}\n")
    client = paramiko.SSHClient()
    client.load_host_keys(str(wrong))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    with pytest.raises(paramiko.BadHostKeyException):
        client.connect(
            h1.address,
            username="root",
            key_filename=str(plant.client_key.private),
            look_for_keys=False,
            allow_agent=False,
            timeout=3,
            banner_timeout=2,
        )
    client.close()
    # known_hosts has every host under its address and its name.
    names = {line.split()[0] for line in plant.known_hosts.read_text().splitlines()}
    assert names == {f"{h.address},{h.name}" for h in plant}


def test_tmp_is_private_per_host(plant: Fleet) -> None:
    h1, h2 = plant.hosts[0], plant.hosts[1]
    name = f"private-{uuid.uuid4().hex}"
    ssh_run(h1, f"echo secret > /tmp/{name}")
    try:
        assert name in h1.listdir("/tmp")
        assert name in h1.exec(["ls", "-A", "/tmp"]).stdout.decode().split()
        assert name not in ssh_run(h2, "ls -A /tmp").split()
        assert name not in h2.listdir("/tmp")
        assert not Path("/tmp", name).exists()
    finally:
        ssh_run(h1, f"rm -f /tmp/{name}")
    assert name not in h1.listdir("/tmp")


def test_private_root_and_home_map_to_host_dirs(plant: Fleet) -> None:
    h = plant.hosts[3]
    # What the host sees in /home is its own folder in the state dir, and only that.
    assert sorted(ssh_run(h, "ls -A /home").split()) == sorted(
        os.listdir(plant.host_dir(h.name, "/home"))
    )
    assert plant.host_dir(h.name, "/home") == h.dir / "home"
    assert plant.host_dir(h.name, "/srv/plant") == h.dir / "srv" / "plant"
    # /root is private: the machine's pyenv-initialising .bashrc is not there.
    assert ".pyenv" not in ssh_run(h, "ls -A /root").split()
    assert Path("/root/.pyenv").is_dir()  # ...while the real one is untouched
    assert ssh_run(h, "command -v python3").strip() == "/usr/bin/python3"


@pytest.mark.parametrize(
    ("index", "version"), [(0, (3, 11)), (1, (3, 6)), (2, (3, 8)), (3, (3, 11))]
)
def test_each_host_runs_its_interpreter(plant: Fleet, index: int, version: tuple[int, int]) -> None:
    h = plant.hosts[index]
    code = "import sys, hashlib, json, ssl; print(sys.version_info[0], sys.version_info[1])"
    out = ssh_run(h, f"{h.python} -c '{code}'")
    assert tuple(int(x) for x in out.split()) == version
    if version != (3, 11):
        assert h.python.startswith("/opt/pythons/")
    else:
        assert h.python == "/usr/bin/python3"


def test_planted_files_are_on_the_hosts_as_recorded(plant: Fleet) -> None:
    import yara

    rules = yara.compile(source=TEST_YARA_RULES)
    kinds_seen: set[str] = set()
    for h in plant:
        assert h.planted, h.name
        # What the host itself sees (over SSH) is what the manifest says.
        out = ssh_run(h, "sha256sum " + " ".join(pf.path for pf in h.planted))
        seen = {path: digest for digest, path in (line.split() for line in out.splitlines())}
        assert seen == {pf.path: pf.sha256 for pf in h.planted}
        for pf in h.planted:
            data = h.path(pf.path).read_bytes()
            matched = {f"yara:{m.rule}" for m in rules.match(data=data)}
            if hashlib.sha256(data).hexdigest() in TEST_HASH_IOCS:
                matched.add(f"hash:{TEST_HASH_IOCS[pf.sha256]}")
            # Exactly the recorded indicator: clean files match nothing.
            assert matched == ({pf.indicator} if pf.indicator else set()), pf
            kinds_seen.add(pf.kind)
    assert {"eicar", "yara", "hash", "clean"} <= kinds_seen
    # Odd hosts carry EICAR in the operator's Downloads; host 4 is clean.
    eicar = "/home/operator/Downloads/eicar.com"
    assert [h.name for h in plant if any(p.path == eicar for p in h.planted)] == [
        "plant-host-01",
        "plant-host-03",
        "plant-host-05",
    ]
    assert plant["plant-host-01"].path(eicar).read_bytes() == EICAR
    assert plant.expected_findings("plant-host-04") == []
    assert any(p.sha256 == HASH_IOC_SHA256 for p in plant.expected_findings("plant-host-03"))
    manifest = json.loads((plant.state_dir / "planted.json").read_text())
    assert sorted(manifest) == [h.name for h in plant]


def test_plant_files_helper(plant: Fleet) -> None:
    h = plant.hosts[4]
    [pf] = plant.plant_files(h.name, {"tmp/extra/x.bin": b"abc"}, kind="custom")
    try:
        assert pf.path == "/tmp/extra/x.bin"
        assert ssh_run(h, "cat /tmp/extra/x.bin") == "abc"
        assert pf in h.planted
    finally:
        plant.remove_planted(h.name, "/tmp/extra/x.bin")
    assert pf not in h.planted
    assert "x.bin" not in ssh_run(h, "ls -A /tmp/extra").split()


def test_plantops_password_login(plant: Fleet) -> None:
    h = plant.hosts[0]
    client = h.ssh(PLANTOPS_USER, password=PLANTOPS_PASSWORD)
    try:
        _, out, _ = client.exec_command("id -un; echo $HOME", timeout=5)
        assert out.read().decode().split() == [PLANTOPS_USER, f"/home/{PLANTOPS_USER}"]
    finally:
        client.close()
    with pytest.raises(paramiko.AuthenticationException):
        h.ssh(PLANTOPS_USER, password="wrong").close()
    with pytest.raises(paramiko.AuthenticationException):  # root is key-only
        h.ssh("root", password=PLANTOPS_PASSWORD).close()
    assert ssh_run(h, "id -un", user=PLANTOPS_USER).strip() == PLANTOPS_USER  # key works too


def test_inventory(plant: Fleet, tmp_path: Path) -> None:
    path = plant.write_inventory(
        tmp_path / "inv.yml",
        groups={"hmi": ["plant-host-01", "plant-host-02"], "gateways": ["plant-host-03"]},
    )
    data = yaml.safe_load(path.read_text())
    children = data["all"]["children"]
    assert set(children) == {"hmi", "gateways", "ungrouped"}
    assert set(children["ungrouped"]["hosts"]) == {"plant-host-04", "plant-host-05"}
    h2 = children["hmi"]["hosts"]["plant-host-02"]
    assert h2["ansible_host"] == plant["plant-host-02"].address
    assert h2["ansible_python_interpreter"].startswith("/opt/pythons/3.6.")
    assert h2["ansible_user"] == "root"
    assert Path(h2["ansible_ssh_private_key_file"]) == plant.client_key.private
    assert {"site", "area", "line", "criticality"} <= set(h2)
    assert data["all"]["vars"]["plantsweep_known_hosts"] == str(plant.known_hosts)
    assert children["hmi"]["hosts"]["plant-host-01"]["criticality"] == "mission-critical"


def test_safety_route_while_up(plant: Fleet) -> None:
    routes = ip("route", "show", "type", "unreachable")
    assert plant.network in routes
    # A fleet address goes over the bridge, never out of the machine's uplink.
    for h in plant:
        assert f"dev psw-{plant.fleet_id} " in ip("route", "get", h.address)
    # An unused address in the range stays on the bridge too (ARP fails locally).
    unused = plant.network.replace(".0/24", ".200")
    assert f"dev psw-{plant.fleet_id} " in ip("route", "get", unused)


# -- fault injection (fresh fleets) ---------------------------------------------------


def test_stopped_sshd_times_out_quickly(make_fleet: Callable[..., Fleet]) -> None:
    fleet = make_fleet(2, plant=False)
    hung, ok = fleet.hosts
    hung.stop()
    t0 = time.monotonic()
    with pytest.raises(paramiko.SSHException, match="banner"):
        hung.ssh(timeout=3, banner_timeout=2)  # timeout > banner_timeout: see Host.ssh
    assert time.monotonic() - t0 < 5
    assert ssh_run(ok, "hostname").strip() == ok.name  # the other host is unaffected
    hung.cont()
    assert ssh_run(hung, "hostname").strip() == hung.name


def test_killed_sshd_refuses_and_restarts(make_fleet: Callable[..., Fleet]) -> None:
    fleet = make_fleet(1, plant=False)
    h = fleet.hosts[0]
    ssh_run(h, "touch /tmp/survives-restart")
    old_pid = h.sshd_pid
    h.kill_sshd()
    assert h.sshd_pid is None
    assert old_pid is not None and not Path(f"/proc/{old_pid}").exists()
    t0 = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((h.address, 22), timeout=2).close()
    assert time.monotonic() - t0 < 1
    assert h.exec(["hostname"]).stdout.decode().strip() == h.name  # host alive without sshd
    h.start_sshd()
    assert h.sshd_pid not in (None, old_pid)
    assert "survives-restart" in ssh_run(h, "ls -A /tmp").split()


def test_link_down_times_out(make_fleet: Callable[..., Fleet]) -> None:
    fleet = make_fleet(1, plant=False)
    h = fleet.hosts[0]
    h.link_down()
    t0 = time.monotonic()
    with pytest.raises(OSError):  # timeout or "no route to host", never a connection
        socket.create_connection((h.address, 22), timeout=1).close()
    assert time.monotonic() - t0 < 5
    h.link_up()
    deadline = time.monotonic() + 5
    while True:
        try:
            assert ssh_run(h, "hostname").strip() == h.name
            break
        except (OSError, paramiko.SSHException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_teardown_leaves_nothing(make_fleet: Callable[..., Fleet]) -> None:
    fleet = make_fleet(3, plant=False)
    h = fleet.hosts[0]
    client = h.ssh()  # an open session: its processes live in the host's namespace
    client.exec_command("sleep 300", timeout=5)
    time.sleep(0.3)
    pids = {p for x in fleet.hosts for p in map(int, ip("netns", "pids", x.netns).split())}
    assert {h.sshd_pid, h.anchor_pid} <= pids
    assert len(pids) >= 3 * 2 + 2  # 3 anchors, 3 sshds, session sshd(s) and the sleep
    fleet.down()
    client.close()
    assert not [n for n in netns_names() if n.startswith(f"psw-{fleet.fleet_id}-")]
    assert fleet.network not in ip("route", "show", "table", "all")
    assert f"psw-{fleet.fleet_id}" not in ip("link", "show")
    # Not even zombies: killed leaf-first, every process was reaped by its parent.
    left = [p for p in pids if Path(f"/proc/{p}").exists()]
    assert left == [], [Path(f"/proc/{p}/stat").read_text() for p in left]
    assert json.loads((fleet.state_dir / "fleet.json").read_text())["status"] == "down"


def test_fifty_hosts_start_in_a_few_seconds(make_fleet: Callable[..., Fleet]) -> None:
    t0 = time.monotonic()
    fleet = make_fleet(50)
    elapsed = time.monotonic() - t0
    assert elapsed < 15, elapsed
    assert len([n for n in netns_names() if n.startswith(f"psw-{fleet.fleet_id}-")]) == 50
    assert ssh_run(fleet.hosts[49], "hostname").strip() == "plant-host-50"


# -- command line: up, stale cleanup, down ------------------------------------------------


def test_cli_up_replaces_stale_fleet_and_down_cleans(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("needs root")
    state = "/var/lib/plantsweep-test/pcli"
    net = "10.203.250.0/24"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tests.harness", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    up = ["up", "--hosts", "2", "--state", state, "--id", "pcli", "--network", net]
    inv = tmp_path / "inv.yml"
    try:
        first = cli(*up)
        assert first.returncode == 0, first.stderr
        # The CLI exited, the fleet lives on (detached); a second `up` replaces it.
        second = cli(*up, "--inventory", str(inv))
        assert second.returncode == 0, second.stderr
        assert sorted(n for n in netns_names() if n.startswith("psw-pcli-")) == [
            "psw-pcli-01",
            "psw-pcli-02",
        ]
        hosts = yaml.safe_load(inv.read_text())["all"]["children"]["plant"]["hosts"]
        assert hosts["plant-host-02"]["ansible_host"] == "10.203.250.12"
        with socket.create_connection(("10.203.250.12", 22), timeout=2) as s:
            assert s.recv(8) == b"SSH-2.0-"
        status = cli("status", "--state", state)
        assert status.stdout.count(" up ") == 2, status.stdout
    finally:
        down = cli("down", "--state", state)
    assert down.returncode == 0, down.stderr
    assert not [n for n in netns_names() if n.startswith("psw-pcli-")]
    assert net not in ip("route", "show", "table", "all")


def test_overlapping_range_is_refused(plant: Fleet) -> None:
    from tests.harness import HarnessError

    other = Fleet(1, fleet_id="pclash", network=plant.network, plant=False)
    with pytest.raises(HarnessError, match="overlaps"):
        other.up()
    # The refused fleet must not have removed the running fleet's network.
    assert plant.network in ip("route", "show", "type", "unreachable")
    assert ssh_run(plant.hosts[0], "hostname").strip() == "plant-host-01"
