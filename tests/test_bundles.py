"""Signed pattern bundles: build, verify, import, and every refusal (orchestrator/bundles)."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import pytest
import yara

from agentless_scanner import yara_engine
from orchestrator.bundles import (
    BrokenRule,
    BundleError,
    RuleCompileError,
    build_bundle,
    build_bundle_manifest,
    generate_keypair,
    import_bundle,
    installed,
    list_bundles,
    load_public_key,
    verify_bundle,
)
from orchestrator.bundles.keys import load_secret_key
from orchestrator.bundles.manifest import ManifestError, parse_manifest
from orchestrator.errors import PlantsweepError

TODAY = date(2026, 6, 1)
RELEASED = date(2026, 5, 1)
EXPIRES = date(2026, 12, 1)
EICAR_RULE = (
    'rule eicar_test { strings: $a = "EICAR-STANDARD-ANTIVIRUS-TEST-FILE" condition: $a }\n'
)
# SHA-256 of the EICAR test file: a harmless, well-known hash IOC.
HASHES = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f;EICAR test file\n"
MINISIGN = shutil.which("minisign")
# scripts/setup.sh installs Debian's minisign: its absence is a setup failure, not a skip.
needs_minisign = pytest.mark.usefixtures("minisign_installed")


@pytest.fixture
def minisign_installed() -> None:
    assert MINISIGN is not None, "minisign is not installed (scripts/setup.sh installs it)"


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    secret, public = tmp_path / "keys" / "test.key", tmp_path / "keys" / "test.pub"
    secret.parent.mkdir()
    generate_keypair(secret, public, "plantsweep test key")
    return secret, public


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    (folder / "sub").mkdir(parents=True)
    (folder / "eicar.yar").write_text(EICAR_RULE)
    (folder / "sub" / "iocs.hashes").write_text(HASHES)
    (folder / "notes.md").write_text("not a pattern file: left out\n")
    return folder


@pytest.fixture
def make(tmp_path: Path, src: Path, keys: tuple[Path, Path]) -> Callable[..., Path]:
    """Build a bundle: make(version=1, released=..., expires=..., key=secret)."""

    def _make(
        version: int = 1,
        released: date = RELEASED,
        expires: date = EXPIRES,
        key: Path | None = None,
        name: str = "demo",
    ) -> Path:
        dest = tmp_path / "out" / f"{name}-{version}.tar"
        return build_bundle(src, dest, key or keys[0], name, version, released, expires)

    return _make


def members(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def write_tar(dest: Path, files: dict[str, bytes], extra: Sequence[tarfile.TarInfo] = ()) -> Path:
    """A hand-made tar: regular files from ``files`` plus raw ``extra`` headers."""
    with tarfile.open(dest, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)
    return dest


def tampered(bundle: Path, name: str, change: Callable[[bytes], bytes | None]) -> Path:
    """A copy of ``bundle`` with member ``name`` changed (None: removed)."""
    files = members(bundle)
    new = change(files.get(name, b""))
    if new is None:
        files.pop(name)
    else:
        files[name] = new
    return write_tar(bundle.with_name("tampered.tar"), files)


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def refused(bundle: Path, public: Path, *words: str, **kwargs: object) -> BundleError:
    with pytest.raises(BundleError) as info:
        verify_bundle(bundle, [public], today=TODAY, **kwargs)  # type: ignore[arg-type]
    text = str(info.value)
    assert str(bundle) in text  # the error names the bundle
    for word in words:
        assert word in text, text
    return info.value


# -- keys -----------------------------------------------------------------------------------


def test_keypair_formats(keys: tuple[Path, Path]) -> None:
    secret, public = keys
    assert secret.stat().st_mode & 0o777 == 0o600
    lines = public.read_text().splitlines()
    assert lines[0].startswith("untrusted comment: ")
    raw = base64.b64decode(lines[1])
    assert len(raw) == 42 and raw[:2] == b"Ed"
    pub = load_public_key(public)
    assert (pub.key_id, pub.raw) == (raw[2:10], raw[10:])
    assert load_secret_key(secret).key_id == pub.key_id
    with pytest.raises(BundleError, match="overwrite"):
        generate_keypair(secret, public.with_name("other.pub"), "x")


# -- build + import -------------------------------------------------------------------------


def test_build_then_import(
    make: Callable[..., Path], keys: tuple[Path, Path], src: Path, tmp_path: Path
) -> None:
    bundle = make(version=3)
    assert sorted(members(bundle)) == [
        "manifest.json",
        "manifest.json.minisig",
        "patterns/compiled/content.yarc",
        "patterns/compiled/nonpe/content.yarc",
        "patterns/eicar.yar",
        "patterns/sub/iocs.hashes",
    ]
    manifest = verify_bundle(bundle, [keys[1]], today=TODAY)
    assert (manifest.name, manifest.version) == ("demo", 3)
    assert [f.path for f in manifest.files] == [
        "compiled/content.yarc",
        "compiled/nonpe/content.yarc",
        "eicar.yar",
        "sub/iocs.hashes",
    ]
    data = json.loads(members(bundle)["manifest.json"])
    assert data["released"] == "2026-05-01" and data["expires"] == "2026-12-01"
    assert data["files"][2]["size"] == len(EICAR_RULE)
    assert data["yara"] == {
        "libyara": yara.YARA_VERSION,
        "content_rules": 1,
        "path_rules": 0,
        "non_pe_rules": 1,
    }
    assert "excluded" not in data

    store = tmp_path / "store"
    folder = import_bundle(bundle, store, [keys[1]], today=TODAY)
    assert folder == store / "demo" / "3"
    assert (folder / "patterns" / "eicar.yar").read_text() == EICAR_RULE
    assert (folder / "patterns" / "sub" / "iocs.hashes").read_text() == HASHES
    assert installed(store, "demo") == (3, folder)
    assert installed(store, "other") is None
    assert [(b.name, b.version) for b in list_bundles(store)] == [("demo", 3)]
    assert issubclass(BundleError, PlantsweepError)


def test_build_refuses_symlink(src: Path, make: Callable[..., Path]) -> None:
    (src / "link.yar").symlink_to(src / "eicar.yar")
    with pytest.raises(BundleError, match="symlinks are not allowed"):
        make()


def test_build_refuses_expiry_before_release(make: Callable[..., Path]) -> None:
    with pytest.raises(BundleError, match="before the release"):
        make(released=date(2026, 5, 2), expires=date(2026, 5, 1))


# -- compiled YARA rules ---------------------------------------------------------------------

# A rule on the file name (external variable), as signature-base writes them.
PATH_RULE = """
rule ps_named_dropper {
    meta:
        score = 80
    condition:
        filename == "dropper.exe" and uint16(0) == 0x5a4d
}
"""
# Names the externals only inside a string, a comment and a rule name: a content rule file.
WORDS_ONLY_RULE = """
// filename and extension are mentioned here only
rule ps_filename_words { strings: $a = "owner: filepath" condition: $a }
"""
BROKEN_RULES = """rule ps_fine_first { condition: true }

