"""The built scanner zipapp, run as a subprocess under CPython 3.6, 3.8 and 3.11."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "scanner"))
import scanner_support as S  # noqa: E402


@pytest.fixture(scope="session")
def payload(tmp_path_factory) -> Path:
    return S.build_test_payload(tmp_path_factory)


@pytest.fixture(scope="session")
def wheel_dir() -> Path:
    return S.fetch_test_wheels()


PYTHONS = sorted(S.INTERPRETERS)


def test_interpreters_exist():
    for name, path in S.INTERPRETERS.items():
        assert Path(path).exists(), f"{name}: {path} is required by these tests"
    out = subprocess.run(
        [S.PY36, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "(3, 6)"


def _scan(tmp_path, python, pyz, args, name="scan.json", **kw):
    own = tmp_path / "own"
    target = (
        S.install_payload(pyz, own) if not (own / "scanner.pyz").exists() else own / "scanner.pyz"
    )
    outdir = tmp_path / "out"
    outdir.mkdir(exist_ok=True)
    run = S.run_scanner(python, target, args, outdir / name, **kw)
    return run, own, outdir


@pytest.mark.parametrize("py", PYTHONS)
def test_planted_tree_exact_findings(tmp_path, py, payload, wheel_dir):
    tree = tmp_path / "tree"
    expected = S.plant_tree(tree)
    patterns = S.combined_patterns(tmp_path / "patterns")
    run, own, _ = _scan(
        tmp_path,
        S.INTERPRETERS[py],
        payload,
        [
            "--type",
            "folders",
            "--path",
            str(tree),
            "--patterns",
            str(patterns),
            "--wheel-dir",
            str(wheel_dir),
            "--scan-id",
            "t-1",
            "--host-name",
            "plc-7",
        ],
    )
    assert run.rc == 0, run.stderr
    log = run.log
    S.validate(log)
    yara = log["engines"]["yara"]
    if py in S.WITH_YARA:
        assert yara["available"] is True and yara["source"] == "wheel", yara
        assert yara["wheel"].startswith("yara_python-") and f"-cp3{py[3:]}-" in yara["wheel"]
        assert yara["rules_loaded"] == 3
        assert S.finding_set(log) == expected["hash"] | expected["yara"]
    else:
        assert yara["available"] is False
        assert "no yara_python wheel for cp36" in yara["reason"]
        assert "no yara module" in yara["reason"]
        assert S.finding_set(log) == expected["hash"]
    # The scratch dir the wheel was unpacked into is gone again.
    assert sorted(p.name for p in own.iterdir()) == ["scanner.pyz"]
    assert log["scan_id"] == "t-1" and log["host"] == "plc-7"
    assert log["scan_type"] == "folders" and log["action"] == "log-only"
    assert log["complete"] is True and log["cleanup"] is None
    assert log["patterns"]["name"] == "plantsweep-test"
    assert log["patterns"]["version"] == "test-1" and log["patterns"]["source"] == "bundle.json"
    assert log["patterns"]["hash_iocs"] == 4 and log["patterns"]["errors"] == []
    assert log["stats"]["files_scanned"] == 12 and log["stats"]["errors"] == 0
    assert log["stats"]["findings"] == len(log["findings"])
    assert all(f["action"] == "logged" for f in log["findings"])
    by_rule = {m["rule"]: (f, m) for f in log["findings"] for m in f["matches"]}
    eicar_file, eicar_hash = by_rule["sha256:" + S.EICAR_SHA256]
    assert eicar_hash["description"].startswith("EICAR") and eicar_hash["score"] == 100
    assert eicar_file["md5"] == "44d88612fea8a8f36de82e1278abb02f"
    assert eicar_hash["source"] == "eicar.hashes" and eicar_file["level"] == "alert"
    if py in S.WITH_YARA:
        probe, ext = by_rule["PlantsweepTest_ExternalVars"]
        assert ext["tags"] == ["probe"] and ext["meta"]["score"] == 50
        assert ext["source"] == "test-rules.yar" and ext["scope"] == "path"
        assert probe["score"] == 50 and probe["level"] == "notice"
    assert run.summary == {
        "out": str(run.out),
        "files_scanned": 12,
        "findings": len(log["findings"]),
        "errors": 0,
    }


@pytest.mark.parametrize("py", PYTHONS)
def test_hostile_tree(tmp_path, py, payload):
    tree = tmp_path / "hostile"
    facts = S.plant_hostile(tree, max_size=4096)
    patterns = S.combined_patterns(tmp_path / "patterns")
    run, _, _ = _scan(
        tmp_path,
        S.INTERPRETERS[py],
        payload,
        [
            "--type",
            "folders",
            "--path",
            str(tree),
            "--patterns",
            str(patterns),
            "--max-size",
            "4096",
        ],
        timeout=120,
    )
    assert run.rc == 0, run.stderr
    log = run.log
    S.validate(log)
    stats = log["stats"]
    assert stats["skipped"] == {
        "symlink": 4,
        "fifo": 1,
        "socket": 1,
        "char-device": 1,
        "block-device": 1,
        "too-large": 1,
    }
    assert stats["errors"] == 0
    # eicar-target, bad name, exact.bin, deep sample
    assert stats["files_scanned"] == 4
    assert stats["dirs_scanned"] == 1 + 1 + 100  # root, loops/, 100 deep levels
    kinds = {(e["kind"], e["path"]) for e in log["errors"]}
    assert ("fifo", str(tree / "fifo")) in kinds
    assert ("too-large", str(tree / "big.bin")) in kinds
    assert ("symlink", str(tree / "loops" / "up")) in kinds
    found = {f["path"]: f for f in log["findings"]}
    bad = [f for f in log["findings"] if "path_b64" in f]
    assert len(bad) == 1
    assert base64.b64decode(bad[0]["path_b64"]) == facts["bad_name"]
    assert bad[0]["path"] == str(tree) + "/bad-\\xff\\xfe-name.dat"
    assert bad[0]["sha256"] == S.sha256(S.SAMPLE1)
    deep = found[os.fsdecode(facts["deep_path"])]
    assert deep["rule"] == "sha1:" + hashlib.sha1(S.SAMPLE3).hexdigest()
    assert str(tree / "eicar-target") in found
    assert str(tree / "link-to-eicar") not in found  # symlink never followed
    assert not any(p.startswith(str(tree / "loops")) for p in found)


def test_permission_denied_as_nobody(payload):
    """Tests run as root, so run the scanner as nobody to meet permission-denied."""
    base = Path(S.tempfile_dir("/var/tmp"))
    try:
        os.chmod(base, 0o755)
        tree = base / "tree"
        (tree / "secret-dir").mkdir(parents=True)
        S.write(tree / "secret-dir" / "inside.dat", S.SAMPLE1)
        os.chmod(tree / "secret-dir", 0o700)
        S.write(tree / "secret.dat", S.SAMPLE1)
        os.chmod(tree / "secret.dat", 0o600)
        S.write(tree / "public.dat", S.SAMPLE1)
        os.chmod(tree / "public.dat", 0o644)
        os.chmod(tree, 0o755)
        own = base / "own"
        pyz = S.install_payload(payload, own)
        os.chmod(own, 0o755)
        os.chmod(pyz, 0o644)
        outdir = base / "out"
        outdir.mkdir()
        shutil.chown(outdir, "nobody", "nogroup")
        patterns = S.combined_patterns(base / "patterns")
        os.chmod(patterns, 0o755)
        for item in patterns.iterdir():
            os.chmod(item, 0o644)
        run = S.run_scanner(
            S.SYSTEM_PYTHON,
            pyz,
            ["--type", "folders", "--path", str(tree), "--patterns", str(patterns)],
            outdir / "scan.json",
            prefix=["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"],
        )
        assert run.rc == 0, run.stderr
        log = run.log
        S.validate(log)
        assert log["stats"]["skipped"] == {"permission-denied": 2}
        denied = {e["path"] for e in log["errors"] if e["kind"] == "permission-denied"}
        assert denied == {str(tree / "secret-dir"), str(tree / "secret.dat")}
        assert [f["path"] for f in log["findings"]] == [str(tree / "public.dat")]
        assert os.stat(outdir / "scan.json").st_uid == 65534
    finally:
        shutil.rmtree(base)


@pytest.mark.parametrize("py", PYTHONS)
def test_asset_scan(tmp_path, py, payload):
    run, _, _ = _scan(tmp_path, S.INTERPRETERS[py], payload, ["--type", "asset"])
    assert run.rc == 0, run.stderr
    log = run.log
    S.validate(log)
    asset = log["asset"]
    assert asset["hostname"] == socket.gethostname() == log["host"]
    assert asset["os"]["id"] == "debian" and asset["os"]["version"] == "12"
    assert asset["os"]["kernel"] == os.uname().release
    assert asset["architecture"] == os.uname().machine
    assert asset["python"]["version"].startswith(
        {"py36": "3.6", "py38": "3.8", "py311": "3.11"}[py]
    )
    assert asset["packages"]["manager"] == "dpkg"
    assert asset["packages"]["count"] == len(asset["packages"]["items"]) == S.dpkg_installed_count()
    names = {p["name"] for p in asset["packages"]["items"]}
    assert {"dpkg", "libc6"} <= names
    interfaces = {i["name"]: i for i in asset["interfaces"]}
    assert interfaces["lo"]["addresses"] == ["127.0.0.1/8", "::1/128"]
    assert interfaces["lo"]["mac"] == "00:00:00:00:00:00"
    assert asset["addresses_source"] == "ip"
    assert asset["boot_time"] and asset["uptime_s"] > 0
    assert log["scope"]["roots"] == [] and log["stats"]["files_scanned"] == 0
    assert log["engines"]["yara"]["available"] is False
    assert log["engines"]["yara"]["reason"] == "not used for this scan type"


@pytest.mark.parametrize("py", PYTHONS)
def test_scanned_files_are_not_modified(tmp_path, py, payload, wheel_dir):
    tree = tmp_path / "tree"
    S.plant_tree(tree)
    S.plant_hostile(tree / "hostile", max_size=4096)
    S.age_atimes(tree)
    # Control: on this filesystem a plain read of an aged file does update its atime,
    # so an unchanged atime below really means O_NOATIME was used.
    control = S.write(tmp_path / "control.dat", b"control")
    S.age_atimes(tmp_path / "control.dat")
    before_control = os.stat(control).st_atime_ns
    control.read_bytes()
    assert os.stat(control).st_atime_ns != before_control
    before = S.snapshot(tree)
    patterns = S.combined_patterns(tmp_path / "patterns")
    run, _, _ = _scan(
        tmp_path,
        S.INTERPRETERS[py],
        payload,
        [
            "--type",
            "folders",
            "--path",
            str(tree),
            "--patterns",
            str(patterns),
            "--wheel-dir",
            str(wheel_dir),
            "--max-size",
            "4096",
        ],
    )
    assert run.rc == 0, run.stderr
    assert run.log["stats"]["files_scanned"] >= 15
    assert S.snapshot(tree) == before


def _strace_events(trace: Path):
    """(syscall, resolved paths, line) for each traced call."""
    import re

    events = []
    for line in trace.read_text(errors="replace").splitlines():
        m = re.match(r"^\d+\s+(\w+)\((.*)$", line)
        if not m:
            continue
        call, rest = m.groups()
        paths = []
        # fd annotations from -y: 5</some/dir>
        fds = re.findall(r"(?:^|[ (,])(?:AT_FDCWD|\d+)<([^>]*)>", rest)
        strings = re.findall(r'"((?:[^"\\]|\\.)*)"', rest)
        if strings:
            for s in strings[:2]:
                paths.append(s if s.startswith("/") or not fds else fds[0] + "/" + s)
        elif fds:
            paths.append(fds[0])
        ret = re.search(r"= (\d+)<([^>]*)>\s*$", rest)
        if ret:
            paths.append(ret.group(2))
        events.append((call, paths, line))
    return events


MUTATING = (
    "creat",
    "mkdir",
    "mkdirat",
    "rmdir",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "chmod",
    "fchmod",
    "fchmodat",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "utime",
    "utimes",
    "utimensat",
    "futimesat",
    "truncate",
    "ftruncate",
    "mknod",
    "mknodat",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
)


@pytest.mark.parametrize("py", ["py36", "py38"])
def test_writes_only_own_dir_and_out_file(tmp_path, py, payload, wheel_dir):
    tree = tmp_path / "tree"
    S.plant_tree(tree)
    S.plant_hostile(tree / "hostile", max_size=4096)
    patterns = S.combined_patterns(tmp_path / "patterns")
    trace = tmp_path / "strace.txt"
    syscalls = ",".join(("open", "openat") + MUTATING)
    run, own, outdir = _scan(
        tmp_path,
        S.INTERPRETERS[py],
        payload,
        [
            "--type",
            "folders",
            "--path",
            str(tree),
            "--patterns",
            str(patterns),
            "--wheel-dir",
            str(wheel_dir),
            "--max-size",
            "4096",
        ],
        prefix=[
            "strace",
            "-f",
            "-qq",
            "-y",
            "-s",
            "65535",
            "-e",
            "trace=" + syscalls,
            "-o",
            str(trace),
        ],
    )
    assert run.rc == 0, run.stderr
    events = _strace_events(trace)
    assert len(events) > 50
    allowed = (str(own) + "/", str(outdir) + "/", "/dev/null")
    writes = []
    tree_opens = []
    for call, paths, line in events:
        if call in ("open", "openat"):
            if str(tree) in line:
                tree_opens.append(line)
            if not any(flag in line for flag in ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC")):
                continue
        elif call not in MUTATING:
            continue
        if "= -1" in line and call in ("open", "openat"):
            continue
        writes.append((call, paths, line))
    bad = [w for w in writes if not all(p.startswith(allowed) for p in w[1])]
    assert not bad, bad
    # It did write the log, through a temp name in the same dir, and nothing into the tree.
    assert any(call == "rename" or call.startswith("renameat") for call, _, _ in writes)
    assert not any(str(tree) in line for _, _, line in writes)
    # Special files were never opened; regular files were opened with O_NOFOLLOW|O_NOATIME.
    for name in ("fifo", "sock", "chardev", "blockdev"):
        assert not any(f'"{name}"' in line or f"/{name}>" in line for line in tree_opens), name
    file_opens = [line for line in tree_opens if '"sample1.dat"' in line]
    assert file_opens and all("O_NOFOLLOW" in x and "O_NOATIME" in x for x in file_opens)
    if py == "py38":
        assert any(c in ("mkdir", "mkdirat") and str(own) in line for c, _, line in writes)


def test_pyz_imports_only_stdlib_under_36(tmp_path, payload):
    """Import every payload module from the zipapp alone under `python3.6 -I`, then check
    each loaded module came from the zipapp or the interpreter's own stdlib."""
    pyz = S.install_payload(payload, tmp_path / "own")
    code = (
        "import sys, os, sysconfig\n"
        f"sys.path.insert(0, {str(pyz)!r})\n"
        "import zipfile\n"
        f"names = [n for n in zipfile.ZipFile({str(pyz)!r}).namelist() if n.endswith('.py')]\n"
        "mods = [n[:-3].replace('/', '.') for n in names if n.startswith('agentless_scanner/')]\n"
        "mods = [m[:-9] if m.endswith('.__init__') else m for m in mods]\n"
        "import importlib\n"
        "for m in mods: importlib.import_module(m)\n"
        "std = sysconfig.get_paths()['stdlib']\n"
        "bad = []\n"
        "for name, mod in sorted(sys.modules.items()):\n"
        "    f = getattr(mod, '__file__', None)\n"
        "    if name.split('.')[0] in ('orchestrator',):\n"
        "        bad.append(name)\n"
        "    elif f and not (f.startswith(std) or f.startswith(" + repr(str(pyz)) + ")):\n"
        "        bad.append((name, f))\n"
        "print(len(mods), bad)\n"
    )
    proc = subprocess.run(
        [S.PY36, "-I", "-B", "-c", code], capture_output=True, text=True, cwd=str(S.REPO)
    )  # cwd holds orchestrator/: -I must keep it out
    assert proc.returncode == 0, proc.stderr
    count, bad = proc.stdout.strip().split(" ", 1)
    assert int(count) >= 14
    assert bad == "[]"


