"""Scanning inside zip archives (agentless_scanner/archives.py): real zip files built here
(zipfile, and `zip -e` for a real encrypted member), bombs, lying headers, corruption, nesting;
memory bounds measured with tracemalloc; plus a run under CPython 3.6."""

from __future__ import annotations

import ast
import io
import json
import os
import random
import shutil
import stat
import struct
import subprocess
import sys
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest

from agentless_scanner import archives
from agentless_scanner.archives import Limits, iter_zip_members

sys.path.insert(0, str(Path(__file__).resolve().parent / "scanner"))
import scanner_support as S  # noqa: E402

MiB = 1024 * 1024

# (local header offset, central header offset) of each patchable field.
_FIELDS = {
    "flags": ("<H", 6, 8),
    "method": ("<H", 8, 10),
    "crc": ("<L", 14, 16),
    "csize": ("<L", 18, 20),
    "usize": ("<L", 22, 24),
}


def build_zip(members, method=zipfile.ZIP_DEFLATED) -> bytes:
    """members: [(name, bytes)] or [(name, bytes, compress_type)]."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for item in members:
            name, data = item[0], item[1]
            z.writestr(name, data, compress_type=item[2] if len(item) > 2 else method)
    return buf.getvalue()


def central_entries(data: bytes) -> dict[str, tuple[int, int]]:
    """{name: (central header offset, local header offset)}."""
    found = {}
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        name_len, extra_len, comment_len = struct.unpack_from("<3H", data, pos + 28)
        local = struct.unpack_from("<L", data, pos + 42)[0]
        found[data[pos + 46 : pos + 46 + name_len].decode()] = (pos, local)
        pos = data.find(b"PK\x01\x02", pos + 46 + name_len + extra_len + comment_len)
    return found


def patch(data: bytes, name: str, **fields) -> bytes:
    """Set header fields of one member in both its local and central headers."""
    out = bytearray(data)
    central, local = central_entries(data)[name]
    for field, value in fields.items():
        fmt, local_off, central_off = _FIELDS[field]
        struct.pack_into(fmt, out, local + local_off, value)
        struct.pack_into(fmt, out, central + central_off, value)
    return bytes(out)


def walk(data, **limits):
    """(yielded {name: bytes}, problems [(name, code)], problem details)."""
    got, problems, details = {}, [], []
    for m in iter_zip_members(data, Limits(**limits)):
        if m.problem is None:
            assert m.code is None and isinstance(m.data, memoryview)
            got[m.name] = bytes(m.data)
        else:
            assert m.data is None and m.code in archives.PROBLEMS and m.problem
            problems.append((m.name, m.code))
            details.append(m.problem)
    return got, problems, details


def peak_while(fn):
    """(result, peak bytes allocated by Python while fn ran)."""
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def zeros_zip(size: int, name="zeros.bin", method=zipfile.ZIP_DEFLATED) -> bytes:
    """A zip with one member of ``size`` zero bytes, written in 1 MiB pieces."""
    buf = io.BytesIO()
    chunk = bytes(MiB)
    with zipfile.ZipFile(buf, "w", method) as z, z.open(name, "w") as w:
        for _ in range(size // MiB):
            w.write(chunk)
    return buf.getvalue()


# -- reading ------------------------------------------------------------------------------


def test_every_method_and_input_type():
    text = b"plantsweep archive member\n" * 2000
    data = build_zip(
        [
            ("stored.txt", text, zipfile.ZIP_STORED),
            ("deflated.txt", text, zipfile.ZIP_DEFLATED),
            ("bzip2.txt", text, zipfile.ZIP_BZIP2),
            ("lzma.txt", text, zipfile.ZIP_LZMA),
            ("empty.txt", b"", zipfile.ZIP_DEFLATED),
        ]
    )
    expected = {n: text for n in ("stored.txt", "deflated.txt", "bzip2.txt", "lzma.txt")}
    expected["empty.txt"] = b""
    for given in (data, bytearray(data), memoryview(data), memoryview(bytearray(data))):
        assert walk(given) == (expected, [], [])


def test_stored_member_is_not_copied():
    data = build_zip([("a.bin", os.urandom(100000))], zipfile.ZIP_STORED)
    (member,) = list(iter_zip_members(data))
    assert member.data.obj is data  # a view into the caller's bytes


def test_directories_and_symlinks_are_skipped():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("dir/", b"")
        link = zipfile.ZipInfo("dir/link")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(link, b"/etc/shadow")
        regular = zipfile.ZipInfo("dir/file")
        regular.create_system = 3
        regular.external_attr = (stat.S_IFREG | 0o644) << 16
        z.writestr(regular, b"content")
    assert walk(buf.getvalue()) == ({"dir/file": b"content"}, [], [])


def test_member_names_are_only_labels(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = build_zip(
        [
            ("../../etc/passwd", b"root:x:0:0\n"),
            ("..\\..\\Windows\\System32\\evil.dll", b"MZ evil"),
            ("/abs/path", b"abs"),
        ]
    )
    got, problems, _ = walk(data)
    assert problems == []
    assert got == {
        "../../etc/passwd": b"root:x:0:0\n",
        "../../Windows/System32/evil.dll": b"MZ evil",  # backslashes normalised
        "/abs/path": b"abs",
    }
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere near


def test_module_never_touches_the_filesystem():
    """No os import, no open(), no extract: the payload can't write a member to disk."""
    tree = ast.parse((S.REPO / "agentless_scanner" / "archives.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
        elif isinstance(node, ast.Attribute):
            assert node.attr not in ("extract", "extractall", "open", "write", "mkdir"), node.attr
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id != "open"
    assert not imported & {"os", "shutil", "tempfile", "pathlib"}


# -- nesting ------------------------------------------------------------------------------


def nested_zip() -> bytes:
    deepest = build_zip([("c/deep.txt", b"three levels down")])
    middle = build_zip([("b/deepest.zip", deepest), ("b/mid.txt", b"middle")])
    return build_zip([("a/middle.zip", middle), ("a/top.txt", b"top")])


def test_nested_zip_default_depth_two():
    members = list(iter_zip_members(nested_zip()))
    # Directory order, each nested zip yielded and then opened in place.
    assert [(m.name, m.code) for m in members] == [
        ("a/middle.zip", None),
        ("a/middle.zip!b/deepest.zip", None),
        ("a/middle.zip!b/deepest.zip", "depth-exceeded"),  # yielded, not opened
        ("a/middle.zip!b/mid.txt", None),
        ("a/top.txt", None),
    ]
    assert bytes(members[3].data) == b"middle"
    assert bytes(members[1].data).startswith(b"PK\x03\x04")
    got, problems, _ = walk(nested_zip(), max_depth=3)
    assert got["a/middle.zip!b/deepest.zip!c/deep.txt"] == b"three levels down"
    assert len(got) == 5 and problems == []


def test_depth_one_and_zero():
    got, problems, _ = walk(nested_zip(), max_depth=1)
    assert set(got) == {"a/middle.zip", "a/top.txt"}
    assert problems == [("a/middle.zip", "depth-exceeded")]
    assert walk(nested_zip(), max_depth=0)[:2] == ({}, [("", "depth-exceeded")])


def test_stored_nested_zip_is_not_copied():
    inner = build_zip([("x.txt", b"inner text")], zipfile.ZIP_STORED)
    outer = build_zip([("inner.zip", inner)], zipfile.ZIP_STORED)
    members = list(iter_zip_members(outer))
    assert [m.name for m in members] == ["inner.zip", "inner.zip!x.txt"]
    assert all(m.data.obj is outer for m in members)
    assert bytes(members[1].data) == b"inner text"


# -- problems -----------------------------------------------------------------------------


def test_real_encrypted_member(tmp_path):
    assert shutil.which("zip"), "Info-ZIP zip is required (scripts/setup.sh installs it)"
    (tmp_path / "secret.txt").write_bytes(b"EICAR would hide here\n" * 10)
    (tmp_path / "plain.txt").write_bytes(b"plain\n")
    target = tmp_path / "mixed.zip"
    subprocess.run(["zip", "-q", "-P", "pw", str(target), "secret.txt"], cwd=tmp_path, check=True)
    subprocess.run(["zip", "-q", str(target), "plain.txt"], cwd=tmp_path, check=True)
    data = target.read_bytes()
    assert zipfile.ZipFile(io.BytesIO(data)).getinfo("secret.txt").flag_bits & 1
    got, problems, details = walk(data)
    assert got == {"plain.txt": b"plain\n"}
    assert problems == [("secret.txt", "encrypted")]
    assert "password" in details[0]


@pytest.mark.parametrize(
    "fields", [{"flags": 0x1}, {"flags": 0x41}, {"method": 99}], ids=["zipcrypto", "strong", "aes"]
)
def test_crafted_encrypted_member(fields):
    data = patch(build_zip([("a.txt", b"aaa"), ("b.txt", b"bbb")]), "a.txt", **fields)
    got, problems, _ = walk(data)
    assert got == {"b.txt": b"bbb"}
    assert problems == [("a.txt", "encrypted")]


@pytest.mark.parametrize("method, label", [(9, "deflate64"), (93, "zstandard"), (77, "method 77")])
def test_unsupported_compression(method, label):
    data = patch(build_zip([("a.txt", b"aaa"), ("b.txt", b"bbb")]), "a.txt", method=method)
    got, problems, details = walk(data)
    assert got == {"b.txt": b"bbb"}
    assert problems == [("a.txt", "unsupported-compression")]
    assert label in details[0]


def test_python_without_lzma(monkeypatch):
    """Some old Pythons are built without liblzma: an lzma member is reported, not a crash."""
    data = build_zip([("a.txt", b"aaa", zipfile.ZIP_LZMA), ("b.txt", b"bbb", zipfile.ZIP_BZIP2)])
    monkeypatch.setattr(archives, "lzma", None)  # what `import lzma` failing leaves behind
    got, problems, details = walk(data)
    assert got == {"b.txt": b"bbb"}
    assert problems == [("a.txt", "unsupported-compression")]
    assert "no lzma module" in details[0]


def test_zip_bomb_refused_from_its_header_without_allocating():
    """100 MiB of zeros deflate to ~100 KB: refused before a byte is decompressed."""
    bomb = zeros_zip(100 * MiB)
    assert len(bomb) < 200 * 1024
    (got, problems, details), peak = peak_while(lambda: walk(bomb))
    assert got == {} and problems == [("zeros.bin", "ratio-too-high")]
    assert "zip bomb" in details[0]
    assert peak < 2 * MiB
    # With the ratio bound out of the way, the size bound refuses it (also from the header).
    (got, problems, _), peak = peak_while(lambda: walk(bomb, max_ratio=10**9))
    assert got == {} and problems == [("zeros.bin", "member-too-large")]
    assert peak < 2 * MiB


def test_lying_header_bomb_stopped_while_decompressing():
    """The same bomb with headers claiming 1 MiB: the ratio bound stops decompression after
    ~100 x the compressed size (about 10 MiB), far below the 100 MiB the data expands to."""
    bomb = patch(zeros_zip(100 * MiB), "zeros.bin", usize=MiB)
    (got, problems, details), peak = peak_while(lambda: walk(bomb))
    assert got == {} and problems == [("zeros.bin", "ratio-too-high")]
    assert "expand to more than" in details[0]
    assert peak < 25 * MiB
    # Ratio bound off: the member size bound stops it, also while decompressing.
    (got, problems, details), peak = peak_while(
        lambda: walk(bomb, max_ratio=10**9, max_member_size=8 * MiB)
    )
    assert got == {} and problems == [("zeros.bin", "member-too-large")]
    assert "decompresses to more than the limit" in details[0]
    assert peak < 20 * MiB


def test_lying_header_bzip2_bomb_is_bounded_too():
    """zipfile's own reader would decompress a bzip2 member without an output limit."""
    bomb = zeros_zip(64 * MiB, method=zipfile.ZIP_BZIP2)
    assert len(bomb) < 10 * 1024
    bomb = patch(bomb, "zeros.bin", usize=1000)
    (got, problems, _), peak = peak_while(
        lambda: walk(bomb, max_ratio=10**9, max_member_size=4 * MiB)
    )
    assert got == {} and problems == [("zeros.bin", "member-too-large")]
    assert peak < 12 * MiB


def test_small_compressible_members_are_not_bombs():
    """Under ratio_grace (1 MiB) a high ratio is harmless: 512 KiB of zeros is scanned."""
    data = build_zip([("zeros.bin", bytes(512 * 1024))])
    assert len(data) < 2048
    assert walk(data)[0] == {"zeros.bin": bytes(512 * 1024)}


def test_total_size_bound_stops_the_walk():
    members = [(f"m{i}.bin", os.urandom(MiB)) for i in range(5)]
    got, problems, details = walk(build_zip(members), max_total_size=3 * MiB)
    assert sorted(got) == ["m0.bin", "m1.bin", "m2.bin"]
    assert problems == [("m3.bin", "total-too-large")]  # m4 is not even looked at
    assert "the rest not scanned" in details[0]


def test_total_size_counts_nested_members():
    inner = build_zip([("x.bin", os.urandom(MiB)), ("y.bin", os.urandom(MiB))])
    outer = build_zip([("inner.zip", inner), ("after.txt", b"after")])
    got, problems, _ = walk(outer, max_total_size=int(3.5 * MiB))
    # inner.zip itself (2 MiB of incompressible data) counts, then x.bin fits, y.bin not.
    assert set(got) == {"inner.zip", "inner.zip!x.bin"}
    assert problems == [("inner.zip!y.bin", "total-too-large")]


def test_too_many_members():
    data = build_zip([(f"f{i}.txt", b"x") for i in range(20)])
    got, problems, details = walk(data, max_members=10)
    assert got == {} and problems == [("", "too-many-members")]
    assert "not opened" in details[0]
    assert len(walk(data, max_members=20)[0]) == 20


def test_too_many_members_across_nesting():
    inner = build_zip([(f"i{i}.txt", b"i") for i in range(6)])
    outer = build_zip([(f"o{i}.txt", b"o") for i in range(3)] + [("inner.zip", inner)])
    got, problems, _ = walk(outer, max_members=8)
    assert len(got) == 8  # 3 + inner.zip + 4 of its members
    assert problems == [("inner.zip!i4.txt", "too-many-members")]


def test_bad_crc():
    data = build_zip([("a.txt", b"aaa"), ("b.txt", b"bbb")])
    bad = patch(data, "a.txt", crc=zlib.crc32(b"aab"))
    got, problems, details = walk(bad)
    assert got == {"b.txt": b"bbb"}
    assert problems == [("a.txt", "corrupt")] and "CRC" in details[0]
    # The same for a stored member (no decompression to trip over).
    stored = build_zip([("a.txt", b"aaa")], zipfile.ZIP_STORED)
    assert walk(patch(stored, "a.txt", crc=0))[1] == [("a.txt", "corrupt")]


def test_size_mismatch_is_corrupt():
    data = patch(build_zip([("a.txt", b"hello" * 1000)]), "a.txt", usize=100)
    got, problems, details = walk(data)
    assert got == {} and problems == [("a.txt", "corrupt")]
    assert "header says 100" in details[0]


def test_damaged_compressed_data():
    text = os.urandom(4000)
    data = bytearray(build_zip([("a.bin", text), ("b.txt", b"bbb")]))
    _, local = central_entries(bytes(data))["a.bin"]
    for i in range(local + 30 + 5, local + 30 + 60):
        data[i] ^= 0xFF
    got, problems, _ = walk(bytes(data))
    assert got == {"b.txt": b"bbb"} and problems == [("a.bin", "corrupt")]


def test_damaged_local_header_and_name():
    data = build_zip([("a.txt", b"aaa"), ("b.txt", b"bbb")])
    _, local = central_entries(data)["a.txt"]
    bad_sig = data[:local] + b"XX" + data[local + 2 :]
    assert walk(bad_sig)[1] == [("a.txt", "corrupt")]
    bad_name = data[: local + 30] + b"z" + data[local + 31 :]  # local name "z.txt"
    got, problems, details = walk(bad_name)
    assert got == {"b.txt": b"bbb"} and problems == [("a.txt", "corrupt")]
    assert "names differ" in details[0]


def test_overlapping_members_are_refused():
    """Two directory entries sharing one local header (the overlapping-files zip bomb)."""
    data = bytearray(build_zip([("a.txt", b"same"), ("b.txt", b"same")]))
    entries = central_entries(bytes(data))
    struct.pack_into("<L", data, entries["b.txt"][0] + 42, entries["a.txt"][1])
    got, problems, details = walk(bytes(data))
    assert got == {"a.txt": b"same"}
    assert problems == [("b.txt", "corrupt")] and "overlaps" in details[0]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"PK\x03\x04",
        b"not a zip at all" * 100,
        nested_zip()[:-30],  # truncated: no end of central directory record
    ],
    ids=["empty", "magic-only", "text", "truncated"],
)
def test_unreadable_archive(data):
    got, problems, details = walk(data)
    assert got == {} and problems == [("", "corrupt")]
    assert "not a readable zip" in details[0]


