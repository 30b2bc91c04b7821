"""Read-only access to the Windows registry: the live one, or ``.reg`` exports in tests.

Both readers answer the same three questions, with paths such as
``HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion`` (``HKEY_LOCAL_MACHINE\\...`` works too)::

    reg = FixtureRegistry.from_files(["software.reg"])   # or LiveRegistry() on Windows
    reg.value(r"HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion", "UBR")

- ``subkeys(path)``: names of the direct subkeys; raises ``MissingKey``.
- ``values(path)``: {name: python value}; raises ``MissingKey``. The default value is ``""``.
- ``value(path, name, default=None)``: one value, ``default`` when the key or value is absent.

Python values follow the stdlib ``winreg`` module: REG_SZ/REG_EXPAND_SZ -> str (not expanded),
REG_DWORD/REG_QWORD -> int, REG_MULTI_SZ -> list of str, anything else -> bytes.
"""

import codecs
import struct

ROOTS = {
    "HKLM": "HKEY_LOCAL_MACHINE",
    "HKCU": "HKEY_CURRENT_USER",
    "HKU": "HKEY_USERS",
    "HKCR": "HKEY_CLASSES_ROOT",
    "HKCC": "HKEY_CURRENT_CONFIG",
}

REG_SZ = 1
REG_EXPAND_SZ = 2
REG_BINARY = 3
REG_DWORD = 4
REG_DWORD_BIG_ENDIAN = 5
REG_MULTI_SZ = 7
REG_QWORD = 11


class MissingKey(LookupError):
    """The key does not exist (or cannot be opened)."""


class RegParseError(ValueError):
    """A ``.reg`` file line that is not valid export syntax."""


def normalize(path):
    """``HKLM\\A\\B\\`` -> ``HKEY_LOCAL_MACHINE\\A\\B``."""
    parts = [p for p in path.replace("/", "\\").split("\\") if p]
    if not parts:
        raise ValueError("empty registry path")
    parts[0] = ROOTS.get(parts[0].upper(), parts[0].upper())
    return "\\".join(parts)


def short(path):
    """``HKEY_LOCAL_MACHINE\\A`` -> ``HKLM\\A`` (for locations shown to people)."""
    path = normalize(path)
    for abbrev, full in ROOTS.items():
        if path.upper().startswith(full + "\\") or path.upper() == full:
            return abbrev + path[len(full) :]
    return path


def decode_typed(type_id, data, wide=True):
    """Turn raw registry data into the value winreg would return."""
    if type_id in (REG_SZ, REG_EXPAND_SZ):
        return _text(data, wide).split("\x00")[0]
    if type_id == REG_MULTI_SZ:
        return [s for s in _text(data, wide).split("\x00") if s]
    if type_id == REG_DWORD and len(data) >= 4:
        return struct.unpack("<I", data[:4])[0]
    if type_id == REG_DWORD_BIG_ENDIAN and len(data) >= 4:
        return struct.unpack(">I", data[:4])[0]
    if type_id == REG_QWORD and len(data) >= 8:
        return struct.unpack("<Q", data[:8])[0]
    return bytes(data)


def _text(data, wide):
    if wide:
        if len(data) % 2:
            data = data[:-1]
        return data.decode("utf-16-le", "replace")
    return data.decode("latin-1")


# -- .reg files -----------------------------------------------------------------------------


def decode_reg_bytes(raw):
    """Text of a ``.reg`` file: UTF-16LE with BOM (reg.exe, regedit), UTF-8, or REGEDIT4 ANSI."""
    if raw.startswith(codecs.BOM_UTF16_LE):
        return raw[2:].decode("utf-16-le")
    if raw.startswith(codecs.BOM_UTF16_BE):
        return raw[2:].decode("utf-16-be")
    if raw.startswith(codecs.BOM_UTF8):
        return raw[3:].decode("utf-8")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _logical_lines(text):
    """Join hex data continued with a trailing backslash (reg export wraps at 80 columns)."""
    pending = None
    for number, line in enumerate(text.splitlines(), 1):
        if pending is not None:
            line = pending[1] + line.strip()
            number = pending[0]
            pending = None
        stripped = line.rstrip()
        # Only hex data continues; a string value ends with its closing quote.
        if stripped.endswith("\\") and _is_hex_value(stripped):
            pending = (number, stripped[:-1])
            continue
        yield number, stripped
    if pending is not None:
        yield pending


def _is_hex_value(line):
    if not (line.startswith('"') or line.startswith("@")):
        return False
    try:
        _name, rest = _split_name(line)
    except RegParseError:
        return False
    return rest.lower().startswith("hex")


def _split_name(line):
    """``"na\\"me"=data`` -> ('na"me', 'data'); ``@=data`` -> ('', 'data')."""
    if line.startswith("@="):
        return "", line[2:]
    if not line.startswith('"'):
        raise RegParseError("value line must start with a quoted name or @")
    out = []
    i = 1
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            out.append(line[i + 1])
            i += 2
            continue
        if ch == '"':
            if line[i + 1 : i + 2] != "=":
                raise RegParseError("missing '=' after the value name")
            return "".join(out), line[i + 2 :]
        out.append(ch)
        i += 1
    raise RegParseError("unterminated value name")


