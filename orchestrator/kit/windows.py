"""The Windows scanner kit: a portable CPython runtime, the scanner zipapp and the yara-python
wheel for one Windows platform, assembled once on the controller and cached.

    kit = build_windows_kit("win_amd64", Path("python-3.8.10-embed-amd64.zip"))
    kit.path  # $PLANTSWEEP_HOME/kits/windows/win_amd64-py38-<hash>/

The runtime is the "embeddable package" CPython publishes for Windows, which the user brings
as a file (this machine has no internet). It is checked before anything is written: the
files an embeddable package has (python.exe, pythonXY.dll, its zipped standard library and
._pth file), a CPU in python.exe's PE header that matches the platform asked for, and no
member that would land outside its folder. The kit folder is written under a temporary name
and renamed when complete; the same inputs give the same folder, which is then reused.

Which Windows versions a runtime runs on is CPython's own support policy (PEP 11 and the
"Using Python on Windows" notes of each release), listed in WINDOWS_SUPPORT.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from orchestrator.errors import PayloadError
from orchestrator.kit import registry
from orchestrator.payload import build_payload, default_wheel_dir, download_wheels, find_yara_wheel

PLATFORMS = {"win_amd64": 0x8664, "win32": 0x014C}  # IMAGE_FILE_MACHINE_AMD64 / _I386
_DLL = re.compile(r"^python3(\d+)\.dll$", re.I)
KIT_FORMAT = 1

#: The oldest Windows each CPython release runs on (PEP 11; python.org's Windows notes).
WINDOWS_SUPPORT = {
    (3, 6): "Windows Vista / Server 2008 and newer",
    (3, 7): "Windows 7 / Server 2008 R2 and newer",
    (3, 8): "Windows 7 SP1 / Server 2008 R2 SP1 and newer (the last for Windows 7)",
}
NEWER_SUPPORT = "Windows 8.1 / Server 2012 R2 and newer (no Windows 7, 8.0 or Server 2008 R2)"


def windows_support(version: tuple[int, int]) -> str:
    return WINDOWS_SUPPORT.get(version, NEWER_SUPPORT)


@dataclass(frozen=True)
class Runtime:
    version: tuple[int, int]
    platform: str
    sha256: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class WindowsKit:
    path: Path
    platform: str
    python: tuple[int, int]
    wheel: str | None  # yara-python wheel file name, None: hash IOCs only on such hosts
    reused: bool  # the same kit was already in the cache

    @property
    def manifest(self) -> dict:
        return json.loads((self.path / "kit.json").read_text())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _pe_machine(data: bytes) -> int | None:
    """The Machine field of a PE file's header, or None if ``data`` is not a PE file."""
    if len(data) < 0x40 or data[:2] != b"MZ":
        return None
    (offset,) = struct.unpack_from("<I", data, 0x3C)
    if offset + 6 > len(data) or data[offset : offset + 4] != b"PE\0\0":
        return None
    return struct.unpack_from("<H", data, offset + 4)[0]


def inspect_runtime(runtime_zip: Path, platform: str) -> Runtime:
    """Check an embeddable CPython zip for ``platform``; PayloadError says what is wrong."""
    where = str(runtime_zip)
    if platform not in PLATFORMS:
        raise PayloadError(f"unknown platform {platform!r}: use {', '.join(PLATFORMS)}")
    try:
        archive = zipfile.ZipFile(runtime_zip)
    except (OSError, zipfile.BadZipFile) as exc:
        raise PayloadError(f"not a readable zip file: {exc}", path=where) from None
    with archive:
        names = archive.namelist()
        for name in names:
            parts = PurePosixPath(name).parts
            if name.startswith("/") or "\\" in name or ".." in parts or ":" in name:
                raise PayloadError(f"refusing member {name!r}: it leaves the folder", path=where)
        top = {n for n in names if "/" not in n.rstrip("/")}
        dlls = [m.group(1) for n in top if (m := _DLL.match(n))]
        if "python.exe" not in top or len(dlls) != 1:
            raise PayloadError(
                "not a CPython embeddable package for Windows (python.exe and one "
                "pythonXY.dll expected at the top)",
                path=where,
            )
        minor = int(dlls[0])
        for needed in (f"python3{minor}.zip", f"python3{minor}._pth"):
            if needed not in top:
                raise PayloadError(f"{needed} is missing: not an embeddable package", path=where)
        machine = _pe_machine(archive.read("python.exe")[:4096])
    if machine is None:
        raise PayloadError("python.exe in the zip is not a Windows executable", path=where)
    if machine != PLATFORMS[platform]:
        found = next((p for p, m in PLATFORMS.items() if m == machine), f"machine {machine:#x}")
        raise PayloadError(f"the runtime is for {found}, not {platform}", path=where)
    version = (3, minor)
    if version < (3, 6):
        raise PayloadError(f"Python 3.{minor}: the scanner needs 3.6 or newer", path=where)
    return Runtime(version, platform, _sha256(runtime_zip), tuple(sorted(names)))


def kits_root() -> Path:
    """Windows kits live beside the USB kits' records, in their own folder."""
    return registry.kits_dir() / "windows"


