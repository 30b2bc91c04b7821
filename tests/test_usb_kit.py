"""The offline USB kit for Linux hosts, end to end on the simulated plant, without mocks.

`plantsweep kit build` writes a kit onto a "stick" (a folder on the controller); the kit is
copied into a plant host's /media/usb (a tmpfs mounted inside that host only) and `run.sh` is
run there with Host.exec in a fresh network namespace (no network at all, not even the plant
LAN); the stick is copied back and `plantsweep logs import` checks and stores the logs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
from plantscan import finding_keys, run_scan_cli

from agentless_scanner import logmac
from orchestrator.cli import main
from orchestrator.kit import registry
from orchestrator.payload import scan_log_schema
from tests.harness import files as planted

HOST = "plant-host-03"  # Python 3.8 in the inventory; EICAR in Downloads, hash IOC in /tmp
QUICK_PREFIXES = ("/tmp/", "/var/tmp/", "/home/operator/Downloads/", "/root/.local/bin/")
KIT = "plantsweep-kit"
IN_HOST_KIT = "/media/usb/plantsweep-kit"
VENDOR = "/media/vendor"  # a vendor's folder at the gate, on the same host-only tmpfs
# Where the kit may write on the host (its temp dir) and where nothing may appear.
WATCHED = ("/tmp", "/var/tmp", "/root", "/home")


@dataclass
class KitRun:
    proc: subprocess.CompletedProcess[bytes]
    log: str  # file name in logs/


def _snapshot(host, inhost: str) -> dict[str, tuple[str, int, int]]:
    """Every entry under a host folder: kind, and size and mtime for files (not dirs, whose
    mtime changes when a temp dir comes and goes)."""
    root = host.path(inhost)
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            st = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISDIR(st.st_mode):
                found[rel] = ("dir", 0, 0)
            else:
                found[rel] = ("file", st.st_size, st.st_mtime_ns)
    return found


def _run_kit(host, *args: str, python: str | None = None) -> KitRun:
    """`sh /media/usb/plantsweep-kit/run.sh` inside the host, as root, with no network."""
    logs = host.path(IN_HOST_KIT) / "logs"
    before = set(os.listdir(logs))
    argv = ["unshare", "--net", "env", "-i", "HOME=/root", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
    argv += ["LC_ALL=C", "sh", f"{IN_HOST_KIT}/run.sh", *args]
    if python:
        argv += ["--python", python]
    proc = host.exec(argv, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    new = sorted(set(os.listdir(logs)) - before)
    names = [n for n in new if n.endswith(".json")]
    assert len(names) == 1 and new == [names[0], names[0] + ".mac"], new
    return KitRun(proc, names[0])


def _stick_with(kit_dir: Path, dest: Path, logs: list[Path]) -> Path:
    """A copy of the kit (as the operator brings it back) holding only the given logs."""
    shutil.copytree(kit_dir, dest / KIT, ignore=shutil.ignore_patterns("logs"))
    (dest / KIT / "logs").mkdir()
    for log in logs:
        shutil.copy2(log, dest / KIT / "logs" / log.name)
        mac = log.with_name(log.name + ".mac")
        if mac.exists():
            shutil.copy2(mac, dest / KIT / "logs" / mac.name)
    return dest


def _import(capsys, stick: Path, out: Path, *args: str) -> tuple[int, list[str], str]:
    capsys.readouterr()
    code = main(["logs", "import", str(stick), "--out", str(out), *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err.splitlines(), captured.out


def _python(version: str) -> str:
    from tests.harness import pythons

    return pythons.resolve(version)


@pytest.fixture(scope="module")
def kit_setup(plant, wheel_dir, tmp_path_factory) -> Iterator[dict]:
    """Kit A built with the test patterns, on a tmpfs at /media inside the host."""
    base = tmp_path_factory.mktemp("usbkit")
    patterns = plant.write_test_patterns(base / "patterns")["yara"].parent
    stick = base / "stick"
    stick.mkdir()
    code = main(
        ["kit", "build", "--usb", str(stick), "--patterns", str(patterns)]
        + ["--wheel-dir", str(wheel_dir), "--name", "line 1 test kit"]
    )
    assert code == 0
    host = plant[HOST]
    # Mounted in the host's own mount namespace only: the machine's /media is untouched.
    host.exec(["mount", "-t", "tmpfs", "-o", "size=256m,mode=755", "psw-usb", "/media"])
    try:
        shutil.copytree(stick / KIT, host.path(IN_HOST_KIT))
        vendor = host.path(VENDOR)
        (vendor / "tools").mkdir(parents=True)
        (vendor / "tools" / "fwtool.bin").write_bytes(planted.HASH_IOC_CONTENT)
        (vendor / "readme.txt").write_text("vendor service laptop tools\n")
        yield {
            "base": base,
            "patterns": patterns,
            "stick": stick,
            "host": host,
            "kit_id": json.loads((stick / KIT / "kit.json").read_text())["kit_id"],
        }
    finally:
        host.exec(["umount", "/media"], check=False)


@pytest.fixture(scope="module")
def quick_run(kit_setup) -> dict:
    """A quick scan of the host from the stick, with the inventory's Python 3.8, watched."""
    host = kit_setup["host"]
    before = {p: _snapshot(host, p) for p in WATCHED}
    run = _run_kit(host, python=host.python)
    after = {p: _snapshot(host, p) for p in WATCHED}
    return {"run": run, "before": before, "after": after}


