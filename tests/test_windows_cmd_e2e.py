"""A Windows host session end to end, with cmd.exe emulated: `plantsweep scan` probes the host
with cmd built-ins, pushes the Windows kit over SMB (real Samba), runs the scanner with the
kit's Python through the stdin launcher, fetches the log and proves the cleanup against
snapshots of the temp dir's parent, the profile, the registry, services and scheduled tasks.

What is emulated (there is no Windows here): cmd.exe and its tools
(tests/winrm_server/cmd_shell.py, a subset faithful to Windows 7's output formats), the
registry and the task list (folders and a CSV file under C:\\.emulated), and the kit's
python.exe, which runs this machine's Python 3.11 - so the scanner that runs is the Linux one,
and the test kit carries the Linux yara wheel beside the Windows one. Everything between the
controller and those programs is real: pywinrm, NTLM with message encryption, SMB 3 with
signing, the session code.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestrator.connections import SSHOptions, Timeouts, make_connection
from orchestrator.errors import StepFailed
from orchestrator.kit import windows
from orchestrator.payload import find_yara_wheel
from orchestrator.session import new_session
from orchestrator.targets import target_for
from orchestrator.windows_session import WindowsHostSession
from tests.harness.files import EICAR
from tests.harness.samba import C_DRIVE, SambaHost, smbd_available
from tests.harness.winrm_host import WinRMOnHost

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "scanner"))
import scanner_support as S  # noqa: E402
from conftest import TEST_SLOT  # noqa: E402
from plantscan import run_scan_cli  # noqa: E402
from test_windows_host_e2e import write_inventory  # noqa: E402
from test_windows_kit import WINDOWS_WHEELS, embeddable_zip  # noqa: E402

NETWORK = f"10.208.{TEST_SLOT}.0/24"  # used only by this module
WIN_TEMP = "C:\\Windows\\Temp"
REGISTRY = C_DRIVE + "/.emulated/registry"


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> windows.WindowsKit:
    """A win_amd64 kit in the controller's cache, plus the Linux wheel for the emulation."""
    from orchestrator.payload import download_wheels

    got = download_wheels(WINDOWS_WHEELS, ["3.8"], ["win_amd64"])
    assert all(g.path is not None for g in got), [g.error for g in got]
    runtime = embeddable_zip(tmp_path_factory.mktemp("rt") / "python-3.8.10-embed-amd64.zip")
    built = windows.build_windows_kit("win_amd64", runtime, wheel_dir=WINDOWS_WHEELS)
    linux = find_yara_wheel(S.WHEEL_CACHE, (3, 11), "x86_64")
    assert linux is not None, "the Linux wheel cache has no cp311 yara wheel"
    shutil.copyfile(linux, built.path / "wheels" / linux.name)
    return built


@pytest.fixture(scope="module")
def windows_host(kit):
    if os.environ.get("PLANTSWEEP_NO_PLANT") == "1":
        pytest.skip("PLANTSWEEP_NO_PLANT=1: no simulated plant")
    assert smbd_available(), "Debian's samba is missing: run scripts/setup.sh"
    with (
        SambaHost(fleet_id=f"wc{TEST_SLOT}", network=NETWORK, encrypt="desired") as smb,
        WinRMOnHost(smb, shell="cmd") as winrm,
    ):
        data = smb.host.path("/srv/plant")
        (data / "hmi").mkdir(parents=True, exist_ok=True)
        (data / "hmi" / "eicar.com").write_bytes(EICAR)
        (data / "hmi" / "readme.txt").write_text("operator notes\n")
        yield smb, winrm


def hostvars(smb: SambaHost, winrm: WinRMOnHost, **extra) -> dict:
    os.environ["PLANTSWEEP_TEST_WIN_PASSWORD"] = smb.password
    return {
        "ansible_host": smb.address,
        "ansible_connection": "winrm",
        "ansible_port": winrm.port,
        "ansible_user": smb.user,
        "ansible_password": "env:PLANTSWEEP_TEST_WIN_PASSWORD",
        "ansible_winrm_operation_timeout_sec": 2,
        "ansible_winrm_read_timeout_sec": 10,
        **extra,
    }  # ansible_shell_type: cmd and the temp dir C:\Windows\Temp are the defaults


def scan(tmp_path: Path, smb: SambaHost, winrm: WinRMOnHost, *more: str):
    inventory = write_inventory(tmp_path, {smb.name: hostvars(smb, winrm)})
    return run_scan_cli(tmp_path / "results", "-i", str(inventory), "--type", "folders",
                        "--path", "/srv/plant", *more)  # fmt: skip


def temp_listing(smb: SambaHost) -> list[str]:
    return sorted(os.listdir(smb.share_dir() / "Temp"))


def test_a_windows_host_is_scanned_with_the_kit_and_left_as_found(windows_host, tmp_path):
    smb, winrm = windows_host
    before = temp_listing(smb)
    run = scan(tmp_path, smb, winrm)
    entry = run.host_summary(smb.name)
    assert run.code == 1 and entry["status"] == "findings", entry["message"]
    log = run.log(smb.name)
    assert {f["path"] for f in log["findings"]} == {"/srv/plant/hmi/eicar.com"}
    assert any(m["engine"] == "yara" for f in log["findings"] for m in f["matches"])
    proof = log["cleanup"]
    assert proof["removed"] is True and proof["residue"] == [] and proof["errors"] == []
    assert proof["temp_dir"].startswith(WIN_TEMP + "\\plantsweep-")
    assert set(proof["checked"]) >= {
        f"dir {WIN_TEMP}",
        f"dir C:\\Users\\{smb.user}",
        "services HKLM\\SYSTEM\\CurrentControlSet\\Services",
        "registry HKLM\\SOFTWARE",
        "autostart HKCU\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run",
        "scheduled tasks",
    }
    assert temp_listing(smb) == before  # nothing left behind
    assert entry["transfer"].startswith("smb: SMB 3"), entry["transfer"]