def _yara_wheel(runtime: Runtime, wheel_dir: Path) -> Path | None:
    found = find_yara_wheel(wheel_dir, runtime.version, runtime.platform, "msvc")
    if found is None:
        version = f"{runtime.version[0]}.{runtime.version[1]}"
        download_wheels(wheel_dir, [version], [runtime.platform])
        found = find_yara_wheel(wheel_dir, runtime.version, runtime.platform, "msvc")
    return found


def build_windows_kit(
    platform: str,
    runtime_zip: Path,
    *,
    wheel_dir: Path | None = None,
    root: Path | None = None,
) -> WindowsKit:
    """Assemble (or reuse) the kit for ``platform`` from ``runtime_zip``."""
    runtime = inspect_runtime(runtime_zip, platform)
    wheel_dir = wheel_dir or default_wheel_dir()
    wheel = _yara_wheel(runtime, wheel_dir)
    root = root or kits_root()
    root.mkdir(parents=True, exist_ok=True)
    payload = build_payload(root / ".payload-cache")
    parts = [runtime.sha256, _sha256(payload), _sha256(wheel) if wheel else "-"]
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]
    minor = runtime.version[1]
    final = root / f"{platform}-py3{minor}-{key}"
    result = WindowsKit(final, platform, runtime.version, wheel.name if wheel else None, True)
    if (final / "kit.json").is_file():
        return result
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        with zipfile.ZipFile(runtime_zip) as archive:
            archive.extractall(staging / "python")
        shutil.copyfile(payload, staging / "scanner.pyz")
        if wheel is not None:
            (staging / "wheels").mkdir()
            shutil.copyfile(wheel, staging / "wheels" / wheel.name)
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        manifest = {
            "format": KIT_FORMAT,
            "platform": platform,
            "python": f"3.{minor}",
            "runs_on": windows_support(runtime.version),
            "runtime": {"file": runtime_zip.name, "sha256": runtime.sha256},
            "yara_wheel": wheel.name if wheel else None,
            "files": [
                {
                    "path": p.relative_to(staging).as_posix(),
                    "sha256": _sha256(p),
                    "size": p.stat().st_size,
                }
                for p in files
            ],
        }
        (staging / "kit.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        try:
            os.replace(staging, final)
        except OSError:
            if not (final / "kit.json").is_file():
                raise
            shutil.rmtree(staging, ignore_errors=True)  # built meanwhile by another run
            return result
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return WindowsKit(final, platform, runtime.version, result.wheel, False)


# Windows NT version -> the newest CPython that still runs on it (PEP 11).
_NEWEST_PYTHON = {(6, 0): (3, 6), (6, 1): (3, 8), (6, 2): (3, 8)}
PLATFORM_OF_ARCH = {"AMD64": "win_amd64", "X86": "win32"}


def newest_python_for(nt_version: tuple[int, int]) -> tuple[int, int] | None:
    """The newest CPython that runs on that Windows (None: no limit, Windows 8.1 and newer)."""
    if nt_version < (6, 0):
        return (0, 0)  # XP / 2003: no CPython 3.6+ runs there (the USB kit cannot help either)
    return _NEWEST_PYTHON.get(nt_version)


def cached_kits(root: Path | None = None) -> list[WindowsKit]:
    """Every complete Windows kit in the cache, newest build first."""
    root = root or kits_root()
    found = []
    for manifest in root.glob("*/kit.json") if root.is_dir() else []:
        try:
            data = json.loads(manifest.read_text())
            major, minor = (int(p) for p in str(data["python"]).split("."))
            kit = WindowsKit(manifest.parent, str(data["platform"]), (major, minor),
                             data.get("yara_wheel"), True)  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged folder is not a kit
        found.append((manifest.stat().st_mtime, kit))
    return [kit for _, kit in sorted(found, key=lambda pair: pair[0], reverse=True)]


def kit_for_host(arch: str, nt_version: tuple[int, int], root: Path | None = None) -> WindowsKit:
    """The kit to push to a host with that CPU and Windows version; PayloadError says which
    kit to build when the cache has none that fits."""
    platform = PLATFORM_OF_ARCH.get(arch.upper())
    if platform is None:
        raise PayloadError(
            f"no Windows kit for a {arch or 'unknown'} CPU: kits exist for x64 (win_amd64) "
            "and x86 (win32)"
        )
    ceiling = newest_python_for(nt_version)
    if ceiling == (0, 0):
        raise PayloadError(
            f"Windows NT {nt_version[0]}.{nt_version[1]} (XP / Server 2003) runs no Python 3.6+ "
            "and speaks no SMB2: scan it with the offline USB kit's logs carried back by hand"
        )
    kits = [k for k in cached_kits(root) if k.platform == platform]
    fitting = [k for k in kits if ceiling is None or k.python <= ceiling]
    if fitting:
        return max(fitting, key=lambda k: k.python)  # newest Python; newest build on a tie
    need = f"Python {ceiling[0]}.{ceiling[1]} or older" if ceiling else "any Python 3.6+"
    have = ", ".join(k.path.name for k in kits) or "none"
    raise PayloadError(
        f"this host needs a {platform} kit with {need} (built: {have}): run plantsweep kit "
        f"build --platform {platform} --python-runtime python-3.x.y-embed-"
        f"{'amd64' if platform == 'win_amd64' else 'win32'}.zip"
    )
