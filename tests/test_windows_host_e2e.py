"""A simulated Windows host end to end: `plantsweep scan` over WinRM (the WS-Management test
server, NTLM with message encryption) with files over SMB (a real Samba with signing), then
the same with port 445 blocked (files through the WinRM shell), and the per-host errors.

The host is a network namespace running smbd and the WinRM test server as one account
(tests/harness/samba.py, winrm_host.py). Its commands run under /bin/sh, so the inventory
says ansible_shell_type: sh: this tests the transports and the session, not cmd.exe.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.harness.files import EICAR
from tests.harness.samba import WINDOWS_DIR, SambaHost, smbd_available
from tests.harness.winrm_host import WinRMOnHost
from tests.winrm_server import make_test_ca

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import TEST_SLOT  # noqa: E402
from plantscan import ScanRun, run_scan_cli  # noqa: E402

NETWORK = f"10.207.{TEST_SLOT}.0/24"  # used only by this module
TEMP = WINDOWS_DIR + "/Temp"


@pytest.fixture(scope="module")
def windows():
    if os.environ.get("PLANTSWEEP_NO_PLANT") == "1":
        pytest.skip("PLANTSWEEP_NO_PLANT=1: no simulated plant")
    assert smbd_available(), "Debian's samba is missing: run scripts/setup.sh"
    with (
        SambaHost(fleet_id=f"win{TEST_SLOT}", network=NETWORK, encrypt="desired") as smb,
        WinRMOnHost(smb) as winrm,
    ):
        data = smb.host.path("/srv/plant")
        (data / "hmi").mkdir(parents=True, exist_ok=True)
        (data / "hmi" / "eicar.com").write_bytes(EICAR)
        (data / "hmi" / "readme.txt").write_text("operator notes\n")
        yield smb, winrm


def host_vars(smb: SambaHost, port: int, password: str | None = None, **extra) -> dict:
    """The inventory variables of the simulated Windows host reached on ``port``."""
    # Inventories never hold a password in clear: it comes from the environment.
    os.environ["PLANTSWEEP_TEST_WIN_PASSWORD"] = password or smb.password
    return {
        "ansible_host": smb.address,
        "ansible_connection": "winrm",
        "ansible_port": port,
        "ansible_user": smb.user,
        "ansible_password": "env:PLANTSWEEP_TEST_WIN_PASSWORD",
        "ansible_shell_type": "sh",
        "ansible_remote_tmp": TEMP,
        "plantsweep_smb_share_path": WINDOWS_DIR,
        "ansible_winrm_operation_timeout_sec": 2,
        "ansible_winrm_read_timeout_sec": 10,
        **extra,
    }


def write_inventory(tmp_path: Path, hosts: dict[str, dict]) -> Path:
    inventory = tmp_path / "windows.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    return inventory


def scan(tmp_path: Path, inventory: Path, *more: str) -> ScanRun:
    return run_scan_cli(tmp_path / "results", "-i", str(inventory), "--type", "folders",
                        "--path", "/srv/plant", *more)  # fmt: skip


def scanner_running_under(root: int) -> int | None:
    """The PID of a scanner zipapp among the descendants of process ``root``, if one runs."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        try:
            if b"scanner" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
        todo += children.get(pid, [])
    return None


def test_push_run_fetch_cleanup_over_winrm_and_smb(windows, tmp_path):
    smb, winrm = windows
    before = sorted(os.listdir(smb.share_dir() / "Temp"))
    run = scan(tmp_path, write_inventory(tmp_path, {smb.name: host_vars(smb, winrm.port)}))
    entry = run.host_summary(smb.name)
    assert run.code == 1 and entry["status"] == "findings", entry["message"]
    log = run.log(smb.name)
    found = {f["path"] for f in log["findings"]}
    assert found == {"/srv/plant/hmi/eicar.com"}
    proof = log["cleanup"]
    assert proof["removed"] is True and proof["residue"] == [] and proof["errors"] == []
    assert proof["temp_dir"].startswith(TEMP + "/plantsweep-")
    assert sorted(os.listdir(smb.share_dir() / "Temp")) == before  # nothing left behind
    assert entry["transfer"].startswith("smb: SMB 3"), entry["transfer"]


