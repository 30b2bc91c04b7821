"""File-type filter for quick scans: is this file an executable, a script, a document that can
carry macros or other active content, or an archive?

    >>> classify(b"/home/op/Downloads/report.docm", b"PK\\x03\\x04...")
    'macro-document'
    >>> wanted("notes.txt", b"plain text")
    False

``classify(name, head)`` looks at the content first (magic numbers in ``head``, the first
``HEAD_SIZE`` bytes of the file) and then at the name's extension, so a PE renamed to
``invoice.txt`` is still an executable, and a PowerShell script (no magic number) is a script by
its ``.ps1``. A file neither recognises is ``None`` and a quick scan skips it.

Choices (deliberate, see the README section "Quick-scan file types"):

- Content beats name. The magic numbers shared with YARA's ``filetype`` label come from
  ``yara_engine.MAGIC`` (one table, no duplicate); the others (archives, LNK, OneNote, ISO...)
  are below.
- ``.bin`` is NOT an executable extension: it names firmware images and data blobs far more
  often than programs, and a real ELF or PE ``.bin`` is caught by its magic number anyway.
- A Windows shortcut (``.lnk``, or the LNK header) is a "script": it carries a command line
  (often ``powershell -enc ...``) run by the shell, like a script. ``.url``, ``.scf`` and
  ``.desktop`` (the XDG launcher) are scripts for the same reason.
- PDF is a "macro-document": JavaScript, launch actions and embedded files make it a common
  carrier. RTF is one too (embedded OLE objects, equation-editor exploits), as are OneNote
  (``.one``), OpenDocument and SYLK files.
- Every OOXML file (``.docx`` as well as ``.docm``) is a "macro-document": only the ``m`` variants
  hold VBA, but any of them can hold OLE objects, DDE fields and remote template references.
- ``.jar``, ``.apk`` and other zip-based packages are "archives": they are zip files, so the zip
  archive scanning (``archives.py``) looks inside them.
- The Java class magic ``CAFEBABE`` is also the Mach-O universal binary magic; either way the
  file is compiled code: "executable".
- MSI/MSP/MSM installers are OLE2 compound files but "executables" (they run code when opened).
- ISO/IMG/VHD(X) disk images are "archives" (they are used to smuggle executables past
  mark-of-the-web). The ISO 9660 magic sits at offset 32769, past ``HEAD_SIZE``: such an image
  is recognised by its extension, or by content only when the caller passes a longer head.
"""

import re

from agentless_scanner.yara_engine import file_type

EXECUTABLE = "executable"
SCRIPT = "script"
MACRO_DOCUMENT = "macro-document"
ARCHIVE = "archive"
CATEGORIES = (EXECUTABLE, SCRIPT, MACRO_DOCUMENT, ARCHIVE)

#: How many bytes from the start of a file ``classify`` needs (the tar magic is at 257..262;
#: the OOXML and OpenDocument markers are in the first zip entry).
HEAD_SIZE = 4096

# The longest look into ``head`` (ISO 9660 "CD001" at 32769); only this much is ever copied.
_HEAD_MAX = 32774

#: Category of each ``yara_engine.MAGIC`` label; "MDMP" (a memory dump) is not a carrier.
LABEL_CATEGORY = {
    "EXE": EXECUTABLE,
    "ELF": EXECUTABLE,
    "MACH-O": EXECUTABLE,
    "SCRIPT": SCRIPT,
    "RTF": MACRO_DOCUMENT,
    "PDF": MACRO_DOCUMENT,
    "OLE": MACRO_DOCUMENT,
    "ZIP": ARCHIVE,
}

# Magic numbers that ``yara_engine.MAGIC`` does not have: (offset, magic, category).
_MORE_MAGIC = (
    (0, b"PK\x05\x06", ARCHIVE),  # empty zip
    (0, b"PK\x07\x08", ARCHIVE),  # spanned zip
    (0, b"7z\xbc\xaf\x27\x1c", ARCHIVE),
    (0, b"Rar!\x1a\x07", ARCHIVE),  # RAR 4 and 5
    (0, b"\x1f\x8b\x08", ARCHIVE),  # gzip (deflate)
    (0, b"\xfd7zXZ\x00", ARCHIVE),  # xz
    (0, b"\x28\xb5\x2f\xfd", ARCHIVE),  # zstd
    (0, b"MSCF\x00\x00\x00\x00", ARCHIVE),  # Microsoft cabinet
    (0, b"!<arch>\n", ARCHIVE),  # ar: .deb packages, static libraries
    (0, b"\xed\xab\xee\xdb", ARCHIVE),  # rpm
    (0, b"070701", ARCHIVE),  # cpio (newc)
    (0, b"070702", ARCHIVE),  # cpio (crc)
    (0, b"070707", ARCHIVE),  # cpio (odc)
    (0, b"\x60\xea", ARCHIVE),  # arj
    (7, b"**ACE**", ARCHIVE),  # ace (WinRAR CVE-2018-20250)
    (0, b"vhdxfile", ARCHIVE),
    (0, b"conectix", ARCHIVE),  # VHD (dynamic disks carry the footer copy at 0)
    (257, b"ustar", ARCHIVE),  # POSIX and GNU tar
    (32769, b"CD001", ARCHIVE),  # ISO 9660 (only with a long enough head)
    (0, b"L\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00F", SCRIPT),
    (0, b"<?php", SCRIPT),
    (0, b"\xe4\x52\x5c\x7b\x8c\xd8\xa7\x4d\xae\xb1\x53\x78\xd0\x29\x96\xd3", MACRO_DOCUMENT),
    (0, b"ID;P", MACRO_DOCUMENT),  # SYLK: Excel 4.0 macros without VBA
)

