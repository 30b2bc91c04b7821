"""In-process tests of the payload's modules (CPython 3.11; the subprocess tests cover 3.6/3.8)."""

from __future__ import annotations

import ast
import errno
import hashlib
import io
import json
import mmap
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from agentless_scanner import asset, locations, mounts, patterns, scanlog, wheels, yara_engine
from agentless_scanner.filescan import CHUNK_SIZE, FileScanner, ScanOptions, TooLarge, read_file
from agentless_scanner.scanlog import Recorder
from agentless_scanner.walker import DeadlineReached, FdOps, PathOps, Walker

sys.path.insert(0, str(Path(__file__).resolve().parent / "scanner"))
import scanner_support as S  # noqa: E402

PKG = S.REPO / "agentless_scanner"


# -- import rules ---------------------------------------------------------------------------


def test_payload_imports_only_stdlib_and_never_orchestrator():
    stdlib = set(sys.stdlib_module_names)
    seen = set()
    for source in sorted(PKG.glob("*.py")):
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{source.name}: relative import"
                names = [node.module]
                if node.module == "__future__":
                    assert not any(a.name == "annotations" for a in node.names), source.name
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                seen.add(top)
                assert top != "orchestrator", f"{source.name} imports the controller"
                assert top in stdlib or top in ("agentless_scanner", "yara"), (source.name, name)
    assert "yara" in seen  # the optional import exists ...
    yara_users = [p.name for p in PKG.glob("*.py") if "import yara\n" in p.read_text()]
    assert yara_users == ["yara_engine.py"]  # ... in exactly one place, inside a function


def test_payload_source_is_python36_syntax():
    """No syntax newer than 3.6 (walrus, positional-only, match, f-string '=')."""
    for source in sorted(PKG.glob("*.py")):
        tree = ast.parse(source.read_text(), feature_version=(3, 6))
        for node in ast.walk(tree):
            assert not isinstance(node, ast.NamedExpr), source.name
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "run":
                kws = {k.arg for k in node.keywords}
                assert not kws & {"capture_output", "text"}, source.name


# -- patterns -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, expected",
    [
        ("", None),
        ("   # comment", None),
        ("D41D8CD98F00B204E9800998ECF8427E", ("d41d8cd98f00b204e9800998ecf8427e", "md5", "")),
        (
            "da39a3ee5e6b4b0d3255bfef95601890afd80709;empty file",
            ("da39a3ee5e6b4b0d3255bfef95601890afd80709", "sha1", "empty file"),
        ),
        (
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  empty  file ",
            (
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "sha256",
                "empty  file",
            ),
        ),
    ],
)
def test_parse_hash_line(line, expected):
    parsed = patterns.parse_hash_line(line)
    assert parsed == (expected if expected is None else (*expected, 100))


@pytest.mark.parametrize("line", ["xyz", "a" * 33, "g" * 32, "a" * 64 + "0;too long", ";desc"])
def test_parse_hash_line_rejects(line):
    with pytest.raises(ValueError, match="not an MD5, SHA-1 or SHA-256"):
        patterns.parse_hash_line(line)


def test_load_patterns_computed_metadata(tmp_path):
    d = tmp_path / "my-bundle"
    d.mkdir()
    (d / "a.txt").write_text(
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nbad\n"
    )
    (d / "rules.yar").write_text("rule r { condition: true }\n")
    (d / "README.md").write_text("not a pattern file\n")
    os.utime(d / "a.txt", (1_700_000_000, 1_700_000_000))
    os.utime(d / "rules.yar", (1_700_000_500, 1_700_000_500))
    p = patterns.load_patterns(str(d))
    assert p.name == "my-bundle" and p.source == "computed"
    assert p.date == "2023-11-14T22:21:40Z"
    assert [rel for rel, _ in p.files] == ["a.txt", "rules.yar"]
    assert p.errors == [{"file": "a.txt", "line": 2, "message": p.errors[0]["message"]}]
    v1 = p.version
    assert len(v1) == 12 and int(v1, 16) >= 0
    # Content defines the version; mtimes do not.
    os.utime(d / "a.txt", (1, 1))
    assert patterns.load_patterns(str(d)).version == v1
    (d / "rules.yar").write_text("rule r { condition: false }\n")
    assert patterns.load_patterns(str(d)).version != v1


