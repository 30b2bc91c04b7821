"""The Windows part of the offline USB kit: `plantsweep kit build --usb DIR --windows ...`.

There is no Windows here. The stick is built for real from Windows scanner kits made of a
layout-faithful embeddable-package zip (tests/test_windows_kit.py) and the real yara-python
wheels for Windows; run_windows.py, which holds all of run.cmd's logic, is then run for real
from the stick with this machine's Python (it needs nothing of the runtime it is started with
on Windows), and `plantsweep logs import` takes its logs back. run.cmd itself is checked as
text only: it has never run on Windows.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from plantscan import finding_keys, run_scan_cli
from test_usb_kit import (
    KIT,
    _edit_and_import,
    _import,
    _import_partial_log,
    _press_ctrl_c,
    _stick_with,
)
from test_windows_kit import embeddable_zip

from orchestrator.cli import main
from orchestrator.kit import registry, run_windows
from tests.harness import pythons
from tests.harness.files import EICAR

SCRIPT = "run_windows.py"
AMD64, I386 = 0x8664, 0x014C


def _levels(log: dict) -> list[tuple]:
    return sorted((f["path"], f["score"], f["level"], f["rule"]) for f in log["findings"])


@pytest.fixture(scope="module")
def win_stick(tmp_path_factory, win_wheels, wheel_dir) -> Iterator[dict]:
    """A controller (its own PLANTSWEEP_HOME) with Windows kits for both platforms, and a stick
    built with both and the shipped demo patterns; a vendor folder with EICAR to scan."""
    base = tmp_path_factory.mktemp("usbkit-win")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLANTSWEEP_HOME", str(base / "home"))
        for platform, machine, name in (
            ("win_amd64", AMD64, "python-3.8.10-embed-amd64.zip"),
            ("win32", I386, "python-3.8.10-embed-win32.zip"),
        ):
            runtime = embeddable_zip(base / name, machine=machine)
            build = ["kit", "build", "--platform", platform, "--python-runtime", str(runtime)]
            assert main([*build, "--wheel-dir", str(win_wheels)]) == 0
        stick = base / "stick"
        stick.mkdir()
        code = main(
            ["kit", "build", "--usb", str(stick), "--windows", "win_amd64,win32"]
            + ["--wheel-dir", str(wheel_dir), "--name", "gate kit"]
        )
        assert code == 0
        vendor = base / "vendor"
        (vendor / "tools").mkdir(parents=True)
        (vendor / "tools" / "eicar.com").write_bytes(EICAR)
        (vendor / "readme.txt").write_text("vendor service laptop tools\n")
        kit = stick / KIT
        yield {
            "base": base,
            "kit": kit,
            "kit_id": json.loads((kit / "kit.json").read_text())["kit_id"],
            "vendor": vendor,
        }


def _run(
    kit: Path, tmp_parent: Path, *args: str, python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    """`python run_windows.py ARGS` from the stick, with its temp dirs under tmp_parent."""
    tmp_parent.mkdir(exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "TMPDIR": str(tmp_parent)}
    return subprocess.run(
        [python, str(kit / SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def scanned(win_stick) -> dict:
    """The vendor folder scanned from the stick with this machine's Python (yara-python from
    its virtualenv: the Windows wheel on the stick cannot load here)."""
    tmp_parent = win_stick["base"] / "host-temp"
    logs = win_stick["kit"] / "logs"
    before = set(os.listdir(logs))
    proc = _run(
        win_stick["kit"], tmp_parent, "--type", "folders", "--path", str(win_stick["vendor"])
    )
    assert proc.returncode == 0, proc.stderr
    new = sorted(set(os.listdir(logs)) - before)
    assert len(new) == 2 and new[1] == new[0] + ".mac", new
    return {"proc": proc, "log": logs / new[0], "tmp_parent": tmp_parent}


def test_stick_layout_manifest_and_registry(win_stick, capsys):
    kit = win_stick["kit"]
    files = {p.relative_to(kit).as_posix() for p in kit.rglob("*") if p.is_file()}
    assert {"run.sh", "run.cmd", SCRIPT, "scanner.pyz", "patterns.zip", "kit.key"} <= files
    for platform in ("win_amd64", "win32"):
        assert {
            f"windows/{platform}/python/python.exe",
            f"windows/{platform}/python/python38.dll",
            f"windows/{platform}/python/python38.zip",
            f"windows/{platform}/python/python38._pth",
            f"windows/{platform}/wheels/yara_python-4.5.1-cp38-cp38-{platform}.whl",
        } <= files
    # One scanner for every host: the cached kits' own scanner.pyz is not copied.
    assert [f for f in files if f.endswith("scanner.pyz")] == ["scanner.pyz"]
    assert (kit / SCRIPT).read_bytes() == Path(run_windows.__file__).read_bytes()
    manifest = json.loads((kit / "kit.json").read_text())
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    on_disk = {
        rel: hashlib.sha256((kit / rel).read_bytes()).hexdigest()
        for rel in files
        if rel != "kit.json"
    }
    assert listed == on_disk
    assert manifest["platforms"] == ["linux", "win32", "win_amd64"]
    amd64 = manifest["windows"]["win_amd64"]
    assert amd64["python"] == "3.8" and amd64["runs_on"].startswith("Windows 7 SP1")
    assert amd64["yara_wheel"] == "yara_python-4.5.1-cp38-cp38-win_amd64.whl"
    assert amd64["runtime"]["file"] == "python-3.8.10-embed-amd64.zip"
    # The controller's record lists the same files, so import knows the whole stick.
    record = registry.load(win_stick["kit_id"])
    assert record is not None and record.files == listed
    # README.txt: the Windows procedure, with CRLF for Notepad.
    readme = (kit / "README.txt").read_bytes()
    assert b"\r\n" in readme and b"\n" not in readme.replace(b"\r\n", b"")
    text = readme.decode()
    assert "for Linux and Windows hosts" in text and "E:\\plantsweep-kit\\run.cmd" in text
    assert "win_amd64  Python 3.8: Windows 7 SP1" in text and "KB2999226" in text
    capsys.readouterr()
    assert main(["kit", "list"]) == 0
    (line,) = [li for li in capsys.readouterr().out.splitlines() if win_stick["kit_id"] in li]
    assert "  linux+win32+win_amd64  gate kit  " in line


def test_run_cmd_is_a_thin_crlf_ascii_launcher(win_stick):
    """run.cmd as text (it was never run on Windows here)."""
    data = (win_stick["kit"] / "run.cmd").read_bytes()
    text = data.decode("ascii")  # ASCII only, or this raises
    assert data.endswith(b"\r\n") and "\n" not in text.replace("\r\n", "")
    assert "\r" not in text.replace("\r\n", "")
    lines = text.split("\r\n")
    assert lines[0] == "@echo off" and "setlocal" in lines
    assert "delayedexpansion" not in text.lower() and "!" not in text
    assert not [line for line in lines if line.strip() in ("(", ")") or line.endswith("(")]
    # The machine's CPU, also from a 32-bit cmd.exe on 64-bit Windows.
    assert 'set "PSK_ARCH=%PROCESSOR_ARCHITECTURE%"' in lines
    assert 'if defined PROCESSOR_ARCHITEW6432 set "PSK_ARCH=%PROCESSOR_ARCHITEW6432%"' in lines
    assert 'if /I "%PSK_ARCH%"=="AMD64" set "PSK_PLATFORM=win_amd64"' in lines
    assert 'if /I "%PSK_ARCH%"=="X86" set "PSK_PLATFORM=win32"' in lines
    assert 'if /I "%PSK_ARCH%"=="ARM64" set "PSK_PLATFORM=win_amd64"' in lines
    (arm,) = [li for li in lines if li.startswith('if /I "%PSK_ARCH%"=="ARM64" echo')]
    assert "WARNING" in arm and "emulation of Windows 11, never tested" in arm
    # The runtime must be on the stick; then python.exe runs run_windows.py with every argument.
    runtime = r'"%~dp0windows\%PSK_PLATFORM%\python\python.exe"'
    assert f"if not exist {runtime} goto no_runtime" in lines
    launch = lines.index(f'{runtime} -I -B "%~dp0{SCRIPT}" %*')
    assert lines[launch + 1 : launch + 4] == [
        'set "PSK_RC=%ERRORLEVEL%"',
        'if "%PSK_RC%"=="-1073741515" goto no_ucrt',
        "exit /b %PSK_RC%",
    ]
    assert lines.index("if not defined PSK_PLATFORM goto unknown_cpu") < launch
    # Every goto has its label, and every label ends with an exit code.
    labels = {li[1:]: i for i, li in enumerate(lines) if li.startswith(":")}
    assert (
        set(re.findall(r"goto (\w+)", text))
        == set(labels)
        == {
            "unknown_cpu",
            "no_runtime",
            "no_ucrt",
        }
    )
    for i in labels.values():
        assert lines[i + 1].startswith("echo plantsweep-kit: ERROR: ")
        assert lines[i + 2].startswith("exit /b ")
    assert "build the kit with --windows %PSK_PLATFORM%" in lines[labels["no_runtime"] + 1]
    assert "KB2999226" in lines[labels["no_ucrt"] + 1]
    # Every %~dp0 path is inside double quotes; nothing in a comment or message that cmd.exe
    # would act on (redirection, pipes, escapes, blocks).
    for line in lines:
        for hit in re.finditer("%~dp0", line):
            assert line[: hit.start()].count('"') % 2 == 1, line
        if line.startswith("rem"):
            assert not re.search(r"[<>|&^%]", line), line
        if " echo " in f" {line}" and line != "@echo off":
            message = line.split("echo ", 1)[1].removesuffix(" 1>&2")
            assert line.endswith(" 1>&2") and not re.search(r"[<>|&^()]", message), line


def test_scan_from_the_stick_imports_the_findings_of_a_local_scan(
    win_stick, scanned, capsys, tmp_path
):
    proc, log_path = scanned["proc"], scanned["log"]
    data = log_path.read_bytes()
    # The operator sees where the log went and its SHA-256; run.sh's name for it.
    assert str(log_path) in proc.stdout and hashlib.sha256(data).hexdigest() in proc.stdout
    assert "plantsweep kit: scan finished" in proc.stdout
    assert re.match(r"^[A-Za-z0-9._-]+-\d{8}T\d{6}Z\.json$", log_path.name), log_path.name
    # Its private temp dir held the scanner's copies and is gone.
    assert list(scanned["tmp_parent"].iterdir()) == []
    raw = json.loads(data)
    argv = raw["scanner"]["argv"]
    patterns = argv[argv.index("--patterns") + 1]
    assert re.match(rf"^{re.escape(str(scanned['tmp_parent']))}/plantsweep-kit\.\w+/patterns\.zip$",
                    patterns)  # fmt: skip
    assert argv[argv.index("--wheel-dir") + 1] == str(win_stick["kit"] / "windows/win_amd64/wheels")
    assert argv[argv.index("--log-mac-key") + 1] == str(win_stick["kit"] / "kit.key")
    assert argv[argv.index("--type") + 1] == "folders"

    # The same folder scanned by `plantsweep scan` with a local connection, same patterns.
    host_tmp = tmp_path / "controller-tmp"
    host_tmp.mkdir()
    inventory = tmp_path / "gate.ini"
    inventory.write_text(f"laptop ansible_connection=local ansible_remote_tmp={host_tmp}\n")
    local = run_scan_cli(
        tmp_path / "out", "-i", str(inventory), "--type", "folders", "--path",
        str(win_stick["vendor"]),
    )  # fmt: skip
    assert local.code == 1
    local_log = local.log("laptop")

    stick = _stick_with(win_stick["kit"], tmp_path / "back", [log_path])
    code, err, recap = _import(capsys, stick, tmp_path / "results")
    assert code == 1, err  # findings, nothing refused
    assert [line for line in err if line.startswith("REFUSED")] == []
    (run_dir,) = list((tmp_path / "results").iterdir())
    host = raw["host"]
    imported = json.loads((run_dir / f"{host}.json").read_text())
    eicar = str(win_stick["vendor"] / "tools" / "eicar.com")
    assert {(k[0], k[2].split(":")[0]) for k in finding_keys(imported)} == {
        (eicar, "hash"),
        (eicar, "yara"),
    }
    assert finding_keys(imported) == finding_keys(local_log)
    assert _levels(imported) == _levels(local_log)
    assert imported["kit_import"]["mac_verified"] is True
    assert imported["kit_import"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert (run_dir / "kit-logs" / log_path.name).read_bytes() == data
    assert host in recap


def test_python36_runs_the_script(win_stick, tmp_path):
    """The kit's oldest runtime is CPython 3.6: run_windows.py runs on it (no yara there)."""
    found = [v for v in pythons.available() if v.startswith("3.6.")]
    if not found:
        pytest.skip("no CPython 3.6 on this machine")
    python = str(pythons.available()[found[0]] / "bin" / "python3.6")
    kit = _stick_with(win_stick["kit"], tmp_path, []) / KIT  # a copy without logs
    proc = _run(kit, tmp_path / "temp", "--type", "folders", "--path", str(win_stick["vendor"]),
                python=python)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (log,) = (kit / "logs").glob("*.json")
    raw = json.loads(log.read_bytes())
    assert raw["scanner"]["python"].startswith("3.6.")
    assert {k[2].split(":")[0] for k in finding_keys(raw)} == {"hash"}
    assert list((tmp_path / "temp").iterdir()) == []


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage, reported",
    [
        (
            lambda k: _flip(k / "windows/win_amd64/python/python38.dll"),
            "windows/win_amd64/python/python38.dll",
        ),
        (
            lambda k: (k / "windows/win_amd64/python/version.dll").write_bytes(b"MZ"),
            "windows/win_amd64/python/version.dll (not part of the kit)",
        ),
        (
            lambda k: _flip(
                k / "windows/win_amd64/wheels/yara_python-4.5.1-cp38-cp38-win_amd64.whl"
            ),
            "windows/win_amd64/wheels/yara_python-4.5.1-cp38-cp38-win_amd64.whl",
        ),
        (lambda k: _flip(k / "patterns.zip"), "patterns.zip"),
        (lambda k: _flip(k / "kit.key"), "kit.key"),
        (
            lambda k: (k / SCRIPT).write_bytes((k / SCRIPT).read_bytes() + b"# edited\n"),
            SCRIPT,
        ),
    ],
)
def test_damaged_stick_is_refused_before_the_scan(win_stick, tmp_path, damage, reported):
    kit = _stick_with(win_stick["kit"], tmp_path, []) / KIT  # a copy without logs
    damage(kit)
    proc = _run(kit, tmp_path / "temp", "--type", "folders", "--path", str(win_stick["vendor"]))
    assert proc.returncode == 2, proc.stderr
    assert f"plantsweep-kit: damaged or changed: {reported}\n" in proc.stderr
    assert "the kit on this stick is damaged or was changed: build a new one" in proc.stderr
    assert os.listdir(kit / "logs") == []
    assert list((tmp_path / "temp").iterdir()) == []


