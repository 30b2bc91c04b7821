"""What a scan covers: the roots per scan type and the mounts/paths it must not enter.

- ``full``: POSIX: ``/`` plus every included mount not reachable from an included parent
  (``mounts.MountPlan.full_scan_roots``). Windows: every fixed drive and RAM disk;
  removable/optical drives with ``--include-mounts removable``, network drives with
  ``--include-mounts network``.
- ``quick``: ``locations.quick_roots()``; a root on an excluded mount is skipped.
- ``folders``: the ``--path`` values. An explicitly named root is scanned even if it lies on
  an excluded mount (e.g. a USB stick at a checkpoint); mounts *below* it still follow the
  mount rules. Only /proc, /sys and /dev (except /dev/shm) are refused.
- ``asset``: nothing.

Every root is resolved once (``realpath``: a symlinked root such as ``/bin`` is followed at
the top only) and de-duplicated; roots without a depth limit are walked first so that a
depth-limited root cannot hide a deeper one.
"""

import os
import sys

from agentless_scanner import locations, mounts
from agentless_scanner.locations import Root
from agentless_scanner.scanlog import display_path, path_fields

WINDOWS_DRIVE_TYPES = {2: "removable", 3: "fixed", 4: "network", 5: "removable", 6: "ramdisk"}


def windows_drives(include_tokens):  # pragma: no cover - Windows only
    """(included roots, excluded drive records) from GetLogicalDrives/GetDriveTypeW."""
    import ctypes

    kernel32 = ctypes.windll.kernel32
    mask = kernel32.GetLogicalDrives()
    roots, excluded = [], []
    for index in range(26):
        if not mask & (1 << index):
            continue
        drive = "%s:\\" % chr(ord("A") + index)
        kind = WINDOWS_DRIVE_TYPES.get(kernel32.GetDriveTypeW(ctypes.c_wchar_p(drive)), "other")
        if kind in ("fixed", "ramdisk") or kind in include_tokens:
            roots.append(Root(drive, "mount"))
        else:
            excluded.append({"mountpoint": drive, "fstype": None, "source": None, "category": kind})
    return roots, excluded


class Scope(object):
    def __init__(self, scan_type):
        self.scan_type = scan_type
        self.roots = []  # [{"root": Root, "log": dict}]
        self.mount_plan = None
        self.mount_table = None
        self.excluded_mount_records = []
        self.included_mount_records = []
        self.excluded_paths = []
        self.scanner_dirs = set()
        self.user_excludes = set()  # bytes paths from --exclude
        self.problems = []  # [(path, category, kind, message)] recorded by the caller

    def walk_roots(self):
        return [r for r in self.roots if r["log"]["status"] == "pending"]

    def excluded_mountpoints(self):
        return self.mount_plan.excluded_mountpoints() if self.mount_plan else set()

    def excluded_devs(self):
        return self.mount_plan.excluded_devs() if self.mount_plan else set()

    def allowed_mount(self, real):
        """For a folders root: the excluded mount it lies on, which its walk may enter."""
        if self.scan_type != "folders" or self.mount_plan is None:
            return None
        mount = self.mount_plan.mount_of(real)
        if mount is None or mount.included:
            return None
        return os.fsencode(mount.mountpoint), mount.dev

    def mount_names(self):
        names = {}
        if self.mount_plan:
            for m in self.mount_plan.excluded:
                names[os.fsencode(m.mountpoint)] = "%s, %s" % (m.fstype, m.category)
        return names


def _stat_id(path):
    try:
        st = os.stat(path)
        return (st.st_dev, st.st_ino)
    except OSError:
        return None


