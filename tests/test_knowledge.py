"""Knowledge data: built from the real public sources in ../shared/data, signed like pattern
bundles, verified, imported (with an audit entry), shown with its date, and warned about
when stale; the default data shipped in the package is what the same code builds."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from orchestrator import bundles
from orchestrator.cli import main
from orchestrator.knowledge import (
    DATA_FILES,
    DEFAULT_DIR,
    KnowledgeError,
    build_data_bundle,
    build_files,
    import_data_bundle,
    load_default,
    load_knowledge,
    verify_data_bundle,
    warn_if_stale,
)
from tests.store_logs import audit_entries

SOURCES = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TODAY = date(2026, 11, 26)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (home / "trusted-keys").mkdir(parents=True)
    monkeypatch.setenv("PLANTSWEEP_HOME", str(home))
    monkeypatch.delenv("PLANTSWEEP_STORE", raising=False)
    monkeypatch.delenv("PLANTSWEEP_MAX_DATA_AGE", raising=False)
    return home


@pytest.fixture
def keys(tmp_path: Path, home: Path) -> tuple[Path, Path]:
    """(secret key, trusted public key in $PLANTSWEEP_HOME/trusted-keys)."""
    secret, public = tmp_path / "data.sec", home / "trusted-keys" / "data.pub"
    bundles.generate_keypair(secret, public, "test data key")
    return secret, public


def _build(tmp_path: Path, secret: Path, version: int, name: str = "knowledge") -> Path:
    out = tmp_path / f"knowledge-{version}.bundle"
    build_data_bundle(SOURCES, secret, version, out, released=TODAY - timedelta(days=1),
                      expires=TODAY + timedelta(days=365), name=name)  # fmt: skip
    return out


def _sources_date() -> str:
    """The newest date of the sources, read here independently of the builder."""
    kev = json.loads((SOURCES / "kev/known_exploited_vulnerabilities.json").read_text())
    current = json.loads((SOURCES / "msrc/windows-versions-current.json").read_text())
    osv = [json.loads(p.read_text()) for p in (SOURCES / "osv").rglob("*.json")]
    kept = ("Debian", "Ubuntu", "AlmaLinux")  # the ecosystems a host's packages can match
    osv_dates = [
        r["modified"][:10]
        for r in osv
        if any(a.get("package", {}).get("ecosystem", "").split(":")[0] in kept
               for a in r.get("affected", []))
    ]  # fmt: skip
    return max([kev["dateReleased"][:10], *(r["releaseDate"] for r in current), *osv_dates])


def test_bundle_from_the_real_sources_verifies_and_imports(tmp_path, keys):
    secret, public = keys
    bundle = _build(tmp_path, secret, 3)
    manifest = verify_data_bundle(bundle, [public], today=TODAY)
    assert (manifest.kind, manifest.version) == ("knowledge", 3)
    assert sorted(f.path for f in manifest.files) == sorted(DATA_FILES)

    _, knowledge = import_data_bundle(bundle, [public], today=TODAY)
    assert (knowledge.origin, knowledge.version) == ("bundle", 3)
    assert knowledge.date == date.fromisoformat(_sources_date())
    # The normalised content is the real data: KEV count, a Windows build, an OSV fix.
    assert len(knowledge.kev["vulnerabilities"]) == 1404
    assert knowledge.kev["vulnerabilities"]["CVE-2025-33053"]["vendor"] == "Microsoft"
    updates = knowledge.windows_builds["families"]["19045"]["updates"]
    assert {"ubr": 7663, "kb": "KB5120249", "released": "2026-08"}.items() <= updates[-1].items()
    nginx = knowledge.osv["ecosystems"]["Debian:7"]["packages"]["nginx"]
    assert nginx[0]["fixed"] == "1.2.1-2.2+wheezy3" and nginx[0]["cves"] == ["CVE-2014-3616"]
    # Loaded again later (verified again), the imported bundle wins over the default.
    assert load_knowledge(TODAY).origin == "bundle"


def test_flipped_byte_wrong_key_and_older_version_are_refused(tmp_path, keys):
    secret, public = keys
    bundle = _build(tmp_path, secret, 5)
    data = bytearray(bundle.read_bytes())
    data[data.index(b'"CVE-2014-3616"') + 5] ^= 1  # one byte inside osv.json
    tampered = tmp_path / "tampered.bundle"
    tampered.write_bytes(bytes(data))
    with pytest.raises(bundles.BundleError, match="SHA-256 differs"):
        verify_data_bundle(tampered, [public], today=TODAY)

    other_secret, other_public = tmp_path / "other.sec", tmp_path / "other.pub"
    bundles.generate_keypair(other_secret, other_public)
    with pytest.raises(bundles.BundleError, match="unknown key id"):
        verify_data_bundle(bundle, [other_public], today=TODAY)

    import_data_bundle(bundle, [public], today=TODAY)
    older = _build(tmp_path, secret, 4)
    with pytest.raises(bundles.BundleError, match="rollback refused"):
        import_data_bundle(older, [public], today=TODAY)
    with pytest.raises(bundles.BundleError, match="rollback refused"):
        verify_data_bundle(older, [public], today=TODAY)


def test_kinds_do_not_mix(tmp_path, keys, home):
    """A data bundle is not a pattern bundle, and a pattern bundle is not data."""
    secret, public = keys
    bundle = _build(tmp_path, secret, 1)
    with pytest.raises(bundles.BundleError, match="knowledge bundle, not a patterns bundle"):
        bundles.import_bundle(bundle, home / "patterns", [public], today=TODAY)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "x.hashes").write_text(
        "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f\n"
    )
    patterns = tmp_path / "patterns.tar"
    bundles.build_bundle(rules, patterns, secret, "knowledge", 9, TODAY, TODAY + timedelta(days=9))
    with pytest.raises(bundles.BundleError, match="patterns bundle, not a knowledge bundle"):
        verify_data_bundle(patterns, [public], today=TODAY)


def test_installed_data_edited_on_disk_is_refused(tmp_path, keys, home):
    secret, public = keys
    import_data_bundle(_build(tmp_path, secret, 2), [public], today=TODAY)
    kev = next((home / "data" / "knowledge").glob("*/patterns/kev.json"))
    kev.write_text(kev.read_text().replace('"ransomware":true', '"ransomware":false', 1))
    with pytest.raises(KnowledgeError, match="refused"):
        load_knowledge(TODAY)


def test_cli_import_audits_and_show_prints_the_date(tmp_path, keys, home, capsys):
    secret, _ = keys
    bundle = tmp_path / "k7.bundle"
    build = ["data", "build", "--source", str(SOURCES), "--key", str(secret), "--version", "7",
             "--expires", "2099-01-01", "--out", str(bundle)]  # fmt: skip
    assert main(build) == 0
    assert f"data date {_sources_date()}" in capsys.readouterr().out
    assert main(["data", "verify", str(bundle)]) == 0
    assert capsys.readouterr().out.startswith("OK knowledge version 7")
    assert main(["data", "import", str(bundle), "--reason", "quarterly refresh"]) == 0
    capsys.readouterr()

    entries = audit_entries("data_import")
    assert [(e["what"]["new"]["result"], e["what"]["new"]["version"]) for e in entries] == [
        ("installed", 7)
    ]
    assert entries[0]["what"]["new"]["data_date"] == _sources_date()
    assert entries[0]["why"] == "quarterly refresh"

    assert main(["data", "show", "--max-data-age", "100000"]) == 0
    shown = capsys.readouterr()
    assert f"date: {_sources_date()}" in shown.out and "imported bundle" in shown.out
    assert "WARNING" not in shown.err
    assert main(["data", "show", "--json", "--max-data-age", "100000"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["version"], info["date"], info["origin"]) == (7, _sources_date(), "bundle")
    assert {s["name"] for s in info["sources"]} == {"endoflife", "msrc", "kev", "osv"}

    # The same bundle again is a rollback: one ERROR line, exit 4, and a "refused" entry.
    assert main(["data", "import", str(bundle)]) == 4
    err = capsys.readouterr().err
    assert err.startswith("ERROR: ") and len(err.strip().splitlines()) == 1
    assert [e["what"]["new"]["result"] for e in audit_entries("data_import")] == [
        "installed",
        "refused",
    ]


def test_stale_data_warns_once(tmp_path, home, capsys, monkeypatch):
    knowledge = load_default()
    late = knowledge.date + timedelta(days=91)
    assert warn_if_stale(knowledge, today=late) is True
    assert warn_if_stale(knowledge, today=late) is True
    err = capsys.readouterr().err
    assert err.count("WARNING: knowledge data dated") == 1 and "91 days old (limit 90)" in err
    assert warn_if_stale(knowledge, max_age=91, today=late) is False
    monkeypatch.setenv("PLANTSWEEP_MAX_DATA_AGE", "100")
    assert warn_if_stale(knowledge, today=late) is False
    monkeypatch.setenv("PLANTSWEEP_MAX_DATA_AGE", "ninety")
    assert main(["data", "show"]) == 4  # a bad setting is a one-line user error
    assert "PLANTSWEEP_MAX_DATA_AGE" in capsys.readouterr().err


def test_data_show_warns_when_stale_through_the_cli(home, capsys):
    assert main(["data", "show", "--max-data-age", "0"]) == 0  # the default data, by the CLI
    out, err = capsys.readouterr()
    assert "shipped default" in out and f"date: {load_default().date}" in out
    assert "WARNING: knowledge data dated" in err and "(limit 0)" in err


def test_default_data_is_what_the_builder_makes_from_the_sources():
    knowledge = load_default()
    assert knowledge.origin == "default"
    assert knowledge.date == date.fromisoformat(_sources_date())
    built = build_files(SOURCES, knowledge.version)
    for name in DATA_FILES:  # committed output == regenerated output: nobody edited it
        assert (DEFAULT_DIR / name).read_bytes() == built[name], name
    for license_file in ("LICENSE-endoflife.date", "LICENSE-kev", "LICENSE-msrc"):
        assert (DEFAULT_DIR / license_file).is_file()


def test_build_default_and_bad_sources_through_the_cli(tmp_path, home, capsys):
    out = tmp_path / "default"
    assert main(["data", "build", "--default", "--source", str(SOURCES), "--out", str(out)]) == 0
    assert (out / "sources.json").read_bytes() == (DEFAULT_DIR / "sources.json").read_bytes()
    capsys.readouterr()
    assert main(["data", "build", "--source", str(tmp_path / "nowhere"), "--default",
                 "--out", str(out)]) == 4  # fmt: skip
    assert "source folder not found" in capsys.readouterr().err
    assert main(["data", "build", "--source", str(SOURCES)]) == 4
    assert "--key, --version, --out" in capsys.readouterr().err