def test_failing_scanner_and_kit_options_leave_no_temp_dir(win_stick, tmp_path):
    kit = _stick_with(win_stick["kit"], tmp_path, []) / KIT  # a copy without logs
    temp = tmp_path / "temp"
    proc = _run(kit, temp, "--threads", "0")
    assert proc.returncode == 3 and "--threads must be 1-64" in proc.stderr
    assert "the scanner stopped with exit code 3" in proc.stderr
    assert list(temp.iterdir()) == []
    for option in ("--out", "--log-mac-key=/tmp/k", "--wheel-dir"):
        proc = _run(kit, temp, option, "x")
        assert proc.returncode == 3
        assert proc.stderr == f"plantsweep-kit: ERROR: {option} is set by the kit itself\n"
    assert list(temp.iterdir()) == [] and os.listdir(kit / "logs") == []


def test_stick_without_a_runtime_for_this_cpu_is_refused(win_stick, tmp_path):
    """This machine's Python is 64-bit: it stands for a win_amd64 host, and a stick with only
    the win32 runtime is refused before anything is written."""
    stick = tmp_path / "stick"
    stick.mkdir()
    assert main(["kit", "build", "--usb", str(stick), "--windows", "win32"]) == 0
    manifest = json.loads((stick / KIT / "kit.json").read_text())
    assert manifest["platforms"] == ["linux", "win32"]
    proc = _run(stick / KIT, tmp_path / "temp")
    assert proc.returncode == 2
    assert proc.stderr == (
        "plantsweep-kit: ERROR: this stick has no Windows runtime for win_amd64 (it has: "
        "win32): build the kit with --windows win_amd64\n"
    )
    assert list((tmp_path / "temp").iterdir()) == []


