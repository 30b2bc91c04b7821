"""Quarantine and restore on one host, over a live HostSession.

    entry = quarantine_file(session, vault, "/home/op/Downloads/x.exe", sha256, scan_id=...)
    restore_file(session, Path("plain"), entry, force=False)

Host side, one small script under the host's own Python (`-I -B`, 3.6+) with one operation per
call. Every path is walked from `/` one folder at a time with O_NOFOLLOW|O_DIRECTORY and the
file is reached relative to its folder, so no symlink is ever followed, and paths travel as
base64 so no shell or encoding ever sees them.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
import shlex
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from orchestrator.errors import HostError, StepFailed
from orchestrator.quarantine.vault import CHUNK, FileFacts, Vault, VaultEntry, VaultError
from orchestrator.results import utc_now
from orchestrator.session import HostSession, json_answer

RESTORE_PREFIX = ".plantsweep-restore-"

# ops: stat PATH | remove PATH DEV INO SIZE MTIME_NS SHA256 |
#      prepare PATH TMPNAME FORCE | finish PATH TMPNAME SHA256 SIZE MODE UID GID ATIME MTIME FORCE |
#      drop PATH TMPNAME.  Answers one JSON line: {"ok": true, ...} or {"error", "reason"}.
_SCRIPT = r"""
import base64, errno, hashlib, json, os, stat, sys
def out(**kw):
    sys.stdout.write(json.dumps(kw) + '\n')
    sys.exit(0)
def fail(reason, message):
    out(error=message, reason=reason)
def folder(path):
    parts = path.split(b'/')
    if not path.startswith(b'/') or b'..' in parts or len(parts) < 2 or not parts[-1]:
        fail('path', 'not an absolute file path')
    fd = os.open(b'/', os.O_RDONLY | os.O_DIRECTORY)
    for part in parts[1:-1]:
        if part in (b'', b'.'):
            continue
        try:
            nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        except OSError as e:
            what = 'is a symlink' if e.errno == errno.ELOOP else e.strerror
            fail('folder', 'folder %s: %s' % (part.decode('utf-8', 'replace'), what))
        os.close(fd)
        fd = nfd
    return fd, parts[-1]
def lstat(d, name):
    try:
        return os.stat(name, dir_fd=d, follow_symlinks=False)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return None
        fail('stat', e.strerror)
def digest(fd):
    h = hashlib.sha256()
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return h.hexdigest()
        h.update(chunk)
def open_regular(d, name):
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=d)
    except OSError as e:
        fail('vanished' if e.errno == errno.ENOENT else 'open', e.strerror)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        fail('not-regular', 'not a regular file')
    return fd, st
def name_of(fn, ident):
    try:
        return fn(ident)[0]
    except (KeyError, OverflowError):
        return None
op, path = sys.argv[1], base64.b64decode(sys.argv[2])
d, name = folder(path)
if op == 'stat':
    st = lstat(d, name)
    if st is None:
        fail('vanished', 'no longer exists')
    if not stat.S_ISREG(st.st_mode):
        fail('not-regular', 'not a regular file (symlink, folder or device)')
    import grp, pwd
    out(ok=True, size=st.st_size, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid,
        owner=name_of(pwd.getpwuid, st.st_uid), group=name_of(grp.getgrgid, st.st_gid),
        atime_ns=st.st_atime_ns, mtime_ns=st.st_mtime_ns, dev=st.st_dev, ino=st.st_ino,
        nlink=st.st_nlink)
elif op == 'remove':
    dev, ino, size, mtime = [int(v) for v in sys.argv[3:7]]
    fd, st = open_regular(d, name)
    if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != (dev, ino, size, mtime):
        fail('changed', 'changed since it was copied: not removed')
    if digest(fd) != sys.argv[7]:
        fail('changed', 'content changed since it was copied: not removed')
    again = lstat(d, name)
    if again is None or (again.st_dev, again.st_ino) != (dev, ino):
        fail('changed', 'replaced since it was copied: not removed')
    try:
        os.unlink(name, dir_fd=d)
    except OSError as e:
        fail('remove', e.strerror)
    out(ok=True, removed=lstat(d, name) is None)
else:
    tmp = base64.b64decode(sys.argv[3])
    if op == 'drop':
        try:
            os.unlink(tmp, dir_fd=d)
        except OSError:
            pass
        out(ok=True)
    force = sys.argv[-1] == '1'
    existing = lstat(d, name)
    if existing is not None and not force:
        fail('exists', 'something already exists there (use --force to replace it)')
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        fail('exists', 'a folder is there: not replaced')
    if op == 'prepare':
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600,
                             dir_fd=d))
        except OSError as e:
            fail('upload', e.strerror)
        out(ok=True)
    sha = sys.argv[4]
    size, mode, uid, gid, atime, mtime = [int(v) for v in sys.argv[5:11]]
    fd, st = open_regular(d, tmp)
    if st.st_size != size or digest(fd) != sha:
        os.unlink(tmp, dir_fd=d)
        fail('upload', 'the uploaded copy differs from the vault copy')
    notes = []
    if os.geteuid() == 0:
        os.fchown(fd, uid, gid)  # before chmod: chown clears set-id bits
    elif (st.st_uid, st.st_gid) != (uid, gid):
        notes.append('owner not restored (not root)')
    os.fchmod(fd, mode)
    os.utime(fd, ns=(atime, mtime))
    os.close(fd)
    if existing is None:
        try:
            # a hard link never replaces what may have appeared meanwhile
            os.link(tmp, name, src_dir_fd=d, dst_dir_fd=d, follow_symlinks=False)
        except FileExistsError:
            os.unlink(tmp, dir_fd=d)
            fail('exists', 'something appeared there meanwhile: not replaced')
        except OSError:
            os.rename(tmp, name, src_dir_fd=d, dst_dir_fd=d)  # no hard links (vfat, ...)
        else:
            os.unlink(tmp, dir_fd=d)
    else:
        os.rename(tmp, name, src_dir_fd=d, dst_dir_fd=d)
    st = lstat(d, name)
    out(ok=True, size=st.st_size, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid,
        mtime_ns=st.st_mtime_ns, atime_ns=st.st_atime_ns, notes=notes)