def test_load_patterns_bundle_json_and_bad_bundle(tmp_path):
    (tmp_path / "bundle.json").write_text(json.dumps({"name": "n", "version": "v", "date": "d"}))
    p = patterns.load_patterns(str(tmp_path))
    assert (p.name, p.version, p.date, p.source) == ("n", "v", "d", "bundle.json")
    (tmp_path / "bundle.json").write_text("{not json")
    p = patterns.load_patterns(str(tmp_path))
    assert p.source == "computed" and p.errors[0]["file"] == "bundle.json"


def test_pattern_errors_are_capped(tmp_path):
    (tmp_path / "many.ioc").write_text("bad\n" * 500)
    p = patterns.load_patterns(str(tmp_path))
    assert len(p.errors) == patterns.MAX_PATTERN_ERRORS and p.errors_omitted == 300


def test_signature_base_compiles_with_externals():
    """The public signature-base set (DRL 1.1; reference copy on the dev machines) compiles,
    including the 7 files that need external variables."""
    root = Path("/work/shared/data/yara-rules/yara")
    assert root.is_dir()
    p = patterns.load_patterns(str(root))
    engine = yara_engine.load_yara(None, None)
    assert engine.available
    yara_engine.compile_rules(engine, p)
    assert [e for e in p.errors if "YARA" in e["message"]] == []
    assert engine.rule_count > 5000


def test_compile_errors_name_the_file_and_keep_good_rules(tmp_path):
    (tmp_path / "good.yar").write_text('rule good { strings: $a = "abc" condition: $a }')
    (tmp_path / "bad.yar").write_text("rule bad { condition: nonsense_identifier }")
    p = patterns.load_patterns(str(tmp_path))
    engine = yara_engine.load_yara(None, None)
    yara_engine.compile_rules(engine, p)
    assert engine.rule_count == 1
    assert [e["file"] for e in p.errors] == ["bad.yar"]
    assert "nonsense_identifier" in p.errors[0]["message"]
    hits = yara_engine.match(engine, b"xxabcxx", dict.fromkeys(yara_engine.EXTERNALS, ""), 5)
    assert [h[0] for h in hits] == ["good"]


def test_missing_wheel_dir_reason(tmp_path):
    engine = yara_engine.load_yara(str(tmp_path / "nope"), str(tmp_path))
    assert engine.available and engine.source == "interpreter"  # the venv has yara-python
    assert "does not exist" in engine.reason


def test_wheel_with_unsafe_member_is_refused(tmp_path):
    import zipfile

    machine, libc, ver = wheels.host_platform()
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    evil = tmp_path / f"yara_python-9.9.9-{tag}-{tag}-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../escape.txt", "x")
    own = tmp_path / "own"
    own.mkdir()
    engine = yara_engine.load_yara(str(tmp_path), str(own))
    assert "unsafe member" in engine.reason
    assert not (tmp_path / "escape.txt").exists()
    engine.cleanup()
    assert list(own.iterdir()) == []


def test_file_type_labels():
    assert yara_engine.file_type(b"MZ\x90\x00") == "EXE"
    assert yara_engine.file_type(b"\x7fELF\x02") == "ELF"
    assert yara_engine.file_type(b"#!/bin/sh") == "SCRIPT"
    assert yara_engine.file_type(b"hello") == ""


# -- wheels ---------------------------------------------------------------------------------

W38 = "yara_python-4.5.1-cp38-cp38-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
W38_OLD = "yara_python-4.3.0-cp38-cp38-manylinux_2_5_x86_64.manylinux1_x86_64.whl"
W38_ARM = "yara_python-4.5.1-cp38-cp38-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
W37 = "yara_python-4.5.1-cp37-cp37m-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
W311_28 = "yara_python-4.5.4-cp311-cp311-manylinux_2_28_x86_64.whl"
W311_17 = "yara_python-4.5.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
WWIN = "yara_python-4.5.4-cp311-cp311-win_amd64.whl"
WMUSL = "yara_python-4.5.4-cp311-cp311-musllinux_1_2_x86_64.whl"
ALL = [
    W38,
    W38_OLD,
    W38_ARM,
    W37,
    W311_28,
    W311_17,
    WWIN,
    WMUSL,
    "other-1.0-py3-none-any.whl",
    "README.txt",
]