def build(scan_type, paths, include_tokens, scanner_paths, platform=None, excludes=()):
    """Plan the scope. ``scanner_paths``: [(path, reason)] of the scanner's own dirs;
    ``excludes``: the --exclude paths."""
    platform = platform or sys.platform
    scope = Scope(scan_type)
    for path in excludes:
        real = os.path.realpath(path)
        scope.user_excludes.add(os.fsencode(real))
        scope.excluded_paths.append(dict(path_fields(real), reason="--exclude"))
    for path, reason in scanner_paths:
        ident = _stat_id(path)
        if ident is not None:
            scope.scanner_dirs.add(ident)
            scope.excluded_paths.append(dict(path_fields(path), reason=reason))
    if scan_type == "asset":
        return scope
    roots = []
    if platform == "win32":
        if scan_type == "full":
            roots, scope.excluded_mount_records = windows_drives(include_tokens)
            scope.mount_table = "GetLogicalDrives"
    else:
        scope.mount_plan = mounts.plan_mounts(include_tokens)
        scope.mount_table = scope.mount_plan.source
        scope.included_mount_records = [m.as_log() for m in scope.mount_plan.included]
        scope.excluded_mount_records = [m.as_log() for m in scope.mount_plan.excluded]
        if scan_type == "full":
            if scope.mount_plan.mounts:
                roots = [Root(mp, "mount") for mp in scope.mount_plan.full_scan_roots()]
            else:
                scope.problems.append(
                    (
                        None,
                        "error",
                        "list-error",
                        "no mount table (/proc not mounted?): walking / without mount filtering",
                    )
                )
                roots = [Root("/", "mount")]
    if scan_type == "quick":
        roots = locations.quick_roots(platform)
    elif scan_type == "folders":
        roots = [Root(os.path.abspath(p), "folder") for p in paths]
    roots.sort(key=lambda r: r.max_depth is not None)  # unlimited depth first (stable)
    # Among roots that are the same directory, walk the one named by its real path
    # (/usr/bin rather than /bin -> /usr/bin); the others are listed as duplicates.
    canonical = {}
    for root in roots:
        if os.path.realpath(root.path) == root.path:
            canonical.setdefault(root.path, root.max_depth)
    walked = set()
    for root in roots:
        real = os.path.realpath(root.path)
        log = path_fields(real)
        log.update({"category": root.category, "max_depth": root.max_depth, "status": "pending"})
        if real != root.path:
            log["given"] = display_path(root.path)
        scope.roots.append({"root": root, "log": log, "real": real})
        if not os.path.lexists(real):
            log["status"] = "missing"
            if scan_type == "folders":
                scope.problems.append((real, "error", "not-found", "--path does not exist"))
            continue
        breal = os.fsencode(real)
        if any(
            breal == e or breal.startswith(e.rstrip(b"/\\") + os.fsencode(os.sep))
            for e in scope.user_excludes
        ):
            log["status"] = "excluded-path"
            scope.problems.append((real, "skipped", "excluded-path", "excluded by --exclude"))
            continue
        if platform != "win32" and locations.never_descend(real):
            log["status"] = "excluded-path"
            scope.problems.append(
                (real, "skipped", "excluded-path", "never scanned (system pseudo-files)")
            )
            continue
        if scan_type == "quick" and scope.mount_plan is not None:
            mount = scope.mount_plan.mount_of(real)
            if mount is not None and not mount.included:
                log["status"] = "excluded-mount"
                scope.problems.append(
                    (
                        real,
                        "skipped",
                        "excluded-mount",
                        "on an excluded %s filesystem (%s)" % (mount.category, mount.fstype),
                    )
                )
                continue
        ident = _stat_id(real)
        alias = (
            root.path != real
            and real in canonical
            and (canonical[real] is None or canonical[real] == root.max_depth)
        )
        if ident is not None and (ident in walked or alias):
            log["status"] = "duplicate"
            log["same_as"] = display_path(real)
            continue
        if ident is not None:
            walked.add(ident)
    return scope


def as_log(scope, include_tokens, max_size, deadline):
    return {
        "roots": [r["log"] for r in scope.roots],
        "mount_table": scope.mount_table,
        "included_mounts": scope.included_mount_records,
        "excluded_mounts": scope.excluded_mount_records,
        "excluded_paths": scope.excluded_paths,
        "include_mounts": list(include_tokens),
        "max_size": max_size,
        "deadline_s": deadline,
    }