"""


class QuarantineFailed(StepFailed):
    """One file could not be quarantined or restored; `reason` is a short code for the log."""

    def __init__(self, host: str, message: str, reason: str, vault_id: str | None = None):
        super().__init__(host, message)
        self.reason = reason
        self.vault_id = vault_id  # set when a verified copy is in the vault all the same


def _b64(path: str) -> str:
    return base64.b64encode(path.encode("utf-8")).decode("ascii")


def _host_op(session: HostSession, op: str, path: str, *args: str) -> dict[str, Any]:
    """Run one operation of the host script; its refusal becomes QuarantineFailed."""
    if session.cancel.is_set():
        raise StepFailed(session.name, "cancelled")
    session.require_posix("quarantine and restore")
    facts = session.facts
    assert facts is not None
    q = shlex.quote
    command = " ".join(
        [q(facts.python), "-I", "-B", "-c", q(_SCRIPT), op, _b64(path), *(q(a) for a in args)]
    )
    result = session.run(command, session.timeouts.command, leaves_nothing_running=True)
    answer = json_answer(result, session.name, f"{op} of {path}")
    if not answer.get("ok"):
        raise QuarantineFailed(
            session.name, f"{path}: {answer.get('error')}", str(answer.get("reason"))
        )
    return answer


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def quarantine_file(
    session: HostSession, vault: Vault, path: str, sha256: str, **extra: Any
) -> VaultEntry:
    """Copy `path` into the vault, verify the copy, then remove the file from the host.

    The file is removed only if it is still the very file that was copied (same inode, size,
    mtime and SHA-256 checked right before the unlink). Raises QuarantineFailed (or another
    HostError) with the reason; an entry whose file could not be removed stays in the vault
    without `removed_at`, and the error names its id."""
    host = session.name
    st = _host_op(session, "stat", path)
    facts = FileFacts(
        size=st["size"],
        mode=st["mode"],
        uid=st["uid"],
        gid=st["gid"],
        owner=st["owner"],
        group=st["group"],
        atime_ns=st["atime_ns"],
        mtime_ns=st["mtime_ns"],
    )
    with tempfile.TemporaryDirectory(prefix="plantsweep-quarantine-") as tmp:
        local = Path(tmp) / "copy"
        session.conn.get(path, local, session.timeouts.transfer)
        got = _sha256(local)
        if got != sha256:
            raise QuarantineFailed(
                host,
                f"{path}: changed since the scan (SHA-256 now {got}): left in place",
                "changed",
            )
        if local.stat().st_size != facts.size:
            raise QuarantineFailed(host, f"{path}: changed while it was copied", "changed")
        try:
            entry = vault.store(local, host=host, path=path, sha256=sha256, facts=facts, **extra)
        except VaultError as exc:
            raise QuarantineFailed(
                host, f"{path}: not stored in the vault: {exc}", "vault"
            ) from None
    notes = ["other hard links to the file remain"] if st["nlink"] > 1 else []
    try:
        _host_op(
            session,
            "remove",
            path,
            str(st["dev"]),
            str(st["ino"]),
            str(facts.size),
            str(facts.mtime_ns),
            sha256,
        )
    except HostError as exc:
        vault.update(entry.id, notes=[f"not removed from the host: {exc.message}"])
        raise QuarantineFailed(
            host,
            f"{exc.message} (a copy is in the vault as {entry.id})",
            getattr(exc, "reason", "remove"),
            entry.id,
        ) from None
    return vault.update(entry.id, removed_at=utc_now(), notes=notes)


def restore_file(
    session: HostSession, plain: Path, entry: VaultEntry, force: bool = False
) -> dict[str, Any]:
    """Put `plain` (the decrypted, verified vault copy) back at `entry.path` with its mode,
    owner (when the login is root) and atime/mtime: upload to a 0600 temp name in the same
    folder, check its SHA-256 there, set the metadata, then link (or with `force`, rename)
    it into place. Refused when something exists at the path, unless `force`."""
    folder = str(PurePosixPath(entry.path).parent)
    tmp_name = RESTORE_PREFIX + secrets.token_hex(6)
    flag = "1" if force else "0"
    _host_op(session, "prepare", entry.path, _b64(tmp_name), flag)
    try:
        session.conn.put(plain, str(PurePosixPath(folder) / tmp_name), session.timeouts.transfer)
        meta = [entry.sha256, entry.size, entry.mode, entry.uid, entry.gid]
        times = [entry.atime_ns, entry.mtime_ns]
        return _host_op(
            session, "finish", entry.path, _b64(tmp_name), *map(str, meta + times), flag
        )
    except BaseException:
        # finish removes its temp file itself when it refuses; this covers a failed upload
        with contextlib.suppress(HostError):
            _host_op(session, "drop", entry.path, _b64(tmp_name))
        raise
