"""The Windows side of a session, piece by piece: which kit a host gets, the cmd commands, the
launcher that the kit's Python runs, and how their output is read.

The end-to-end run on an emulated Windows host is in tests/test_windows_cmd_e2e.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import hostside_windows as win
from orchestrator.errors import PayloadError
from orchestrator.kit import windows


def fake_kit(root: Path, platform: str, minor: int, key: str) -> Path:
    folder = root / f"{platform}-py3{minor}-{key}"
    folder.mkdir(parents=True)
    manifest = {"platform": platform, "python": f"3.{minor}", "yara_wheel": None, "files": []}
    (folder / "kit.json").write_text(json.dumps(manifest))
    return folder


def test_the_kit_fits_the_hosts_cpu_and_windows_version(tmp_path):
    fake_kit(tmp_path, "win_amd64", 8, "a")
    fake_kit(tmp_path, "win_amd64", 11, "b")
    fake_kit(tmp_path, "win32", 8, "c")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "kit.json").write_text("{not json")  # ignored, not fatal

    def pick(arch: str, nt: tuple[int, int]) -> str:
        return windows.kit_for_host(arch, nt, tmp_path).path.name

    assert pick("AMD64", (10, 0)) == "win_amd64-py311-b"  # the newest Python that runs there
    assert pick("amd64", (6, 3)) == "win_amd64-py311-b"  # 8.1 / 2012 R2
    assert pick("AMD64", (6, 1)) == "win_amd64-py38-a"  # Windows 7 / 2008 R2: 3.8 at most
    assert pick("x86", (6, 1)) == "win32-py38-c"
    with pytest.raises(PayloadError, match="kit build --platform win32"):
        windows.kit_for_host("x86", (6, 0), tmp_path)  # Vista / 2008 needs 3.6
    with pytest.raises(PayloadError, match="XP / Server 2003"):
        windows.kit_for_host("x86", (5, 1), tmp_path)
    with pytest.raises(PayloadError, match="ARM64 CPU"):
        windows.kit_for_host("ARM64", (10, 0), tmp_path)


def test_an_empty_cache_names_the_command_that_builds_the_kit(tmp_path):
    with pytest.raises(PayloadError) as caught:
        windows.kit_for_host("AMD64", (6, 1), tmp_path / "none")
    assert "Python 3.8 or older (built: none)" in caught.value.message
    assert "--platform win_amd64 --python-runtime python-3.x.y-embed-amd64.zip" in str(
        caught.value.message
    )


@pytest.mark.parametrize(
    "root",
    ["C:\\Windows\\Temp", "D:\\plant tmp\\", "c:\\"],
)
def test_temp_roots_that_cmd_leaves_alone_are_accepted(root):
    made = win.new_temp_dir(root)
    parent, name = made.rsplit("\\", 1)
    assert parent + "\\" == root if root.endswith("\\") else parent == root
    assert name.startswith("plantsweep-") and len(name) == len("plantsweep-") + 12


@pytest.mark.parametrize(
    "root", ["/tmp", "Temp", "C:\\%TEMP%", "C:\\a!b", 'C:\\a"b', "C:\\a\\..\\b", "\\\\srv\\s"]
)
def test_temp_roots_that_cmd_would_change_or_that_are_relative_are_refused(root):
    with pytest.raises(ValueError, match="absolute path"):
        win.new_temp_dir(root)


def test_the_probe_is_one_short_command_line_of_built_ins():
    command = win.probe_command("C:\\Windows\\Temp\\plantsweep-0123456789ab", "@@m")
    assert len(command) < 8191  # cmd.exe's limit
    programs = {part.split()[0] for part in command.replace("||", "&").split("&") if part.strip()}
    assert programs <= {"echo", "dir", "reg", "schtasks", "ver", "mkdir", "exit"}
    # mkdir last but the end marker, so every snapshot is taken before the dir exists.
    assert command.index('mkdir "C:\\Windows\\Temp\\plantsweep-') > command.index("schtasks")


def test_sections_read_crlf_and_padded_echo_lines():
    out = (
        b"@@m dir C:\\Windows\\Temp \r\nA.log\r\n\r\nplantsweep-x\r\n"
        b"@@m registry HKLM\\SOFTWARE\r\n\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Siemens\r\n"
        b"@@m ver\r\n\r\nMicrosoft Windows [Version 6.1.7601]\r\n@@m end\r\n"
    )
    found = win.sections(out, "@@m")
    assert found["dir C:\\Windows\\Temp"] == ["A.log", "plantsweep-x"]
    assert found["registry HKLM\\SOFTWARE"] == ["HKEY_LOCAL_MACHINE\\SOFTWARE\\Siemens"]
    assert win.parse_ver(found["ver"]) == win.WindowsVersion("6.1.7601", (6, 1))
    assert found["end"] == []


def test_the_cpu_is_the_operating_systems_even_from_a_32_bit_shell():
    assert win.parse_arch("arch AMD64 %PROCESSOR_ARCHITEW6432%") == "AMD64"
    assert win.parse_arch("arch x86 AMD64") == "AMD64"  # WOW64
    assert win.parse_arch("arch x86 %PROCESSOR_ARCHITEW6432%") == "X86"


def launch(request: bytes, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """The launcher as the kit's Python runs it (here: this machine's Python)."""
    return subprocess.run(
        [sys.executable, "-I", "-B", "-c", win.LAUNCHER], input=request, cwd=cwd,
        capture_output=True, timeout=60,
    )  # fmt: skip


def test_the_launcher_runs_a_file_with_argv_and_environment_from_stdin(tmp_path):
    (tmp_path / "tool.py").write_text(
        "import os, sys\nprint(repr(sys.argv[1:]), os.environ['TEMP'])\nsys.exit(3)\n"
    )
    tricky = ['a "quoted" & piped | arg', "%PATH%", "C:\\dir with space\\"]
    done = launch(win.python_request(["tool.py", *tricky], {"TEMP": "T:\\x"}), tmp_path)
    assert done.returncode == 3, done.stderr
    assert done.stdout.decode().strip() == f"{tricky!r} T:\\x"


def test_the_launcher_runs_a_script_as_main(tmp_path):
    code = "import sys\nif __name__ == '__main__':\n    print('main', sys.argv)\n"
    done = launch(win.python_request(["-c", "x"], {}, code), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().strip() == "main ['-c', 'x']"


def test_the_launcher_has_nothing_cmd_exe_would_act_on():
    assert not set(win.LAUNCHER) & set('"%!^')
    command = win.python_command("C:\\T\\plantsweep-1", "C:\\T\\plantsweep-1\\kit\\python.exe")
    assert command.startswith('cd /d "C:\\T\\plantsweep-1" && "C:\\T\\plantsweep-1\\kit\\')
