"""Scan inside zip archives, in memory, within bounds.

    >>> for member in iter_zip_members(zip_bytes, Limits()):
    ...     if member.problem is None:
    ...         scan(member.name, member.data)
    ...     else:
    ...         note(member.name, member.code, member.problem)

The scanner has already read the whole file (``data``: bytes, bytearray or memoryview);
``iter_zip_members`` yields one ``Member(name, data, code, problem)`` per regular-file member:
either its bytes (``data``, a memoryview; ``code`` and ``problem`` None) or why they are not
given (``data`` None, ``code`` one of ``PROBLEMS``, ``problem`` a sentence). Nested zip files
(any member whose content starts like a zip: ``.jar``, ``.docx``...) are yielded themselves and
then opened, down to ``Limits.max_depth``. ``data`` is a slice of the input for a stored member
(no copy), a fresh buffer for a compressed one.

Nothing is ever written to disk, and member names are only labels (never used as paths):
backslashes become ``/``, a nested member is labelled ``outer/inner.zip!inner/file``. A
problem with the archive given to ``iter_zip_members`` itself has ``name`` "".

Problem codes:

    encrypted                 password-protected (ZipCrypto, AES or "strong encryption")
    unsupported-compression   a method other than stored, deflate, bzip2, lzma (or its module
                              is missing from this Python)
    member-too-large          more than max_member_size uncompressed: from the header, or
                              found while decompressing (headers lie)
    ratio-too-high            uncompressed/compressed above max_ratio (zip bomb), from the
                              header or while decompressing
    total-too-large           the archive (nested members included) would decompress to more
                              than max_total_size: the walk stops there
    too-many-members          a zip lists more than max_members entries (it is not opened), or
                              the walk reached max_members entries in all (it stops there)
    corrupt                   not a readable zip, bad local header, overlapping members, bad
                              CRC, truncated or invalid compressed data, size mismatch
    depth-exceeded            a zip nested deeper than max_depth (yielded, not opened)

Memory: decompression goes chunk by chunk (``CHUNK_SIZE`` of output per step) into one buffer
per member that never grows past ``max_member_size`` (plus one chunk), so a bomb is stopped
before it is allocated. At any time the live buffers are at most ``max_depth`` members (one
per nesting level). The zip's central directory is counted before ``zipfile`` parses it, so a
zip listing millions of entries cannot make millions of objects.

Only the standard library is used (``zipfile`` parses the central directory; the member data
is read and decompressed here so that every method, bzip2 and lzma included, is bounded:
``zipfile``'s own reader decompresses bzip2 and lzma without an output limit).
"""

import io
import stat
import struct
import zlib

try:
    import bz2
except ImportError:  # some Python builds lack it
    bz2 = None
try:
    import lzma
except ImportError:  # Python 3.6 built without liblzma
    lzma = None
import zipfile
from collections import namedtuple

MiB = 1024 * 1024
CHUNK_SIZE = MiB  # output per decompression step
_IN_CHUNK = 64 * 1024  # compressed input fed per step

ENCRYPTED = "encrypted"
UNSUPPORTED_COMPRESSION = "unsupported-compression"
MEMBER_TOO_LARGE = "member-too-large"
RATIO_TOO_HIGH = "ratio-too-high"
TOTAL_TOO_LARGE = "total-too-large"
TOO_MANY_MEMBERS = "too-many-members"
CORRUPT = "corrupt"
DEPTH_EXCEEDED = "depth-exceeded"
PROBLEMS = (
    ENCRYPTED,
    UNSUPPORTED_COMPRESSION,
    MEMBER_TOO_LARGE,
    RATIO_TOO_HIGH,
    TOTAL_TOO_LARGE,
    TOO_MANY_MEMBERS,
    CORRUPT,
    DEPTH_EXCEEDED,
)


class Member(namedtuple("Member", "name data code problem")):
    """One zip member: ``data`` (memoryview) when scannable, else ``code`` and ``problem``."""

    __slots__ = ()


NESTED_SEPARATOR = "!"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members, an empty zip

