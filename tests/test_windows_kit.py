"""`plantsweep kit build --platform ... --python-runtime ...`: the Windows scanner kit.

There is no Windows here and no CPython embeddable package on this machine (it is a file the
user brings), so the runtime is a zip with the layout of one (python.exe with a real PE header
for the CPU, pythonXY.dll, the zipped standard library, the ._pth file). The yara-python
wheel is the real one for Windows, fetched from PyPI by pip for that platform.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import pytest
from conftest import WINDOWS_WHEELS  # noqa: F401 (tests/test_windows_cmd_e2e.py takes it from here)

from orchestrator.cli import main
from orchestrator.errors import PayloadError
from orchestrator.kit import windows


def pe_header(machine: int) -> bytes:
    """A minimal PE image header: MZ, e_lfanew at 0x3C, then PE\\0\\0 and the Machine."""
    head = bytearray(0x80)
    head[:2] = b"MZ"
    struct.pack_into("<I", head, 0x3C, 0x40)
    head[0x40:0x44] = b"PE\0\0"
    struct.pack_into("<H", head, 0x44, machine)
    return bytes(head)


def embeddable_zip(path: Path, minor: int = 8, machine: int = 0x8664, **extra: bytes) -> Path:
    members = {
        "python.exe": pe_header(machine) + b"\0" * 64,
        "pythonw.exe": pe_header(machine),
        f"python3{minor}.dll": pe_header(machine),
        f"python3{minor}.zip": b"PK\x05\x06" + b"\0" * 18,
        f"python3{minor}._pth": f"python3{minor}.zip\n.\n".encode(),
        "vcruntime140.dll": pe_header(machine),
        "_socket.pyd": pe_header(machine),
        **extra,
    }
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_a_kit_holds_the_runtime_the_scanner_and_the_windows_wheel(tmp_path, win_wheels):
    runtime = embeddable_zip(tmp_path / "python-3.8.10-embed-amd64.zip")
    kit = windows.build_windows_kit("win_amd64", runtime, wheel_dir=win_wheels, root=tmp_path / "k")
    assert not kit.reused and kit.python == (3, 8)
    assert kit.wheel == "yara_python-4.5.1-cp38-cp38-win_amd64.whl"
    manifest = kit.manifest
    assert manifest["runs_on"].startswith("Windows 7 SP1 / Server 2008 R2 SP1")
    paths = {f["path"] for f in manifest["files"]}
    assert {"python/python.exe", "python/python38.dll", "python/python38._pth"} <= paths
    assert {"scanner.pyz", f"wheels/{kit.wheel}"} <= paths
    for entry in manifest["files"]:  # every file is listed with its real hash and size
        data = (kit.path / entry["path"]).read_bytes()
        assert len(data) == entry["size"]
        assert windows.hashlib.sha256(data).hexdigest() == entry["sha256"]
    # The same inputs give the same kit, reused from the cache.
    again = windows.build_windows_kit(
        "win_amd64", runtime, wheel_dir=win_wheels, root=tmp_path / "k"
    )
    assert again.reused and again.path == kit.path
    assert [p.name for p in (tmp_path / "k").iterdir() if not p.name.startswith(".")] == [
        kit.path.name
    ]


def test_the_cli_builds_a_32_bit_kit(tmp_path, win_wheels, capsys, monkeypatch):
    monkeypatch.setenv("PLANTSWEEP_HOME", str(tmp_path / "home"))
    runtime = embeddable_zip(tmp_path / "python-3.8.10-embed-win32.zip", machine=0x014C)
    code = main(
        ["kit", "build", "--platform", "win32", "--python-runtime", str(runtime),
         "--wheel-dir", str(win_wheels)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Python 3.8 for win32: runs on Windows 7 SP1" in out
    assert "yara_python-4.5.1-cp38-cp38-win32.whl" in out
    kits = list((tmp_path / "home" / "kits" / "windows").glob("win32-py38-*/kit.json"))
    assert len(kits) == 1 and json.loads(kits[0].read_text())["platform"] == "win32"


def written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: embeddable_zip(p, machine=0x014C), "the runtime is for win32, not win_amd64"),
        (lambda p: embeddable_zip(p, machine=0xAA64), "the runtime is for machine 0xaa64"),
        (lambda p: embeddable_zip(p, **{"../evil.dll": b"x"}), "leaves the folder"),
        (lambda p: embeddable_zip(p, minor=5), "needs 3.6 or newer"),
        (lambda p: written(p, b"not a zip"), "not a readable zip file"),
        (
            lambda p: zipfile.ZipFile(p, "w").close() or p,
            "not a CPython embeddable package for Windows",
        ),
    ],
)
def test_a_wrong_runtime_is_refused_before_anything_is_written(tmp_path, make, message):
    runtime = make(tmp_path / "runtime.zip")
    with pytest.raises(PayloadError, match=message):
        windows.build_windows_kit("win_amd64", runtime, wheel_dir=tmp_path, root=tmp_path / "k")
    assert not (tmp_path / "k").exists()


def test_windows_support_by_python_version():
    assert "Vista" in windows.windows_support((3, 6))
    assert "Windows 7 SP1" in windows.windows_support((3, 8))
    assert windows.windows_support((3, 11)).startswith("Windows 8.1 / Server 2012 R2")


def test_platform_without_runtime_is_a_usage_error(capsys):
    assert main(["kit", "build", "--platform", "win_amd64"]) == 4
    assert "--platform needs --python-runtime" in capsys.readouterr().err