@pytest.mark.parametrize("py", PYTHONS)
def test_deadline_gives_partial_log(tmp_path, py, payload):
    tree = tmp_path / "tree"
    for i in range(200):
        S.write(tree / f"d{i % 10}" / f"f{i}.txt", b"x" * i)
    run, _, _ = _scan(
        tmp_path,
        S.INTERPRETERS[py],
        payload,
        [
            "--type",
            "folders",
            "--path",
            str(tree),
            "--path",
            str(tmp_path / "own"),
            "--deadline",
            "0.001",
        ],
    )
    assert run.rc == 0, run.stderr
    log = run.log
    S.validate(log)
    assert log["complete"] is False
    deadline = [e for e in log["errors"] if e["kind"] == "deadline"]
    assert len(deadline) == 1 and deadline[0]["category"] == "error"
    assert "partial" in deadline[0]["message"]
    assert log["stats"]["errors"] == 1 and log["stats"]["files_scanned"] < 200
    assert [r["status"] for r in log["scope"]["roots"]] == ["interrupted", "not-reached"]
    assert log["scope"]["deadline_s"] == 0.001
    # Control: without the deadline the same scan is complete.
    run2, _, _ = _scan(
        tmp_path,
        S.INTERPRETERS[py],
        payload,
        ["--type", "folders", "--path", str(tree)],
        name="scan2.json",
    )
    assert run2.log["complete"] is True and run2.log["stats"]["files_scanned"] == 200


