"""Per-host filesystem view: folders in the state dir, user database, mount script.

Inside a host (its own mount namespace, made by `ip netns exec`):
  /tmp, /var/tmp, /run   fresh tmpfs
  /root /home /srv /opt  bind mounts of the host's folders in the state dir
  /opt/pythons           read-only bind of /root/.pyenv/versions (see pythons.py)
  /etc/passwd shadow group hostname, /etc/ld.so.cache, /var/log/{wtmp,btmp,lastlog}
                         per-host files bound over the real ones
Nothing is mounted or created in the root namespace.
"""

from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from .proc import HarnessError, run
from .pythons import HOST_PYTHONS, PYENV_VERSIONS

# Folders bound from the state dir; in-host path -> sub-folder of the host dir.
BOUND = {"/root": "root", "/home": "home", "/srv": "srv", "/opt": "opt"}
DATA_DIR = "/srv/plant"
LOGIN_RECORDS = ("wtmp", "btmp", "lastlog")

PLANTOPS_USER = "plantops"
PLANTOPS_PASSWORD = "plantops-test-pw"  # test-only secret, for password-auth tests
OPERATOR_USER = "operator"


@dataclass(frozen=True)
class Users:
    """The extra accounts added to every host's /etc/passwd (uids free on this machine)."""

    plantops_uid: int
    operator_uid: int
    password_hash: str


def pick_users(state_dir: Path) -> Users:
    taken: set[int] = set()
    for line in Path("/etc/passwd").read_text().splitlines():
        parts = line.split(":")
        if len(parts) > 2 and parts[2].isdigit():
            taken.add(int(parts[2]))
    free = [u for u in range(2000, 3000) if u not in taken]
    cache = state_dir / "plantops.hash"
    if cache.exists():
        pw_hash = cache.read_text().strip()
    else:
        # Fixed salt: same hash every run; this is a throwaway test credential.
        pw_hash = run(["openssl", "passwd", "-6", "-salt", "plantsweeptest", PLANTOPS_PASSWORD])
        pw_hash = pw_hash.stdout.decode().strip()
        cache.write_text(pw_hash + "\n")
    return Users(plantops_uid=free[0], operator_uid=free[1], password_hash=pw_hash)


def _etc_files(users: Users) -> dict[str, str]:
    passwd = [
        line
        for line in Path("/etc/passwd").read_text().splitlines()
        if line.split(":")[0] not in (PLANTOPS_USER, OPERATOR_USER)
    ]
    group = [
        line
        for line in Path("/etc/group").read_text().splitlines()
        if line.split(":")[0] not in (PLANTOPS_USER, OPERATOR_USER)
    ]
    p, o = users.plantops_uid, users.operator_uid
    passwd += [
        f"{PLANTOPS_USER}:x:{p}:{p}:plant ops:/home/{PLANTOPS_USER}:/bin/bash",
        f"{OPERATOR_USER}:x:{o}:{o}:HMI operator:/home/{OPERATOR_USER}:/bin/bash",
    ]
    group += [f"{PLANTOPS_USER}:x:{p}:", f"{OPERATOR_USER}:x:{o}:"]
    # A fresh shadow: never copy the machine's real password hashes into test hosts.
    # "*" = no password login, but not locked ("!"), so key login still works.
    shadow = [f"{line.split(':')[0]}:*:19700:0:99999:7:::" for line in passwd[:-2]]
    shadow += [
        f"{PLANTOPS_USER}:{users.password_hash}:19700:0:99999:7:::",
        f"{OPERATOR_USER}:*:19700:0:99999:7:::",
    ]
    return {
        "passwd": "\n".join(passwd) + "\n",
        "group": "\n".join(group) + "\n",
        "shadow": "\n".join(shadow) + "\n",
    }


