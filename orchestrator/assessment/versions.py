"""Package version comparison as the package managers do it (never as semver).

    compare_dpkg("1:1.2-1", "1.3-1")   -> 1    (the epoch wins)
    compare_dpkg("1.0~rc1", "1.0")     -> -1   ('~' sorts before everything, even the end)
    compare_rpm("1.9.5p2-7.el9_1.1", "1.9.5p2-7.el9") -> 1

dpkg: Debian Policy §5.6.12 / dpkg's lib/dpkg/version.c (verrevcmp). rpm: rpmvercmp of
librpm (rpmio/rpmvercmp.c) over epoch, version and release. Both return -1, 0 or 1.
"""

from __future__ import annotations


def _split_dpkg(version: str) -> tuple[int, str, str]:
    version = version.strip()
    epoch = 0
    if ":" in version:
        head, version = version.split(":", 1)
        epoch = int(head) if head.isdigit() else 0
    upstream, sep, revision = version.rpartition("-")
    if not sep:  # no '-': the whole string is the upstream version, revision "0"
        return epoch, version, "0"
    return epoch, upstream, revision


def _order(char: str) -> int:
    """dpkg's character weight: '~' lowest, then end of string, then letters, then the rest."""
    if char == "~":
        return -1
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _verrevcmp(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        # Non-digit prefix, compared character by character with dpkg's weights.
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            bc = _order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ac != bc:
                return -1 if ac < bc else 1
            i += 1
            j += 1
        # Numeric part, compared as numbers (leading zeros do not count).
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return -1 if first_diff < 0 else 1
    return 0


def compare_dpkg(a: str, b: str) -> int:
    """Compare two dpkg versions ``[epoch:]upstream[-revision]``."""
    ea, ua, ra = _split_dpkg(a)
    eb, ub, rb = _split_dpkg(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


def _rpmvercmp(a: str, b: str) -> int:
    if a == b:
        return 0
    i = j = 0
    while i < len(a) or j < len(b):
        # Skip separators (anything not alphanumeric, except '~' and '^').
        while i < len(a) and not a[i].isalnum() and a[i] not in "~^":
            i += 1
        while j < len(b) and not b[j].isalnum() and b[j] not in "~^":
            j += 1
        a_tilde, b_tilde = a[i : i + 1] == "~", b[j : j + 1] == "~"
        if a_tilde or b_tilde:  # '~' sorts before anything, even the end
            if not (a_tilde and b_tilde):
                return -1 if a_tilde else 1
            i += 1
            j += 1
            continue
        a_caret, b_caret = a[i : i + 1] == "^", b[j : j + 1] == "^"
        if a_caret or b_caret:  # '^' sorts after the end, before anything else
            if i >= len(a):
                return -1
            if j >= len(b):
                return 1
            if not (a_caret and b_caret):  # the side still going on past '^' is newer
                return -1 if a_caret else 1
            i += 1
            j += 1
            continue
        if i >= len(a) or j >= len(b):
            break
        digits = a[i].isdigit()
        si, sj = i, j
        check = str.isdigit if digits else str.isalpha
        while i < len(a) and check(a[i]):
            i += 1
        while j < len(b) and check(b[j]):
            j += 1
        seg_a, seg_b = a[si:i], b[sj:j]
        if not seg_b:  # segments of different types: the numeric one is newer
            return 1 if digits else -1
        if digits:
            seg_a, seg_b = seg_a.lstrip("0"), seg_b.lstrip("0")
            if len(seg_a) != len(seg_b):
                return 1 if len(seg_a) > len(seg_b) else -1
        if seg_a != seg_b:
            return 1 if seg_a > seg_b else -1
    rest_a, rest_b = i < len(a), j < len(b)
    if not rest_a and not rest_b:
        return 0
    return 1 if rest_a else -1


def _split_rpm(evr: str) -> tuple[int, str, str]:
    evr = evr.strip()
    epoch = 0
    if ":" in evr:
        head, evr = evr.split(":", 1)
        epoch = int(head) if head.isdigit() else 0
    version, _, release = evr.partition("-")
    return epoch, version, release


def compare_rpm(a: str, b: str) -> int:
    """Compare two rpm ``[epoch:]version[-release]`` strings (a missing release matches any)."""
    ea, va, ra = _split_rpm(a)
    eb, vb, rb = _split_rpm(b)
    if ea != eb:
        return -1 if ea < eb else 1
    result = _rpmvercmp(va, vb)
    if result or not ra or not rb:
        return result
    return _rpmvercmp(ra, rb)