def test_truncated_member_data():
    data = build_zip([("a.bin", os.urandom(5000))])
    # Keep the directory but claim the data is longer than the file holds.
    bad = patch(data, "a.bin", csize=len(data))
    assert walk(bad)[1] == [("a.bin", "corrupt")]


def test_never_raises_on_mutated_archives():
    """Flip bytes all over a valid nested zip: every outcome is a member or a problem."""
    original = nested_zip()
    rng = random.Random(4)
    outcomes = set()
    for _ in range(400):
        data = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        got, problems, _ = walk(bytes(data), max_depth=3)
        outcomes.update(code for _, code in problems)
        outcomes.add("ok" if got else "none")
    assert {"ok", "corrupt"} <= outcomes


# -- API ----------------------------------------------------------------------------------


def test_limits():
    limits = Limits()
    assert limits.as_log() == {
        "max_depth": 2,
        "max_member_size": 50 * MiB,
        "max_total_size": 200 * MiB,
        "max_ratio": 100,
        "ratio_grace": MiB,
        "max_members": 10000,
    }
    assert Limits(max_depth=5).max_depth == 5
    with pytest.raises(ValueError, match="max_member_size"):
        Limits(max_member_size=-1)
    with pytest.raises(ValueError, match="max_ratio"):
        Limits(max_ratio=0)