def build_tree(host_dir: Path, name: str, users: Users, authorized_key: str) -> None:
    """Create a host's folders from scratch (hosts start fresh every run)."""
    if host_dir.exists():
        shutil.rmtree(host_dir)
    for sub in ("root/.ssh", "home", "srv/plant", f"opt/{HOST_PYTHONS.split('/')[-1]}", "etc"):
        (host_dir / sub).mkdir(parents=True, exist_ok=True)
    (host_dir / "root").chmod(0o700)
    (host_dir / "root/.ssh/authorized_keys").write_text(authorized_key + "\n")
    for user, uid in ((PLANTOPS_USER, users.plantops_uid), (OPERATOR_USER, users.operator_uid)):
        home = host_dir / "home" / user
        for sub in (".ssh", "Downloads", "Documents"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        if user == PLANTOPS_USER:
            (home / ".ssh/authorized_keys").write_text(authorized_key + "\n")
        for path in [home, *home.rglob("*")]:
            shutil.chown(path, uid, uid)
    etc = host_dir / "etc"
    for fname, text in _etc_files(users).items():
        (etc / fname).write_text(text)
    (etc / "shadow").chmod(0o640)
    (etc / "hostname").write_text(name + "\n")
    log = host_dir / "log"
    log.mkdir()
    for rec in LOGIN_RECORDS:
        (log / rec).touch()


def setup_script(host_dir: Path, name: str, netns: str, ld_cache: Path | None) -> str:
    """Shell script run as the host's anchor process: mounts, hostname, then sleep.

    It prints "ready" once the view is complete, then becomes `sleep infinity` renamed
    to psw-anchor:<netns> (so teardown can check it is ours). sshd and `exec` enter its
    namespaces with nsenter, so /tmp and the hostname survive sshd restarts.
    """
    q = shlex.quote
    h = str(host_dir)
    lines = [
        "set -eu",
        f"hostname {q(name)}",
        "mount -t tmpfs -o mode=1777,size=512m,nosuid,nodev plant-tmp /tmp",
        "mount -t tmpfs -o mode=1777,size=64m,nosuid,nodev plant-vartmp /var/tmp",
        "mount -t tmpfs -o mode=755,size=16m,nosuid,nodev plant-run /run",
        "mkdir -m 755 /run/sshd /run/lock",  # sshd's privilege separation dir
    ]
    # /opt and the pythons first: the real /root/.pyenv is hidden once /root is replaced.
    lines.append(f"mount --bind {q(h + '/opt')} /opt")
    if PYENV_VERSIONS.is_dir():
        lines.append(f"mount --bind -o ro {q(str(PYENV_VERSIONS))} {HOST_PYTHONS}")
    lines += [
        f"mount --bind {q(h + '/' + sub)} {inhost}" for inhost, sub in BOUND.items() if sub != "opt"
    ]
    if ld_cache is not None:
        lines.append(f"mount --bind {q(str(ld_cache))} /etc/ld.so.cache")
    for fname in ("passwd", "shadow", "group", "hostname"):
        lines.append(f"mount --bind {q(h + '/etc/' + fname)} /etc/{fname}")
    for rec in LOGIN_RECORDS:
        # sshd records pty logins here; keep them out of the machine's real logs.
        lines.append(f"[ -e /var/log/{rec} ] && mount --bind {q(h + '/log/' + rec)} /var/log/{rec}")
    lines += [
        "echo ready",
        f"exec -a psw-anchor:{netns} sleep infinity >/dev/null",
    ]
    return "\n".join(lines) + "\n"


def inhost_to_controller(host_dir: Path, anchor_pid: int | None, inhost: str) -> Path:
    """Controller-side path of an in-host absolute path.

    Bound folders map into the state dir; anything else (e.g. /tmp, a tmpfs) is reached
    through the anchor's root, /proc/<pid>/root, which resolves in the host's mount ns.
    """
    if not inhost.startswith("/"):
        inhost = "/" + inhost
    for prefix, sub in BOUND.items():
        if inhost == prefix or inhost.startswith(prefix + "/"):
            if inhost.startswith(HOST_PYTHONS):
                break
            return host_dir / sub / inhost[len(prefix) :].lstrip("/")
    if anchor_pid is None:
        raise HarnessError(f"{inhost}: host is not running")
    return Path(f"/proc/{anchor_pid}/root") / inhost.lstrip("/")
