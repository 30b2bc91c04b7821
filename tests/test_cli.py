"""The command line: one clear line and exit code 4 for every input error, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import __version__
from orchestrator.campaign import exit_code
from orchestrator.cli import parse_extra_vars
from orchestrator.errors import UsageError
from orchestrator.scan import HostResult


def plantsweep(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def assert_user_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(error_lines) == 1, proc.stderr
    for needle in needles:
        assert needle in error_lines[0], error_lines[0]


def test_version_and_help():
    assert plantsweep("--version").stdout.strip() == f"plantsweep {__version__}"
    help_text = plantsweep("--help").stdout
    for command in ("inventory", "scan", "wheels"):
        assert command in help_text


def test_bad_yaml_names_file_and_line(tmp_path: Path):
    inv = tmp_path / "plant.yml"
    inv.write_text("all:\n  hosts:\n    hmi01: {ansible_host: 10.0.0.1\n    hmi02:\n")
    proc = plantsweep("scan", "-i", str(inv))
    assert_user_error(proc, f"{inv}:")
    assert any(f"{inv}:{n}:" in proc.stderr for n in (3, 4, 5))


def test_unknown_limit_pattern(tmp_path: Path):
    inv = tmp_path / "plant.ini"
    inv.write_text("[hmi]\nhmi01\n")
    assert_user_error(plantsweep("scan", "-i", str(inv), "--limit", "historians"), "historians")


def test_clear_text_password_is_refused_without_echoing_it(tmp_path: Path):
    inv = tmp_path / "plant.yml"
    inv.write_text("all:\n  hosts:\n    hmi01:\n      ansible_password: hunter2-secret\n")
    proc = plantsweep("inventory", "-i", str(inv), "--list")
    assert_user_error(proc, str(inv))
    assert "hunter2-secret" not in proc.stderr + proc.stdout


def test_missing_password_variable_names_host_and_variable(tmp_path: Path):
    inv = tmp_path / "plant.yml"
    secret = "\"{{ lookup('env', 'NO_SUCH_PW') }}\""
    inv.write_text(f"all:\n  hosts:\n    hmi01:\n      ansible_password: {secret}\n")
    proc = plantsweep("scan", "-i", str(inv), "--type", "asset")
    assert_user_error(proc, "hmi01", "NO_SUCH_PW")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["scan"], "--inventory"),
        (["scan", "-i", "x.yml", "--type", "folders"], "--path"),
        (["scan", "-i", "x.yml", "--path", "/srv"], "--type folders"),
        (["scan", "-i", "x.yml", "--forks", "0"], "--forks"),
        (["scan", "-i", "x.yml", "--type", "everything"], "invalid choice"),
        (["scan", "-i", "missing.yml"], "missing.yml"),
        (["scan", "-i", "x.yml", "-e", "novalue"], "key=value"),
        (["scan", "-i", "x.yml", "--out", "/proc/no-such-dir"], "results folder"),
    ],
)
def test_usage_errors(args: list[str], needle: str, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.yml").write_text("all:\n  hosts:\n    h1:\n")
    assert_user_error(plantsweep(*args), needle)


def test_extra_vars_forms(tmp_path: Path):
    varsfile = tmp_path / "vars.yml"
    varsfile.write_text("site: basel\nlines: [1, 2]\n")
    merged = parse_extra_vars(["a=1 b=two", '{"c": 3}', f"@{varsfile}"])
    assert merged == {"a": "1", "b": "two", "c": 3, "site": "basel", "lines": [1, 2]}
    with pytest.raises(UsageError):
        parse_extra_vars(["{not json"])
    bad = tmp_path / "bad.yml"
    bad.write_text("a: [1\n")
    with pytest.raises(UsageError) as info:
        parse_extra_vars([f"@{bad}"])
    assert info.value.path == str(bad) and info.value.line is not None


@pytest.mark.parametrize(
    "statuses, code",
    [
        (["clean", "clean"], 0),
        (["clean", "findings"], 1),
        (["clean", "unreachable"], 2),
        (["failed"], 2),
        (["findings", "failed"], 3),
        (["findings", "unreachable", "clean"], 3),
    ],
)
def test_exit_codes(statuses: list[str], code: int):
    results = [HostResult(host=f"h{i}", status=s) for i, s in enumerate(statuses)]
    assert exit_code(results) == code