def test_log_edited_on_the_stick_is_refused(win_stick, scanned, capsys, tmp_path):
    stick = _stick_with(win_stick["kit"], tmp_path / "back", [scanned["log"]])
    _edit_and_import(capsys, stick, scanned["log"].name, win_stick["kit_id"], tmp_path / "r")


def test_ctrl_c_leaves_a_partial_log_and_no_temp_dir(win_stick, capsys, tmp_path):
    """Ctrl-C reaches every program of a console (here: SIGINT to the process group): the
    scanner writes its partial log and MAC, the script removes its temp dir and exits 130."""
    kit = _stick_with(win_stick["kit"], tmp_path, []) / KIT  # a copy without logs
    temp = tmp_path / "temp"
    temp.mkdir()
    code, err = _press_ctrl_c(
        [sys.executable, str(kit / SCRIPT), "--type", "folders", "--path", "/usr"],
        str(kit),
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C", "TMPDIR": str(temp)},
        while_scanning=lambda: _one_entry(temp),
    )
    assert code == 130, err.decode(errors="replace")
    assert b"interrupted: a partial log (complete: false) may be in" in err
    assert list(temp.iterdir()) == []
    _import_partial_log(capsys, tmp_path, tmp_path / "r")


def _one_entry(folder: Path) -> None:
    assert len(list(folder.iterdir())) == 1, list(folder.iterdir())


