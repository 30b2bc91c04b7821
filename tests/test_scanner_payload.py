"""orchestrator.payload: the zipapp builder, yara-python wheel helpers, pattern listing."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest

from orchestrator import payload as P
from orchestrator.errors import PayloadError

sys.path.insert(0, str(Path(__file__).resolve().parent / "scanner"))
import scanner_support as S  # noqa: E402


@pytest.fixture(scope="session")
def wheel_dir() -> Path:
    return S.fetch_test_wheels()


def test_build_is_deterministic_and_cached(tmp_path):
    first = P.build_payload(tmp_path / "a")
    second = P.build_payload(tmp_path / "b")
    assert first.name == second.name
    assert first.name.startswith("scanner-") and len(first.stem) == len("scanner-") + 12
    assert first.read_bytes() == second.read_bytes()
    inode = first.stat().st_ino
    assert P.build_payload(tmp_path / "a") == first and first.stat().st_ino == inode
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [first.name]  # no temp left


def test_archive_layout(tmp_path):
    pyz = P.build_payload(tmp_path)
    with zipfile.ZipFile(pyz) as z:
        names = z.namelist()
        infos = z.infolist()
        main = z.read("__main__.py").decode()
    assert names == sorted(names) and names[0] == "__main__.py"
    assert "agentless_scanner/cli.py" in names and "agentless_scanner/scan-log.schema.json" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert {i.date_time for i in infos} == {P.ZIP_DATE_TIME}
    assert {i.external_attr >> 16 for i in infos} == {0o644}
    assert "main(payload=os.path.abspath(sys.argv[0]))" in main
    package_files = sorted(
        p.name for p in (S.REPO / "agentless_scanner").iterdir() if p.suffix in (".py", ".json")
    )
    assert (
        sorted(n.split("/", 1)[1] for n in names if n.startswith("agentless_scanner/"))
        == package_files
    )


def test_source_change_changes_name():
    entries = P.payload_sources()
    changed = [(n, d + b"\n# changed\n" if n.endswith("cli.py") else d) for n, d in entries]
    assert P.payload_hash(entries) != P.payload_hash(changed)
    assert P.payload_hash(entries) == P.payload_hash(list(entries))


def test_pyz_runs_with_isolated_interpreter(tmp_path):
    pyz = P.build_payload(tmp_path)
    proc = subprocess.run(
        [S.PY36, "-I", "-B", str(pyz), "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "--type" in proc.stdout and "--include-mounts" in proc.stdout


def _touch(directory: Path, *names: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_bytes(b"")


def test_find_yara_wheel(tmp_path):
    _touch(
        tmp_path,
        "yara_python-4.5.1-cp38-cp38-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "yara_python-4.5.1-cp38-cp38-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "yara_python-4.5.1-cp38-cp38-manylinux_2_17_i686.manylinux2014_i686.whl",
        "yara_python-4.4.0-cp38-cp38-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "yara_python-4.5.4-cp311-cp311-win_amd64.whl",
        "yara_python-4.5.4-cp311-cp311-win32.whl",
        "yara_python-4.5.4-cp311-cp311-musllinux_1_1_x86_64.whl",
    )
    find = P.find_yara_wheel
    assert find(tmp_path, (3, 8), "x86_64").name.startswith("yara_python-4.5.1-cp38-cp38-many")
    assert "x86_64" in find(tmp_path, (3, 8), "amd64").name
    assert "aarch64" in find(tmp_path, (3, 8), "arm64").name
    assert "i686" in find(tmp_path, (3, 8), "i686").name
    assert find(tmp_path, (3, 11), "win_amd64").name.endswith("win_amd64.whl")
    assert find(tmp_path, (3, 11), "x86", libc="msvc").name.endswith("win32.whl")
    assert find(tmp_path, (3, 11), "x86_64", libc="musl").name.endswith("musllinux_1_1_x86_64.whl")
    assert find(tmp_path, (3, 6), "x86_64") is None
    assert find(tmp_path, (3, 11), "x86_64") is None  # no glibc wheel for 3.11 here
    assert find(tmp_path / "missing", (3, 8), "x86_64") is None
    with pytest.raises(PayloadError):
        find(tmp_path, (3, 8), "x86_64", libc="bionic")


def test_download_wheels(wheel_dir):
    """pip download through the real index (the session fixture fetched cp38/cp311 already;
    this also checks a target without any wheel: CPython 3.6)."""
    results = P.download_wheels(wheel_dir, ["3.8", (3, 6)], ["linux_x86_64"])
    by_version = {r.python_version: r for r in results}
    ok = by_version[(3, 8)]
    assert ok.path is not None and ok.error is None and ok.path.parent == wheel_dir
    assert ok.path.name.startswith("yara_python-4.5.1-cp38-cp38-manylinux")
    missing = by_version[(3, 6)]
    assert missing.path is None and "yara-python" in missing.error
    with pytest.raises(PayloadError, match="unknown platform"):
        P.download_wheels(wheel_dir, ["3.8"], ["solaris_sparc"])
    with pytest.raises(PayloadError, match="bad Python version"):
        P.download_wheels(wheel_dir, ["three"], ["linux_x86_64"])


def test_default_wheel_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("PLANTSWEEP_HOME", str(tmp_path))
    assert P.default_wheel_dir() == tmp_path / "wheels"
    monkeypatch.delenv("PLANTSWEEP_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert P.default_wheel_dir() == tmp_path / "home" / ".cache" / "plantsweep" / "wheels"


def test_pattern_files(tmp_path):
    root = tmp_path / "patterns"
    _touch(root, "a.yar", "b.hashes", "README.md", "bundle.json")
    _touch(root / "sub", "c.txt", "d.yara", "bundle.json")
    files = P.pattern_files(root)
    assert [p.relative_to(root).as_posix() for p in files] == [
        "a.yar",
        "b.hashes",
        "bundle.json",
        "sub/c.txt",
        "sub/d.yara",
    ]
    assert P.default_patterns_dir() == S.SHIPPED_PATTERNS
    shipped = [p.name for p in P.pattern_files(P.default_patterns_dir())]
    assert shipped == [
        "eicar.hashes",
        "eicar.yar",
        "plantsweep-demo-filename.yar",
        "plantsweep-demo-markers.yar",
        "plantsweep-demo.hashes",
    ]


@pytest.mark.parametrize("make", ["file-link", "dir-link", "dangling", "outside-dir"])
def test_pattern_files_refuses_symlinks(tmp_path, make):
    root = tmp_path / "patterns"
    _touch(root, "a.yar")
    outside = tmp_path / "outside"
    _touch(outside, "x.yar")
    if make == "file-link":
        os.symlink(root / "a.yar", root / "b.yar")
    elif make == "dir-link":
        os.symlink(outside, root / "more")
    elif make == "dangling":
        os.symlink(tmp_path / "nothing", root / "c.txt")
    else:
        os.symlink(outside, root / "sub")
    with pytest.raises(PayloadError, match="symlinks are not allowed") as info:
        P.pattern_files(root)
    assert info.value.path is not None and info.value.path.startswith(str(root))
    with pytest.raises(PayloadError, match="not found"):
        P.pattern_files(tmp_path / "nope")


def test_schema_is_valid_and_shipped():
    schema = P.scan_log_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema == S.schema()

    def undocumented(node, where):
        missing = []
        if isinstance(node, dict):
            if "properties" in node:
                for key, sub in node["properties"].items():
                    if "description" not in sub:
                        missing.append(f"{where}.{key}")
                    missing += undocumented(sub, f"{where}.{key}")
            for key in ("items", "additionalProperties"):
                if isinstance(node.get(key), dict):
                    missing += undocumented(node[key], f"{where}[]")
            for sub in node.get("anyOf", []):
                missing += undocumented(sub, where)
        return missing

    assert undocumented(schema, "$") == []