_STORED, _DEFLATED, _BZIP2, _LZMA, _AES = 0, 8, 12, 14, 99
_METHOD_NAMES = {
    1: "shrink",
    6: "implode",
    9: "deflate64",
    12: "bzip2",
    14: "lzma",
    93: "zstandard",
    95: "xz",
    98: "ppmd",
}
_FLAG_ENCRYPTED = 0x1
_FLAG_STRONG_ENCRYPTION = 0x40
_FLAG_UTF8 = 0x800
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # signature .. extra field length: 30 bytes
_CENTRAL_HEADER_SIZE = 46
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory: 22 bytes
_EOCD64_LOCATOR_SIZE = 20
_EOCD64_SIZE = 56


class Limits(object):
    """Bounds for scanning inside zip archives (all sizes uncompressed, in bytes).

    max_depth        how deep zips are opened: 1 = the members of the scanned zip only,
                     2 = also the members of zips inside it (default 2)
    max_member_size  largest member decompressed and scanned (default 50 MiB)
    max_total_size   most member bytes yielded from one scanned file (stored or decompressed,
                     nested zips and their members both counted); the walk stops when it
                     would pass (default 200 MiB)
    max_ratio        largest uncompressed/compressed ratio of a member (default 100) ...
    ratio_grace      ... for members larger than this; smaller ones are never refused for
                     their ratio (a few KiB of zeros compresses 1000:1 and is harmless)
                     (default 1 MiB)
    max_members      most entries in one zip, and most entries examined in one scanned file
                     (default 10000)

    Peak memory beyond the scanned file itself: about ``max_depth * max_member_size``.
    """

    __slots__ = (
        "max_depth",
        "max_member_size",
        "max_total_size",
        "max_ratio",
        "ratio_grace",
        "max_members",
    )

    def __init__(
        self,
        max_depth=2,
        max_member_size=50 * MiB,
        max_total_size=200 * MiB,
        max_ratio=100,
        ratio_grace=MiB,
        max_members=10000,
    ):
        self.max_depth = int(max_depth)
        self.max_member_size = int(max_member_size)
        self.max_total_size = int(max_total_size)
        self.max_ratio = max_ratio
        self.ratio_grace = int(ratio_grace)
        self.max_members = int(max_members)
        for name in self.__slots__:
            if getattr(self, name) < 0:
                raise ValueError("%s must not be negative" % name)
        if max_ratio < 1:
            raise ValueError("max_ratio must be at least 1")

    def as_log(self):
        """The limits as a JSON-ready dict (for the scan log's scope section)."""
        return dict((name, getattr(self, name)) for name in self.__slots__)


class _Budget(object):
    """What one call of ``iter_zip_members`` has spent, nested archives included."""

    __slots__ = ("total", "members", "stopped")

    def __init__(self):
        self.total = 0
        self.members = 0
        self.stopped = False


class _Stop(Exception):
    """A member cannot be yielded: (code, detail, stop_walk)."""


class _ViewFile(io.RawIOBase):
    """Read-only, seekable file over a memoryview: ``zipfile`` reads the central directory
    through it without the whole file being copied (``io.BytesIO`` copies non-bytes input)."""

    def __init__(self, view):
        io.RawIOBase.__init__(self)
        self._view = view
        self._pos = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        if base + offset < 0:
            raise OSError("negative seek position")  # what zipfile expects from a real file
        self._pos = base + offset
        return self._pos

    def read(self, size=-1):
        end = len(self._view) if size is None or size < 0 else self._pos + size
        data = bytes(self._view[self._pos : end])
        self._pos += len(data)
        return data

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _as_view(data):
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _central_directory(view, stop_after):
    """(entries, start, end) of the central directory, as ``zipfile`` will find it, or None.

    Counts the entries by walking the headers (no objects made; at most ``stop_after``
    counted), so a zip that lists millions of entries is refused before ``zipfile`` builds a
    ZipInfo for each.
    """
    size = len(view)
    if size < _EOCD.size:
        return None
    # Like zipfile: the record at the very end (no comment), else the last one in the
    # last 64 KiB + 22 bytes.
    if view[size - 22 : size - 18] == b"PK\x05\x06" and view[size - 2 :] == b"\x00\x00":
        eocd = size - 22
    else:
        tail_start = max(0, size - 0xFFFF - _EOCD.size)
        found = bytes(view[tail_start:]).rfind(b"PK\x05\x06")
        if found < 0 or tail_start + found + _EOCD.size > size:
            return None
        eocd = tail_start + found
    cd_size = _EOCD.unpack_from(view, eocd)[5]
    cd_end = eocd
    locator = eocd - _EOCD64_LOCATOR_SIZE
    record = locator - _EOCD64_SIZE
    if (
        record >= 0
        and view[locator : locator + 4] == b"PK\x06\x07"
        and view[record : record + 4] == b"PK\x06\x06"
    ):
        cd_size = struct.unpack_from("<Q", view, record + 40)[0]
        cd_end = record
    start = cd_end - cd_size
    if start < 0:
        return None
    count, pos = 0, start
    while pos - start < cd_size and count < stop_after:
        if pos + _CENTRAL_HEADER_SIZE > size or view[pos : pos + 4] != b"PK\x01\x02":
            break  # zipfile stops here too, with an error
        count += 1
        name_len, extra_len, comment_len = struct.unpack_from("<3H", view, pos + 28)
        pos += _CENTRAL_HEADER_SIZE + name_len + extra_len + comment_len
    return count, start, cd_end


