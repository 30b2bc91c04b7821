"""Make pyenv interpreters runnable inside plant hosts, whose /root is private.

The real /root/.pyenv/versions is bind-mounted read-only on /opt/pythons in each host.
pyenv builds here are --enable-shared with an absolute RUNPATH under /root/.pyenv, so the
dynamic loader would not find libpythonX.Y.so at the new place: each host also gets an
/etc/ld.so.cache that lists /opt/pythons/*/lib (like an old Python installed under /opt
with an ldconfig entry). The cache is built once per state folder in a throwaway mount
namespace, so nothing is created in the root filesystem.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from .proc import HarnessError, run

PYENV_VERSIONS = Path("/root/.pyenv/versions")
HOST_PYTHONS = "/opt/pythons"  # where the versions appear inside each host
DEFAULT_PYTHON = "/usr/bin/python3"
_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def _system_sonames() -> set[str]:
    out = run(["ldconfig", "-p"], check=False).stdout.decode()
    return {line.split()[0] for line in out.splitlines()[1:] if line.strip()}


def _soname(version_dir: Path) -> str | None:
    libs = sorted(version_dir.glob("lib/libpython*.so.*"))
    return libs[0].name if libs else None


def available() -> dict[str, Path]:
    """Usable pyenv versions: full version -> real directory.

    A version whose libpython soname is also in the system's loader cache (3.11 on
    Debian 12) is left out: the host would load the system library instead.
    """
    if not PYENV_VERSIONS.is_dir():
        return {}
    system = _system_sonames()
    found: dict[str, Path] = {}
    for d in sorted(PYENV_VERSIONS.iterdir()):
        if not _VERSION_RE.match(d.name) or not d.is_dir():
            continue
        soname = _soname(d)
        if soname is not None and soname in system:
            continue
        found[d.name] = d
    return found


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def resolve(spec: str) -> str:
    """Interpreter path inside a host for a spec: "3.6", "3.8.18" or an absolute path."""
    if spec.startswith("/"):
        return spec
    versions = available()
    matching = [v for v in versions if v == spec or v.startswith(spec + ".")]
    if not matching:
        raise HarnessError(
            f"python {spec!r}: no usable pyenv version (have: {', '.join(versions) or 'none'})"
        )
    best = max(matching, key=_key)
    major, minor = best.split(".")[:2]
    exe = versions[best] / "bin" / f"python{major}.{minor}"
    if not exe.exists():
        raise HarnessError(f"python {spec!r}: {exe} missing")
    return f"{HOST_PYTHONS}/{best}/bin/python{major}.{minor}"


def ld_cache(state_dir: Path) -> Path | None:
    """Build (or reuse) the loader cache that lists /opt/pythons/*/lib."""
    versions = available()
    if not versions:
        return None
    base = Path("/etc/ld.so.conf").read_text() if Path("/etc/ld.so.conf").exists() else ""
    conf_text = base + "".join(f"{HOST_PYTHONS}/{v}/lib\n" for v in versions)
    digest = hashlib.sha256(conf_text.encode()).hexdigest()[:16]
    out_dir = state_dir / "pythons"
    cache = out_dir / f"ld.so.cache.{digest}"
    if cache.exists():
        return cache
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("ld.so.cache.*"):
        old.unlink()
    conf = out_dir / "ld.so.conf"
    conf.write_text(conf_text)
    tmp = out_dir / "ld.so.cache.new"
    # Private mount namespace: the tmpfs on /opt and the bind vanish with the process.
    script = (
        "set -e; mount -t tmpfs -o mode=755 tmpfs /opt; "
        f"mkdir {HOST_PYTHONS}; mount --bind -o ro {PYENV_VERSIONS} {HOST_PYTHONS}; "
        f"ldconfig -X -C {tmp} -f {conf}"
    )
    run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script], timeout=60)
    tmp.rename(cache)
    return cache