@pytest.mark.parametrize("py", ["py36", "py311"])
def test_sigterm_gives_partial_log(tmp_path, py, payload):
    """SIGTERM (e.g. the controller's step timeout) stops the walk; the log is still written."""
    tree = tmp_path / "tree"
    for d in range(40):
        (tree / f"d{d:03}").mkdir(parents=True)
        for f in range(100):
            (tree / f"d{d:03}" / f"f{f}").write_bytes(b"x")
    pyz = S.install_payload(payload, tmp_path / "own")
    out = tmp_path / "scan.json"
    cmd = [
        S.INTERPRETERS[py],
        "-I",
        "-B",
        str(pyz),
        "--type",
        "folders",
        "--path",
        str(tree),
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    fd_dir = Path(f"/proc/{proc.pid}/fd")
    give_up = time.monotonic() + 60
    walking = False
    while not walking and proc.poll() is None and time.monotonic() < give_up:
        for fd in list(fd_dir.iterdir()) if fd_dir.exists() else []:
            try:
                if os.readlink(fd).startswith(str(tree / "d0")):
                    walking = True
            except OSError:
                pass
    assert walking, "the scanner never started walking the tree"
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    log = json.loads(out.read_text())
    S.validate(log)
    assert log["complete"] is False
    assert [e["kind"] for e in log["errors"] if e["category"] == "error"] == ["terminated"]
    assert "SIGTERM" in log["errors"][-1]["message"]
    assert log["stats"]["files_scanned"] < 4000
    assert log["scope"]["roots"][0]["status"] == "interrupted"
    assert json.loads(stdout)["files_scanned"] == log["stats"]["files_scanned"]
    shutil.rmtree(tree)  # keep later quick scans of /tmp short


def test_full_scan_plans_mounts(tmp_path, payload):
    """A full scan of this machine (stopped at once by --deadline: only the plan matters)."""
    run, _, _ = _scan(tmp_path, S.PY311, payload, ["--type", "full", "--deadline", "0.001"])
    assert run.rc == 0, run.stderr
    log = run.log
    S.validate(log)
    roots = [r["path"] for r in log["scope"]["roots"]]
    assert roots[0] == "/" and "/dev/shm" in roots
    assert all(r["category"] == "mount" for r in log["scope"]["roots"])
    excluded = {m["mountpoint"]: m["category"] for m in log["scope"]["excluded_mounts"]}
    assert excluded["/proc"] == "pseudo" and excluded["/sys"] == "pseudo"
    assert excluded["/dev/pts"] == "pseudo" and excluded["/sys/fs/cgroup"] == "system-path"
    included = {m["mountpoint"]: m["category"] for m in log["scope"]["included_mounts"]}
    assert included["/"] == "local" and included["/dev/shm"] == "memory"
    assert log["scope"]["mount_table"] == "/proc/self/mountinfo"
    assert log["complete"] is False


@pytest.mark.parametrize("py", ["py36", "py311"])
def test_mounts_inside_a_tree(tmp_path, py, payload):
    """In a private mount namespace: a proc mount inside the tree is not entered (skipped
    before stat), a tmpfs mount is scanned."""
    tree = tmp_path / "tree"
    S.write(tree / "top.dat", S.SAMPLE1)
    (tree / "procmnt").mkdir()
    (tree / "tmpfsmnt").mkdir()
    own = tmp_path / "own"
    pyz = S.install_payload(payload, own)
    patterns = S.combined_patterns(tmp_path / "patterns")
    out = tmp_path / "scan.json"
    script = (
        f"mount -t proc proc {tree}/procmnt && mount -t tmpfs tmpfs {tree}/tmpfsmnt && "
        f"printf 'plantsweep hash ioc sample 1\\n' > {tree}/tmpfsmnt/in-tmpfs.dat && "
        f"exec {S.INTERPRETERS[py]} -I -B {pyz} --type folders --path {tree} "
        f"--patterns {patterns} --out {out}"
    )
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    log = json.loads(out.read_text())
    S.validate(log)
    assert log["stats"]["skipped"] == {"excluded-mount": 1}
    assert [e["path"] for e in log["errors"]] == [str(tree / "procmnt")]
    excluded = {m["mountpoint"]: m["fstype"] for m in log["scope"]["excluded_mounts"]}
    assert excluded[str(tree / "procmnt")] == "proc"
    included = {m["mountpoint"]: m["fstype"] for m in log["scope"]["included_mounts"]}
    assert included[str(tree / "tmpfsmnt")] == "tmpfs"
    assert {f["path"] for f in log["findings"]} == {
        str(tree / "top.dat"),
        str(tree / "tmpfsmnt" / "in-tmpfs.dat"),
    }
    assert not (tree / "tmpfsmnt" / "in-tmpfs.dat").exists()  # the namespace is gone


@pytest.mark.parametrize("py", ["py36", "py311"])
def test_named_root_on_removable_mount_is_scanned(tmp_path, py, payload):
    """Checkpoint case: `--type folders --path /media/stick` scans the stick although
    removable media is excluded by default; a removable mount *below* it is still skipped.
    (Private mount namespace; /media is covered by a tmpfs there, the host is untouched.)"""
    pyz = S.install_payload(payload, tmp_path / "own")
    out = tmp_path / "scan.json"
    script = (
        "set -e; mount -t tmpfs tmpfs /media; mkdir /media/stick; "
        "mount -t tmpfs tmpfs /media/stick; mkdir /media/stick/inner /media/stick/plain; "
        "mount -t tmpfs tmpfs /media/stick/inner; "
        "printf 'plantsweep hash ioc sample 1\\n' > /media/stick/plain/s1.dat; "
        "printf 'plantsweep hash ioc sample 1\\n' > /media/stick/inner/s1.dat; "
        f"exec {S.INTERPRETERS[py]} -I -B {pyz} --type folders --path /media/stick "
        f"--patterns {S.TEST_PATTERNS} --out {out}"
    )
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    log = json.loads(out.read_text())
    S.validate(log)
    assert [f["path"] for f in log["findings"]] == ["/media/stick/plain/s1.dat"]
    assert log["stats"]["skipped"] == {"excluded-mount": 1}
    assert [e["path"] for e in log["errors"]] == ["/media/stick/inner"]
    assert log["scope"]["roots"][0]["status"] == "scanned"
    excluded = {m["mountpoint"]: m["category"] for m in log["scope"]["excluded_mounts"]}
    assert excluded["/media/stick"] == excluded["/media/stick/inner"] == "removable"
    assert not Path("/media/stick").exists()  # nothing leaked out of the namespace


def test_quick_scan(tmp_path, payload):
    """Quick scan of this machine: system folders, startup, temp dirs (own dir skipped)."""
    assert str(tmp_path).startswith("/tmp/")
    planted = S.write(tmp_path / "drop" / "dropper.com", S.EICAR)
    # Quick scans run YARA on executables, scripts, macro documents and archives only; every
    # file is still hashed.
    data_file = S.write(tmp_path / "drop" / "notes.dat", S.EICAR)
    own = tmp_path / "own"
    S.install_payload(payload, own)
    S.write(own / "copy-in-own-dir.bin", S.EICAR)  # must not be found: scanner's own dir
    run, _, _ = _scan(
        tmp_path, S.PY311, payload, ["--type", "quick", "--patterns", str(S.SHIPPED_PATTERNS)]
    )
    assert run.rc == 0, run.stderr
    log = run.log
    S.validate(log)
    roots = {r.get("given", r["path"]): r for r in log["scope"]["roots"]}
    assert roots["/usr/bin"]["status"] == "scanned" and roots["/usr/bin"]["category"] == "system"
    assert roots["/bin"]["path"] == "/usr/bin" and roots["/bin"]["status"] == "duplicate"
    assert roots["/tmp"]["status"] == "scanned" and roots["/tmp"]["category"] == "temp"
    assert roots["/dev/shm"]["status"] == "scanned"
    assert roots["/etc/profile.d"]["category"] == "startup"
    assert roots["/root/Downloads"]["category"] == "downloads"
    paths = {f["path"] for f in log["findings"]}
    assert str(planted) in paths
    engines = {f["path"]: {m["engine"] for m in f["matches"]} for f in log["findings"]}
    assert engines[str(planted)] == {"yara", "hash"}
    assert engines[str(data_file)] == {"hash"} and log["stats"]["yara_skipped_by_type"] > 0
    assert log["performance"]["type_filter"] is True
    assert str(own / "copy-in-own-dir.bin") not in paths
    assert log["stats"]["skipped"].get("scanner-dir", 0) >= 1
    assert log["stats"]["files_scanned"] > 500
    assert {"path": str(own), "reason": "scanner temp dir"} in log["scope"]["excluded_paths"]


@pytest.mark.parametrize("py", ["py36", "py38"])
def test_pattern_errors_are_reported_not_fatal(tmp_path, py, payload, wheel_dir):
    tree = tmp_path / "tree"
    S.plant_tree(tree)
    patterns = tmp_path / "bad"
    shutil.copytree(S.BAD_PATTERNS, patterns)
    os.symlink("good.yar", patterns / "linked.yar")
    run, _, _ = _scan(
        tmp_path,
        S.INTERPRETERS[py],
        payload,
        [
            "--type",
            "folders",
            "--path",
            str(tree),
            "--patterns",
            str(patterns),
            "--wheel-dir",
            str(wheel_dir),
        ],
    )
    assert run.rc == 0, run.stderr
    log = run.log
    S.validate(log)
    errors = log["patterns"]["errors"]
    ioc_errors = [(e["file"], e["line"]) for e in errors if e["file"] == "mixed.ioc"]
    assert ioc_errors == [("mixed.ioc", 3), ("mixed.ioc", 4), ("mixed.ioc", 5)]
    assert any(e["file"] == "linked.yar" and "symlink" in e["message"] for e in errors)
    assert log["patterns"]["name"] == "bad" and log["patterns"]["source"] == "computed"
    assert len(log["patterns"]["version"]) == 12
    rules = {f["rule"] for f in log["findings"]}
    assert "sha256:" + S.sha256(S.SAMPLE1) in rules
    if py == "py38":
        assert any(
            e["file"] == "sub/broken.yara" and "YARA compile error" in e["message"] for e in errors
        )
        assert log["patterns"]["yara_rules"] == 1
        assert "Good_Marker" in rules
    else:
        assert log["patterns"]["yara_rules"] == 0


@pytest.mark.parametrize(
    "args, code",
    [
        ([], 3),
        (["--type", "folders"], 3),
        (["--type", "quick", "--path", "/tmp"], 3),
        (["--type", "full", "--include-mounts", "proc"], 3),
        (["--type", "quick", "--patterns", "/nonexistent-patterns"], 3),
        (["--type", "quick", "--max-size", "-1"], 3),
        (["--type", "quick", "--deadline", "0"], 3),
        (["--type", "bogus"], 3),
    ],
)
def test_bad_arguments_exit_3(tmp_path, payload, args, code):
    pyz = S.install_payload(payload, tmp_path / "own")
    proc = subprocess.run(
        [S.PY36, "-I", "-B", str(pyz), *args, "--out", str(tmp_path / "x.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.startswith("scanner: error:") and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.json").exists() and proc.stdout == ""


@pytest.mark.parametrize("out", ["missing-dir/scan.json", "is-a-dir"])
def test_unwritable_log_exits_5(tmp_path, payload, out):
    pyz = S.install_payload(payload, tmp_path / "own")
    (tmp_path / "is-a-dir").mkdir()
    proc = subprocess.run(
        [S.PY38, "-I", "-B", str(pyz), "--type", "asset", "--out", str(tmp_path / out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 5, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_yara_from_interpreter_without_wheel(tmp_path, payload):
    """No wheel dir: the venv's own yara-python is used and the log says so."""
    tree = tmp_path / "tree"
    expected = S.plant_tree(tree)
    patterns = S.combined_patterns(tmp_path / "patterns")
    run, _, _ = _scan(
        tmp_path,
        S.PY311,
        payload,
        ["--type", "folders", "--path", str(tree), "--patterns", str(patterns)],
    )
    log = run.log
    S.validate(log)
    assert log["engines"]["yara"]["source"] == "interpreter"
    assert "no wheel dir given" in log["engines"]["yara"]["reason"]
    assert S.finding_set(log) == expected["hash"] | expected["yara"]


def test_wheels_dir_next_to_pyz_is_found(tmp_path, payload, wheel_dir):
    tree = tmp_path / "tree"
    S.plant_tree(tree)
    own = tmp_path / "own"
    S.install_payload(payload, own)
    (own / "wheels").mkdir()
    wheel = next(wheel_dir.glob("yara_python-*-cp38-*manylinux*x86_64.whl"))
    shutil.copy2(wheel, own / "wheels" / wheel.name)
    run, _, _ = _scan(
        tmp_path,
        S.PY38,
        payload,
        ["--type", "folders", "--path", str(tree), "--patterns", str(S.SHIPPED_PATTERNS)],
    )
    log = run.log
    assert log["engines"]["yara"]["wheel"] == wheel.name
    assert {"path": str(own / "wheels"), "reason": "wheel dir"} in log["scope"]["excluded_paths"]
    assert sorted(p.name for p in own.iterdir()) == ["scanner.pyz", "wheels"]
    assert sorted(p.name for p in (own / "wheels").iterdir()) == [wheel.name]


def test_broken_wheel_falls_back_to_hash_iocs(tmp_path, payload):
    """A wheel that cannot be imported (here: not a zip at all) leaves YARA unavailable with
    the reason, and the scan goes on with hash IOCs."""
    tree = tmp_path / "tree"
    expected = S.plant_tree(tree)
    wheels = tmp_path / "bad-wheels"
    wheels.mkdir()
    name = "yara_python-4.5.1-cp38-cp38-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    (wheels / name).write_bytes(b"this is not a zip file")
    patterns = S.combined_patterns(tmp_path / "patterns")
    run, own, _ = _scan(
        tmp_path,
        S.PY38,
        payload,
        ["--type", "folders", "--path", str(tree), "--patterns", str(patterns)]
        + ["--wheel-dir", str(wheels)],
    )
    assert run.rc == 0, run.stderr
    log = run.log
    S.validate(log)
    yara = log["engines"]["yara"]
    assert yara["available"] is False
    assert f"wheel {name} could not be imported: BadZipFile" in yara["reason"]
    assert S.finding_set(log) == expected["hash"]
    assert sorted(p.name for p in own.iterdir()) == ["scanner.pyz"]  # scratch removed


@pytest.mark.parametrize("py", ["py36", "py311"])
def test_exclude_paths(tmp_path, py, payload):
    tree = tmp_path / "tree"
    expected = S.plant_tree(tree)
    patterns = S.combined_patterns(tmp_path / "patterns")
    run, _, _ = _scan(
        tmp_path,
        S.INTERPRETERS[py],
        payload,
        ["--type", "folders", "--path", str(tree), "--path", str(tree / "samples" / "deep")]
        + ["--patterns", str(patterns), "--exclude", str(tree / "samples")]
        + ["--exclude", str(tree / "eicar.com")],
    )
    assert run.rc == 0, run.stderr
    log = run.log
    S.validate(log)
    # py311 has the venv's yara-python (no wheel needed), py36 has none.
    everything = expected["hash"] | (expected["yara"] if py == "py311" else set())
    kept = {f for f in everything if "/samples/" not in f[0] and "eicar.com" not in f[0]}
    assert len(kept) == (3 if py == "py311" else 0)
    assert S.finding_set(log) == kept
    assert log["stats"]["skipped"] == {"excluded-path": 3}  # dir, file, and the second root
    assert [r["status"] for r in log["scope"]["roots"]] == ["scanned", "excluded-path"]
    reasons = {e["path"]: e["reason"] for e in log["scope"]["excluded_paths"]}
    assert reasons[str(tree / "samples")] == reasons[str(tree / "eicar.com")] == "--exclude"


@pytest.mark.parametrize("py", ["py36", "py38"])
def test_c_locale_and_non_ascii_names(tmp_path, py, payload):
    """Over SSH the locale is often C/POSIX (Python 3.6 then decodes names as ASCII): paths
    must still come out as the real UTF-8 names, and undecodable ones as path_b64."""
    tree = tmp_path / "prüf-tree"
    facts = S.plant_hostile(tree, max_size=4096)
    S.write(tree / "grüße.dat", S.SAMPLE2)
    run, _, _ = _scan(
        tmp_path,
        S.INTERPRETERS[py],
        payload,
        ["--type", "folders", "--path", str(tree), "--patterns", str(S.TEST_PATTERNS)]
        + ["--max-size", "4096"],
        env={"LC_ALL": "C", "LANG": "C", "PATH": "/usr/bin:/bin"},
    )
    assert run.rc == 0, run.stderr
    log = run.log
    S.validate(log)
    assert log["scope"]["roots"][0]["path"] == str(tree)
    assert "path_b64" not in log["scope"]["roots"][0]
    assert str(tree) in log["scanner"]["argv"]
    paths = {f["path"] for f in log["findings"]}
    assert str(tree / "grüße.dat") in paths
    bad = [f for f in log["findings"] if "path_b64" in f]
    assert [base64.b64decode(f["path_b64"]) for f in bad] == [facts["bad_name"]]