@pytest.fixture(scope="module")
def py36_run(kit_setup) -> KitRun:
    """The vendor folder scanned from the stick with CPython 3.6 (hash IOCs only)."""
    return _run_kit(kit_setup["host"], "--type", "folders", "--path", VENDOR, python=_python("3.6"))


def _host_log(kit_setup, name: str) -> Path:
    return kit_setup["host"].path(IN_HOST_KIT) / "logs" / name


def test_kit_layout_manifest_and_registry(kit_setup):
    kit = kit_setup["stick"] / KIT
    names = sorted(str(p.relative_to(kit)) for p in kit.rglob("*"))
    assert {
        "run.sh",
        "scanner.pyz",
        "patterns.zip",
        "kit.key",
        "kit.json",
        "README.txt",
        "logs",
    } <= set(names)
    wheels = [n for n in names if n.startswith("wheels/")]
    assert any("cp38" in w for w in wheels) and any("cp311" in w for w in wheels)
    manifest = json.loads((kit / "kit.json").read_text())
    assert manifest["kit_id"] == kit_setup["kit_id"] and manifest["name"] == "line 1 test kit"
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    on_disk = {
        str(p.relative_to(kit)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in kit.rglob("*")
        if p.is_file() and p.name != "kit.json"
    }
    assert listed == on_disk
    assert manifest["patterns"]["name"] == "patterns" and manifest["patterns"]["version"]
    # The controller's record: 0600, the same key as the stick's.
    path = registry.kits_dir() / f"{kit_setup['kit_id']}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    record = registry.load(kit_setup["kit_id"])
    assert record is not None and len(record.key) == 32
    assert logmac.load_key(str(kit / "kit.key")) == (record.kit_id, record.key)
    assert record.scanner_sha256 == listed["scanner.pyz"]
    # run.sh is POSIX sh (dash parses it) and README.txt states the integrity limit.
    subprocess.run(["dash", "-n", str(kit / "run.sh")], check=True)
    assert "The key is on this stick" in (kit / "README.txt").read_text()


def test_kit_build_refuses_a_stick_that_holds_a_kit(kit_setup, capsys):
    code = main(["kit", "build", "--usb", str(kit_setup["stick"])])
    err = capsys.readouterr().err
    assert code == 4 and "already holds a kit" in err and len(err.strip().splitlines()) == 1


def test_offline_scan_imports_the_same_findings_as_a_networked_scan(
    plant, kit_setup, quick_run, wheel_dir, capsys, tmp_path
):
    host = kit_setup["host"]
    run: KitRun = quick_run["run"]
    out = run.proc.stdout.decode()
    log_path = _host_log(kit_setup, run.log)
    data = log_path.read_bytes()
    # The operator sees where the log went and its SHA-256.
    assert f"{IN_HOST_KIT}/logs/{run.log}" in out
    assert hashlib.sha256(data).hexdigest() in out
    # Nothing new or changed on the host: temp dirs, root's and the users' homes.
    assert quick_run["after"] == quick_run["before"]
    raw = json.loads(data)
    used = [a for a in raw["scanner"]["argv"] if a.endswith("/patterns.zip")]
    assert used and re.match(r"^/tmp/plantsweep-kit\.\w{10}/patterns\.zip$", used[0]), used
    assert not host.path(str(Path(used[0]).parent)).exists()
    assert raw["scanner"]["python"].startswith("3.8.")
    assert raw["engines"]["yara"]["available"] is True

    # The same host over the network, with the same patterns.
    inventory = plant.write_inventory(tmp_path / "plant.yml")
    networked = run_scan_cli(
        tmp_path / "net",
        "-i",
        str(inventory),
        "--limit",
        HOST,
        "--patterns",
        str(kit_setup["patterns"]),
        "--wheel-dir",
        str(wheel_dir),
    )
    assert networked.code == 1
    net_log = networked.log(HOST)

    # Back at the controller.
    stick = _stick_with(host.path(IN_HOST_KIT), tmp_path / "back", [log_path])
    code, err, recap = _import(capsys, stick, tmp_path / "results")
    assert code == 1, err  # findings, nothing refused
    assert [line for line in err if line.startswith("REFUSED")] == []
    runs = list((tmp_path / "results").iterdir())
    assert len(runs) == 1
    imported = json.loads((runs[0] / f"{HOST}.json").read_text())
    jsonschema.Draft202012Validator(scan_log_schema()).validate(imported)
    assert finding_keys(imported) == finding_keys(net_log)
    expected = {
        (f.path, f.sha256, f.indicator)
        for f in host.expected_findings
        if f.path.startswith(QUICK_PREFIXES)
    }
    assert expected and expected <= finding_keys(imported)

    def levels(log):
        return sorted((f["path"], f["score"], f["level"], f["rule"]) for f in log["findings"])

    assert levels(imported) == levels(net_log)
    assert imported["patterns"]["version"] == net_log["patterns"]["version"]
    assert imported["kit_import"]["kit_id"] == kit_setup["kit_id"]
    assert imported["kit_import"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert imported["run_id"] == runs[0].name
    # The stick's exact bytes and MAC are kept beside the stored log.
    assert (runs[0] / "kit-logs" / run.log).read_bytes() == data
    assert (runs[0] / "kit-logs" / f"{run.log}.mac").is_file()
    summary = json.loads((runs[0] / "run.json").read_text())
    assert summary["source"] == "usb-kit" and summary["exit_code"] == 1
    assert [h["host"] for h in summary["hosts"]] == [HOST]
    assert summary["hosts"][0]["findings"] == networked.host_summary(HOST)["findings"]
    assert HOST in recap and "findings" in recap

    # A second import of the same stick stores nothing new.
    code, err, _ = _import(capsys, stick, tmp_path / "results")
    assert code == 0
    assert err == [
        f"already imported: {run.log} (run {runs[0].name}, {runs[0] / (HOST + '.json')})",
        f"nothing new imported from kit {kit_setup['kit_id']}",
    ]
    assert len(list((tmp_path / "results").iterdir())) == 1


def test_python36_host_writes_a_verifiable_log(kit_setup, py36_run, capsys, tmp_path):
    log_path = _host_log(kit_setup, py36_run.log)
    raw = json.loads(log_path.read_bytes())
    assert raw["scanner"]["python"].startswith("3.6.")
    stick = _stick_with(kit_setup["host"].path(IN_HOST_KIT), tmp_path / "back", [log_path])
    # The host identity the operator names must be the log's.
    code, err, _ = _import(capsys, stick, tmp_path / "r", "--host", "plant-host-01")
    assert code == 2
    assert err == [
        f"REFUSED: {py36_run.log}: the log is of host '{HOST}', not 'plant-host-01'",
        f"nothing new imported from kit {kit_setup['kit_id']}",
    ]
    wrong = "0" * 32
    code, err, _ = _import(capsys, stick, tmp_path / "r", "--machine-id", wrong)
    assert code == 2 and f"not {wrong}" in err[0] and err[0].startswith("REFUSED: ")
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").iterdir())
    machine_id = raw["asset"]["machine_id"]
    assert machine_id and re.match(r"^[0-9a-f]{32}$", machine_id)
    code, err, _ = _import(
        capsys, stick, tmp_path / "r", "--host", HOST, "--machine-id", machine_id.upper()
    )
    assert code == 1, err  # the hash IOC in the vendor folder
    (run_dir,) = list((tmp_path / "r").iterdir())
    log = json.loads((run_dir / f"{HOST}.json").read_text())
    assert finding_keys(log) == {
        (
            f"{VENDOR}/tools/fwtool.bin",
            planted.HASH_IOC_SHA256,
            f"hash:{planted.HASH_IOC_NAME}",
        )
    }
    assert log["kit_import"]["host_checked"] == HOST


def _edit_and_import(capsys, stick: Path, name: str, kit_id: str, out: Path) -> None:
    """One byte of the log `name` on the stick changed (still valid JSON): the import refuses
    it by its MAC and stores nothing."""
    edited = stick / KIT / "logs" / name
    data = bytearray(edited.read_bytes())
    at = data.index(b'"files_scanned": ') + len(b'"files_scanned": ')
    data[at] = ord("7") if data[at] != ord("7") else ord("8")
    edited.write_bytes(bytes(data))
    json.loads(edited.read_bytes())
    code, err, _ = _import(capsys, stick, out)
    assert code == 2
    refused = [line for line in err if line.startswith("REFUSED: ")]
    assert refused == [
        f"REFUSED: {name}: MAC mismatch: the log was changed after the scan, or not "
        f"written by kit {kit_id}"
    ]
    assert not out.exists()


def test_edited_log_is_refused(kit_setup, py36_run, capsys, tmp_path):
    original = _host_log(kit_setup, py36_run.log)
    stick = _stick_with(kit_setup["host"].path(IN_HOST_KIT), tmp_path / "back", [original])
    _edit_and_import(capsys, stick, py36_run.log, kit_setup["kit_id"], tmp_path / "r")


def test_log_without_mac_is_refused(kit_setup, py36_run, capsys, tmp_path):
    original = _host_log(kit_setup, py36_run.log)
    stick = _stick_with(kit_setup["host"].path(IN_HOST_KIT), tmp_path / "back", [original])
    (stick / KIT / "logs" / f"{py36_run.log}.mac").unlink()
    code, err, _ = _import(capsys, stick, tmp_path / "r")
    assert code == 2
    assert [line for line in err if line.startswith("REFUSED: ")] == [
        f"REFUSED: {py36_run.log}: no MAC ({py36_run.log}.mac is missing): cannot prove the "
        "log is unedited"
    ]
    # The MAC alone, its log deleted (a scan with findings thrown away?), is refused too.
    stick2 = _stick_with(kit_setup["host"].path(IN_HOST_KIT), tmp_path / "back2", [original])
    (stick2 / KIT / "logs" / py36_run.log).unlink()
    code, err, _ = _import(capsys, stick2, tmp_path / "r")
    assert code == 2 and err[0].startswith(f"REFUSED: {py36_run.log}.mac: its log is missing")


def test_log_failing_the_schema_is_refused(kit_setup, py36_run, capsys, tmp_path):
    """A log whose MAC is right but whose content is not a scan log (e.g. forged with the key,
    or written by a broken scanner) is refused by the schema check."""
    original = _host_log(kit_setup, py36_run.log)
    stick = _stick_with(kit_setup["host"].path(IN_HOST_KIT), tmp_path / "back", [original])
    target = stick / KIT / "logs" / py36_run.log
    log = json.loads(target.read_bytes())
    del log["stats"]
    data = json.dumps(log).encode()
    target.write_bytes(data)
    kit_id, key = logmac.load_key(str(stick / KIT / "kit.key"))
    target.with_name(target.name + ".mac").write_bytes(
        logmac.mac_document(key, kit_id, target.name, data)
    )
    code, err, _ = _import(capsys, stick, tmp_path / "r")
    assert code == 2
    (line,) = [line for line in err if line.startswith("REFUSED: ")]
    assert "does not match the scan-log schema" in line and "'stats' is a required" in line


@pytest.fixture(scope="module")
def other_kit_run(kit_setup, tmp_path_factory) -> dict:
    """Kit B, built by another controller (another PLANTSWEEP_HOME), run on the same host with
    the first Python 3.6+ of run.sh's list."""
    base = tmp_path_factory.mktemp("other-kit")
    stick = base / "stick"
    stick.mkdir()
    env = dict(os.environ, PLANTSWEEP_HOME=str(base / "home"))
    subprocess.run(
        [sys.executable, "-m", "orchestrator", "kit", "build", "--usb", str(stick)],
        check=True,
        env=env,
        capture_output=True,
    )
    host = kit_setup["host"]
    kit_b = "/media/usb-b/plantsweep-kit"
    shutil.copytree(stick / KIT, host.path(kit_b))
    proc = host.exec(
        ["unshare", "--net", "env", "-i", "HOME=/root", "PATH=/usr/bin:/bin", "sh"]
        + [f"{kit_b}/run.sh", "--type", "folders", "--path", VENDOR],
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert b"with /usr/bin/python3 " in proc.stderr
    back = base / "back"
    shutil.copytree(host.path(kit_b), back / KIT)
    (log,) = (back / KIT / "logs").glob("*.json")
    return {"stick": back, "log": log}


def test_log_of_unknown_kit_is_refused(kit_setup, other_kit_run, capsys, tmp_path):
    code, err, _ = _import(capsys, other_kit_run["stick"], tmp_path / "r")
    assert code == 2
    kit_b = json.loads((other_kit_run["stick"] / KIT / "kit.json").read_text())["kit_id"]
    assert err == [
        f"REFUSED: {other_kit_run['log'].name}: unknown kit {kit_b}: not built by this "
        f"controller (no record in {registry.kits_dir()})"
    ]
    # Kit B's log, with its MAC, slipped onto kit A's stick.
    stick = _stick_with(
        kit_setup["host"].path(IN_HOST_KIT), tmp_path / "back", [other_kit_run["log"]]
    )
    code, err, _ = _import(capsys, stick, tmp_path / "r")
    assert code == 2
    assert err[0] == (
        f"REFUSED: {other_kit_run['log'].name}: made by another kit ('{kit_b}'), not by this "
        f"stick's kit {kit_setup['kit_id']}: import it from its own stick"
    )


def test_import_of_a_folder_without_kit_is_a_usage_error(tmp_path, capsys):
    code = main(["logs", "import", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 4 and err.startswith("ERROR: ") and "no plantsweep kit here" in err
    assert len(err.strip().splitlines()) == 1


def _watched(host) -> dict[str, dict[str, tuple[str, int, int]]]:
    return {p: _snapshot(host, p) for p in WATCHED}


def test_damaged_kit_or_failing_scanner_leaves_nothing_on_the_host(kit_setup):
    host = kit_setup["host"]
    damaged = "/media/usb-damaged/plantsweep-kit"
    shutil.copytree(kit_setup["stick"] / KIT, host.path(damaged))
    patterns = host.path(damaged) / "patterns.zip"
    data = bytearray(patterns.read_bytes())
    data[len(data) // 2] ^= 0x01
    patterns.write_bytes(bytes(data))
    before = _watched(host)
    proc = host.exec(["sh", f"{damaged}/run.sh"], check=False, timeout=120)
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert "damaged or changed: patterns.zip" in err and "build a new one" in err
    assert os.listdir(host.path(damaged) / "logs") == []
    # A scanner that refuses its options: the trap still removes the temp dir.
    proc = host.exec(["sh", f"{IN_HOST_KIT}/run.sh", "--threads", "0"], check=False, timeout=120)
    assert proc.returncode == 3 and b"--threads must be 1-64" in proc.stderr
    proc = host.exec(["sh", f"{IN_HOST_KIT}/run.sh", "--out", "/tmp/x.json"], check=False)
    assert proc.returncode == 3 and b"--out is set by the kit itself" in proc.stderr
    assert _watched(host) == before


def test_kit_with_an_installed_signed_bundle(kit_setup, wheel_dir, monkeypatch, capsys, tmp_path):
    """`--patterns bundle:NAME` as `scan` takes it: the kit carries the verified bundle (with
    its compiled rules) and every log records the bundle's name, version and date."""
    home = tmp_path / "home"
    monkeypatch.setenv("PLANTSWEEP_HOME", str(home))
    (home / "trusted-keys").mkdir(parents=True)
    src = tmp_path / "rules"
    planted.write_test_patterns(src)
    assert main(["patterns", "keygen", "--secret", str(tmp_path / "k.sec"),
                 "--public", str(home / "trusted-keys" / "k.pub")]) == 0  # fmt: skip
    bundle = tmp_path / "site-3.tar"
    assert main(["patterns", "build", str(src), "--key", str(tmp_path / "k.sec"), "--name",
                 "site", "--version", "3", "--released", "2026-11-01", "--expires",
                 "2099-01-01", "--out", str(bundle)]) == 0  # fmt: skip
    assert main(["patterns", "import", str(bundle)]) == 0
    stick = tmp_path / "stick"
    stick.mkdir()
    build = ["kit", "build", "--usb", str(stick), "--patterns", "bundle:site"]
    assert main([*build, "--wheel-dir", str(wheel_dir)]) == 0
    manifest = json.loads((stick / KIT / "kit.json").read_text())
    assert manifest["patterns"] == {
        "name": "site",
        "version": "3",
        "date": "2026-11-01",
        "source": "bundle:site",
    }
    host = kit_setup["host"]
    in_host = "/media/usb-bundle/plantsweep-kit"
    shutil.copytree(stick / KIT, host.path(in_host))
    proc = host.exec(
        ["sh", f"{in_host}/run.sh", "--type", "folders", "--path", VENDOR], check=False
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    back = tmp_path / "back"
    shutil.copytree(host.path(in_host), back / KIT)
    code, err, _ = _import(capsys, back, tmp_path / "r")
    assert code == 1, err
    (run_dir,) = list((tmp_path / "r").iterdir())
    log = json.loads((run_dir / f"{HOST}.json").read_text())
    assert (log["patterns"]["name"], log["patterns"]["version"]) == ("site", "3")
    assert log["patterns"]["date"] == "2026-11-01"
    assert log["engines"]["yara"]["compiled_from"] == "bundle"  # the bundle's compiled rules
    assert finding_keys(log) == {
        (f"{VENDOR}/tools/fwtool.bin", planted.HASH_IOC_SHA256, f"hash:{planted.HASH_IOC_NAME}")
    }


def _scanner_pids(kit_dir: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"scanner.pyz" in cmdline and kit_dir.encode() in cmdline:
                pids.append(int(entry))
    return pids


def _press_ctrl_c(
    argv: list[str],
    kit_dir: str,
    env: dict[str, str] | None = None,
    while_scanning: Callable[[], None] | None = None,
) -> tuple[int, bytes]:
    """Start a kit script in a session of its own, wait until its scanner walks, then press
    Ctrl-C (SIGINT to the whole process group, as a terminal does): (exit code, stderr)."""
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while not _scanner_pids(kit_dir) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _scanner_pids(kit_dir), "the scanner never started"
        if while_scanning is not None:
            while_scanning()
        time.sleep(1.5)  # walking by now
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, err


def _import_partial_log(capsys, stick: Path, out: Path) -> None:
    """The stick holds one partial log: the import stores it with the host failed."""
    (log,) = (stick / KIT / "logs").glob("*.json")
    assert json.loads(log.read_bytes())["complete"] is False
    code, lines, _ = _import(capsys, stick, out)
    assert code & 2, lines  # the host failed: an incomplete scan is never clean
    (run_dir,) = list(out.iterdir())
    (summary,) = json.loads((run_dir / "run.json").read_text())["hosts"]
    assert summary["status"] == "failed"
    assert summary["message"].startswith("scan incomplete: stopped by SIGINT after")


def test_ctrl_c_leaves_a_partial_log_and_nothing_else(kit_setup, capsys, tmp_path):
    """Ctrl-C (SIGINT to the terminal's process group) during a full scan: the scanner writes
    its partial log and MAC, the trap removes the temp dir, the import reports the host failed."""
    host = kit_setup["host"]
    kit_dir = "/media/usb-ctrl-c/plantsweep-kit"
    shutil.copytree(kit_setup["stick"] / KIT, host.path(kit_dir))
    before = _watched(host)
    code, err = _press_ctrl_c(
        ["nsenter", "-t", str(host.anchor_pid), "-m", "-u", "-n", "--"]
        + ["sh", f"{kit_dir}/run.sh", "--type", "full"],
        kit_dir,
    )
    assert code == 130, err.decode(errors="replace")
    assert b"interrupted: a partial log (complete: false) may be in" in err
    assert _watched(host) == before
    back = tmp_path / "back"
    shutil.copytree(host.path(kit_dir), back / KIT)
    _import_partial_log(capsys, back, tmp_path / "r")