@pytest.mark.parametrize(
    "py, machine, libc, ver, expected",
    [
        ((3, 8), "x86_64", "glibc", (2, 36), W38),
        ((3, 8), "amd64", "glibc", (2, 12), W38_OLD),  # old glibc: only the manylinux1 build fits
        ((3, 8), "aarch64", "glibc", None, W38_ARM),
        ((3, 7), "x86_64", "glibc", None, W37),
        ((3, 11), "x86_64", "glibc", (2, 36), W311_28),  # newest tag the host supports
        ((3, 11), "x86_64", "glibc", (2, 17), W311_17),
        ((3, 11), "x86_64", "glibc", None, W311_17),  # unknown glibc: most compatible
        ((3, 11), "AMD64", "msvc", None, WWIN),
        ((3, 11), "x86_64", "musl", (1, 2), WMUSL),
        ((3, 6), "x86_64", "glibc", (2, 36), None),
        ((3, 8), "i686", "glibc", (2, 36), None),
    ],
)
def test_select_wheel(py, machine, libc, ver, expected):
    chosen, reason = wheels.select_wheel(ALL, py, machine, libc, ver)
    assert chosen == expected
    if expected is None:
        assert reason.startswith(f"no yara_python wheel for cp{py[0]}{py[1]}")
        assert "found: " in reason


def test_abi3_wheel_is_accepted():
    name = "yara_python-5.0.0-cp38-abi3-manylinux_2_17_x86_64.whl"
    assert wheels.select_wheel([name], (3, 12), "x86_64", "glibc", (2, 36))[0] == name
    assert wheels.select_wheel([name], (3, 7), "x86_64", "glibc", (2, 36))[0] is None