def test_with_445_blocked_the_winrm_shell_carries_the_same_files(windows, tmp_path):
    smb, winrm = windows
    smb.block_port()
    try:
        run = scan(tmp_path, write_inventory(tmp_path, {smb.name: host_vars(smb, winrm.port)}))
    finally:
        smb.unblock_port()
    entry = run.host_summary(smb.name)
    assert run.code == 1 and entry["status"] == "findings", entry["message"]
    assert entry["transfer"].startswith("winrm: SMB not used: "), entry["transfer"]
    log = run.log(smb.name)
    assert {f["path"] for f in log["findings"]} == {"/srv/plant/hmi/eicar.com"}
    assert log["cleanup"]["removed"] is True and log["cleanup"]["residue"] == []


def test_wrong_password_is_a_clear_per_host_error(windows, tmp_path):
    smb, winrm = windows
    hosts = {smb.name: host_vars(smb, winrm.port, password="not-the-password")}
    inventory = write_inventory(tmp_path, hosts)
    run = scan(tmp_path, inventory)
    entry = run.host_summary(smb.name)
    assert entry["status"] == "unreachable" and run.code != 0
    assert entry["message"].startswith("WinRM authentication failed: wrong user or password")
    assert "not-the-password" not in json.dumps(run.summary)


def test_a_bad_certificate_and_a_server_gone_mid_command_fail_only_their_hosts(windows, tmp_path):
    """Three inventory entries for the same machine: one over HTTP+NTLM that works, one over
    HTTPS whose certificate is not from the CA the inventory trusts, and one over HTTPS whose
    WinRM server is killed while the scanner runs. The run goes on for the good one."""
    smb, winrm = windows
    other_ca = make_test_ca(tmp_path / "other-ca")
    with (
        WinRMOnHost(smb, https=True, port=5986) as tls,
        WinRMOnHost(smb, https=True, port=5987) as dying,
    ):
        assert tls.ca_file is not None and dying.ca_file is not None
        hosts = {
            "win-good": host_vars(smb, winrm.port),
            "win-badcert": host_vars(
                smb, tls.port, ansible_winrm_ca_trust_path=str(other_ca.cert_path)
            ),
            "win-dies": host_vars(smb, dying.port, ansible_winrm_ca_trust_path=str(dying.ca_file)),
        }
        inventory = write_inventory(tmp_path, hosts)
        # Stop the third host's WinRM server once the scanner runs under it.
        stop = threading.Event()

        def kill_when_scanning() -> None:
            while not stop.is_set():
                scanner = scanner_running_under(dying.proc.pid) if dying.proc else None
                if scanner is not None:
                    # Frozen first, so it cannot finish (and be reported done) before the
                    # server goes: the host must go away mid-command, not after it.
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(scanner, signal.SIGSTOP)
                    dying.stop()
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(scanner, signal.SIGKILL)  # if the server left it behind
                    return
                time.sleep(0.05)

        watcher = threading.Thread(target=kill_when_scanning)
        watcher.start()
        try:
            run = scan(tmp_path, inventory, "-f", "1")
        finally:
            stop.set()
            watcher.join()
    good, badcert, dies = (run.host_summary(h) for h in ("win-good", "win-badcert", "win-dies"))
    assert good["status"] == "findings", good["message"]
    assert badcert["status"] == "unreachable"
    assert badcert["message"].startswith("TLS certificate check of https://"), badcert["message"]
    assert dies["status"] == "failed"
    assert dies["message"].startswith("WinRM at https://"), dies["message"]
    assert "stopped answering" in dies["message"]
    # Its temp dir could not be removed: the cleanup says so (the journal keeps it for
    # `plantsweep cleanup`); the good host's was removed.
    assert dies["cleanup"]["removed"] is False and good["cleanup"]["removed"] is True
