"""Quarantine with restore: the encrypted vault, and end to end on the simulated plant
(scan --action quarantine, mission-critical refusal, `plantsweep quarantine list|restore`)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from plantscan import TEMP_PREFIX, run_scan_cli

from orchestrator.cli import main
from orchestrator.connections import SSHConnection, SSHOptions, Target, Timeouts
from orchestrator.payload import scan_log_schema
from orchestrator.quarantine.apply import finding_level
from orchestrator.quarantine.remote import (
    RESTORE_PREFIX,
    QuarantineFailed,
    quarantine_file,
    restore_file,
)
from orchestrator.quarantine.vault import FileFacts, Vault, VaultError
from orchestrator.session import HostSession
from tests.harness import files as planted
from tests.store_logs import audit_entries

# -- the vault ---------------------------------------------------------------------------

PLAIN = b"PLANTSWEEP-VAULT-PLAINTEXT-" * 200  # long and distinctive: easy to spot in a blob


def _facts(data: bytes) -> FileFacts:
    return FileFacts(len(data), 0o4755, 1000, 1000, "op", "op", 1_500_000_000, 1_600_000_000)


def _store(vault: Vault, tmp: Path, data: bytes, host: str = "hmi-01") -> tuple[str, object]:
    src = tmp / f"src-{hashlib.sha256(data).hexdigest()[:8]}"
    src.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    entry = vault.store(src, host=host, path="/x/y.exe", sha256=sha, facts=_facts(data))
    return sha, entry


@pytest.fixture
def vault(tmp_path, monkeypatch) -> Vault:
    monkeypatch.setenv("PLANTSWEEP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PLANTSWEEP_VAULT_KEY", raising=False)
    return Vault.open()


def test_vault_encrypts_at_rest_and_gives_back_the_bytes(vault, tmp_path):
    sha, entry = _store(vault, tmp_path, PLAIN)
    blob = vault.blob_path(sha)
    data = blob.read_bytes()
    assert PLAIN[:27] not in data and b"PLAINTEXT" not in data
    assert blob.stat().st_mode & 0o777 == 0o600  # never executable, private
    assert vault.key_file.stat().st_mode & 0o777 == 0o600
    assert vault.key_file == tmp_path / "home" / "vault.key"
    assert vault.root == tmp_path / "home" / "quarantine"
    out = tmp_path / "out"
    vault.decrypt_to(entry, out)
    assert out.read_bytes() == PLAIN
    assert out.stat().st_mode & 0o777 == 0o600
    (listed,) = vault.entries()
    assert listed.id == entry.id and listed.sha256 == sha and listed.size == len(PLAIN)
    assert listed.mode == 0o4755 and listed.mtime_ns == 1_600_000_000
    assert listed.state == "copied-only"  # removed_at is set by the host side once removed
    index = json.loads(vault.index_file.read_text())
    assert index["version"] == 1 and index["entries"][0]["id"] == entry.id


def test_same_content_twice_is_one_blob_with_two_entries(vault, tmp_path):
    sha, first = _store(vault, tmp_path, PLAIN, host="hmi-01")
    _, second = _store(vault, tmp_path, PLAIN, host="hmi-02")
    assert first.id != second.id
    assert [p.name for p in vault.blobs.iterdir()] == [f"{sha}.bin"]
    assert [e.host for e in vault.entries()] == ["hmi-01", "hmi-02"]
    assert [e.id for e in vault.entries(host="hmi-02")] == [second.id]


def test_wrong_key_is_refused(vault, tmp_path, monkeypatch):
    _, entry = _store(vault, tmp_path, PLAIN)
    other = tmp_path / "other.key"
    other.write_text(os.urandom(32).hex() + "\n")
    other.chmod(0o600)
    monkeypatch.setenv("PLANTSWEEP_VAULT_KEY", str(other))
    with pytest.raises(VaultError, match="wrong vault key"):
        Vault.open().decrypt_to(entry, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-decrypted is left


@pytest.mark.parametrize("where", ["ciphertext", "tag", "nonce"])
def test_a_tampered_blob_is_detected(vault, tmp_path, where):
    sha, entry = _store(vault, tmp_path, PLAIN)
    blob = vault.blob_path(sha)
    data = bytearray(blob.read_bytes())
    offset = {"ciphertext": len(data) // 2, "tag": len(data) - 1, "nonce": 20}[where]
    data[offset] ^= 0x01
    blob.write_bytes(bytes(data))
    with pytest.raises(VaultError, match="altered"):
        vault.decrypt_to(entry, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # The next quarantine of the same content replaces the bad blob with a good one.
    _store(vault, tmp_path, PLAIN)
    vault.decrypt_to(entry, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == PLAIN


def test_a_blob_renamed_to_another_hash_is_refused(vault, tmp_path):
    sha_a, entry_a = _store(vault, tmp_path, PLAIN)
    sha_b, _ = _store(vault, tmp_path, b"other content")
    os.replace(vault.blob_path(sha_b), vault.blob_path(sha_a))
    with pytest.raises(VaultError, match="altered"):
        vault.decrypt_to(entry_a, tmp_path / "out")


def test_reading_never_creates_a_key_and_loose_key_permissions_are_refused(vault, tmp_path):
    sha, entry = _store(vault, tmp_path, PLAIN)
    key = vault.key_file.read_text()
    vault.key_file.unlink()
    with pytest.raises(VaultError, match="no vault key"):
        Vault.open().verify_blob(sha)
    assert not vault.key_file.exists()
    vault.key_file.write_text(key)
    vault.key_file.chmod(0o644)
    with pytest.raises(VaultError, match="chmod 600"):
        Vault.open().verify_blob(sha)
    vault.key_file.chmod(0o600)
    assert Vault.open().verify_blob(sha) == len(PLAIN)


def test_parallel_stores_keep_every_entry(vault, tmp_path):
    # One Vault object per thread, as hosts in parallel do: only the file lock serialises them.
    payloads = [PLAIN + bytes([i]) for i in range(8)]
    ids: list[str] = []

    def work(data: bytes) -> None:
        ids.append(_store(Vault.open(), tmp_path, data)[1].id)

    threads = [threading.Thread(target=work, args=(d,)) for d in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(e.id for e in vault.entries()) == sorted(ids)
    assert len(set(ids)) == 8
    assert len(list(vault.blobs.glob("*.bin"))) == 8


def test_finding_level_defaults_to_alert_for_logs_without_levels():
    assert finding_level({"path": "/x"}) == "alert"
    assert finding_level({"path": "/x", "level": "notice"}) == "notice"


# -- end to end on the simulated plant ----------------------------------------------------

Q_DIR = "/srv/plant/q"
TOOL = f"{Q_DIR}/tool.bin"  # hash IOC, score 100: alert
EICAR = f"{Q_DIR}/eicar.com"  # hash IOC, score 70: warning
LOW = f"{Q_DIR}/low.bin"  # hash IOC, score 45: notice, below the default minimum
CLEAN = f"{Q_DIR}/clean.txt"
LOW_CONTENT = b"plantsweep low-score test file\n"
FILES = {TOOL: planted.HASH_IOC_CONTENT, EICAR: planted.EICAR, LOW: LOW_CONTENT, CLEAN: b"ok\n"}
MODE = 0o4750  # set-id bit included: chown before chmod on restore keeps it
ATIME_NS = 1_500_000_000_111_111_111
MTIME_NS = 1_600_000_000_123_456_789


def _patterns(directory: Path) -> Path:
    directory.mkdir(parents=True)
    lines = [
        f"{planted.HASH_IOC_SHA256};100;{planted.HASH_IOC_NAME}",
        f"{hashlib.sha256(planted.EICAR).hexdigest()};70;EICAR test file",
        f"{hashlib.sha256(LOW_CONTENT).hexdigest()};45;Low score test",
    ]
    (directory / "q.hashes").write_text("\n".join(lines) + "\n")
    return directory


def _operator_ids(host) -> tuple[int, int]:
    for line in (host.dir / "etc" / "passwd").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == "operator":
            return int(parts[2]), int(parts[3])
    raise AssertionError("no operator user on the host")


def _plant(fleet, host) -> dict[str, tuple]:
    """Plant FILES with an owner, mode and times to get back; returns their fingerprints."""
    fleet.plant_files(host.name, FILES)
    uid, gid = _operator_ids(host)
    for path in (TOOL, EICAR):
        local = host.path(path)
        os.chown(local, uid, gid)
        os.chmod(local, MODE)
        os.utime(local, ns=(ATIME_NS, MTIME_NS))
    prints = {p: _fingerprint(host, p) for p in FILES}
    for path in (TOOL, EICAR):  # reading them for the fingerprint moved the atime
        os.utime(host.path(path), ns=(ATIME_NS, MTIME_NS))
    return prints


def _fingerprint(host, path: str) -> tuple:
    st = host.path(path).lstat()
    return (host.path(path).read_bytes(), st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns)


def _no_leftovers(host) -> None:
    assert [n for n in host.listdir("/tmp") if n.startswith(TEMP_PREFIX)] == []
    assert [n for n in host.listdir(Q_DIR) if n.startswith(RESTORE_PREFIX)] == []


WHY = ("--reason", "false positive")


def _quarantine_list(capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["quarantine", "list", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_quarantine_then_restore_gives_back_the_identical_file(
    make_fleet, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("PLANTSWEEP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PLANTSWEEP_VAULT_KEY", raising=False)
    fleet = make_fleet(2, plant=False)
    critical, standard = fleet.hosts
    inventory = fleet.write_inventory(tmp_path / "plant.yml")
    assert critical.vars["criticality"] == "mission-critical"
    assert standard.vars["criticality"] == "standard"
    before = {h.name: _plant(fleet, h) for h in fleet}

    run = run_scan_cli(
        tmp_path / "out", "-i", str(inventory), "--patterns", str(_patterns(tmp_path / "pat")),
        "--type", "folders", "--path", Q_DIR, "--action", "quarantine",
    )  # fmt: skip
    assert run.code == 1, run.summary  # findings, nothing failed
    assert run.summary["action"] == "quarantine"

    # The standard host: the two files at or above "warning" are gone, the rest stays.
    assert not standard.path(TOOL).exists() and not standard.path(EICAR).exists()
    assert _fingerprint(standard, LOW) == before[standard.name][LOW]
    assert _fingerprint(standard, CLEAN) == before[standard.name][CLEAN]
    log = run.log(standard.name)
    for host in fleet:
        jsonschema.Draft202012Validator(scan_log_schema()).validate(run.log(host.name))
    assert log["action"] == "quarantine"
    actions = {a["path"]: a for a in log["actions"]}
    assert set(actions) == {TOOL, EICAR}
    assert all(a["result"] == "quarantined" and a["vault_id"] for a in actions.values())
    assert actions[TOOL]["sha256"] == planted.HASH_IOC_SHA256
    by_path = {f["path"]: f for f in log["findings"]}
    assert by_path[TOOL]["action"] == by_path[EICAR]["action"] == "quarantined"
    assert by_path[LOW]["action"] == "logged" and by_path[LOW]["level"] == "notice"
    assert "quarantined 2 file(s)" in run.host_summary(standard.name)["message"]

    # The mission-critical host: asked to quarantine, it stays log-only and untouched.
    assert {p: _fingerprint(critical, p) for p in FILES} == before[critical.name]
    log = run.log(critical.name)
    assert log["action"] == "quarantine"  # what was asked; the records say it was refused
    assert {a["path"] for a in log["actions"]} == {TOOL, EICAR}
    assert {(a["result"], a["reason"]) for a in log["actions"]} == {("refused", "mission-critical")}
    assert {f["action"] for f in log["findings"] if f["path"] in (TOOL, EICAR)} == {
        "quarantine-refused"
    }
    assert "mission-critical" in run.host_summary(critical.name)["message"]
    assert run.status(critical.name) == "findings"

    # The vault holds exactly the standard host's two files, encrypted.
    entries = {e["path"]: e for e in _quarantine_list(capsys)}
    assert set(entries) == {TOOL, EICAR}
    tool = entries[TOOL]
    assert tool["host"] == standard.name and tool["id"] == actions[TOOL]["vault_id"]
    assert tool["removed_at"] and tool["restored_at"] is None
    assert tool["mode"] == MODE and tool["mtime_ns"] == MTIME_NS and tool["atime_ns"] == ATIME_NS
    assert tool["owner"] == "operator" and tool["level"] == "alert"
    assert tool["log"] == str(run.run_dir / f"{standard.name}.json")
    blob = tmp_path / "home" / "quarantine" / "blobs" / f"{planted.HASH_IOC_SHA256}.bin"
    assert planted.HASH_IOC_CONTENT not in blob.read_bytes()

    # Restore: byte for byte, with mode (set-id bit too), owner, mtime and atime.
    assert main(["quarantine", "restore", tool["id"], "-i", str(inventory), *WHY]) == 0
    assert standard.path(TOOL).stat().st_atime_ns == ATIME_NS  # before reading it below
    assert _fingerprint(standard, TOOL) == before[standard.name][TOOL]
    assert f"restored {tool['id']}" in capsys.readouterr().out
    restored = {e["path"]: e for e in _quarantine_list(capsys)}[TOOL]
    assert restored["restored_at"] and restored["restored_by"]
    log = run.log(standard.name)
    assert [a["result"] for a in log["actions"] if a["path"] == TOOL] == ["quarantined", "restored"]
    audited = audit_entries("restore")[-1]  # the trail says who restored what, and why
    assert audited["what"]["object_id"] == tool["id"] and audited["why"] == WHY[1]
    assert audited["what"]["new"]["sha256"] == tool["sha256"]
    assert audited["what"]["new"]["host"] == standard.name

    # Restoring twice needs --force; a file now at the path is never silently replaced.
    assert main(["quarantine", "restore", tool["id"], "-i", str(inventory), *WHY]) == 4
    assert "already restored" in capsys.readouterr().err
    eicar_id = entries[EICAR]["id"]
    fleet.plant_files(standard.name, {EICAR: b"a new file at the same path\n"})
    assert main(["quarantine", "restore", eicar_id, "-i", str(inventory), *WHY]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ERROR: ") and "already exists" in err and "Traceback" not in err
    assert standard.path(EICAR).read_bytes() == b"a new file at the same path\n"
    assert main(["quarantine", "restore", eicar_id, "-i", str(inventory), *WHY, "--force"]) == 0
    assert _fingerprint(standard, EICAR) == before[standard.name][EICAR]

    assert main(["quarantine", "restore", "nosuchid", "-i", str(inventory), *WHY]) == 4
    assert "no quarantined file with id 'nosuchid'" in capsys.readouterr().err
    # A restore without a reason is refused before any host is touched.
    assert main(["quarantine", "restore", eicar_id, "-i", str(inventory), "--force"]) == 4
    assert "--reason" in capsys.readouterr().err
    restored_ids = [e["what"]["object_id"] for e in audit_entries("restore")]
    assert restored_ids.count(eicar_id) == 1  # the forced restore; the failed one is not there
    for host in fleet:
        _no_leftovers(host)


def _target(fleet, host) -> Target:
    return Target(
        name=host.name,
        address=host.address,
        user="root",
        private_key_file=str(fleet.client_key.private),
        python_interpreter=host.python,
    )


def test_a_changed_file_or_a_symlink_is_never_removed(make_fleet, tmp_path, monkeypatch):
    """On the oldest interpreter we support (3.6): the host-side script runs there too."""
    monkeypatch.setenv("PLANTSWEEP_HOME", str(tmp_path / "home"))
    fleet = make_fleet(1, plant=False, pythons={"plant-host-01": "3.6"})
    host = fleet.hosts[0]
    fleet.plant_files(host.name, {f"{Q_DIR}/real/tool.bin": planted.HASH_IOC_CONTENT})
    host.exec(["ln", "-s", "tool.bin", f"{Q_DIR}/real/link.bin"])
    host.exec(["ln", "-s", "real", f"{Q_DIR}/linked-dir"])
    vault = Vault.open()
    target = _target(fleet, host)
    timeouts = Timeouts(connect=3, command=10)
    conn = SSHConnection(target, SSHOptions(known_hosts=fleet.known_hosts), timeouts)
    sha = planted.HASH_IOC_SHA256
    cases = [
        (f"{Q_DIR}/real/tool.bin", "0" * 64, "changed"),  # not the content that was scanned
        (f"{Q_DIR}/real/link.bin", sha, "not-regular"),  # a symlink to the right content
        (f"{Q_DIR}/linked-dir/tool.bin", sha, "folder"),  # a symlinked folder on the way
        (f"{Q_DIR}/real/gone.bin", sha, "vanished"),
    ]
    with HostSession(conn, target, timeouts) as session:
        for path, expected, reason in cases:
            with pytest.raises(QuarantineFailed) as caught:
                quarantine_file(session, vault, path, expected)
            assert caught.value.reason == reason, (path, caught.value.message)
        assert vault.entries() == []
        # The real file, reached without any symlink, is quarantined.
        entry = quarantine_file(session, vault, f"{Q_DIR}/real/tool.bin", sha)
        assert entry.removed_at and not host.path(f"{Q_DIR}/real/tool.bin").exists()
        assert host.path(f"{Q_DIR}/real/link.bin").is_symlink()  # dangling now, left alone
        # Restoring through a symlinked folder is refused; to the real path it works.
        plain = tmp_path / "plain"
        vault.decrypt_to(entry, plain)
        via_link = replace(entry, path=f"{Q_DIR}/linked-dir/tool.bin")
        with pytest.raises(QuarantineFailed) as caught:
            restore_file(session, plain, via_link)
        assert caught.value.reason == "folder"
        answer = restore_file(session, plain, entry)
    assert answer["mtime_ns"] == entry.mtime_ns and answer["mode"] == entry.mode
    assert host.path(f"{Q_DIR}/real/tool.bin").read_bytes() == planted.HASH_IOC_CONTENT
    assert [n for n in host.listdir(f"{Q_DIR}/real") if n.startswith(RESTORE_PREFIX)] == []
    assert session.proof is not None and session.proof.clean


def test_scan_action_in_a_playbook_quarantines_and_reports_changed(
    make_fleet, tmp_path, monkeypatch
):
    monkeypatch.setenv("PLANTSWEEP_HOME", str(tmp_path / "home"))
    fleet = make_fleet(2, plant=False)
    critical, standard = fleet.hosts
    for h in fleet:
        fleet.plant_files(h.name, {TOOL: planted.HASH_IOC_CONTENT})
    inventory = fleet.write_inventory(tmp_path / "plant.yml")
    patterns = _patterns(tmp_path / "pat")
    playbook = tmp_path / "q.yml"
    playbook.write_text(
        "- hosts: all\n  tasks:\n    - scan:\n        type: folders\n"
        f"        paths: [{Q_DIR}]\n        patterns: {patterns}\n        action: quarantine\n"
    )
    out = tmp_path / "out"
    code = main(["run", str(playbook), "-i", str(inventory), "--out", str(out)])
    assert code == 1
    (run_dir,) = out.iterdir()
    summary = {h["host"]: h for h in json.loads((run_dir / "run.json").read_text())["hosts"]}
    assert summary[standard.name]["changed"] == 1 and summary[standard.name]["failed"] == 0
    assert summary[critical.name]["changed"] == 0 and summary[critical.name]["ok"] == 1
    assert not standard.path(TOOL).exists()
    assert critical.path(TOOL).read_bytes() == planted.HASH_IOC_CONTENT
    log = json.loads((run_dir / f"{standard.name}.json").read_text())
    assert [a["result"] for a in log["actions"]] == ["quarantined"]
    log = json.loads((run_dir / f"{critical.name}.json").read_text())
    assert [a["result"] for a in log["actions"]] == ["refused"]
    assert [e.host for e in Vault.open().entries()] == [standard.name]


def test_a_finding_inside_a_zip_quarantines_the_zip(make_fleet, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PLANTSWEEP_HOME", str(tmp_path / "home"))
    fleet = make_fleet(1, plant=False, host_vars={"plant-host-01": {"criticality": "standard"}})
    host = fleet.hosts[0]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("docs/readme.txt", "vendor update\n")
        zf.writestr("docs/eicar.com", planted.EICAR)
    zip_path = "/srv/plant/z/update.zip"
    fleet.plant_files(host.name, {zip_path: buffer.getvalue()})
    zip_sha = hashlib.sha256(buffer.getvalue()).hexdigest()
    inventory = fleet.write_inventory(tmp_path / "plant.yml")
    run = run_scan_cli(
        tmp_path / "out", "-i", str(inventory), "--patterns", str(_patterns(tmp_path / "pat")),
        "--type", "folders", "--path", "/srv/plant/z", "--scan-archives", "--action", "quarantine",
    )  # fmt: skip
    assert run.code == 1, run.summary
    log = run.log(host.name)
    (member,) = [f for f in log["findings"] if f.get("archive_member")]
    assert member["archive_member"] == "docs/eicar.com" and member["container_sha256"] == zip_sha
    assert member["action"] == "quarantined"
    (record,) = log["actions"]
    assert (record["path"], record["sha256"], record["result"]) == (
        zip_path,
        zip_sha,
        "quarantined",
    )
    assert not host.path(zip_path).exists()
    (entry,) = _quarantine_list(capsys)
    assert entry["sha256"] == zip_sha and entry["size"] == len(buffer.getvalue())
    assert main(["quarantine", "restore", entry["id"], "-i", str(inventory), *WHY]) == 0
    assert host.path(zip_path).read_bytes() == buffer.getvalue()