# -- mounts ---------------------------------------------------------------------------------

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw
25 24 0:23 / /dev/shm rw - tmpfs tmpfs rw
26 24 0:24 / /dev/pts rw - devpts devpts rw
27 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
28 27 8:2 / /boot rw - ext4 /dev/sda2 rw
29 27 0:30 / /tmp rw - tmpfs tmpfs rw
30 27 0:31 / /home rw - nfs4 srv:/home rw
31 30 8:33 / /home/local\\040disk rw - xfs /dev/sdc1 rw
32 27 8:17 / /mnt/usb rw - vfat /dev/sdb1 rw
33 27 0:40 / /run/user/1000/gvfs rw - fuse.gvfsd-fuse gvfsd-fuse rw
34 27 8:49 / /mnt/ntfs rw - fuseblk /dev/sdd1 rw
35 27 0:41 / /media/cdrom rw - iso9660 /dev/sr0 ro
36 23 0:42 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
37 27 0:43 / /srv/share rw - cifs //nas/share rw
38 27 0:44 / /tmp rw - tmpfs tmpfs rw
39 27 0:45 / /misc rw - autofs systemd-1 rw
"""


@pytest.fixture
def fake_sysfs(tmp_path):
    """sdb is removable (USB stick), sda/sdc/sdd are fixed."""
    root = tmp_path / "sys"
    for disk, removable, bus in (
        ("sda", "0", "pci"),
        ("sdb", "1", "usb1"),
        ("sdc", "0", "pci"),
        ("sdd", "0", "pci"),
    ):
        base = root / "devices" / bus / "block" / disk
        base.mkdir(parents=True)
        (base / "removable").write_text(removable + "\n")
        for part, minor_off in ((disk + "1", 1), (disk + "2", 2)):
            (base / part).mkdir()
            (base / part / "partition").write_text(str(minor_off))
            major_minor = {"sda": 0, "sdb": 16, "sdc": 32, "sdd": 48}[disk] + minor_off
            link = root / "dev" / "block" / f"8:{major_minor}"
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(base / part)
    return str(root)


def _plan(tokens, sysfs):
    return mounts.plan_mounts(tokens, mounts.parse_mountinfo(MOUNTINFO), "test", sysfs)


def test_mount_classification(fake_sysfs):
    plan = _plan((), fake_sysfs)
    cat = {m.mountpoint: (m.category, m.included) for m in plan.mounts}
    assert cat == {
        "/proc": ("pseudo", False),
        "/sys": ("pseudo", False),
        "/dev": ("pseudo", False),
        "/dev/shm": ("memory", True),
        "/dev/pts": ("pseudo", False),
        "/": ("local", True),
        "/boot": ("local", True),
        "/tmp": ("memory", True),  # the later of the two /tmp mounts (the visible one)
        "/home": ("network", False),
        "/home/local disk": ("local", True),  # \040 unescaped
        "/mnt/usb": ("removable", False),  # sysfs removable=1
        "/run/user/1000/gvfs": ("network", False),  # fuse.*
        "/mnt/ntfs": ("local", True),  # fuseblk is a local disk
        "/media/cdrom": ("removable", False),
        "/sys/fs/cgroup": ("pseudo", False),
        "/srv/share": ("network", False),
        "/misc": ("pseudo", False),  # autofs: never trigger automounts
    }
    assert [m.dev for m in plan.mounts if m.mountpoint == "/tmp"] == [os.makedev(0, 44)]
    # / first; /dev/shm below excluded /dev; the local disk below the NFS /home.
    assert plan.full_scan_roots() == ["/", "/dev/shm", "/home/local disk"]
    assert b"/home" in plan.excluded_mountpoints() and b"/mnt/usb" in plan.excluded_mountpoints()
    assert os.makedev(0, 31) in plan.excluded_devs()
    assert os.makedev(8, 1) not in plan.excluded_devs()


def test_include_mounts_tokens(fake_sysfs):
    plan = _plan(("network", "removable"), fake_sysfs)
    inc = {m.mountpoint for m in plan.included}
    assert {"/home", "/mnt/usb", "/srv/share", "/media/cdrom", "/run/user/1000/gvfs"} <= inc
    assert "/proc" not in inc
    assert plan.full_scan_roots() == ["/", "/dev/shm"]
    only_nfs = {m.mountpoint for m in _plan(("nfs4",), fake_sysfs).included}
    assert "/home" in only_nfs and "/srv/share" not in only_nfs
    assert "/mnt/usb" in {m.mountpoint for m in _plan(("vfat",), fake_sysfs).included}


def test_usb_disk_without_removable_flag_counts_as_removable(tmp_path):
    base = tmp_path / "devices" / "pci0000:00" / "usb2" / "2-1" / "block" / "sde"
    (base / "sde1").mkdir(parents=True)
    (base / "removable").write_text("0\n")
    (base / "sde1" / "partition").write_text("1")
    (tmp_path / "dev" / "block").mkdir(parents=True)
    (tmp_path / "dev" / "block" / "8:65").symlink_to(base / "sde1")
    assert mounts.device_is_removable(8, 65, str(tmp_path))
    assert not mounts.device_is_removable(0, 30, str(tmp_path))


def test_proc_mounts_fallback_parser():
    parsed = mounts.parse_proc_mounts("proc /proc proc rw 0 0\n/dev/sda1 / ext4 rw 0 0\n")
    assert [(m.mountpoint, m.fstype, m.dev) for m in parsed] == [
        ("/proc", "proc", None),
        ("/", "ext4", None),
    ]


# -- quick-scan locations -------------------------------------------------------------------


def test_linux_quick_roots():
    roots = locations.linux_quick_roots(homes=["/root", "/home/op"])
    by_path = {r.path: r.category for r in roots}
    for path in ("/usr/bin", "/usr/local/sbin", "/bin"):
        assert by_path[path] == "system"
    for path in (
        "/etc/systemd/system",
        "/etc/init.d",
        "/var/spool/cron",
        "/home/op/.config/autostart",
        "/etc/xdg/autostart",
    ):
        assert by_path[path] == "startup"
    assert by_path["/etc/cron.d"] == "startup"  # from the /etc/cron* glob on this machine
    for path in ("/tmp", "/var/tmp", "/dev/shm"):
        assert by_path[path] == "temp"
    assert by_path["/root/Downloads"] == by_path["/home/op/Downloads"] == "downloads"


def test_linux_homes_from_passwd(tmp_path):
    (tmp_path / "alice").mkdir()
    homes = locations.linux_homes(
        str(tmp_path / "*"),
        passwd=[(0, "/root"), (1000, "/srv/bob"), (33, "/var/www"), (65534, "/nonexistent")],
    )
    assert homes == sorted(["/root", str(tmp_path / "alice"), "/srv/bob"])


def test_windows_quick_roots():
    env = {
        "SystemRoot": r"C:\Windows",
        "SystemDrive": "C:",
        "ProgramData": r"C:\ProgramData",
        "TEMP": r"C:\Users\op\AppData\Local\Temp",
    }
    roots = locations.windows_quick_roots(env, listdir=lambda p: ["op", "Public", "Default User"])
    got = {(r.path, r.category, r.max_depth) for r in roots}
    assert (r"C:\Windows\System32", "system", 1) in got
    assert (r"C:\Windows\System32\drivers", "system", None) in got
    assert (r"C:\Windows\System32\Tasks", "startup", None) in got
    assert (r"C:\Windows\Temp", "temp", None) in got
    assert (r"C:\Users\op\Downloads", "downloads", None) in got
    assert (
        r"C:\Users\op\AppData\Roaming\Microsoft\Windows\Start Menu\Programs\Startup",
        "startup",
        None,
    ) in got
    assert (r"C:\ProgramData\Microsoft\Windows\Start Menu\Programs\Startup", "startup", None) in got
    assert (r"C:\Users\Public", "downloads", None) in got
    assert not any("Default User" in r.path for r in roots)
    # Unlimited-depth drivers come before the depth-1 System32 walk that would reach it.
    paths = [r.path for r in roots]
    assert paths.index(r"C:\Windows\System32\drivers") < paths.index(r"C:\Windows\System32")


def test_never_descend():
    assert locations.never_descend("/proc") and locations.never_descend("/sys/kernel")
    assert locations.never_descend("/dev/pts")
    assert not locations.never_descend("/dev/shm/x") and not locations.never_descend("/devices")


# -- walker ---------------------------------------------------------------------------------


class _Collect:
    def __init__(self):
        self.files = []

    def __call__(self, fd, path, st):
        self.files.append((path, os.read(fd, 100)))


class VanishingOps(FdOps):
    """Deletes or swaps entries right after they are listed (before they are opened)."""

    def __init__(self, root: Path):
        self.root = root

    def list_dir(self, fd):
        for name, kind, lst in super().list_dir(fd):
            if name == b"vanish.txt":
                os.unlink(self.root / "vanish.txt")
            elif name == b"to-fifo.txt":
                os.unlink(self.root / "to-fifo.txt")
                os.mkfifo(self.root / "to-fifo.txt")
            elif name == b"to-link.txt":
                os.unlink(self.root / "to-link.txt")
                os.symlink("/etc/passwd", self.root / "to-link.txt")
            elif name == b"gone-dir":
                os.rmdir(self.root / "gone-dir")
            yield name, kind, lst


@pytest.mark.parametrize("scandir_fd", [True, False])  # False = the Python 3.6 code path
def test_walker_entries_that_change_after_listing(tmp_path, scandir_fd, monkeypatch):
    monkeypatch.setattr(FdOps, "scandir_fd", scandir_fd)
    for name in ("vanish.txt", "to-fifo.txt", "to-link.txt", "stays.txt"):
        (tmp_path / name).write_text(name)
    (tmp_path / "gone-dir").mkdir()
    rec, got = Recorder(), _Collect()
    signal.alarm(10)  # opening the swapped-in FIFO must not block
    try:
        Walker(rec, got, ops=VanishingOps(tmp_path)).walk(os.fsencode(tmp_path))
    finally:
        signal.alarm(0)
    assert got.files == [(os.fsencode(tmp_path / "stays.txt"), b"stays.txt")]
    assert rec.skipped == {"vanished": 3, "symlink": 1}
    msgs = {e["path"].rsplit("/", 1)[1]: e["message"] for e in rec.entries}
    assert msgs["vanish.txt"].startswith("cannot open")
    assert msgs["to-fifo.txt"] == "replaced by a fifo before it was opened"
    assert msgs["gone-dir"].startswith("cannot open directory")


def test_walker_path_ops_fallback(tmp_path):
    """The path-based variant (used where dir_fd is unsupported, i.e. Windows)."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f.txt").write_text("deep")
    (tmp_path / "top.txt").write_text("top")
    os.symlink("a", tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    rec, got = Recorder(), _Collect()
    Walker(rec, got, ops=PathOps()).walk(os.fsencode(tmp_path))
    assert sorted(p for p, _ in got.files) == sorted(
        [os.fsencode(tmp_path / "top.txt"), os.fsencode(tmp_path / "a" / "b" / "f.txt")]
    )
    assert rec.skipped == {"symlink": 1, "fifo": 1}


def test_walker_depth_limit_visited_and_excluded_dev(tmp_path):
    (tmp_path / "l1" / "l2").mkdir(parents=True)
    (tmp_path / "top.txt").write_text("0")
    (tmp_path / "l1" / "one.txt").write_text("1")
    (tmp_path / "l1" / "l2" / "two.txt").write_text("2")
    rec, got = Recorder(), _Collect()
    walker = Walker(rec, got)
    walker.walk(os.fsencode(tmp_path), max_depth=1)
    assert sorted(d for _, d in got.files) == [b"0", b"1"]
    walker.walk(os.fsencode(tmp_path / "l1"))  # already visited
    assert rec.skipped == {"already-visited": 1}
    shm = os.stat("/dev/shm").st_dev
    rec2 = Recorder()
    Walker(rec2, _Collect(), excluded_devs={shm}).walk(b"/dev/shm")
    assert rec2.skipped == {"excluded-mount": 1}
    rec3 = Recorder()
    Walker(
        rec3, _Collect(), scanner_dirs={(os.stat(tmp_path).st_dev, os.stat(tmp_path).st_ino)}
    ).walk(os.fsencode(tmp_path))
    assert rec3.skipped == {"scanner-dir": 1}


def test_walker_refuses_system_dirs():
    rec = Recorder()
    walker = Walker(rec, _Collect())
    for path in (b"/proc", b"/sys", b"/dev"):
        walker.walk(path)
    assert rec.skipped == {"excluded-path": 3}


def test_walker_deadline_closes_descriptors(tmp_path):
    for i in range(5):
        (tmp_path / f"d{i}").mkdir()
        (tmp_path / f"d{i}" / "f").write_text("x")
    before = len(os.listdir("/proc/self/fd"))
    rec = Recorder()
    walker = Walker(rec, _Collect(), deadline_at=0)  # monotonic() is always past 0
    with pytest.raises(DeadlineReached):
        walker.walk(os.fsencode(tmp_path))
    assert len(os.listdir("/proc/self/fd")) == before


def test_walker_oserror_mapping(tmp_path, monkeypatch):
    (tmp_path / "f.txt").write_text("x")

    class Failing(FdOps):
        def open_file(self, parent, name, path):
            raise OSError(errno.EIO, "Input/output error")

    rec = Recorder()
    Walker(rec, _Collect(), ops=Failing()).walk(os.fsencode(tmp_path))
    assert rec.error_count == 1 and rec.entries[0]["kind"] == "open-error"


def test_bug_in_file_handler_costs_one_file(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    seen = []

    def handler(fd, path, st):
        seen.append(path)
        if path.endswith(b"a.txt"):
            raise KeyError("bug")

    rec = Recorder()
    Walker(rec, handler).walk(os.fsencode(tmp_path))
    assert len(seen) == 2 and rec.error_count == 1 and rec.entries[0]["kind"] == "internal-error"


# -- file reading ---------------------------------------------------------------------------


def test_read_file_notes_growth(tmp_path):
    path = tmp_path / "growing.log"
    path.write_bytes(b"a" * 100)
    fd = os.open(path, os.O_RDONLY)
    fileobj = io.FileIO(fd, "r", closefd=False)
    grown = []

    def readinto(view):
        count = fileobj.readinto(view)
        if count and not grown:
            with open(path, "ab") as fh:
                fh.write(b"b" * 50)
            grown.append(True)
        return count

    try:
        st = os.fstat(fd)
        result = read_file(fd, st, 10_000, keep_data=True, readinto=readinto)
    finally:
        os.close(fd)
    # A short read is the end: what was there is hashed, and the growth is noted.
    assert result.size == 100 and bytes(result.data) == b"a" * 100
    assert result.sha256 == hashlib.sha256(bytes(result.data)).hexdigest()
    assert result.changed == "size changed from 100 to 150 while reading; modified while reading"


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, 3 * CHUNK_SIZE + 7])
@pytest.mark.parametrize("keep", [True, False])
def test_read_file_hashes(tmp_path, size, keep):
    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        result = read_file(fd, os.fstat(fd), 10 * CHUNK_SIZE, keep_data=keep)
    finally:
        os.close(fd)
    assert result.size == size and result.changed is None
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.sha1 == hashlib.sha1(data).hexdigest()
    assert result.md5 == hashlib.md5(data).hexdigest()
    assert result.head == data[:4096]
    assert (bytes(result.data) == data) if keep else result.data is None