def test_build_refuses_a_windows_kit_that_was_not_built(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PLANTSWEEP_HOME", str(tmp_path / "home"))
    stick = tmp_path / "stick"
    stick.mkdir()
    capsys.readouterr()
    assert main(["kit", "build", "--usb", str(stick), "--windows", "win32"]) == 4
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "ERROR: no Windows kit for win32 was built yet: run `plantsweep kit build --platform "
        "win32 --python-runtime python-3.8.10-embed-win32.zip` first (CPython's embeddable "
        "package for Windows, a file you bring; 3.8 for Windows 7 hosts)"
    ]
    assert list(stick.iterdir()) == []  # nothing written, not even the staging folder
    assert not list((tmp_path / "home").glob("kits/kit-*.json"))  # and nothing registered
    assert main(["kit", "build", "--usb", str(stick), "--windows", "win_amd64-py37"]) == 4
    assert "no Windows kit for win_amd64 with Python 3.7 was built" in capsys.readouterr().err
    assert main(["kit", "build", "--usb", str(stick), "--windows", "win64"]) == 4
    assert "--windows 'win64': name a platform, win_amd64 or win32" in capsys.readouterr().err
    assert main(["kit", "build", "--platform", "win32", "--windows", "win32"]) == 4
    assert "--windows are for --usb kits" in capsys.readouterr().err
