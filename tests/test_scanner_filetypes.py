"""The quick-scan file-type filter (agentless_scanner/filetypes.py), on real file heads where
this machine has them (ELF, PE, gzip, bzip2, xz, tar, zip, OOXML) and on crafted heads
elsewhere; plus a run under CPython 3.6."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pip
import pytest

from agentless_scanner import filetypes, yara_engine
from agentless_scanner.filetypes import ARCHIVE, EXECUTABLE, MACRO_DOCUMENT, SCRIPT

sys.path.insert(0, str(Path(__file__).resolve().parent / "scanner"))
import scanner_support as S  # noqa: E402

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 24
LNK = b"L\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00F" + b"\x00" * 20
ONENOTE = b"\xe4\x52\x5c\x7b\x8c\xd8\xa7\x4d\xae\xb1\x53\x78\xd0\x29\x96\xd3" + b"\x00" * 8


def head_of(path: str | Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(filetypes.HEAD_SIZE)


def zip_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def tar_bytes() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        info = tarfile.TarInfo("payload.txt")
        info.size = 5
        t.addfile(info, io.BytesIO(b"hello"))
    return buf.getvalue()


# -- names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, ext",
    [
        ("setup.exe", "exe"),
        ("SETUP.EXE", "exe"),
        (b"/home/op/Downloads/Invoice.PDF.exe", "exe"),  # the walker's bytes paths
        ("C:\\Users\\op\\Downloads\\macro.XLSM", "xlsm"),
        ("C:\\Users\\op\\evil.exe. . ", "exe"),  # Windows drops trailing dots and spaces
        ("/usr/lib/x86_64-linux-gnu/libc.so.6", "so"),
        ("/usr/lib/libfoo.so.1.2.3", "so"),
        ("/home/op/.bashrc", ""),  # a dot file has no extension
        ("/usr/bin/ls", ""),
        ("dir.d/README", ""),  # a dot in a folder name is not an extension
        (b"caf\xe9.ps1", "ps1"),  # not UTF-8: still classified
        ("archive.tar.gz", "gz"),
    ],
)
def test_extension(name, ext):
    assert filetypes.extension(name) == ext


@pytest.mark.parametrize(
    "name, category",
    [
        # Windows executables and friends
        ("a.exe", EXECUTABLE),
        ("a.DLL", EXECUTABLE),
        ("driver.sys", EXECUTABLE),
        ("screen.scr", EXECUTABLE),
        ("old.com", EXECUTABLE),
        ("panel.cpl", EXECUTABLE),
        ("ctl.ocx", EXECUTABLE),
        ("boot.efi", EXECUTABLE),
        ("setup.msi", EXECUTABLE),
        ("addin.xll", EXECUTABLE),
        ("prog.pif", EXECUTABLE),
        # Linux executables
        ("mod.ko", EXECUTABLE),
        ("libx.so", EXECUTABLE),
        ("libx.so.1", EXECUTABLE),
        ("a.elf", EXECUTABLE),
        ("Main.class", EXECUTABLE),
        # scripts
        ("run.ps1", SCRIPT),
        ("mod.psm1", SCRIPT),
        ("data.psd1", SCRIPT),
        ("x.vbs", SCRIPT),
        ("x.vbe", SCRIPT),
        ("x.js", SCRIPT),
        ("x.jse", SCRIPT),
        ("x.wsf", SCRIPT),
        ("x.wsh", SCRIPT),
        ("x.hta", SCRIPT),
        ("x.bat", SCRIPT),
        ("x.CMD", SCRIPT),
        ("x.sh", SCRIPT),
        ("x.bash", SCRIPT),
        ("x.py", SCRIPT),
        ("x.pyw", SCRIPT),
        ("x.pl", SCRIPT),
        ("x.rb", SCRIPT),
        ("x.php", SCRIPT),
        ("Invoice.lnk", SCRIPT),
        ("x.url", SCRIPT),
        ("x.reg", SCRIPT),
        ("x.msc", SCRIPT),
        ("evil.desktop", SCRIPT),
        # documents that can carry macros or active content
        ("a.doc", MACRO_DOCUMENT),
        ("a.xls", MACRO_DOCUMENT),
        ("a.ppt", MACRO_DOCUMENT),
        ("a.msg", MACRO_DOCUMENT),
        ("a.docm", MACRO_DOCUMENT),
        ("a.xlsm", MACRO_DOCUMENT),
        ("a.pptm", MACRO_DOCUMENT),
        ("a.dotm", MACRO_DOCUMENT),
        ("a.xltm", MACRO_DOCUMENT),
        ("a.potm", MACRO_DOCUMENT),
        ("a.ppam", MACRO_DOCUMENT),
        ("a.xlam", MACRO_DOCUMENT),
        ("a.sldm", MACRO_DOCUMENT),
        ("a.docx", MACRO_DOCUMENT),
        ("a.rtf", MACRO_DOCUMENT),
        ("a.pdf", MACRO_DOCUMENT),
        ("a.one", MACRO_DOCUMENT),
        ("a.odt", MACRO_DOCUMENT),
        ("a.slk", MACRO_DOCUMENT),
        # archives
        ("a.zip", ARCHIVE),
        ("a.jar", ARCHIVE),
        ("a.apk", ARCHIVE),
        ("a.7z", ARCHIVE),
        ("a.rar", ARCHIVE),
        ("a.gz", ARCHIVE),
        ("a.tgz", ARCHIVE),
        ("a.bz2", ARCHIVE),
        ("a.xz", ARCHIVE),
        ("a.cab", ARCHIVE),
        ("a.tar", ARCHIVE),
        ("a.iso", ARCHIVE),
        ("a.img", ARCHIVE),
        ("a.vhdx", ARCHIVE),
        ("a.deb", ARCHIVE),
        ("a.rpm", ARCHIVE),
        # not wanted
        ("notes.txt", None),
        ("photo.jpg", None),
        ("data.csv", None),
        ("firmware.bin", None),  # deliberate: .bin alone is data; a real ELF/PE .bin has magic
        ("x.log", None),
        ("Makefile", None),
    ],
)
def test_classify_by_extension(name, category):
    """A head that matches no magic number: the extension decides."""
    assert filetypes.classify(name, b"just some text\n") == category
    assert filetypes.wanted(name, b"just some text\n") is (category is not None)


# -- content ------------------------------------------------------------------------------


def test_real_elf_and_pe_beat_their_names():
    elf = head_of("/bin/ls")
    pe = head_of(Path(pip.__file__).parent / "_vendor" / "distlib" / "t64.exe")
    assert elf.startswith(b"\x7fELF") and pe.startswith(b"MZ")
    for name in ("ls", "notes.txt", "photo.jpg", b"/tmp/x"):
        assert filetypes.classify(name, elf) == EXECUTABLE
        assert filetypes.classify(name, pe) == EXECUTABLE
    assert filetypes.label(elf) == "ELF" and filetypes.label(pe) == "EXE"


def test_real_shebang_script_without_extension(tmp_path):
    script = Path(sys.executable).parent / "pytest"  # a console script: "#!/.../python"
    head = head_of(script)
    assert head.startswith(b"#!")
    assert filetypes.classify("pytest", head) == SCRIPT
    assert filetypes.classify("/etc/cron.daily/logrotate", b"#!/bin/sh\nexec x\n") == SCRIPT


@pytest.mark.parametrize(
    "head, category",
    [
        (b"\xfe\xed\xfa\xcf" + b"\x00" * 28, EXECUTABLE),  # Mach-O 64
        (b"\xca\xfe\xba\xbe\x00\x00\x00\x34", EXECUTABLE),  # Java class / Mach-O universal
        (LNK, SCRIPT),
        (b"<?php system($_GET['c']); ?>", SCRIPT),
        (OLE2, MACRO_DOCUMENT),
        (b"{\\rtf1\\ansi", MACRO_DOCUMENT),
        (b"%PDF-1.7\n", MACRO_DOCUMENT),
        (ONENOTE, MACRO_DOCUMENT),
        (b"ID;PWXL;N;E\r\n", MACRO_DOCUMENT),  # SYLK (Excel 4.0 macros)
        (b"7z\xbc\xaf\x27\x1c\x00\x04", ARCHIVE),
        (b"Rar!\x1a\x07\x01\x00", ARCHIVE),
        (b"Rar!\x1a\x07\x00", ARCHIVE),
        (b"MSCF\x00\x00\x00\x00" + b"\x00" * 24, ARCHIVE),
        (b"\x28\xb5\x2f\xfd\x04\x00", ARCHIVE),  # zstd
        (b"!<arch>\ndebian-binary   ", ARCHIVE),
        (b"\xed\xab\xee\xdb\x03\x00", ARCHIVE),  # rpm
        (b"070701000000", ARCHIVE),  # cpio newc
        (b"PK\x05\x06" + b"\x00" * 18, ARCHIVE),  # empty zip
        (b"\x00" * 7 + b"**ACE**", ARCHIVE),
        (b"vhdxfile", ARCHIVE),
        # look-alikes that are not carriers
        (b"BZh is how this text starts", None),  # no block-size digit: not bzip2
        (b"\x89PNG\r\n\x1a\n", None),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", None),
        (b"MDMP\x93\xa7", None),  # a minidump has a YARA label but is not a carrier
        (b"", None),
    ],
)
def test_classify_by_content(head, category):
    assert filetypes.classify("unnamed.dat", head) == category


def test_real_compressed_and_tar_heads():
    payload = b"plantsweep " * 100
    assert filetypes.classify("x.dat", gzip.compress(payload)) == ARCHIVE
    assert filetypes.classify("x.dat", bz2.compress(payload)) == ARCHIVE
    assert filetypes.classify("x.dat", lzma.compress(payload)) == ARCHIVE
    tar = tar_bytes()
    assert tar[257:262] == b"ustar"
    assert filetypes.classify("x.dat", tar[: filetypes.HEAD_SIZE]) == ARCHIVE
    assert filetypes.classify("x.dat", tar[:200]) is None  # too short a head: no tar magic


def test_zip_is_archive_unless_an_office_or_opendocument_file():
    plain = zip_bytes([("readme.txt", b"hello")])
    ooxml = zip_bytes(
        [("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w:document/>")]
    )
    odf_buf = io.BytesIO()
    with zipfile.ZipFile(odf_buf, "w") as z:  # ODF: a stored "mimetype" entry first
        z.writestr("mimetype", b"application/vnd.oasis.opendocument.text")
        z.writestr("content.xml", b"<office:document-content/>")
    odf = odf_buf.getvalue()
    assert filetypes.classify("bundle.zip", plain) == ARCHIVE
    assert filetypes.classify("tool.jar", plain) == ARCHIVE  # a jar is opened as a zip
    assert filetypes.classify("report.docx", plain) == MACRO_DOCUMENT  # name of an OOXML type
    assert filetypes.classify("renamed.zip", ooxml) == MACRO_DOCUMENT  # content marker
    assert filetypes.classify("renamed.dat", odf) == MACRO_DOCUMENT
    assert filetypes.label(ooxml) == "ZIP"


def test_ole_installer_is_an_executable():
    assert filetypes.classify("setup.msi", OLE2) == EXECUTABLE
    assert filetypes.classify("patch.MSP", OLE2) == EXECUTABLE
    assert filetypes.classify("budget.xls", OLE2) == MACRO_DOCUMENT
    assert filetypes.classify("mail.msg", OLE2) == MACRO_DOCUMENT


def test_iso_magic_needs_a_long_head():
    iso = b"\x00" * 32769 + b"CD001\x01"
    assert filetypes.classify("image.dat", iso) == ARCHIVE
    assert filetypes.classify("image.dat", iso[: filetypes.HEAD_SIZE]) is None
    assert filetypes.classify("image.iso", iso[: filetypes.HEAD_SIZE]) == ARCHIVE


def test_head_types_and_lengths_agree():
    pe = head_of(Path(pip.__file__).parent / "_vendor" / "distlib" / "t64.exe")
    big = pe + b"\x00" * 100000
    for head in (pe, bytearray(pe), memoryview(pe), memoryview(bytearray(big))):
        assert filetypes.classify("x", head) == EXECUTABLE
        assert filetypes.label(head) == "EXE"
    assert filetypes.classify("x.exe", memoryview(b"")) == EXECUTABLE


def test_wanted_with_categories():
    assert filetypes.wanted("a.exe", b"")
    assert not filetypes.wanted("a.exe", b"", categories=(SCRIPT,))
    assert filetypes.wanted("a.ps1", b"", categories=(SCRIPT,))
    assert not filetypes.wanted("a.txt", b"hello", categories=filetypes.CATEGORIES)


def test_labels_come_from_the_yara_table():
    """Every ``yara_engine.MAGIC`` label maps to a category (MDMP deliberately not), and
    ``label`` is the very value YARA's ``filetype`` external gets."""
    labels = {label for _, _, label in yara_engine.MAGIC}
    assert labels - set(filetypes.LABEL_CATEGORY) == {"MDMP"}
    for _, magic, label in yara_engine.MAGIC:
        head = magic + b"\x00" * 64
        assert filetypes.label(head) == yara_engine.file_type(head) == label
        assert filetypes.classify("x", head) == filetypes.LABEL_CATEGORY.get(label)


def test_head_size_covers_the_markers():
    assert filetypes.HEAD_SIZE >= 262  # tar's "ustar" at 257..262


def test_under_python36():
    """The module imports and classifies the same under the oldest supported Python."""
    if not os.path.exists(S.PY36):
        pytest.fail(f"no CPython 3.6 at {S.PY36}: the payload must run on it")
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(S.REPO)!r})\n"
        "from agentless_scanner import filetypes as f\n"
        "cases = [('a.EXE', b''), ('x', b'\\x7fELF'), (b'C:\\\\a\\\\b.docm', b'PK\\x03\\x04'),\n"
        "         ('x', bytearray(b'#!/bin/sh')), ('x', memoryview(b'%PDF-1.4')),\n"
        "         ('notes.txt', b'hello'), ('libc.so.6', b'')]\n"
        "print(json.dumps([f.classify(n, h) for n, h in cases] + [f.label(b'MZ')]))\n"
    )
    proc = subprocess.run(
        [S.PY36, "-I", "-B", "-c", code], capture_output=True, text=True, cwd=str(S.REPO)
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [
        "executable",
        "executable",
        "macro-document",
        "script",
        "macro-document",
        None,
        "executable",
        "EXE",
    ]