def test_large_files_get_a_buffer_of_their_own_that_yara_can_match(tmp_path):
    """Above KEEP_BUFFER_MAX a file is read into a fresh anonymous map, not the thread's
    reused buffer (which therefore stays small), and YARA matches those bytes."""
    import yara

    from agentless_scanner import filescan

    marker = b"PLANTSWEEP-LARGE-" + b"FILE-MARKER"
    data = os.urandom(filescan.KEEP_BUFFER_MAX + 12345) + marker
    path = tmp_path / "large.bin"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        result = read_file(fd, os.fstat(fd), 10 * filescan.KEEP_BUFFER_MAX, keep_data=True)
    finally:
        os.close(fd)
    assert bytes(result.data) == data and result.sha256 == hashlib.sha256(data).hexdigest()
    assert isinstance(result.data.obj, mmap.mmap)
    kept = getattr(filescan._buffers, "buf", None)
    assert kept is None or len(kept) <= filescan.KEEP_BUFFER_MAX
    rule = f'rule large {{ strings: $m = "{marker.decode()}" condition: $m }}'
    rules = yara.compile(source=rule)
    assert [m.rule for m in rules.match(data=result.data)] == ["large"]


def test_read_file_stops_when_growing_past_max(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 2000)
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(TooLarge):
            read_file(fd, os.fstat(fd), 1000, keep_data=False)
    finally:
        os.close(fd)


