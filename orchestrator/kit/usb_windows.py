"""The Windows part of a USB kit: `plantsweep kit build --usb DIR --windows win_amd64,win32`.

    kits = select(parse_platforms("win_amd64,win32-py38"))   # before anything is written
    described = copy_onto(kits[0], staging, with_wheel=True)

Each platform's runtime comes from the Windows scanner kits cached on this controller
(`plantsweep kit build --platform P --python-runtime FILE.zip`, orchestrator/kit/windows.py):
its `python/` folder and its yara-python wheel land in `windows/<platform>/` on the stick,
checked against the cached kit's own manifest as they are copied. The scanner is the stick's
`scanner.pyz`, shared with the Linux hosts, so every log of one stick has the same scanner.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from orchestrator.errors import PlantsweepError, UsageError
from orchestrator.kit.run_cmd import WINDOWS_DIR
from orchestrator.kit.windows import PLATFORMS, WindowsKit, cached_kits, windows_support

_SPEC = re.compile(r"^(?P<platform>win_amd64|win32)(?:-py3(?P<minor>\d{1,2}))?$")
# The file CPython publishes for each platform: 3.8.10 is the last with Windows 7 support.
RUNTIME_EXAMPLE = {
    "win_amd64": "python-3.8.10-embed-amd64.zip",
    "win32": "python-3.8.10-embed-win32.zip",
}
COPIED = ("python/", "wheels/")  # from a cached kit (its scanner.pyz is the stick's own)


def parse_platforms(text: str) -> list[tuple[str, tuple[int, int] | None]]:
    """`win_amd64,win32-py38` -> [("win_amd64", None), ("win32", (3, 8))]; UsageError."""
    wanted: list[tuple[str, tuple[int, int] | None]] = []
    for item in (part.strip() for part in text.split(",")):
        match = _SPEC.match(item)
        if match is None:
            raise UsageError(
                f"--windows {item!r}: name a platform, {' or '.join(PLATFORMS)}, optionally "
                "with its Python (win_amd64-py38), several separated by commas"
            )
        platform = match["platform"]
        if any(p == platform for p, _ in wanted):
            raise UsageError(f"--windows names {platform} twice: one runtime per platform")
        minor = match["minor"]
        wanted.append((platform, (3, int(minor)) if minor else None))
    return wanted


def build_command(platform: str) -> str:
    return (
        f"plantsweep kit build --platform {platform} --python-runtime {RUNTIME_EXAMPLE[platform]}"
    )


def select(
    wanted: list[tuple[str, tuple[int, int] | None]], root: Path | None = None
) -> list[WindowsKit]:
    """The cached kit for each (platform, Python); UsageError naming the command that builds
    a missing one, or the choice to make when several Python versions are cached."""
    cached = cached_kits(root)  # newest build first
    chosen = []
    for platform, python in wanted:
        kits = [k for k in cached if k.platform == platform]
        if python is not None:
            kits = [k for k in kits if k.python == python]
        if not kits:
            which = f"{platform} with Python {python[0]}.{python[1]}" if python else platform
            raise UsageError(
                f"no Windows kit for {which} was built yet: run `{build_command(platform)}` "
                "first (CPython's embeddable package for Windows, a file you bring; 3.8 for "
                "Windows 7 hosts)"
            )
        versions = sorted({k.python for k in kits})
        if len(versions) > 1:
            names = ", ".join(f"{platform}-py3{minor}" for _, minor in versions)
            raise UsageError(
                f"several Windows kits for {platform} are cached: name one of {names} "
                f"(e.g. --windows {platform}-py3{versions[0][1]})"
            )
        chosen.append(kits[0])  # the newest build of that Python
    return chosen


def _copy_checked(source: Path, dest: Path, sha256: str) -> None:
    digest = hashlib.sha256()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as src, dest.open("wb") as out:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != sha256:
        raise PlantsweepError(
            f"the cached Windows kit is damaged ({source.name} does not match its kit.json): "
            "remove that folder and build the kit again",
            path=str(source),
        )


def copy_onto(kit: WindowsKit, kit_dir: Path, with_wheel: bool) -> dict[str, Any]:
    """Copy the runtime (and the yara wheel, if `with_wheel`) into kit_dir/windows/<platform>/;
    return what kit.json says of it."""
    manifest = kit.manifest
    dest = kit_dir / WINDOWS_DIR / kit.platform
    (dest / "wheels").mkdir(parents=True)  # the scanner's --wheel-dir, even when empty
    for entry in manifest["files"]:
        rel = str(entry["path"])
        if not rel.startswith(COPIED) or (rel.startswith("wheels/") and not with_wheel):
            continue
        parts = Path(rel).parts
        if ".." in parts or Path(rel).is_absolute():
            raise PlantsweepError(f"the cached Windows kit lists {rel!r}", path=str(kit.path))
        _copy_checked(kit.path / rel, dest / rel, str(entry["sha256"]))
    return {
        "python": manifest["python"],
        "runs_on": windows_support(kit.python),
        "yara_wheel": manifest.get("yara_wheel") if with_wheel else None,
        "runtime": manifest.get("runtime"),
        "cached_kit": kit.path.name,
    }


def cached_platforms(root: Path | None = None) -> list[str]:
    """`win_amd64-py38`-style names of the cached Windows kits (for a hint in `kit build`)."""
    return sorted({f"{k.platform}-py3{k.python[1]}" for k in cached_kits(root)})


def copy_all(kits: list[WindowsKit], kit_dir: Path, with_wheel: bool) -> dict[str, Any]:
    described = {kit.platform: copy_onto(kit, kit_dir, with_wheel) for kit in kits}
    return dict(sorted(described.items()))
