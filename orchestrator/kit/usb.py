"""Build the offline USB kit for Linux (and Windows) hosts into DIR/plantsweep-kit/.

    kit = build_kit(Path("/media/usb"), patterns="bundle:site", name="gate", windows="win_amd64")

With `windows`, the cached Windows kits of those platforms are copied into
windows/<platform>/ (usb_windows.py), with run.cmd and run_windows.py beside run.sh.

The kit is staged in a hidden folder next to its final place and renamed when complete, so a
stick pulled half-way never holds something that looks like a kit. It is registered on the
controller (with its log key) before that rename: a kit on a stick is always a known kit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentless_scanner import __version__ as SCANNER_VERSION
from agentless_scanner.logmac import key_text
from agentless_scanner.patterns import BUNDLE_FILE, load_patterns
from orchestrator import __version__, payload
from orchestrator.errors import PlantsweepError, UsageError
from orchestrator.kit import readme_txt, registry, run_cmd, run_sh, run_windows, usb_windows
from orchestrator.pattern_source import BUNDLE_PREFIX, pattern_archive
from orchestrator.results import utc_now

KIT_DIR_NAME = "plantsweep-kit"
MANIFEST = "kit.json"
MANIFEST_FORMAT = "plantsweep-kit/1"
LOGS_DIR = "logs"
WHEELS_DIR = "wheels"
NAME_RE = re.compile(r"^[\w .,:@+()-]{1,100}$")

# Host interpreters and Linux targets a stick may meet; the cache decides what exists
# (PyPI has no yara-python wheel for 3.6, so those hosts use hash IOCs only).
HOST_PYTHONS = tuple((3, minor) for minor in range(6, 14))
LINUX_TARGETS = (
    ("x86_64", "glibc"),
    ("aarch64", "glibc"),
    ("i686", "glibc"),
    ("x86_64", "musl"),
    ("aarch64", "musl"),
)


@dataclass(frozen=True)
class BuiltKit:
    path: Path
    record: registry.KitRecord
    wheels: tuple[str, ...]
    has_yara: bool
    windows: dict[str, dict[str, Any]]  # platform -> what kit.json says of its runtime


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def linux_wheels(wheel_dir: Path) -> list[Path]:
    """One yara-python wheel per Linux host target the cache can serve (pinned version first)."""
    found: set[Path] = set()
    for version in HOST_PYTHONS:
        for machine, libc in LINUX_TARGETS:
            wheel = payload.find_yara_wheel(wheel_dir, version, machine, libc)
            if wheel is not None:
                found.add(wheel)
    return sorted(found)


def _patterns(spec: str | None, dest: Path) -> tuple[dict[str, Any], bool]:
    """The pattern zip, with a bundle.json, and its name/version/date as hosts will log them."""
    source = spec or str(payload.default_patterns_dir())
    _, has_yara = pattern_archive(source, dest)
    with zipfile.ZipFile(dest) as zf:
        has_meta = BUNDLE_FILE in zf.namelist()
    if not has_meta:
        # A plain folder: fix its metadata now. Computed on the host, the date would be the
        # unpack time and the name "patterns", so no two kit logs would agree with the kit.
        loaded = load_patterns(source).as_log()
        meta = {k: loaded[k] for k in ("name", "version", "date")}
        with zipfile.ZipFile(dest, "a", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(BUNDLE_FILE, json.dumps(meta))
    with zipfile.ZipFile(dest) as zf:
        meta = json.loads(zf.read(BUNDLE_FILE))
    described = {k: meta.get(k) for k in ("name", "version", "date")}
    described["source"] = spec if spec and spec.startswith(BUNDLE_PREFIX) else "folder"
    return described, has_yara


def _chmod(path: Path, mode: int) -> None:
    # FAT and exFAT sticks cannot store most modes and refuse the chmod: best effort (run.sh
    # is started with `sh`, so it needs no x bit).
    with contextlib.suppress(OSError):
        path.chmod(mode)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.write_text(text, encoding="utf-8")
    _chmod(path, mode)


def _manifest_files(root: Path) -> dict[str, str]:
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and rel != MANIFEST and not rel.startswith(LOGS_DIR + "/"):
            files[rel] = _sha256(path)
    return files


def build_kit(
    usb: Path,
    patterns: str | None = None,
    name: str | None = None,
    wheel_dir: Path | None = None,
    windows: str | None = None,
) -> BuiltKit:
    """`windows`: "win_amd64,win32" (or "win_amd64-py38"): the Windows runtimes to carry."""
    usb = Path(usb)
    if not usb.is_dir():
        raise UsageError("no such folder (mount the stick first)", path=str(usb))
    target = usb / KIT_DIR_NAME
    if target.exists() or target.is_symlink():
        raise UsageError(
            "already holds a kit: import its logs (plantsweep logs import), then remove it "
            "or use another stick",
            path=str(target),
        )
    if name is not None and not NAME_RE.match(name):
        raise UsageError("--name: 1-100 letters, digits, spaces or . , : @ + ( ) - _")
    # Before anything is written: a Windows kit that was not built yet is a usage error.
    win_kits = usb_windows.select(usb_windows.parse_platforms(windows)) if windows else []
    kit_id = registry.new_kit_id()
    key = registry.new_key()
    created = utc_now()
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{KIT_DIR_NAME}.", dir=usb))
    except OSError as exc:
        raise UsageError(
            f"cannot write on the stick: {exc.strerror or exc}", path=str(usb)
        ) from None
    registered = False
    try:
        scanner = payload.build_payload(payload.default_wheel_dir().parent / "payload")
        shutil.copyfile(scanner, staging / "scanner.pyz")
        described, has_yara = _patterns(patterns, staging / "patterns.zip")
        (staging / WHEELS_DIR).mkdir()
        wheels = linux_wheels(wheel_dir or payload.default_wheel_dir()) if has_yara else []
        for wheel in wheels:
            shutil.copyfile(wheel, staging / WHEELS_DIR / wheel.name)
        on_windows = usb_windows.copy_all(win_kits, staging, with_wheel=has_yara)
        (staging / LOGS_DIR).mkdir()
        _write(staging / "kit.key", key_text(kit_id, key), 0o600)
        _write(staging / "run.sh", run_sh.render(kit_id), 0o755)
        if on_windows:
            (staging / "run.cmd").write_bytes(run_cmd.render(kit_id))
            shutil.copyfile(run_windows.__file__, staging / run_cmd.SCRIPT)
        readme = readme_txt.render(kit_id, name, created, __version__, described, on_windows)
        # Notepad before Windows 10 shows a file with bare LF line endings as one line.
        _write(staging / "README.txt", readme.replace("\n", "\r\n") if on_windows else readme)
        files = _manifest_files(staging)
        manifest = {
            "format": MANIFEST_FORMAT,
            "kit_id": kit_id,
            "name": name,
            "created": created,
            "plantsweep": __version__,
            "scanner": {"file": "scanner.pyz", "version": SCANNER_VERSION},
            "patterns": described,
            "platforms": ["linux", *on_windows],
            "windows": on_windows,
            "files": [{"path": rel, "sha256": digest} for rel, digest in files.items()],
        }
        _write(staging / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        record = registry.KitRecord(
            kit_id=kit_id,
            created=created,
            name=name,
            plantsweep=__version__,
            patterns=described,
            scanner_sha256=files["scanner.pyz"],
            files=files,
            usb=str(target.absolute()),
            key=key,
        )
        registry.save(record)
        registered = True
        _chmod(staging, 0o755)  # mkdtemp made it 0700; the operator's account must read it
        staging.rename(target)
    except OSError as exc:
        if registered:
            registry.forget(kit_id)
        raise PlantsweepError(
            f"cannot write the kit: {exc.strerror or exc}", path=str(exc.filename or target)
        ) from None
    except BaseException:
        if registered:
            registry.forget(kit_id)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BuiltKit(target, record, tuple(w.name for w in wheels), has_yara, on_windows)