def test_filescanner_growing_file_is_noted_and_hashed(tmp_path):
    path = tmp_path / "grows.dat"
    path.write_bytes(S.SAMPLE1)
    appended = []

    class Scanner(FileScanner):
        def __call__(self, fd, path_, st):
            fileobj = io.FileIO(fd, "r", closefd=False)

            def readinto(view):
                count = fileobj.readinto(view)
                if count and not appended:
                    with open(path, "ab") as fh:
                        fh.write(b"+")
                    appended.append(True)
                return count

            self.options.readinto = readinto
            return super().__call__(fd, path_, st)

    p = patterns.load_patterns(str(S.TEST_PATTERNS))
    rec = Recorder()
    scanner = Scanner(rec, p, None, ScanOptions(1000))
    Walker(rec, scanner).walk(os.fsencode(tmp_path))
    assert rec.notes == {"changed-during-scan": 1}
    # What was there at open is hashed (the IOC's bytes): a finding that says it changed.
    assert scanner.files_scanned == 1 and len(scanner.findings) == 1
    assert "size changed from 29 to 30" in scanner.findings[0]["changed_during_scan"]
    assert "size changed from 29 to 30 while reading" in rec.entries[0]["message"]


# -- log helpers ----------------------------------------------------------------------------


def test_path_fields():
    assert scanlog.path_fields(b"/tmp/ok-\xc3\xa9") == {"path": "/tmp/ok-é"}
    assert scanlog.path_fields(b"/tmp/bad-\xff") == {
        "path": "/tmp/bad-\\xff",
        "path_b64": "L3RtcC9iYWQt/w==",
    }
    assert scanlog.path_fields("/tmp/x\udcff") == {
        "path": "/tmp/x\\xff",
        "path_b64": "L3RtcC94/w==",
    }