def _parse_string(data):
    if len(data) < 2 or not data.startswith('"') or not data.endswith('"'):
        raise RegParseError("string data must be quoted")
    body = data[1:-1]
    out = []
    i = 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            out.append(body[i + 1])
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def parse_data(data, wide=True):
    """The python value of the text after ``=``; None for a deletion (``-``)."""
    data = data.strip()
    lower = data.lower()
    if data == "-":
        return None
    if data.startswith('"'):
        return _parse_string(data)
    if lower.startswith("dword:"):
        return int(data[6:], 16)
    if lower.startswith("hex"):
        head, sep, tail = data.partition(":")
        if not sep:
            raise RegParseError("hex data without ':'")
        if head.lower() == "hex":
            type_id = REG_BINARY
        elif head.lower().startswith("hex(") and head.endswith(")"):
            type_id = int(head[4:-1], 16)
        else:
            raise RegParseError("bad hex type %r" % head)
        octets = [t.strip() for t in tail.split(",") if t.strip()]
        try:
            raw = bytes(bytearray(int(t, 16) for t in octets))
        except ValueError:
            raise RegParseError("bad hex byte in %r" % tail[:40]) from None
        return decode_typed(type_id, raw, wide)
    raise RegParseError("unknown data %r" % data[:40])


def parse_reg(text):
    """Parse a ``.reg`` export into {normalized key path: {value name: python value}}."""
    keys = {}
    current = None
    wide = True
    for number, line in _logical_lines(text):
        if not line or line.startswith(";"):
            continue
        if line.startswith("\ufeff"):
            line = line[1:]
        if line == "Windows Registry Editor Version 5.00":
            continue
        if line == "REGEDIT4":
            wide = False  # hex(2)/hex(7) data is ANSI in the old format
            continue
        try:
            if line.startswith("["):
                if not line.endswith("]"):
                    raise RegParseError("unterminated key")
                path = line[1:-1]
                if path.startswith("-"):  # deletion of a key: nothing to read
                    current = None
                    continue
                current = keys.setdefault(normalize(path), {})
                continue
            if current is None:
                raise RegParseError("value outside a key")
            name, data = _split_name(line)
            parsed = parse_data(data, wide)
            if parsed is not None:
                current[name] = parsed
        except (RegParseError, ValueError) as exc:
            raise RegParseError("line %d: %s" % (number, exc)) from None
    return keys


class FixtureRegistry(object):
    """A registry made of parsed ``.reg`` exports (later files win on the same value)."""

    def __init__(self, keys=None):
        self._keys = {}  # upper-case path -> (path, {upper name: (name, value)})
        self._children = {}  # upper-case path -> {upper child: child}
        for path, values in (keys or {}).items():
            self.add(path, values)

    @classmethod
    def from_files(cls, paths):
        reg = cls()
        for path in paths:
            with open(path, "rb") as fh:
                text = decode_reg_bytes(fh.read())
            for key, values in parse_reg(text).items():
                reg.add(key, values)
        return reg

    @classmethod
    def from_text(cls, text):
        return cls(parse_reg(text))

    def add(self, path, values):
        path = normalize(path)
        entry = self._keys.setdefault(path.upper(), (path, {}))
        for name, value in values.items():
            entry[1][name.upper()] = (name, value)
        parts = path.split("\\")
        # Parents exist even when the export only has headers for deeper keys.
        for i in range(1, len(parts)):
            parent = "\\".join(parts[:i])
            self._keys.setdefault(parent.upper(), (parent, {}))
            self._children.setdefault(parent.upper(), {})[parts[i].upper()] = parts[i]

    def _entry(self, path):
        entry = self._keys.get(normalize(path).upper())
        if entry is None:
            raise MissingKey(short(path))
        return entry

    def subkeys(self, path):
        self._entry(path)
        return sorted(self._children.get(normalize(path).upper(), {}).values(), key=str.upper)

    def values(self, path):
        return dict(self._entry(path)[1].values())

    def value(self, path, name, default=None):
        try:
            entry = self._entry(path)
        except MissingKey:
            return default
        found = entry[1].get(name.upper())
        return default if found is None else found[1]


class LiveRegistry(object):
    """The running host's registry, 64-bit view (``winreg`` is imported here, on Windows)."""

    def __init__(self, winreg_module=None):
        if winreg_module is None:
            import winreg as winreg_module
        self._w = winreg_module
        self._access = winreg_module.KEY_READ | getattr(winreg_module, "KEY_WOW64_64KEY", 0)

    def _open(self, path):
        path = normalize(path)
        root_name, _, sub = path.partition("\\")
        root = getattr(self._w, root_name, None)
        if root is None:
            raise MissingKey(short(path))
        try:
            return self._w.OpenKey(root, sub, 0, self._access)
        except OSError:
            raise MissingKey(short(path)) from None

    def subkeys(self, path):
        names = []
        with self._open(path) as key:
            i = 0
            while True:
                try:
                    names.append(self._w.EnumKey(key, i))
                except OSError:  # ERROR_NO_MORE_ITEMS
                    break
                i += 1
        return sorted(names, key=str.upper)

    def values(self, path):
        found = {}
        with self._open(path) as key:
            i = 0
            while True:
                try:
                    name, data, _type = self._w.EnumValue(key, i)
                except OSError:
                    break
                found[name] = data
                i += 1
        return found

    def value(self, path, name, default=None):
        try:
            with self._open(path) as key:
                data = self._w.QueryValueEx(key, name)[0]
        except (MissingKey, OSError):
            return default
        return default if data is None else data