def test_is_zip():
    assert archives.is_zip(build_zip([("a", b"a")]))
    assert archives.is_zip(memoryview(build_zip([])))  # an empty zip
    assert not archives.is_zip(b"MZ\x90\x00")
    assert not archives.is_zip(b"")


def test_under_python36():
    """Under CPython 3.6: nesting, every method, a header-refused bomb, a lying-header bomb
    (zip built by 3.6's own zipfile)."""
    if not os.path.exists(S.PY36):
        pytest.fail(f"no CPython 3.6 at {S.PY36}: the payload must run on it")
    code = (
        "import io, json, struct, sys, zipfile\n"
        f"sys.path.insert(0, {str(S.REPO)!r})\n"
        "from agentless_scanner.archives import Limits, iter_zip_members\n"
        "def build(members):\n"
        "    b = io.BytesIO()\n"
        "    with zipfile.ZipFile(b, 'w') as z:\n"
        "        for name, data, method in members:\n"
        "            z.writestr(name, data, compress_type=method)\n"
        "    return b.getvalue()\n"
        "inner = build([('in.txt', b'inner', zipfile.ZIP_DEFLATED)])\n"
        "text = b'py36 ' * 1000\n"
        "outer = build([('s.txt', text, 0), ('d.txt', text, 8), ('b.txt', text, 12),\n"
        "               ('l.txt', text, 14), ('inner.zip', inner, 8),\n"
        "               ('bomb.bin', bytes(20 << 20), 8)])\n"
        "out = [[m.name, m.code, None if m.data is None else bytes(m.data) == text]\n"
        "       for m in iter_zip_members(memoryview(outer), Limits())]\n"
        "bomb = bytearray(build([('z', bytes(20 << 20), 8)]))\n"
        "struct.pack_into('<L', bomb, 22, 1000)\n"
        "c = bomb.find(b'PK\\x01\\x02')\n"
        "struct.pack_into('<L', bomb, c + 24, 1000)\n"
        "out += [[m.name, m.code] for m in iter_zip_members(bomb, Limits(max_ratio=10**9,\n"
        "        max_member_size=1 << 20))]\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [S.PY36, "-I", "-B", "-c", code], capture_output=True, text=True, cwd=str(S.REPO)
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [
        ["s.txt", None, True],
        ["d.txt", None, True],
        ["b.txt", None, True],
        ["l.txt", None, True],
        ["inner.zip", None, False],
        ["inner.zip!in.txt", None, False],
        ["bomb.bin", "ratio-too-high", None],
        ["z", "member-too-large"],
    ]
