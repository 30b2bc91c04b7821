"""Shared helpers and fixtures for tests/test_scanner_*.py.

The test modules put this directory on sys.path and import this module by name
(``scanner_support``) because tests/ is not a package and its conftest is not ours.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import jsonschema

from orchestrator.payload import build_payload, download_wheels

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent
SHIPPED_PATTERNS = REPO / "orchestrator" / "data" / "patterns"
TEST_PATTERNS = FIXTURES / "patterns"
BAD_PATTERNS = FIXTURES / "bad-patterns"
SCHEMA_PATH = REPO / "agentless_scanner" / "scan-log.schema.json"

PY36 = "/root/.pyenv/versions/3.6.15/bin/python3"
PY38 = "/root/.pyenv/versions/3.8.18/bin/python3"
PY311 = str(REPO / ".venv" / "bin" / "python")
INTERPRETERS = {"py36": PY36, "py38": PY38, "py311": PY311}
#: Interpreters that get a yara-python wheel (there is none for CPython 3.6).
WITH_YARA = {"py38", "py311"}
SYSTEM_PYTHON = "/usr/bin/python3"  # readable by `nobody` (the pyenv ones live under /root)

#: Persistent wheel cache for the tests (not under /tmp: survives runs, no re-download).
WHEEL_CACHE = Path("/var/cache/plantsweep-test-wheels")

# Built by concatenation so this source file is not itself an EICAR test file.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR" + b"-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
MARKER = b"PLANTSWEEP-TEST-MARKER-7f3a9c"
SAMPLE1 = b"plantsweep hash ioc sample 1\n"  # sha256 in test-iocs.txt
SAMPLE2 = b"plantsweep hash ioc sample 2\n"  # md5 in test-iocs.txt (upper case)
SAMPLE3 = b"plantsweep hash ioc sample 3\n"  # sha1 in test-iocs.txt
CLEAN = b"plantsweep clean file\n"  # sha256 only in a commented-out line


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text("utf-8"))


def validate(log: dict) -> None:
    jsonschema.Draft202012Validator(schema()).validate(log)


def combined_patterns(dest: Path) -> Path:
    """Shipped EICAR patterns + test patterns in one directory (bundle.json from the tests)."""
    dest.mkdir(parents=True, exist_ok=True)
    # Only the shipped EICAR patterns: the counts asserted by the tests stay fixed when the
    # shipped demo set grows.
    for item in SHIPPED_PATTERNS.glob("eicar.*"):
        shutil.copy2(item, dest / item.name)
    for item in TEST_PATTERNS.iterdir():
        if item.is_file():
            shutil.copy2(item, dest / item.name)
    return dest


def install_payload(pyz: Path, own_dir: Path) -> Path:
    """Copy the payload into a fresh 'host temp dir', as the controller would."""
    own_dir.mkdir(parents=True, exist_ok=True)
    target = own_dir / "scanner.pyz"
    shutil.copy2(pyz, target)
    return target


class Run:
    def __init__(self, proc: subprocess.CompletedProcess, out: Path):
        self.proc = proc
        self.out = out
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.log = json.loads(out.read_text("utf-8")) if out.exists() else None

    @property
    def summary(self) -> dict:
        lines = [x for x in self.stdout.splitlines() if x.strip()]
        assert len(lines) == 1, self.stdout
        return json.loads(lines[0])


def run_scanner(
    python: str,
    pyz: Path,
    args: list[str],
    out: Path,
    *,
    prefix: list[str] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    cwd: Path | None = None,
) -> Run:
    assert Path(python).exists(), f"interpreter missing on this machine: {python}"
    cmd = list(prefix or []) + [python, "-I", "-B", str(pyz)] + args + ["--out", str(out)]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(cwd) if cwd else None,
        env=env,
    )
    return Run(proc, out)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def plant_tree(root: Path) -> dict[str, set[tuple[str, str, str, str]]]:
    """Create the planted tree. Returns the expected findings (path, sha256, rule, engine)
    for a run without YARA ("hash") and the extra ones with YARA ("yara")."""
    eicar = write(root / "eicar.com", EICAR)
    eicar_ws = write(root / "nested" / "deeper" / "eicar-copy.txt", EICAR + b"\r\n")
    marker = write(root / "docs" / "marker.bin", b"\x00\x01junk " + MARKER + b" more junk\x00")
    probe = write(root / "scripts" / "probe.ps1", b"#!/bin/sh\necho EXTVAR-PROBE\n")
    write(root / "scripts" / "probe.txt", b"#!/bin/sh\necho EXTVAR-PROBE\n")  # wrong name
    s1 = write(root / "samples" / "sample1.dat", SAMPLE1)
    s2 = write(root / "samples" / "sample2.dat", SAMPLE2)
    s3 = write(root / "samples" / "deep" / "sample3.dat", SAMPLE3)
    write(root / "clean" / "readme.txt", CLEAN)
    write(root / "clean" / "random.bin", bytes(range(256)) * 64)
    write(root / "clean" / "empty", b"")
    write(root / "clean" / "almost-eicar.txt", b"prefix " + EICAR)  # not at offset 0
    hash_findings = {
        (str(eicar), EICAR_SHA256, "sha256:" + EICAR_SHA256, "hash"),
        (str(s1), sha256(SAMPLE1), "sha256:" + sha256(SAMPLE1), "hash"),
        (str(s2), sha256(SAMPLE2), "md5:" + hashlib.md5(SAMPLE2).hexdigest(), "hash"),
        (str(s3), sha256(SAMPLE3), "sha1:" + hashlib.sha1(SAMPLE3).hexdigest(), "hash"),
    }
    yara_findings = {
        (str(eicar), EICAR_SHA256, "EICAR_Test_File", "yara"),
        (str(eicar_ws), sha256(EICAR + b"\r\n"), "EICAR_Test_File", "yara"),
        (str(marker), sha256(marker.read_bytes()), "PlantsweepTest_Marker", "yara"),
        (str(probe), sha256(probe.read_bytes()), "PlantsweepTest_ExternalVars", "yara"),
    }
    return {"hash": hash_findings, "yara": yara_findings}


def finding_set(log: dict) -> set[tuple[str, str, str, str]]:
    """(path, sha256, rule, engine) of every match of every finding."""
    return {
        (f["path"], f["sha256"], m["rule"], m["engine"])
        for f in log["findings"]
        for m in f["matches"]
    }


def make_socket(path: Path) -> None:
    """Create a unix socket file at ``path`` (bind in a short dir, then rename: the
    sun_path limit is 108 bytes)."""
    short = Path("/run") if os.access("/run", os.W_OK) else Path("/tmp")
    tmp = short / f"ps-sock-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(tmp))
    finally:
        sock.close()
    os.rename(tmp, path)


def plant_hostile(root: Path, max_size: int) -> dict:
    """A tree that tries to break the walk. Returns facts the tests check."""
    root.mkdir(parents=True, exist_ok=True)
    broot = os.fsencode(root)
    (root / "loops").mkdir()
    os.symlink("self", root / "loops" / "self")  # self-referencing symlink
    os.symlink("..", root / "loops" / "up")  # directory loop through a symlink
    os.symlink("/", root / "loops" / "slash")
    os.symlink(str(root / "eicar-target"), root / "link-to-eicar")
    write(root / "eicar-target", EICAR)
    os.mkfifo(root / "fifo")
    make_socket(root / "sock")
    os.mknod(root / "chardev", 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # like /dev/null
    os.mknod(root / "blockdev", 0o600 | stat.S_IFBLK, os.makedev(7, 0))  # like /dev/loop0
    bad_name = broot + b"/bad-\xff\xfe-name.dat"
    with open(bad_name, "wb") as fh:
        fh.write(SAMPLE1)
    write(root / "big.bin", b"\0" * (max_size + 1))
    write(root / "exact.bin", b"\1" * max_size)  # at the limit: scanned
    # 100 levels of 250-byte names (~25 KB path: far beyond PATH_MAX) with an IOC at the bottom.
    name = b"d" * 250
    fd = os.open(broot, os.O_RDONLY)
    try:
        for _ in range(100):
            os.mkdir(name, dir_fd=fd)
            nxt = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        out = os.open(b"deep-sample.dat", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, SAMPLE3)
        os.close(out)
    finally:
        os.close(fd)
    deep_path = broot + (b"/" + name) * 100 + b"/deep-sample.dat"
    return {"bad_name": bad_name, "deep_path": deep_path}


def snapshot(root: Path) -> dict:
    """Metadata + content hash of every entry under ``root``: never follows symlinks, works
    relative to directory descriptors (paths far beyond PATH_MAX), reads files with
    O_NOATIME so taking the snapshot does not change atimes."""
    result = {}
    for dirpath, dirnames, filenames, dirfd in os.fwalk(os.fsencode(root), follow_symlinks=False):
        st = os.fstat(dirfd)
        result[dirpath] = ("dir", st.st_mode, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        for name in dirnames + filenames:
            st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                continue  # recorded when fwalk enters it
            record = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
            if stat.S_ISREG(st.st_mode):
                fd = os.open(name, os.O_RDONLY | os.O_NOATIME, dir_fd=dirfd)
                try:
                    digest = hashlib.sha256()
                    while chunk := os.read(fd, 1 << 20):
                        digest.update(chunk)
                finally:
                    os.close(fd)
                record += (st.st_atime_ns, digest.hexdigest())
            elif stat.S_ISLNK(st.st_mode):
                record += (os.readlink(name, dir_fd=dirfd),)
            result[os.path.join(dirpath, name)] = record
    return result


def age_atimes(root: Path, days: float = 2.0) -> None:
    """Make atimes old enough that a plain read would update them under relatime."""
    now = time.time()
    atime, mtime = now - days * 86400, now - (days + 1) * 86400
    if root.is_file():
        os.utime(root, (atime, mtime))
        return
    for _dirpath, _dirnames, filenames, dirfd in os.fwalk(os.fsencode(root)):
        for name in filenames:
            if stat.S_ISREG(os.stat(name, dir_fd=dirfd, follow_symlinks=False).st_mode):
                os.utime(name, (atime, mtime), dir_fd=dirfd)


def tempfile_dir(parent: str) -> str:
    return tempfile.mkdtemp(prefix="plantsweep-test-", dir=parent)


def dpkg_installed_count() -> int:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}\n"], capture_output=True, text=True, check=True
    ).stdout
    return sum(1 for line in out.splitlines() if line.endswith(" installed"))


def build_test_payload(tmp_path_factory) -> Path:
    """The zipapp built by orchestrator.payload.build_payload (for a session fixture)."""
    return build_payload(tmp_path_factory.mktemp("payload-cache"))


def fetch_test_wheels() -> Path:
    """yara-python wheels for CPython 3.8 and 3.11 (fetched once into WHEEL_CACHE)."""
    results = download_wheels(WHEEL_CACHE, [(3, 8), (3, 11)], ["linux_x86_64"])
    for result in results:
        assert result.path is not None and result.path.is_file(), result
    return WHEEL_CACHE
