"""Which mounted filesystems a scan may enter.

The mount table comes from ``/proc/self/mountinfo`` (``/proc/mounts`` as a fallback, without
device numbers). Each visible mount is put in one category:

- ``pseudo``: kernel/virtual filesystems (proc, sysfs, devtmpfs, devpts, cgroup*, ...).
  Never scanned, and ``--include-mounts`` cannot name them.
- ``system-path``: anything mounted at or below ``/proc``, ``/sys`` or ``/dev`` (except
  ``/dev/shm``). Never scanned.
- ``network``: nfs, cifs/smb, sshfs, every ``fuse.*`` (FUSE filesystems are user-space and
  usually remote or virtual; ``fuseblk`` is a local block device, e.g. NTFS, and counts as
  local), cluster filesystems, 9p. Skipped unless ``--include-mounts`` names ``network`` or
  the filesystem type: scanning a file server from every plant host is slow, can hang on a
  dead server, and is the file server's own job.
- ``removable``: mounted below ``/media`` or ``/run/media``, optical media (iso9660, udf), or
  a block device whose sysfs ``removable`` flag is 1 or which sits on a USB bus (this also
  catches USB disks mounted under ``/mnt``). Skipped unless ``--include-mounts`` names
  ``removable`` or the filesystem type: removable media is scanned at the checkpoint.
- ``memory``: tmpfs and ramfs. **Included**: ``/tmp``, ``/run`` and ``/dev/shm`` are where
  droppers and fileless malware stage files (world-writable, often executable), they are
  small, and they vanish at reboot, so a scan is the only record of them. ``/dev/shm`` is
  the one place below ``/dev`` that is scanned, for exactly that reason.
- ``local``: everything else (ext4, xfs, btrfs, overlay, squashfs, vfat on a fixed disk, ...).

A full scan walks ``/`` plus every included mount that cannot be reached from an included
parent (e.g. ``/dev/shm``). During every walk a directory whose path is the mount point of an
excluded mount is skipped *before* it is stat'ed (a stat on a dead NFS server hangs), and a
directory whose st_dev belongs to an excluded mount is skipped too.
"""

import os
import re

from agentless_scanner.scanlog import display_path

PSEUDO_FS = frozenset(
    (
        "proc",
        "sysfs",
        "devtmpfs",
        "devpts",
        "cgroup",
        "cgroup2",
        "securityfs",
        "debugfs",
        "tracefs",
        "pstore",
        "bpf",
        "configfs",
        "fusectl",
        "mqueue",
        "hugetlbfs",
        "autofs",
        "binfmt_misc",
        "efivarfs",
        "rpc_pipefs",
        "nsfs",
        "selinuxfs",
        "nfsd",
        "usbfs",
        "devfs",
        "sockfs",
        "pipefs",
        "anon_inodefs",
        "cpuset",
        "xenfs",
        "fuse.lxcfs",
        "smackfs",
        "apparmorfs",
        "ipathfs",
    )
)

NETWORK_FS = frozenset(
    (
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ncpfs",
        "afs",
        "coda",
        "9p",
        "ceph",
        "glusterfs",
        "lustre",
        "gfs2",
        "ocfs2",
        "davfs",
        "sshfs",
        "gpfs",
        "beegfs",
        "orangefs",
        "pvfs2",
        "moosefs",
    )
)

OPTICAL_FS = frozenset(("iso9660", "udf"))
MEMORY_FS = frozenset(("tmpfs", "ramfs"))

SYSTEM_DIRS = ("/proc", "/sys", "/dev")
SYSTEM_EXCEPTIONS = ("/dev/shm",)
REMOVABLE_DIRS = ("/media", "/run/media")

CATEGORIES = ("pseudo", "system-path", "network", "removable", "memory", "local")
INCLUDABLE = ("network", "removable")

_OCTAL = re.compile(r"\\([0-7]{3})")


class Mount(object):
    __slots__ = ("mountpoint", "fstype", "source", "major", "minor", "category", "included")

    def __init__(self, mountpoint, fstype, source, major=None, minor=None):
        self.mountpoint = mountpoint
        self.fstype = fstype
        self.source = source
        self.major = major
        self.minor = minor
        self.category = None
        self.included = None

    @property
    def dev(self):
        if self.major is None:
            return None
        return os.makedev(self.major, self.minor)

    def as_log(self):
        return {
            "mountpoint": display_path(self.mountpoint),
            "fstype": self.fstype,
            "source": display_path(self.source),
            "category": self.category,
        }