def _label(info):
    """A member's name as a display label (never used as a path)."""
    return info.orig_filename.replace("\x00", "\\x00").replace("\\", "/")


def _is_regular(info, name):
    if name.endswith("/"):
        return False  # a directory
    mode = info.external_attr >> 16
    # A Unix symlink, fifo or device entry has no content to scan (zipfile.writestr leaves
    # the type bits at 0: that is a regular file too).
    kind = stat.S_IFMT(mode) if info.create_system == 3 else 0
    return kind in (0, stat.S_IFREG)


def _method_problem(info):
    """(code, detail) if this member cannot be decompressed here, else None."""
    method = info.compress_type
    if info.flag_bits & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION) or method == _AES:
        return ENCRYPTED, "encrypted (password required): not scanned"
    if method in (_STORED, _DEFLATED) or (method == _BZIP2 and bz2) or (method == _LZMA and lzma):
        return None
    name = _METHOD_NAMES.get(method, "method %d" % method)
    if method in (_BZIP2, _LZMA):
        return (
            UNSUPPORTED_COMPRESSION,
            "compressed with %s, but this Python has no %s module: not scanned"
            % (name, "bz2" if method == _BZIP2 else "lzma"),
        )
    return UNSUPPORTED_COMPRESSION, "compressed with %s: not scanned" % name


class _Inflate(object):
    """zlib raw deflate with the ``needs_input``/``eof`` interface of bz2 and lzma."""

    def __init__(self):
        self._d = zlib.decompressobj(-15)
        self.eof = False

    @property
    def needs_input(self):
        return not self._d.unconsumed_tail

    def decompress(self, data, max_length):
        if self._d.unconsumed_tail:
            data = self._d.unconsumed_tail + bytes(data)
        out = self._d.decompress(data, max_length)
        self.eof = self._d.eof
        return out


class _ZipLzma(object):
    """The zip flavour of LZMA: a 4-byte version/properties-size header, the 5 LZMA1
    properties, then a raw LZMA1 stream."""

    def __init__(self):
        self._head = b""
        self._d = None
        self.eof = False

    @property
    def needs_input(self):
        return self._d is None or self._d.needs_input

    def decompress(self, data, max_length):
        if self._d is None:
            self._head += bytes(data)
            if len(self._head) < 4:
                return b""
            props_size = struct.unpack_from("<H", self._head, 2)[0]
            if len(self._head) < 4 + props_size:
                return b""
            if props_size != 5:
                raise ValueError("LZMA properties of %d bytes" % props_size)
            props = self._head[4:9]
            lc_lp_pb, dict_size = props[0], struct.unpack_from("<L", props, 1)[0]
            lzma_filter = {
                "id": lzma.FILTER_LZMA1,
                "dict_size": dict_size,
                "lc": lc_lp_pb % 9,
                "lp": (lc_lp_pb // 9) % 5,
                "pb": lc_lp_pb // 45,
            }
            self._d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[lzma_filter])
            data, self._head = self._head[9:], b""
        out = self._d.decompress(data, max_length)
        self.eof = self._d.eof
        return out


def _decompressor(method):
    if method == _DEFLATED:
        return _Inflate()
    if method == _BZIP2:
        return bz2.BZ2Decompressor()
    return _ZipLzma()