rule ps_broken_second
{
    condition:
        no_such_identifier
}
"""
SYNTAX_ERROR = 'rule ps_unclosed { strings: $a = "x" condition: $a\n'


def compiled_set(bundle: Path, name: str) -> yara.Rules:
    return yara.load(file=io.BytesIO(members(bundle)[f"patterns/compiled/{name}.yarc"]))


def test_rules_are_compiled_into_a_content_and_a_path_set(
    make: Callable[..., Path], src: Path, keys: tuple[Path, Path]
) -> None:
    (src / "sub" / "names.yar").write_text(PATH_RULE)
    (src / "words.yara").write_text(WORDS_ONLY_RULE)
    bundle = make()
    manifest = verify_bundle(bundle, [keys[1]], today=TODAY)
    assert manifest.yara is not None
    assert (manifest.yara.content_rules, manifest.yara.path_rules) == (2, 1)
    assert manifest.yara.libyara == yara.YARA_VERSION == yara_engine.YARA_PYTHON_VERSION
    content, path = compiled_set(bundle, "content"), compiled_set(bundle, "path")
    assert sorted(r.identifier for r in content) == ["eicar_test", "ps_filename_words"]
    assert [r.identifier for r in path] == ["ps_named_dropper"]
    # The path set takes the externals at match time; the same bytes under another name miss.
    mz = b"MZ" + b"\0" * 62
    hit = path.match(data=mz, externals={"filename": "dropper.exe"})
    assert [(m.namespace, m.rule) for m in hit] == [("sub/names.yar", "ps_named_dropper")]
    assert hit[0].meta["score"] == 80
    assert path.match(data=mz, externals={"filename": "notepad.exe"}) == []
    # The content set holds the file that names the externals only in text and comments.
    hit = content.match(data=b"xx owner: filepath xx")
    assert [(m.namespace, m.rule) for m in hit] == [("words.yara", "ps_filename_words")]


def test_build_is_reproducible_with_compiled_rules(
    src: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    (src / "names.yar").write_text(PATH_RULE)
    a = build_bundle(src, tmp_path / "a.tar", keys[0], "demo", 1, RELEASED, EXPIRES)
    b = build_bundle(src, tmp_path / "b.tar", keys[0], "demo", 1, RELEASED, EXPIRES)
    assert "patterns/compiled/path.yarc" in members(a)
    assert a.read_bytes() == b.read_bytes()


def test_broken_rules_are_named_and_stop_the_build(
    make: Callable[..., Path], src: Path, tmp_path: Path
) -> None:
    (src / "sub" / "broken.yar").write_text(BROKEN_RULES)
    (src / "unclosed.yar").write_text(SYNTAX_ERROR)
    (src / "names.yar").write_text(PATH_RULE + "rule y { condition: z }")
    with pytest.raises(RuleCompileError) as info:
        make()
    broken = info.value.broken
    assert [(b.path, b.rule, b.line) for b in broken] == [
        ("names.yar", "y", 8),
        ("sub/broken.yar", "ps_broken_second", 6),
        ("unclosed.yar", "ps_unclosed", None),  # libyara: at the end of the file
    ]
    assert 'undefined identifier "z"' in broken[0].reason
    assert 'undefined identifier "no_such_identifier"' in broken[1].reason
    assert "syntax error, unexpected end of file" in broken[2].reason
    assert broken[1].describe().startswith("sub/broken.yar: rule ps_broken_second, line 6: ")
    text = str(info.value)
    assert str(src) in text and "--skip-broken" in text and "rule ps_broken_second" in text
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_skip_broken_leaves_them_out_and_lists_them(
    src: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    (src / "sub" / "broken.yar").write_text(BROKEN_RULES)
    (src / "names.yar").write_text(PATH_RULE)
    dest = tmp_path / "skip.tar"
    _, manifest = build_bundle_manifest(
        src, dest, keys[0], "demo", 1, RELEASED, EXPIRES, skip_broken=True
    )
    assert "patterns/sub/broken.yar" not in members(dest)
    assert [(e.path, e.rule, e.line) for e in manifest.excluded] == [
        ("sub/broken.yar", "ps_broken_second", 6)
    ]
    data = json.loads(members(dest)["manifest.json"])
    assert data["excluded"] == [
        {
            "path": "sub/broken.yar",
            "rule": "ps_broken_second",
            "line": 6,
            "reason": manifest.excluded[0].reason,
        }
    ]
    assert "no_such_identifier" in manifest.excluded[0].reason
    # The good rules of the bundle are still compiled; the broken file's good rule is not.
    assert data["yara"]["content_rules"] == 1 and data["yara"]["path_rules"] == 1
    verified = verify_bundle(dest, [keys[1]], today=TODAY)
    assert verified.excluded == manifest.excluded


def test_rule_file_that_uses_an_external_after_all_goes_to_the_path_set(
    make: Callable[..., Path], src: Path
) -> None:
    # A '"' inside a regular expression fools the word check (it blanks text strings, and
    # takes the rest of the line for one): this file looks like a content rule file. The
    # content set is compiled without the externals, so it fails there and moves.
    text = 'rule ps_quote_in_regex { strings: $re = /a"b/ condition: $re and filename == "x.exe" }'
    assert not yara_engine.uses_externals(text)
    (src / "tricky.yar").write_text(text + "\n")
    bundle = make()
    assert [r.identifier for r in compiled_set(bundle, "path")] == ["ps_quote_in_regex"]
    assert [r.identifier for r in compiled_set(bundle, "content")] == ["eicar_test"]
    hit = compiled_set(bundle, "path").match(data=b'a"b', externals={"filename": "x.exe"})
    assert [m.rule for m in hit] == ["ps_quote_in_regex"]


def test_manifest_without_yara_entries_still_parses() -> None:
    old = {
        "format": 1,
        "name": "old",
        "version": 1,
        "released": "2026-01-01",
        "expires": "2026-12-31",
        "files": [{"path": "a.hashes", "sha256": "0" * 64, "size": 3}],
    }
    manifest = parse_manifest(json.dumps(old).encode())
    assert manifest.yara is None and manifest.excluded == ()
    with pytest.raises(ManifestError, match="yara"):
        parse_manifest(json.dumps({**old, "yara": {"content_rules": 1}}).encode())
    with pytest.raises(ManifestError, match="excluded"):
        parse_manifest(json.dumps({**old, "excluded": [{"path": "x.yar"}]}).encode())
    assert BrokenRule("a.yar", None, None, "r").describe() == "a.yar: r"


# -- minisign compatibility -----------------------------------------------------------------


@needs_minisign
def test_real_minisign_verifies_manifest(
    make: Callable[..., Path], keys: tuple[Path, Path], tmp_path: Path
) -> None:
    folder = import_bundle(make(), tmp_path / "store", [keys[1]], today=TODAY)
    cmd = [MINISIGN, "-Vm", "manifest.json", "-p", str(keys[1])]
    ok = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "name:demo version:1" in ok.stdout  # the trusted comment is shown and signed

    manifest = folder / "manifest.json"
    original = manifest.read_bytes()
    manifest.write_bytes(flip(original, 10))
    bad = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    assert bad.returncode != 0

    manifest.write_bytes(original)
    sig = folder / "manifest.json.minisig"
    lines = sig.read_text().splitlines()
    raw = base64.b64decode(lines[1])
    lines[1] = base64.b64encode(flip(raw, 40)).decode()
    sig.write_text("\n".join(lines) + "\n")
    bad = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    assert bad.returncode != 0


@needs_minisign
def test_we_verify_a_signature_made_by_minisign(make: Callable[..., Path], tmp_path: Path) -> None:
    # The other direction: minisign's own key and signature pass our verifier.
    pub, sec = tmp_path / "m.pub", tmp_path / "m.key"
    subprocess.run([MINISIGN, "-G", "-W", "-p", pub, "-s", sec], check=True, capture_output=True)
    files = members(make())
    work = tmp_path / "m"
    work.mkdir()
    (work / "manifest.json").write_bytes(files["manifest.json"])
    comment = files["manifest.json.minisig"].decode().splitlines()[2].split(": ", 1)[1]
    subprocess.run(
        [MINISIGN, "-S", "-s", sec, "-m", work / "manifest.json", "-t", comment],
        check=True,
        capture_output=True,
    )
    files["manifest.json.minisig"] = (work / "manifest.json.minisig").read_bytes()
    bundle = write_tar(tmp_path / "by-minisign.tar", files)
    assert verify_bundle(bundle, [pub], today=TODAY).version == 1


# -- tampering ------------------------------------------------------------------------------


def test_one_byte_changed_in_manifest(make: Callable[..., Path], keys: tuple[Path, Path]) -> None:
    # Byte 30 is inside the JSON text; any change must break the signature.
    bundle = tampered(make(), "manifest.json", lambda d: flip(d, 30))
    refused(bundle, keys[1], "signature does not verify")


@pytest.mark.parametrize("line, at", [(1, 20), (1, 60), (3, 5)])
def test_one_byte_changed_in_signature(
    make: Callable[..., Path], keys: tuple[Path, Path], line: int, at: int
) -> None:
    def change(data: bytes) -> bytes:
        lines = data.decode().splitlines()
        raw = base64.b64decode(lines[line])
        lines[line] = base64.b64encode(flip(raw, at)).decode()
        return ("\n".join(lines) + "\n").encode()

    refused(tampered(make(), "manifest.json.minisig", change), keys[1], "signature does not verify")


def test_trusted_comment_changed(make: Callable[..., Path], keys: tuple[Path, Path]) -> None:
    change = lambda d: d.replace(b"version:1", b"version:9")  # noqa: E731
    refused(tampered(make(), "manifest.json.minisig", change), keys[1], "signature does not verify")


def test_untrusted_key(make: Callable[..., Path], keys: tuple[Path, Path], tmp_path: Path) -> None:
    other_secret, other_public = tmp_path / "other.key", tmp_path / "other.pub"
    generate_keypair(other_secret, other_public, "someone else")
    bundle = make(key=other_secret)
    assert verify_bundle(bundle, [other_public], today=TODAY).version == 1  # valid, just untrusted
    other_id = load_public_key(other_public).key_id_hex
    refused(bundle, keys[1], "unknown key id", other_id)
    with pytest.raises(BundleError, match="unknown key id"):
        import_bundle(bundle, tmp_path / "store", [keys[1]], today=TODAY)
    assert not (tmp_path / "store" / "demo").exists()


def test_forged_key_id(make: Callable[..., Path], keys: tuple[Path, Path], tmp_path: Path) -> None:
    # An attacker's key that claims the trusted key id still fails on the signature itself.
    other_secret = tmp_path / "other.key"
    generate_keypair(other_secret, tmp_path / "other.pub", "attacker")
    text = other_secret.read_text().splitlines()
    text[1] = "key id: " + load_public_key(keys[1]).key_id_hex
    other_secret.write_text("\n".join(text) + "\n")
    refused(make(key=other_secret), keys[1], "signature does not verify")


def test_one_byte_changed_in_content(make: Callable[..., Path], keys: tuple[Path, Path]) -> None:
    bundle = tampered(make(), "patterns/eicar.yar", lambda d: flip(d, 15))
    refused(bundle, keys[1], "eicar.yar", "SHA-256 differs")


def test_content_size_changed(make: Callable[..., Path], keys: tuple[Path, Path]) -> None:
    bundle = tampered(make(), "patterns/eicar.yar", lambda d: d + b"\n")
    refused(bundle, keys[1], "eicar.yar", "size")


def test_unlisted_file(make: Callable[..., Path], keys: tuple[Path, Path]) -> None:
    bundle = tampered(make(), "patterns/extra.yar", lambda d: b"rule x { condition: true }\n")
    refused(bundle, keys[1], "patterns/extra.yar", "not listed in the manifest")


def test_listed_file_missing(make: Callable[..., Path], keys: tuple[Path, Path]) -> None:
    bundle = tampered(make(), "patterns/sub/iocs.hashes", lambda d: None)
    refused(bundle, keys[1], "sub/iocs.hashes", "missing")


def test_missing_signature(make: Callable[..., Path], keys: tuple[Path, Path]) -> None:
    refused(tampered(make(), "manifest.json.minisig", lambda d: None), keys[1], "minisig")


# -- archive members that would land outside the folder -------------------------------------


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize(
    "files, extra, words",
    [
        ({"patterns/../../evil.yar": b"x"}, [], "outside"),
        ({"../evil.yar": b"x"}, [], "outside"),
        ({"/tmp/plantsweep-evil.yar": b"x"}, [], "outside"),
        ({}, [_special("patterns/link.yar", tarfile.SYMTYPE, "/etc/passwd")], "symlink"),
        ({}, [_special("patterns/hard.yar", tarfile.LNKTYPE, "/etc/passwd")], "hard link"),
        ({}, [_special("patterns/dev", tarfile.CHRTYPE)], "device"),
        ({}, [_special("patterns/fifo", tarfile.FIFOTYPE)], "device or FIFO"),
        ({}, [_special("patterns/sub", tarfile.DIRTYPE)], "directory"),
    ],
)
def test_hostile_members_refused(
    make: Callable[..., Path],
    keys: tuple[Path, Path],
    tmp_path: Path,
    files: dict[str, bytes],
    extra: list[tarfile.TarInfo],
    words: str,
) -> None:
    # A genuine signed bundle plus one hostile member: refused whole, nothing written.
    good = members(make())
    bundle = write_tar(tmp_path / "hostile.tar", {**good, **files}, extra)
    refused(bundle, keys[1], words)
    store = tmp_path / "deep" / "store"
    with pytest.raises(BundleError, match=words):
        import_bundle(bundle, store, [keys[1]], today=TODAY)
    assert not store.exists()
    assert not (tmp_path / "deep" / "evil.yar").exists()
    assert not (tmp_path / "evil.yar").exists()
    assert not Path("/tmp/plantsweep-evil.yar").exists()


def test_duplicate_member_refused(
    make: Callable[..., Path], keys: tuple[Path, Path], tmp_path: Path
) -> None:
    good = members(make())
    dup = tarfile.TarInfo("patterns/eicar.yar")
    dup.size = 3
    bundle = write_tar(tmp_path / "dup.tar", good)
    with tarfile.open(bundle, "a") as tar:
        tar.addfile(dup, io.BytesIO(b"bad"))
    refused(bundle, keys[1], "appears twice")


def test_not_a_tar(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not an archive" * 100)
    refused(junk, keys[1], "cannot open bundle")


# -- versions and dates ---------------------------------------------------------------------


def test_rollback_refused(
    make: Callable[..., Path], keys: tuple[Path, Path], tmp_path: Path
) -> None:
    store = tmp_path / "store"
    v1, v2, v3 = make(version=1), make(version=2), make(version=3)
    import_bundle(v2, store, [keys[1]], today=TODAY)
    for bundle, version in ((v1, 1), (v2, 2)):
        with pytest.raises(
            BundleError, match=f"rollback refused.*version {version} .*installed version 2"
        ):
            import_bundle(bundle, store, [keys[1]], today=TODAY)
    assert installed(store, "demo") == (2, store / "demo" / "2")
    assert not (store / "demo" / "1").exists()
    import_bundle(v3, store, [keys[1]], today=TODAY)
    assert installed(store, "demo") == (3, store / "demo" / "3")
    refused(v3, keys[1], "rollback refused", installed_version=3)
    refused(v1, keys[1], "rollback refused", installed_version=2)
    assert verify_bundle(v3, [keys[1]], installed_version=2, today=TODAY).version == 3


def test_expired(make: Callable[..., Path], keys: tuple[Path, Path]) -> None:
    bundle = make(released=date(2026, 1, 1), expires=date(2026, 5, 31))
    refused(bundle, keys[1], "expired on 2026-05-31")
    # The expiry day itself is still valid.
    assert verify_bundle(bundle, [keys[1]], today=date(2026, 5, 31)).version == 1


def test_release_in_future(make: Callable[..., Path], keys: tuple[Path, Path]) -> None:
    bundle = make(released=date(2026, 6, 2), expires=date(2026, 12, 1))
    refused(bundle, keys[1], "in the future")
    assert verify_bundle(bundle, [keys[1]], today=date(2026, 6, 2)).version == 1


def test_corrupt_install_record_refuses(
    make: Callable[..., Path], keys: tuple[Path, Path], tmp_path: Path
) -> None:
    # A broken record must not be read as "nothing installed" (that would allow a rollback).
    store = tmp_path / "store"
    import_bundle(make(version=2), store, [keys[1]], today=TODAY)
    (store / "demo" / "installed.json").write_text("{")
    with pytest.raises(BundleError, match="unreadable install record"):
        import_bundle(make(version=1), store, [keys[1]], today=TODAY)