def unescape(field):
    """mountinfo escapes space, tab, newline and backslash as ``\\ooo`` octal."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text):
    mounts = []
    for line in text.splitlines():
        parts = line.split()
        if "-" not in parts:
            continue
        sep = parts.index("-")
        if sep < 6 or len(parts) < sep + 3:
            continue
        try:
            major, minor = (int(x) for x in parts[2].split(":"))
        except ValueError:
            major = minor = None
        mounts.append(
            Mount(unescape(parts[4]), parts[sep + 1], unescape(parts[sep + 2]), major, minor)
        )
    return mounts


def parse_proc_mounts(text):
    mounts = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            mounts.append(Mount(unescape(parts[1]), parts[2], unescape(parts[0])))
    return mounts


def read_mount_table():
    """Return (mounts, source) for this process's mount namespace; ([], None) if none."""
    for path, parser in (
        ("/proc/self/mountinfo", parse_mountinfo),
        ("/proc/mounts", parse_proc_mounts),
    ):
        try:
            with open(path, "rb") as fh:
                text = os.fsdecode(fh.read())  # same decoding as every other path here
        except OSError:
            continue
        mounts = parser(text)
        if mounts:
            return mounts, path
    return [], None


def is_under(path, prefix):
    """True if ``path`` equals ``prefix`` or lies below it (whole path components)."""
    if prefix == "/":
        return path.startswith("/")
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def device_is_removable(major, minor, sysfs_root="/sys"):
    """sysfs says the block device is removable (or on USB). False when unknown."""
    if major is None or major == 0:
        return False
    link = os.path.join(sysfs_root, "dev", "block", "%d:%d" % (major, minor))
    if not os.path.exists(link):
        return False
    real = os.path.realpath(link)
    disk = real
    if os.path.exists(os.path.join(real, "partition")):
        disk = os.path.dirname(real)
    try:
        with open(os.path.join(disk, "removable"), "rb") as fh:
            if fh.read().strip() == b"1":
                return True
    except OSError:
        pass
    return "/usb" in real


def token_matches(token, mount):
    return (
        token == mount.fstype
        or token == mount.category
        or (token == "fuse" and mount.fstype.startswith("fuse."))
    )


def classify(mount, include_tokens=(), sysfs_root="/sys"):
    """Set ``mount.category`` and ``mount.included``; return the mount."""
    mp, fstype = mount.mountpoint, mount.fstype
    if fstype in PSEUDO_FS:
        mount.category = "pseudo"
    elif any(is_under(mp, d) for d in SYSTEM_DIRS) and not any(
        is_under(mp, e) for e in SYSTEM_EXCEPTIONS
    ):
        mount.category = "system-path"
    elif fstype in NETWORK_FS or (fstype.startswith("fuse.") and fstype != "fuseblk"):
        mount.category = "network"
    elif (
        fstype in OPTICAL_FS
        or any(is_under(mp, d) for d in REMOVABLE_DIRS)
        or device_is_removable(mount.major, mount.minor, sysfs_root)
    ):
        mount.category = "removable"
    elif fstype in MEMORY_FS:
        mount.category = "memory"
    else:
        mount.category = "local"
    if mount.category in ("memory", "local"):
        mount.included = True
    elif mount.category in INCLUDABLE:
        mount.included = any(token_matches(t, mount) for t in include_tokens)
    else:
        mount.included = False
    return mount


def visible_mounts(mounts):
    """Drop mounts hidden by a later mount on the same mount point (keep table order)."""
    last = {}
    for index, mount in enumerate(mounts):
        last[mount.mountpoint] = index
    return [m for i, m in enumerate(mounts) if last[m.mountpoint] == i]


def covering_mount(path, mounts):
    """The visible mount that contains ``path`` (longest mount point prefix), or None."""
    best = None
    for mount in mounts:
        if is_under(path, mount.mountpoint) and (
            best is None or len(mount.mountpoint) > len(best.mountpoint)
        ):
            best = mount
    return best


class MountPlan(object):
    """Classified mount table plus what the walker needs to stay inside the scope."""

    def __init__(self, mounts, source):
        self.mounts = mounts
        self.source = source

    @property
    def included(self):
        return [m for m in self.mounts if m.included]

    @property
    def excluded(self):
        return [m for m in self.mounts if not m.included]

    def excluded_mountpoints(self):
        return set(os.fsencode(m.mountpoint) for m in self.excluded if m.mountpoint != "/")

    def excluded_devs(self):
        included = set(m.dev for m in self.included if m.dev is not None)
        return set(m.dev for m in self.excluded if m.dev is not None and m.dev not in included)

    def full_scan_roots(self):
        """Mount points a full scan starts from (``/`` first)."""
        roots = []
        for mount in sorted(self.included, key=lambda m: m.mountpoint):
            if mount.mountpoint == "/":
                roots.append(mount.mountpoint)
                continue
            parent = os.path.dirname(mount.mountpoint.rstrip("/")) or "/"
            others = [m for m in self.mounts if m is not mount]
            cover = covering_mount(parent, others)
            if cover is None or not cover.included:
                roots.append(mount.mountpoint)
        return roots

    def mount_of(self, path):
        return covering_mount(path, self.mounts)


def plan_mounts(include_tokens=(), mounts=None, source=None, sysfs_root="/sys"):
    """Read (or take) the mount table and classify it."""
    if mounts is None:
        mounts, source = read_mount_table()
    mounts = visible_mounts(mounts)
    for mount in mounts:
        classify(mount, include_tokens, sysfs_root)
    return MountPlan(mounts, source)