def _data_span(view, info):
    """(start, end) of a member's compressed data, after checking its local header."""
    offset = info.header_offset
    if offset < 0 or offset + _LOCAL_HEADER.size > len(view):
        raise _Stop(CORRUPT, "local header outside the file", False)
    fields = _LOCAL_HEADER.unpack_from(view, offset)
    if fields[0] != b"PK\x03\x04":
        raise _Stop(CORRUPT, "bad local header signature", False)
    name_len, extra_len = fields[9], fields[10]
    name_start = offset + _LOCAL_HEADER.size
    raw_name = bytes(view[name_start : name_start + name_len])
    try:
        local_name = raw_name.decode("utf-8" if info.flag_bits & _FLAG_UTF8 else "cp437")
    except UnicodeDecodeError:
        local_name = None
    if local_name != info.orig_filename:
        raise _Stop(CORRUPT, "local and central directory names differ", False)
    start = name_start + name_len + extra_len
    end = start + info.compress_size
    if end > len(view):
        raise _Stop(CORRUPT, "truncated: compressed data runs past the end of the file", False)
    return start, end


def _check_ratio(limits, produced, compressed, how):
    if produced > limits.ratio_grace and produced > limits.max_ratio * max(compressed, 1):
        raise _Stop(
            RATIO_TOO_HIGH,
            "%d compressed bytes %s %d: a ratio above %s:1, not scanned (zip bomb?)"
            % (compressed, how, produced, limits.max_ratio),
            False,
        )


def _check_header(info, limits, budget):
    """Refuse a member from its central directory sizes alone (nothing decompressed)."""
    _check_ratio(limits, info.file_size, info.compress_size, "declared to expand to")
    if info.file_size > limits.max_member_size:
        raise _Stop(
            MEMBER_TOO_LARGE,
            "%d bytes uncompressed is more than the limit %d: not scanned"
            % (info.file_size, limits.max_member_size),
            False,
        )
    if budget.total + info.file_size > limits.max_total_size:
        raise _Stop(
            TOTAL_TOO_LARGE,
            "the archive decompresses to more than %d bytes in all: this member and the "
            "rest not scanned" % limits.max_total_size,
            True,
        )


def _read_member(view, info, start, end, limits, budget):
    """The member's uncompressed bytes (a memoryview), within every bound, CRC checked."""
    method = info.compress_type
    if method == _STORED:
        if info.compress_size != info.file_size:
            raise _Stop(CORRUPT, "stored member with different sizes", False)
        data = view[start:end]  # no copy
    else:
        data = _decompress(view, info, start, end, limits, budget)
    if len(data) != info.file_size:
        raise _Stop(
            CORRUPT,
            "decompressed to %d bytes, header says %d" % (len(data), info.file_size),
            False,
        )
    if zlib.crc32(data) & 0xFFFFFFFF != info.CRC:
        raise _Stop(CORRUPT, "bad CRC-32", False)
    return data


def _decompress(view, info, start, end, limits, budget):
    # The buffer is sized from the header (already bounded by _check_header) and grows only
    # if the header lied, up to max_member_size + one chunk at most.
    buf = bytearray(info.file_size)
    produced = 0
    pos = start
    try:
        dec = _decompressor(info.compress_type)
        while not dec.eof:
            if dec.needs_input and pos < end:
                piece = view[pos : min(end, pos + _IN_CHUNK)]
                pos += len(piece)
            else:
                piece = b""  # let the decompressor flush what it holds
            out = dec.decompress(piece, CHUNK_SIZE)
            if not out:
                if not piece:  # no input left and no output: the stream ends here
                    if produced == info.file_size:
                        break  # e.g. LZMA without an end marker; the CRC decides
                    raise _Stop(CORRUPT, "truncated compressed data", False)
                continue
            buf[produced : produced + len(out)] = out
            produced += len(out)
            if produced > limits.max_member_size:
                raise _Stop(
                    MEMBER_TOO_LARGE,
                    "header says %d bytes, but it decompresses to more than the limit %d: "
                    "stopped, not scanned" % (info.file_size, limits.max_member_size),
                    False,
                )
            _check_ratio(limits, produced, info.compress_size, "expand to more than")
            if budget.total + produced > limits.max_total_size:
                raise _Stop(
                    TOTAL_TOO_LARGE,
                    "the archive decompresses to more than %d bytes in all: this member "
                    "and the rest not scanned" % limits.max_total_size,
                    True,
                )
    except _Stop:
        raise
    except Exception as exc:  # zlib.error, OSError (bz2), LZMAError, EOFError, ValueError
        raise _Stop(CORRUPT, "invalid compressed data: %s" % exc, False) from None
    if produced < len(buf):
        del buf[produced:]
    return memoryview(buf)