def test_recorder_caps_per_kind_and_category():
    rec = Recorder()
    for i in range(150):
        rec.skip(b"/s%d" % i, "symlink", "m")
    for kind in scanlog.ERROR_KINDS:
        for _ in range(60):
            rec.error(b"/e", kind, "m")
    assert rec.skipped == {"symlink": 150}
    assert rec.error_count == 60 * len(scanlog.ERROR_KINDS)
    listed_errors = [e for e in rec.entries if e["category"] == "error"]
    assert len(listed_errors) == scanlog.CATEGORY_CAP["error"]
    assert sum(1 for e in rec.entries if e["kind"] == "symlink") == scanlog.PER_KIND_CAP
    assert rec.omitted["symlink"] == 50
    assert sum(rec.omitted.values()) + len(rec.entries) == 150 + rec.error_count


def test_sanitize_and_encode():
    doc = {"a": "x\udcff", "b": [b"\xff"], "c": {"k\udc80": 1}, "d": "\ud800!"}
    data = scanlog.encode_log(doc)
    assert json.loads(data.decode("utf-8")) == {
        "a": "x\\xff",
        "b": ["\\xff"],
        "c": {"k\\x80": 1},
        "d": "\\ud800!",
    }


def test_write_atomically(tmp_path):
    target = tmp_path / "log.json"
    scanlog.write_atomically(str(target), b"{}\n")
    assert target.read_bytes() == b"{}\n" and oct(target.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(OSError):
        scanlog.write_atomically(str(tmp_path / "missing" / "log.json"), b"{}")
    (tmp_path / "dir").mkdir()
    with pytest.raises(OSError):
        scanlog.write_atomically(str(tmp_path / "dir"), b"{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "log.json"]


def test_schema_enums_match_the_code():
    schema = S.schema()
    props = schema["properties"]
    assert props["stats"]["properties"]["skipped"]["propertyNames"]["enum"] == list(
        scanlog.SKIP_REASONS
    )
    kinds = set(props["errors"]["items"]["properties"]["kind"]["enum"])
    assert kinds == set(scanlog.SKIP_REASONS) | set(scanlog.ERROR_KINDS) | set(scanlog.NOTE_KINDS)
    assert props["schema_version"]["const"] == __import__("agentless_scanner").SCHEMA_VERSION
    mount_cats = props["scope"]["properties"]["excluded_mounts"]["items"]["properties"]
    for cat in mounts.CATEGORIES:
        assert cat in mount_cats["category"]["description"]


# -- asset ----------------------------------------------------------------------------------


def test_parse_ip_addr():
    text = (
        "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n"
        "4: eth0    inet6 fe80::1/64 scope link \\       valid_lft forever\n"
        "5: veth0@if3    inet 10.0.0.1/24 brd 10.0.0.255 scope global veth0\n"
    )
    assert asset.parse_ip_addr(text) == {
        "lo": ["127.0.0.1/8"],
        "eth0": ["fe80::1/64"],
        "veth0": ["10.0.0.1/24"],
    }


def test_parse_if_inet6():
    text = (
        "00000000000000000000000000000001 01 80 10 80       lo\n"
        "fe8000000000000000fc00fffe000001 04 40 20 80     eth0\n"
    )
    assert asset.parse_if_inet6(text) == {"lo": ["::1/128"], "eth0": ["fe80::fc:ff:fe00:1/64"]}


def test_interfaces_without_ip_tool_use_proc_and_ioctl():
    result, source, errors = asset.interfaces(ip_tool=None)
    assert source == "proc+ioctl" and errors == []
    lo = {i["name"]: i for i in result}["lo"]
    assert lo["addresses"] == ["127.0.0.1/8", "::1/128"]
    assert asset.ioctl_ipv4("no-such-if0") is None
    # Same addresses as `ip` reports (the order may differ).
    with_ip, ip_source, _ = asset.interfaces()
    assert ip_source == "ip"
    assert {i["name"]: sorted(i["addresses"]) for i in with_ip}["lo"] == sorted(lo["addresses"])


def test_package_parsers():
    dpkg = (
        "bash\t5.2.15-2+b2\tamd64\tinstall ok installed\nold\t1\tall\tdeinstall ok config-files\n"
    )
    assert asset.parse_dpkg(dpkg) == [{"name": "bash", "version": "5.2.15-2+b2", "arch": "amd64"}]
    rpm = "bash\t(none):5.1.8-6.el9\tx86_64\nkernel\t1:5.14.0-1\tx86_64\n"
    assert asset.parse_rpm(rpm) == [
        {"name": "bash", "version": "5.1.8-6.el9", "arch": "x86_64"},
        {"name": "kernel", "version": "1:5.14.0-1", "arch": "x86_64"},
    ]
    apk = "C:Q1abc\nP:musl\nV:1.2.4-r2\nA:x86_64\n\nP:busybox\nV:1.36.1-r5\nA:x86_64\n"
    assert asset.parse_apk(apk) == [
        {"name": "musl", "version": "1.2.4-r2", "arch": "x86_64"},
        {"name": "busybox", "version": "1.36.1-r5", "arch": "x86_64"},
    ]


def test_packages_missing_tools_and_timeouts(tmp_path, monkeypatch):
    none = asset.packages(
        tools={"dpkg-query": None, "rpm": None, "apk-db": str(tmp_path / "no-apk-db")}
    )
    assert none == {
        "manager": None,
        "count": 0,
        "items": [],
        "reason": "no package manager found (dpkg-query, rpm, apk)",
    }
    slow = tmp_path / "slow-dpkg"
    slow.write_text("#!/bin/sh\nsleep 5\n")
    slow.chmod(0o755)
    monkeypatch.setattr(asset, "COMMAND_TIMEOUT_S", 0.5)
    monkeypatch.setattr(asset.run_tool, "__defaults__", (0.5,))
    result = asset.packages(
        tools={"dpkg-query": str(slow), "rpm": None, "apk-db": str(tmp_path / "no-apk-db")}
    )
    assert result["manager"] is None and "timed out" in result["reason"]


def test_os_release_parser():
    text = 'NAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n# c\nPRETTY_NAME=\'x y\'\n'
    assert asset.parse_os_release(text) == {
        "NAME": "Debian GNU/Linux",
        "VERSION_ID": "12",
        "ID": "debian",
        "PRETTY_NAME": "x y",
    }


def test_fqdn_does_not_hang(monkeypatch):
    import time

    monkeypatch.setattr(asset, "FQDN_TIMEOUT_S", 0.2)
    monkeypatch.setattr(socket, "getfqdn", lambda: time.sleep(3) or "late")
    start = time.monotonic()
    assert asset._fqdn("plc-7") == "plc-7"
    assert time.monotonic() - start < 2
