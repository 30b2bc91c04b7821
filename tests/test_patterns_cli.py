"""`plantsweep patterns`: keygen, build, verify, import, list, show, and refusals as one line."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.store_logs import audit_entries


def ps(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PLANTSWEEP_HOME=str(home))
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "patterns", *args],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def test_patterns_command_line(tmp_path: Path):
    home = tmp_path / "home"
    src = tmp_path / "rules"
    src.mkdir()
    (src / "eicar.hashes").write_text(
        "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f;EICAR\n"
    )
    keys = home / "trusted-keys"
    keys.mkdir(parents=True)
    assert (
        ps(
            home, "keygen", "--secret", str(tmp_path / "k.sec"), "--public", str(keys / "k.pub")
        ).returncode
        == 0
    )
    bundle = tmp_path / "site-1.tar"
    built = ps(home, "build", str(src), "--key", str(tmp_path / "k.sec"), "--name", "site",
               "--version", "1", "--expires", "2099-12-31", "--out", str(bundle))  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert ps(home, "verify", str(bundle)).stdout.startswith("OK site version 1")
    imported = ps(home, "import", str(bundle))
    assert imported.returncode == 0 and "installed" in imported.stdout
    assert "site\tversion 1" in ps(home, "list").stdout
    assert '"name": "site"' in ps(home, "show", "site").stdout

    again = ps(home, "import", str(bundle))  # the same version again: a rollback
    assert again.returncode == 4 and "Traceback" not in again.stderr
    assert again.stderr.startswith("ERROR: ") and len(again.stderr.strip().splitlines()) == 1

    data = bytearray(bundle.read_bytes())
    data[data.index(b"275a021b")] ^= 1  # one byte of a content file
    tampered = tmp_path / "tampered.tar"
    tampered.write_bytes(bytes(data))
    refused = ps(home, "verify", str(tampered))
    assert refused.returncode == 4 and str(tampered) in refused.stderr

    assert ps(tmp_path / "empty-home", "import", str(bundle)).returncode == 4  # no trusted key


def test_scan_with_an_installed_bundle_records_it_and_refuses_tampering(tmp_path, monkeypatch):
    from orchestrator.cli import main
    from tests.harness.files import EICAR

    home = tmp_path / "home"
    monkeypatch.setenv("PLANTSWEEP_HOME", str(home))
    keys = home / "trusted-keys"
    keys.mkdir(parents=True)
    src = tmp_path / "rules"
    src.mkdir()
    sha = hashlib.sha256(EICAR).hexdigest()
    (src / "eicar.hashes").write_text(f"{sha};EICAR test file\n")
    assert main(["patterns", "keygen", "--secret", str(tmp_path / "k.sec"),
                 "--public", str(keys / "k.pub")]) == 0  # fmt: skip
    bundle = tmp_path / "site-3.tar"
    build = ["patterns", "build", str(src), "--key", str(tmp_path / "k.sec"), "--name", "site",
             "--version", "3", "--expires", "2099-01-01", "--out", str(bundle)]  # fmt: skip
    assert main(build) == 0
    assert main(["patterns", "import", str(bundle)]) == 0
    imported = audit_entries("patterns_import")  # who installed which bundle, in the trail
    assert [(e["what"]["object_id"], e["what"]["new"]["version"]) for e in imported] == [
        ("site", 3)
    ]
    assert (
        imported[0]["what"]["new"]["bundle_sha256"]
        == hashlib.sha256(bundle.read_bytes()).hexdigest()
    )

    stick = tmp_path / "stick"
    stick.mkdir()
    (stick / "eicar.com").write_bytes(EICAR)
    host_tmp = tmp_path / "host-tmp"
    host_tmp.mkdir()
    inventory = tmp_path / "gate.ini"
    inventory.write_text(f"laptop ansible_connection=local ansible_remote_tmp={host_tmp}\n")
    out = tmp_path / "out"
    args = ["scan", "-i", str(inventory), "--type", "folders", "--path", str(stick),
            "--patterns", "bundle:site", "--out", str(out)]  # fmt: skip
    assert main(args) == 1
    log = json.loads(next(out.glob("*/laptop.json")).read_text())
    assert (log["patterns"]["name"], log["patterns"]["version"]) == ("site", "3")
    assert [f["sha256"] for f in log["findings"]] == [sha]

    installed_file = next((home / "patterns" / "site").glob("*/patterns/eicar.hashes"))
    installed_file.write_text(installed_file.read_text() + "# one more line\n")
    assert main(args) == 4  # the store no longer matches the signed manifest: refused


def test_build_reports_broken_rules_by_name(tmp_path: Path):
    home = tmp_path / "home"
    src = tmp_path / "rules"
    src.mkdir()
    (src / "good.yar").write_text('rule good_one { strings: $a = "abc" condition: $a }\n')
    (src / "named.yar").write_text('rule by_name { condition: filename == "x.exe" }\n')
    (src / "bad.yar").write_text(
        "rule fine { condition: true }\n\nrule bad_one {\n  condition:\n    nonsense\n}\n"
    )
    (src / "worse.yara").write_text("rule unclosed { condition: true\n")
    assert ps(home, "keygen", "--secret", str(tmp_path / "k.sec"),
              "--public", str(tmp_path / "k.pub")).returncode == 0  # fmt: skip
    out = str(tmp_path / "b.tar")
    build = ["build", str(src), "--key", str(tmp_path / "k.sec"), "--name", "site",
             "--version", "1", "--expires", "2099-12-31", "--out", out]  # fmt: skip

    failed = ps(home, *build)
    assert failed.returncode == 4 and "Traceback" not in failed.stderr
    assert failed.stderr.splitlines() == [
        'broken rule: bad.yar: rule bad_one, line 5: undefined identifier "nonsense"',
        "broken rule: worse.yara: rule unclosed: syntax error, unexpected end of file, "
        "expecting '}'",
        f"ERROR: {src}: 2 YARA rule file(s) do not compile: bad.yar (rule bad_one), "
        "worse.yara (rule unclosed); fix them or pass --skip-broken to leave them out of the "
        "bundle",
    ]
    assert not (tmp_path / "b.tar").exists()

    skipped = ps(home, *build, "--skip-broken")
    assert skipped.returncode == 0, skipped.stderr
    lines = skipped.stdout.splitlines()
    assert lines[1] == "YARA: 2 rules compiled with libyara 4.5.1 (1 content, 1 path)"
    assert lines[2:] == [
        'excluded (--skip-broken): bad.yar: rule bad_one, line 5: undefined identifier "nonsense"',
        "excluded (--skip-broken): worse.yara: rule unclosed: syntax error, unexpected end of "
        "file, expecting '}'",
    ]