_EXECUTABLE_EXT = (
    # Windows: PE images, drivers, control panel items, screen savers, installers
    "exe dll sys scr com cpl ocx drv efi msi msp msm pif xll ax acm tsp "
    # Linux / Unix: shared objects, kernel modules, ELF; macOS dylibs; Java classes
    "so ko elf dylib class"
)
_SCRIPT_EXT = (
    # Windows script hosts, PowerShell, batch, HTML applications, scriptlets, shortcuts
    "ps1 psm1 psd1 ps1xml vbs vbe js jse wsf wsh wsc sct hta bat cmd lnk url scf "
    "reg inf msc chm "
    # Unix shells and interpreters; the XDG launcher
    "sh bash zsh ksh csh py pyw pyc pl pm rb php phtml lua desktop"
)
_OOXML_EXT = (
    "docx docm dotx dotm xlsx xlsm xlsb xltx xltm xlam pptx pptm potx potm ppsx ppsm ppam sldx sldm"
)
_ODF_EXT = "odt ott ods ots odp otp odg"  # OpenDocument: zip files that can hold Basic macros
_MACRO_DOCUMENT_EXT = (
    _OOXML_EXT + " " + _ODF_EXT + " doc dot xls xlt xla ppt pot pps msg pub vsd vsdm mpp "
    "rtf pdf one slk iqy"
)
_ARCHIVE_EXT = (
    "zip jar war ear apk xpi whl nupkg appx msix 7z rar gz tgz bz2 tbz tbz2 xz txz lzma zst "
    "tar cab arj ace lzh z cpio deb rpm iso img vhd vhdx"
)

_BY_EXTENSION = {}
for _category, _names in (
    (EXECUTABLE, _EXECUTABLE_EXT),
    (SCRIPT, _SCRIPT_EXT),
    (MACRO_DOCUMENT, _MACRO_DOCUMENT_EXT),
    (ARCHIVE, _ARCHIVE_EXT),
):
    for _ext in _names.split():
        assert _ext not in _BY_EXTENSION, _ext  # each extension in exactly one category
        _BY_EXTENSION[_ext] = _category
del _category, _names, _ext

# Zip-based document formats (the extension decides when the content markers are not in head).
_ZIP_DOCUMENTS = frozenset((_OOXML_EXT + " " + _ODF_EXT).split())
_OLE_EXECUTABLE = frozenset(("msi", "msp", "msm"))
_SO_VERSION = re.compile(r"\.so(\.\d+)+$")  # libfoo.so.1.2.3


def extension(name):
    """Lower-case extension of the last component of a Windows or POSIX path ('' if none).

    ``name`` may be bytes (the walker's paths) or str. Trailing dots and spaces are dropped,
    as Windows drops them ("evil.exe." runs as "evil.exe"); "libc.so.6" gives "so".
    """
    if isinstance(name, bytes):
        name = name.decode("latin-1")  # extensions that matter are ASCII; no decode errors
    base = name.replace("\\", "/").rsplit("/", 1)[-1].rstrip(". ").lower()
    if _SO_VERSION.search(base):
        return "so"
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem:  # no dot, or a dot file such as ".bashrc"
        return ""
    return ext


def label(head):
    """The THOR/LOKI ``filetype`` label of a file ("EXE", "ELF", "ZIP", ...; '' if unknown).

    The same function YARA's ``filetype`` external variable gets its value from.
    """
    return file_type(_as_bytes(head))


def _as_bytes(head):
    if isinstance(head, bytes):
        return head
    return bytes(memoryview(head)[:_HEAD_MAX])  # memoryview/bytearray: copy the head only


def _zip_category(ext, head):
    """A zip file is an OOXML/OpenDocument document or a plain archive."""
    if ext in _ZIP_DOCUMENTS:
        return MACRO_DOCUMENT
    first_name = head[30:80]  # name of the first local entry
    if (
        b"[Content_Types].xml" in head
        or b"vbaProject.bin" in head
        or first_name.startswith((b"word/", b"xl/", b"ppt/"))
        or first_name.startswith(b"mimetypeapplication/vnd.oasis.opendocument")
    ):
        return MACRO_DOCUMENT
    return ARCHIVE


def _by_content(ext, head):
    shared = file_type(head)
    if shared == "ZIP":
        return _zip_category(ext, head)
    if shared == "OLE" and ext in _OLE_EXECUTABLE:
        return EXECUTABLE
    if shared in LABEL_CATEGORY:
        return LABEL_CATEGORY[shared]
    for offset, magic, category in _MORE_MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return category
    if head[:3] == b"BZh" and len(head) > 3 and head[3:4] in b"123456789":
        return ARCHIVE  # bzip2 (block size digit required: "BZh" alone is too common in text)
    return None


def classify(name, head):
    """Category of a file from its name (path) and first bytes, or None.

    ``name``: path or base name, str or bytes, Windows or POSIX separators.
    ``head``: the first bytes of the file (bytes, bytearray or memoryview; ``HEAD_SIZE`` is
    enough, fewer work, more are ignored past 32774). Returns one of ``CATEGORIES`` or None.
    """
    ext = extension(name)
    found = _by_content(ext, _as_bytes(head))
    if found is not None:
        return found
    return _BY_EXTENSION.get(ext)


def wanted(name, head, categories=CATEGORIES):
    """True if a quick scan should match this file (its category is in ``categories``)."""
    found = classify(name, head)
    return found is not None and found in categories
