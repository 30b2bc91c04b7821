"""Which yara-python wheel can an interpreter import? (PEP 425 / PEP 600 tags, tiny subset.)

Used twice with the same rules: by the payload on the host (``host_platform()`` describes the
running interpreter) and by the controller (``orchestrator.payload.find_yara_wheel``) for a
target it only knows by Python version, machine and libc family.

Platform model: ``machine`` is normalised to ``x86_64``, ``i686``, ``aarch64``, ``armv7l``,
``ppc64le`` or ``s390x``; ``libc`` is ``glibc`` (manylinux tags), ``musl`` (musllinux tags)
or ``msvc`` (Windows: win_amd64 / win32 / win_arm64). ``libc_version`` is the host's
glibc/musl version as a tuple, or ``None`` when unknown (then every manylinux level is
accepted and the *lowest* requirement is preferred, because it runs on the most hosts).
"""

import os
import re
import struct
import sys

WHEEL_RE = re.compile(
    r"^(?P<dist>[A-Za-z0-9_.]+)-(?P<version>[^-]+)(?:-(?P<build>\d[^-]*))?"
    r"-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$"
)

# Legacy manylinux names and the glibc version each one requires (PEP 600).
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}

MACHINE_ALIASES = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "x64": "x86_64",
    "i386": "i686",
    "i486": "i686",
    "i586": "i686",
    "i686": "i686",
    "x86": "i686",
    "win32": "i686",
    "aarch64": "aarch64",
    "arm64": "aarch64",
    "armv7l": "armv7l",
    "armv7": "armv7l",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}

WINDOWS_PLATFORMS = {"x86_64": "win_amd64", "i686": "win32", "aarch64": "win_arm64"}

YARA_DIST = "yara_python"


def normalize_machine(machine):
    # type: (str) -> str
    m = (machine or "").strip().lower()
    if m.startswith("win_"):
        m = m[4:]
    return MACHINE_ALIASES.get(m, m)


def normalize_dist(name):
    # type: (str) -> str
    return re.sub(r"[-_.]+", "_", name).lower()


def parse_wheel_name(filename):
    """Split a wheel file name into its parts, or return None if it is not a wheel name."""
    m = WHEEL_RE.match(os.path.basename(filename))
    if not m:
        return None
    return {
        "filename": os.path.basename(filename),
        "dist": normalize_dist(m.group("dist")),
        "version": m.group("version"),
        "build": m.group("build") or "",
        "pythons": m.group("py").split("."),
        "abis": m.group("abi").split("."),
        "platforms": m.group("plat").split("."),
    }


def version_key(version):
    """Sort key for simple release versions ("4.5.1" < "4.5.10"); pre-releases sort lower."""
    key = []
    for part in re.split(r"[.+-]", version):
        m = re.match(r"^(\d+)(.*)$", part)
        if m:
            key.append((int(m.group(1)), 0 if m.group(2) else 1, m.group(2)))
        else:
            key.append((-1, 0, part))
    return tuple(key)


def python_compatible(info, python_version):
    """True if the wheel's python/abi tags fit CPython ``python_version`` (major, minor)."""
    major, minor = python_version[0], python_version[1]
    own = "cp%d%d" % (major, minor)
    for py in info["pythons"]:
        for abi in info["abis"]:
            if py == own and abi in (own, own + "m", own + "dm", "none", "abi3"):
                return True
            m = re.match(r"^cp(\d)(\d+)$", py)
            if abi == "abi3" and m and int(m.group(1)) == major and int(m.group(2)) <= minor:
                return True
            if abi == "none" and py in ("py%d" % major, "py%d%d" % (major, minor)):
                return True
    return False


def platform_rank(tag, machine, libc, libc_version=None):
    """Return a sort key (higher = preferred) if ``tag`` runs on the platform, else None."""
    machine = normalize_machine(machine)
    if tag == "any":
        return (0,)
    if libc == "msvc":
        return (1,) if WINDOWS_PLATFORMS.get(machine) == tag else None
    if libc == "glibc":
        legacy = None
        for name, ver in LEGACY_MANYLINUX.items():
            if tag == "%s_%s" % (name, machine):
                legacy = ver
        m = re.match(r"^manylinux_(\d+)_(\d+)_(.+)$", tag)
        if m and m.group(3) == machine:
            legacy = (int(m.group(1)), int(m.group(2)))
        if legacy is not None:
            if libc_version is None:
                # Unknown target glibc: prefer the wheel that needs the oldest glibc.
                return (2, -legacy[0], -legacy[1])
            if tuple(libc_version[:2]) >= legacy:
                return (2, legacy[0], legacy[1])
            return None
        if tag == "linux_%s" % machine:
            return (1,)
        return None
    if libc == "musl":
        m = re.match(r"^musllinux_(\d+)_(\d+)_(.+)$", tag)
        if m and m.group(3) == machine:
            need = (int(m.group(1)), int(m.group(2)))
            if libc_version is None:
                return (2, -need[0], -need[1])
            if tuple(libc_version[:2]) >= need:
                return (2, need[0], need[1])
        return None
    return None


def select_wheel(filenames, python_version, machine, libc, libc_version=None, dist=YARA_DIST):
    """Pick the best wheel of ``dist`` among ``filenames``.

    Returns ``(filename, None)`` or ``(None, reason)``. Highest version wins, then the best
    platform tag (see ``platform_rank``).
    """
    best = None
    best_key = None
    seen = []
    for name in filenames:
        info = parse_wheel_name(name)
        if info is None or info["dist"] != normalize_dist(dist):
            continue
        seen.append(info["filename"])
        if not python_compatible(info, python_version):
            continue
        ranks = [platform_rank(p, machine, libc, libc_version) for p in info["platforms"]]
        ranks = [r for r in ranks if r is not None]
        if not ranks:
            continue
        key = (version_key(info["version"]), max(ranks), info["build"], info["filename"])
        if best_key is None or key > best_key:
            best, best_key = info["filename"], key
    if best is not None:
        return best, None
    want = "cp%d%d %s %s%s" % (
        python_version[0],
        python_version[1],
        libc,
        normalize_machine(machine),
        "" if libc_version is None else " (libc %s)" % ".".join(str(v) for v in libc_version),
    )
    if seen:
        return None, "no %s wheel for %s (found: %s)" % (dist, want, ", ".join(sorted(seen)))
    return None, "no %s wheel for %s" % (dist, want)


def _glibc_version():
    try:
        value = os.confstr("CS_GNU_LIBC_VERSION")  # e.g. "glibc 2.36"
    except (AttributeError, ValueError, OSError):
        value = None
    if value:
        m = re.match(r"^glibc (\d+)\.(\d+)", value)
        if m:
            return (int(m.group(1)), int(m.group(2)))
    return None


def _is_musl():
    import glob

    return bool(glob.glob("/lib/ld-musl-*.so.1"))


def host_platform():
    """Describe the running interpreter: ``(machine, libc, libc_version)``."""
    import platform

    bits = struct.calcsize("P") * 8
    machine = normalize_machine(platform.machine())
    if bits == 32 and machine == "x86_64":
        machine = "i686"
    elif bits == 32 and machine == "aarch64":
        machine = "armv7l"
    if sys.platform == "win32":
        return machine, "msvc", None
    if sys.platform.startswith("linux"):
        glibc = _glibc_version()
        if glibc is not None:
            return machine, "glibc", glibc
        if _is_musl():
            # musl does not report its version cheaply; every musllinux wheel so far needs
            # musl 1.1 or 1.2, which every maintained Alpine has.
            return machine, "musl", (1, 2)
        return machine, "glibc", None
    return machine, sys.platform, None
