"""The public signature-base rule set (Neo23x0, DRL 1.1; the read-only copy in
../shared/data/yara-rules, commit 8a89b3b of 2026-04-09) built into a signed bundle with our
build code, and its rules that use external variables matched through the real scanner.

The bundle is built once for the module (about 8 s: 741 files, 5,883 rules, and the rule
sets for non-PE files derived from them).
"""

from __future__ import annotations

import codecs
import re
import shutil
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
import yara

from agentless_scanner import patterns as pattern_dir
from agentless_scanner import yara_engine
from orchestrator import payload as P
from orchestrator.bundles import build_bundle_manifest, generate_keypair, import_bundle, nonpe
from orchestrator.bundles.manifest import Manifest
from orchestrator.pattern_source import pattern_archive

sys.path.insert(0, str(Path(__file__).resolve().parent / "scanner"))
import scanner_support as S  # noqa: E402

SIGNATURE_BASE = S.REPO.parent / "shared" / "data" / "yara-rules"
RULES = SIGNATURE_BASE / "yara"
#: Rule files of this snapshot that yara-python 4.5.1 does not compile, with the reason, as
#: (path, rule, reason). None today; a new entry here is a regression to look at.
EXPECTED_BROKEN: list[tuple[str, str | None, str]] = []
#: The files the data README names as needing the external variables.
README_EXTERNAL_FILES = {
    "yara/generic_anomalies.yar",
    "yara/general_cloaking.yar",
    "yara/gen_webshells_ext_vars.yar",
    "yara/thor_inverse_matches.yar",
    "yara/yara_mixed_ext_vars.yar",
    "yara/configured_vulns_ext_vars.yar",
    "yara/gen_fake_amsi_dll.yar",
}
# Counting `rule NAME` declarations outside comments and text strings, independently of YARA.
_NOT_CODE = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:[^"\\\n]|\\.)*"', re.S)
_RULE = re.compile(r"^[ \t]*(?:(?:private|global)[ \t]+)*rule[ \t]+[A-Za-z_]\w*", re.M)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Manifest, Path, Path]:
    """(manifest, bundle file, pattern zip as pushed to hosts) of signature-base, version 1."""
    assert RULES.is_dir(), f"signature-base copy missing: {RULES}"
    base = tmp_path_factory.mktemp("signature-base")
    home = base / "home"
    (home / "trusted-keys").mkdir(parents=True)
    generate_keypair(base / "sb.key", home / "trusted-keys" / "sb.pub", "test")
    today = date.today()
    bundle, manifest = build_bundle_manifest(
        SIGNATURE_BASE,
        base / "signature-base-1.tar",
        base / "sb.key",
        "signature-base",
        1,
        today,
        today + timedelta(days=30),
        skip_broken=True,  # so every broken file is listed instead of the first failure
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLANTSWEEP_HOME", str(home))
        import_bundle(bundle, home / "patterns", [home / "trusted-keys" / "sb.pub"])
        archive, _ = pattern_archive("bundle:signature-base", base / "patterns.zip")
    return manifest, bundle, archive


def test_the_whole_set_compiles(built):
    manifest, _, _ = built
    assert [(e.path, e.rule, e.reason) for e in manifest.excluded] == EXPECTED_BROKEN
    declared = sum(
        len(_RULE.findall(_NOT_CODE.sub(" ", p.read_bytes().decode("latin-1"))))
        for p in RULES.iterdir()
        if p.suffix in (".yar", ".yara")
    )
    assert manifest.yara is not None and manifest.yara.libyara == yara.YARA_VERSION
    assert manifest.yara.content_rules + manifest.yara.path_rules == declared == 5883
    paths = {f.path for f in manifest.files}
    assert {"compiled/content.yarc", "compiled/path.yarc", "iocs/hash-iocs.txt"} <= paths
    assert len([p for p in paths if p.startswith("yara/")]) == 741


def test_the_files_with_external_variables_are_path_rules(built):
    manifest, _, _ = built
    files = sorted(
        (f"yara/{p.name}", str(p)) for p in RULES.iterdir() if p.suffix in (".yar", ".yara")
    )
    content, path, unreadable = yara_engine.split_by_scope(files)
    assert unreadable == []
    path_files = {rel for rel, _ in path}
    assert path_files >= README_EXTERNAL_FILES
    # Few files need the per-file match: most of the set can use the fleet verdict cache.
    assert len(content) + len(path) == 741 and len(path) < 30
    assert manifest.yara is not None and manifest.yara.path_rules < manifest.yara.content_rules


@pytest.fixture(scope="module")
def payload(tmp_path_factory) -> Path:
    return S.build_test_payload(tmp_path_factory)


def _tree(root: Path) -> None:
    mz = b"MZ" + b"\0" * 200  # a tiny (harmless) "PE": far below any real system binary's size
    pst = b"!BDN" + b"\0" * 60  # an Outlook PST header
    for rel, data in {
        "inetpub/owa/auth/shell.aspx": pst,  # PST content with an .aspx name: ProxyShell
        "mail/archive.pst": pst,
        "windows/system32/lsass.exe": mz,  # lsass.exe under 10 KB
        "windows/system32/notepad.exe": mz,
        "program files/ie/iexplore.exe": mz,  # iexplore.exe under 75 KB ...
        "program files/teamviewer/iexplore.exe": mz,  # ... except in a TeamViewer folder
    }.items():
        S.write(root / rel, data)


def _rules_by_file(log: dict, root: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for f in log["findings"]:
        rel = str(Path(f["path"]).relative_to(root))
        found.setdefault(rel, set()).update(m["rule"] for m in f["matches"])
    return found


@pytest.mark.parametrize("how", ["bundle", "source"])
def test_rules_with_external_variables_match_the_right_file(tmp_path, built, payload, how):
    """Public rules that test `extension`, `filename` and `filepath` find the file they
    describe and not the same bytes under another name, through the scanner zipapp: with the
    bundle's compiled rules (pinned libyara) and compiled from source (yara-python 4.5.4)."""
    manifest, _, archive = built
    root = tmp_path / "tree"
    _tree(root)
    own = tmp_path / "own"
    S.install_payload(payload, own)
    shutil.copy2(archive, own / "patterns.zip")
    args = ["--type", "folders", "--path", str(root), "--patterns", str(own / "patterns.zip")]
    if how == "source":
        other = P.download_wheels(
            S.WHEEL_CACHE, ["3.11"], ["linux_x86_64"], requirement="yara-python==4.5.4"
        )[0].path
        assert other is not None
        (own / "wheels").mkdir()
        shutil.copy2(other, own / "wheels" / other.name)
    run = S.run_scanner(S.PY311, own / "scanner.pyz", args, tmp_path / "scan.json")
    assert run.log is not None, run.stderr
    log = run.log
    S.validate(log)
    engine = log["engines"]["yara"]
    assert engine["compiled_from"] == how
    assert manifest.yara is not None
    assert (engine["content_rules"], engine["path_rules"]) == (
        manifest.yara.content_rules,
        manifest.yara.path_rules,
    )
    assert [e for e in log["patterns"]["errors"] if "YARA" in e["message"]] == []

    rules = _rules_by_file(log, root)
    assert "WEBSHELL_ASPX_ProxyShell_Aug21_1" in rules["inetpub/owa/auth/shell.aspx"]
    assert "WEBSHELL_ASPX_ProxyShell_Aug21_1" not in rules.get("mail/archive.pst", set())
    assert "Suspicious_Size_lsass_exe" in rules["windows/system32/lsass.exe"]
    assert "Suspicious_Size_lsass_exe" not in rules.get("windows/system32/notepad.exe", set())
    assert "Suspicious_Size_iexplore_exe" in rules["program files/ie/iexplore.exe"]
    teamviewer = rules.get("program files/teamviewer/iexplore.exe", set())
    assert "Suspicious_Size_iexplore_exe" not in teamviewer
    # The matches carry the rule file (namespace) and the rule's own score.
    shell = next(f for f in log["findings"] if f["path"].endswith("shell.aspx"))
    match = next(m for m in shell["matches"] if m["rule"] == "WEBSHELL_ASPX_ProxyShell_Aug21_1")
    assert (match["source"], match["scope"]) == ("yara/generic_anomalies.yar", "path")


# -- the rule sets for non-PE files -----------------------------------------------------------


def _literal(string: dict) -> bytes | None:
    """The bytes a plain text or hex string stands for, or None (regex, wildcards)."""
    value = string["value"]
    if string["type"] == "text":
        return codecs.escape_decode(value.encode("utf-8"))[0]
    if string["type"] == "byte":
        pairs = value.strip("{} ").split()
        if all(re.fullmatch(r"[0-9A-Fa-f]{2}", p) for p in pairs):
            return bytes.fromhex("".join(pairs))
    return None


def _samples() -> list[bytes]:
    """Non-MZ data holding every literal string of each rule: what makes the rules match."""
    samples = []
    files = [
        (p.name, p.read_bytes().decode().replace("\r\n", "\n"))
        for p in sorted(RULES.iterdir())
        if p.suffix in (".yar", ".yara")
    ]
    for rules in nonpe.parse_files(files).values():
        assert isinstance(rules, list)
        for rule in rules:
            parts = [b for b in map(_literal, rule.get("strings", ())) if b]
            if not parts:
                continue
            body = b"\n".join(parts)
            wide = b"".join(bytes((c, 0)) for c in body)
            samples += [b"#!" + body, b"\x7fELF" + b"\0" * 60 + body, b"\xff\xfe" + wide]
    return samples


def test_the_non_pe_sets_match_exactly_like_the_full_ones(built, tmp_path):
    """On thousands of non-MZ files made to trigger the rules, the bundle's compiled/nonpe/
    sets give exactly the matches of the full sets, with far fewer rules."""
    manifest, _, archive = built
    root = Path(pattern_dir.unpack_pattern_archive(str(archive), str(tmp_path / "p")))
    full = yara.load(str(root / "compiled" / "all.yarc"))
    lean = yara.load(str(root / "compiled" / "nonpe" / "all.yarc"))
    assert manifest.yara is not None and manifest.yara.non_pe_rules == sum(1 for _ in lean)
    assert manifest.yara.non_pe_rules < 0.6 * (
        manifest.yara.content_rules + manifest.yara.path_rules
    )
    externals = {
        "filename": "setup.exe",
        "filepath": "C:\\Users\\Public\\Downloads\\setup.exe",
        "extension": ".exe",
        "filetype": "",
        "owner": "SYSTEM",
    }
    hits = differ = 0
    for data in _samples():
        assert data[:2] != b"MZ"
        expected = sorted((m.namespace, m.rule) for m in full.match(data=data, externals=externals))
        got = sorted((m.namespace, m.rule) for m in lean.match(data=data, externals=externals))
        hits += len(expected)
        differ += expected != got
    assert differ == 0
    assert hits > 3000  # the samples do make rules match


def test_the_derivation_proves_every_file_of_the_set():
    """No signature-base file is kept unchanged for want of a proof, and none still needs the
    pe module for non-PE files (that module's per-file set-up is what the sets save)."""
    files = [
        (f"yara/{p.name}", p.read_bytes())
        for p in sorted(RULES.iterdir())
        if p.suffix in (".yar", ".yara")
    ]
    derived = nonpe.derive(yara, files, dict.fromkeys(yara_engine.EXTERNALS, ""))
    assert derived.kept_verbatim == [] and derived.needs_pe == []
    assert derived.dropped > 2900 and derived.rewritten > 200