def test_registry_keys_services_and_tasks_left_behind_are_named(windows_host, tmp_path):
    """Something else creates a registry key, a service and a scheduled task while the scan
    runs: the cleanup proof names each, and the host fails."""
    smb, winrm = windows_host
    planted = [
        smb.host.path(REGISTRY + "/HKEY_LOCAL_MACHINE/SOFTWARE/LeftBehind"),
        smb.host.path(REGISTRY + "/HKEY_LOCAL_MACHINE/SYSTEM/CurrentControlSet/Services/evilsvc"),
    ]
    tasks = smb.host.path(C_DRIVE + "/.emulated/schtasks.csv")
    tasks_before = tasks.read_bytes() if tasks.exists() else None
    stop = threading.Event()

    def plant_when_scanning() -> None:
        while not stop.is_set():
            if any(smb.share_dir().joinpath("Temp").glob("plantsweep-*/scan-log.json")) or any(
                smb.share_dir().joinpath("Temp").glob("plantsweep-*/scanner.pyz")
            ):
                for path in planted:
                    path.mkdir(parents=True)
                with tasks.open("ab") as fh:
                    fh.write(b'"\\Updater","N/A","Ready"\r\n')
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=plant_when_scanning)
    watcher.start()
    try:
        run = scan(tmp_path, smb, winrm)
    finally:
        stop.set()
        watcher.join()
        for path in planted:
            shutil.rmtree(path, ignore_errors=True)
        if tasks_before is None:
            tasks.unlink(missing_ok=True)
        else:
            tasks.write_bytes(tasks_before)
    entry = run.host_summary(smb.name)
    assert entry["status"] == "failed", entry
    residue = entry["cleanup"]["residue"]
    assert residue == sorted(
        [
            "registry HKLM\\SOFTWARE: HKEY_LOCAL_MACHINE\\SOFTWARE\\LeftBehind",
            'scheduled tasks: "\\Updater","N/A","Ready"',
            "services HKLM\\SYSTEM\\CurrentControlSet\\Services: "
            "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\evilsvc",
        ]
    ), residue
    assert entry["cleanup"]["removed"] is True
    assert "cleanup could not be proven" in entry["message"]


def open_session(smb: SambaHost, winrm: WinRMOnHost, **extra) -> WindowsHostSession:
    target = target_for(smb.name, hostvars(smb, winrm, **extra))
    timeouts = Timeouts(connect=10, command=30, transfer=60, scan=60)
    session = new_session(make_connection(target, SSHOptions(), timeouts), target, timeouts)
    assert isinstance(session, WindowsHostSession)
    return session


def test_a_command_that_outlives_its_timeout_is_ended_with_the_shell(windows_host):
    """The kit's Python still runs after a step timed out: cleanup closes the WinRM shell
    (Windows ends the shell's job), opens a new one and removes the temp dir."""
    smb, winrm = windows_host
    before = temp_listing(smb)
    with open_session(smb, winrm) as session:
        assert session.facts is not None and session.kit is not None
        assert session.facts.python.endswith("\\kit\\python\\python.exe")
        assert session.facts.system == "Windows 6.1.7601" and session.facts.machine == "AMD64"
        pushed = smb.share_dir() / "Temp" / session.facts.temp_dir.rsplit("\\", 1)[1] / "kit"
        assert (pushed / "python" / "python38._pth").is_file()
        assert not (pushed / "kit.json").exists() and not (pushed / "scanner.pyz").exists()
        with pytest.raises(StepFailed, match="timed out"):
            session.run_python(["-c"], 2, code="import time\ntime.sleep(120)\n")
        assert session.may_be_running
    assert session.proof is not None and session.proof.clean, session.proof
    assert session.conn.shells_opened == 2  # type: ignore[attr-defined]
    assert temp_listing(smb) == before


def test_without_a_fitting_kit_the_host_fails_with_the_command_that_builds_one(
    windows_host, tmp_path, monkeypatch
):
    smb, winrm = windows_host
    before = temp_listing(smb)
    monkeypatch.setenv("PLANTSWEEP_HOME", str(tmp_path / "empty-home"))
    run = scan(tmp_path, smb, winrm)
    entry = run.host_summary(smb.name)
    assert entry["status"] == "failed"
    assert "needs a win_amd64 kit with Python 3.8 or older (built: none)" in entry["message"]
    assert "plantsweep kit build --platform win_amd64" in entry["message"]
    assert temp_listing(smb) == before  # the probe's temp dir was removed again


def test_with_445_blocked_the_cmd_shell_carries_the_same_files(windows_host, tmp_path):
    """No SMB: the kit and the scanner go in through `findstr "^"` and `certutil -decode`,
    the log comes back through `certutil -encode` and `type`, as over SMB otherwise."""
    smb, winrm = windows_host
    before = temp_listing(smb)
    smb.block_port()
    try:
        run = scan(tmp_path, smb, winrm)
    finally:
        smb.unblock_port()
    entry = run.host_summary(smb.name)
    assert run.code == 1 and entry["status"] == "findings", entry["message"]
    assert entry["transfer"].startswith("winrm: SMB not used: "), entry["transfer"]
    log = run.log(smb.name)
    assert {f["path"] for f in log["findings"]} == {"/srv/plant/hmi/eicar.com"}
    assert any(m["engine"] == "yara" for f in log["findings"] for m in f["matches"])
    proof = log["cleanup"]
    assert proof["removed"] is True and proof["residue"] == [] and proof["errors"] == []
    assert temp_listing(smb) == before  # no .b64 file or anything else left behind