def _overlapping(infos, cd_start):
    """ids of members whose data is shared with, or runs into, another member's: the
    'overlapping files' zip bomb, which no legitimate zip tool writes."""
    offsets = sorted(set(info.header_offset for info in infos))
    ends = offsets[1:] + [cd_start]
    following = {offset: ends[i] for i, offset in enumerate(offsets)}
    bad = set()
    first_at = {}
    for info in infos:
        offset = info.header_offset
        if offset in first_at:
            bad.add(id(info))  # a second entry for the same local header
        else:
            first_at[offset] = info
        # The data ends at least 30 header bytes + compress_size after the offset.
        if offset + _LOCAL_HEADER.size + info.compress_size > following[offset]:
            bad.add(id(info))
    return bad


def is_zip(head):
    """True if ``head`` (the first bytes of a file) starts like a zip file."""
    return bytes(head[:4]) in ZIP_MAGICS


def iter_zip_members(data, limits=None, depth=1):
    """Yield a ``Member`` for each regular-file member of the zip file ``data``.

    ``data``: the whole zip file (bytes, bytearray or memoryview). ``limits``: a ``Limits``
    (default ``Limits()``). ``depth``: the nesting level of ``data``'s members (leave it at 1).
    Directory and symlink entries are skipped silently. Never raises for bad input: a
    problem is a ``Member`` with ``data`` None.
    """
    if limits is None:
        limits = Limits()
    for member in _walk(_as_view(data), limits, depth, "", _Budget()):
        yield member


def _problem(name, code, detail):
    return Member(name, None, code, detail)


def _walk(view, limits, depth, prefix, budget):
    here = prefix[: -len(NESTED_SEPARATOR)] if prefix else ""
    if depth > limits.max_depth:
        yield _problem(
            here, DEPTH_EXCEEDED, "zip nested deeper than %d: not opened" % limits.max_depth
        )
        return
    directory = _central_directory(view, limits.max_members + 1)
    if directory is not None and directory[0] > limits.max_members:
        yield _problem(
            here,
            TOO_MANY_MEMBERS,
            "lists more than %d entries (the limit): not opened" % limits.max_members,
        )
        return
    try:
        with zipfile.ZipFile(_ViewFile(view)) as archive:
            infos = archive.infolist()
    except Exception as exc:  # BadZipFile, UnicodeDecodeError in names, struct.error...
        yield _problem(here, CORRUPT, "not a readable zip file: %s" % exc)
        return
    overlapping = _overlapping(infos, directory[1] if directory else len(view))
    for info in infos:
        if budget.stopped:
            return
        name = _label(info)
        path = prefix + name
        if not _is_regular(info, name):
            continue
        if budget.members >= limits.max_members:
            budget.stopped = True
            yield _problem(
                path,
                TOO_MANY_MEMBERS,
                "%d entries examined in this archive (the limit): this one and the rest "
                "not scanned" % limits.max_members,
            )
            return
        budget.members += 1
        try:
            if id(info) in overlapping:
                raise _Stop(CORRUPT, "overlaps another member's data (zip bomb?)", False)
            problem = _method_problem(info)
            if problem is not None:
                raise _Stop(problem[0], problem[1], False)
            _check_header(info, limits, budget)
            start, end = _data_span(view, info)
            member = _read_member(view, info, start, end, limits, budget)
        except _Stop as stop:
            code, detail, stop_walk = stop.args
            yield _problem(path, code, detail)
            if stop_walk:
                budget.stopped = True
                return
            continue
        budget.total += len(member)
        yield Member(path, member, None, None)
        if is_zip(member):
            for item in _walk(member, limits, depth + 1, path + NESTED_SEPARATOR, budget):
                yield item
