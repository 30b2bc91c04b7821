"""The pattern archive the controller pushes: unpacked inside the scanner's dir, or refused."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from orchestrator.campaign import zip_patterns
from orchestrator.payload import build_payload

sys.path.insert(0, str(Path(__file__).parent / "scanner"))
from scanner_support import INTERPRETERS  # noqa: E402


@pytest.fixture(scope="module")
def pyz(tmp_path_factory) -> Path:
    return build_payload(tmp_path_factory.mktemp("payload"))


def _run(py: str, pyz: Path, own: Path, archive: Path, target: Path) -> subprocess.CompletedProcess:
    own.mkdir()
    shutil.copy(pyz, own / "scanner.pyz")
    shutil.copy(archive, own / "patterns.zip")
    return subprocess.run(
        [
            py,
            "-I",
            "-B",
            str(own / "scanner.pyz"),
            "--type",
            "folders",
            "--path",
            str(target),
            "--patterns",
            str(own / "patterns.zip"),
            "--out",
            str(own / "log.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("name", ["py36", "py311"])
def test_archive_is_unpacked_inside_the_scanner_dir(tmp_path, pyz, name):
    patterns = tmp_path / "patterns"
    patterns.mkdir()
    sample = b"archive sample\n"
    (patterns / "iocs.txt").write_text(hashlib.sha256(sample).hexdigest() + ";ArchiveSample\n")
    archive, has_yara = zip_patterns(patterns, tmp_path / "p.zip")
    assert has_yara is False
    target = tmp_path / "target"
    target.mkdir()
    (target / "s.bin").write_bytes(sample)
    proc = _run(INTERPRETERS[name], pyz, tmp_path / "own", archive, target)
    assert proc.returncode == 0, proc.stderr
    log = json.loads((tmp_path / "own" / "log.json").read_text())
    assert [f["description"] for f in log["findings"]] == ["ArchiveSample"]
    assert (tmp_path / "own" / "patterns" / "iocs.txt").is_file()


def test_archive_escaping_its_dir_is_refused(tmp_path, pyz):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("iocs.txt", "")
        zf.writestr("../escaped.txt", "owned")
    target = tmp_path / "target"
    target.mkdir()
    proc = _run(INTERPRETERS["py36"], pyz, tmp_path / "own", archive, target)
    assert proc.returncode == 3
    assert "unsafe member" in proc.stderr
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "own" / "log.json").exists()  # refused, not scanned without rules
