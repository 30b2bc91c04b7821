"""Iterative, read-only, symlink-free directory walk.

Rules (all scan types):

- Never follows a symlink: symlinks are counted as skipped (``symlink``); directories and
  files are opened with ``O_NOFOLLOW`` relative to their parent directory's descriptor
  (``openat``), so a name swapped for a symlink between listing and opening is not followed
  either, and path length is never limited by PATH_MAX (a 100-level tree of 250-byte names
  is fine).
- Never opens anything that is not a regular file or directory: FIFOs, sockets and device
  files are classified from the directory entry type (``d_type``, or ``lstat``) and skipped.
  Files are opened ``O_RDONLY|O_NONBLOCK|O_NOCTTY`` and checked with ``fstat`` afterwards.
- Uses ``O_NOATIME`` where the kernel permits it (file owner or CAP_FOWNER) so reading does
  not update access times; silently falls back without it.
- No recursion: an explicit stack of open directory descriptors, one per level of the
  current path (the soft RLIMIT_NOFILE is raised to the hard limit at start). A directory
  deeper than the descriptor limit is reported as ``too-deep``.
- Each directory is entered once (by st_dev/st_ino), so bind mounts are not scanned twice
  and a directory loop cannot trap the walk.
- Mount scope: see ``mounts``. The scanner's own directories are skipped (``scanner-dir``).

On Python 3.6 (no ``os.scandir(fd)``) entries are listed with ``os.listdir(fd)`` and typed
with ``fstatat``. Where ``dir_fd`` is not supported (Windows) a path-based variant is used:
it skips reparse points (symlinks, junctions) and relies on the same type checks.
"""

import errno
import os
import stat
import sys
import time

from agentless_scanner.locations import NEVER_DESCEND, NEVER_DESCEND_EXCEPTIONS

O_NOATIME = getattr(os, "O_NOATIME", 0)
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
O_NOCTTY = getattr(os, "O_NOCTTY", 0)
O_BINARY = getattr(os, "O_BINARY", 0)

FILE_FLAGS = os.O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | O_BINARY
DIR_FLAGS = os.O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_DIRECTORY

FILE_ATTRIBUTE_REPARSE_POINT = 0x400

_NEVER = tuple(os.fsencode(p) for p in NEVER_DESCEND)
_NEVER_EXCEPT = tuple(os.fsencode(p) for p in NEVER_DESCEND_EXCEPTIONS)

DIR, FILE, SYMLINK, ERR = "dir", "file", "symlink", "error"


class DeadlineReached(Exception):
    """--deadline passed: stop walking, write what we have."""


def kind_of(mode):
    if stat.S_ISDIR(mode):
        return DIR
    if stat.S_ISREG(mode):
        return FILE
    if stat.S_ISLNK(mode):
        return SYMLINK
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "char-device"
    if stat.S_ISBLK(mode):
        return "block-device"
    return "other-type"


def never_descend(path):
    """/proc, /sys, /dev and below (bytes path), except /dev/shm. POSIX only."""
    if os.name == "nt":
        return False
    for exc in _NEVER_EXCEPT:
        if path == exc or path.startswith(exc + b"/"):
            return False
    return any(path == prefix or path.startswith(prefix + b"/") for prefix in _NEVER)


def join(parent, name):
    sep = b"\\" if os.name == "nt" else b"/"
    return parent + name if parent.endswith((b"/", b"\\")) else parent + sep + name


def raise_fd_limit():
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (max 65536)."""
    try:
        import resource
    except ImportError:
        return None
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        return soft
    except (ValueError, OSError):
        return None


def _open_noatime(name, flags, dir_fd=None):
    """os.open with O_NOATIME when allowed (EPERM -> retry without it)."""
    if O_NOATIME:
        try:
            if dir_fd is None:
                return os.open(name, flags | O_NOATIME)
            return os.open(name, flags | O_NOATIME, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno != errno.EPERM:
                raise
    if dir_fd is None:
        return os.open(name, flags)
    return os.open(name, flags, dir_fd=dir_fd)


class FdOps(object):
    """POSIX: directories and files opened relative to the parent directory descriptor."""

    scandir_fd = sys.version_info >= (3, 7) and os.scandir in getattr(os, "supports_fd", ())

    def open_dir(self, parent, name, path):
        if parent is None:
            fd = _open_noatime(path, DIR_FLAGS)
        else:
            fd = _open_noatime(name, DIR_FLAGS, dir_fd=parent)
        try:
            st = os.fstat(fd)
        except OSError:
            os.close(fd)
            raise
        return fd, st

    def close_dir(self, handle):
        os.close(handle)

    def list_dir(self, fd):
        """Yield (name bytes, kind, lstat or None); kind ERR carries the OSError instead."""
        if self.scandir_fd:
            with os.scandir(fd) as entries:
                for entry in entries:
                    yield self._typed(entry)
        else:
            for name in os.listdir(fd):
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except OSError as exc:
                    yield os.fsencode(name), ERR, exc
                    continue
                yield os.fsencode(name), kind_of(st.st_mode), st

    @staticmethod
    def _typed(entry):
        name = os.fsencode(entry.name)
        try:
            # Without following symlinks is_file/is_dir are true only for a regular file or
            # a directory itself (never for a symlink), so the most common case comes first.
            if entry.is_file(follow_symlinks=False):
                return name, FILE, None
            if entry.is_dir(follow_symlinks=False):
                return name, DIR, None
            if entry.is_symlink():
                return name, SYMLINK, None
            st = entry.stat(follow_symlinks=False)
            return name, kind_of(st.st_mode), st
        except OSError as exc:
            return name, ERR, exc

    def open_file(self, parent, name, path):
        if parent is None:
            return _open_noatime(path, FILE_FLAGS)
        return _open_noatime(name, FILE_FLAGS, dir_fd=parent)


class PathOps(object):
    """Fallback without dir_fd (Windows): the same checks, by full path."""

    def open_dir(self, parent, name, path):
        st = os.stat(path, follow_symlinks=False)
        if self._is_link(st):
            raise OSError(errno.ELOOP, "is a symlink or reparse point", path)
        if not stat.S_ISDIR(st.st_mode):
            raise OSError(errno.ENOTDIR, "not a directory", path)
        return path, st

    def close_dir(self, handle):
        pass

    @staticmethod
    def _is_link(st):
        attrs = getattr(st, "st_file_attributes", 0)
        return stat.S_ISLNK(st.st_mode) or bool(attrs & FILE_ATTRIBUTE_REPARSE_POINT)

    def list_dir(self, path):
        with os.scandir(path) as entries:
            for entry in entries:
                name = entry.name if isinstance(entry.name, bytes) else os.fsencode(entry.name)
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    yield name, ERR, exc
                    continue
                kind = SYMLINK if self._is_link(st) else kind_of(st.st_mode)
                yield name, kind, st

    def open_file(self, parent, name, path):
        return _open_noatime(path, FILE_FLAGS)


def default_ops():
    if os.name == "nt" or os.open not in getattr(os, "supports_dir_fd", ()):
        return PathOps()
    return FdOps()


class _Frame(object):
    __slots__ = ("handle", "path", "depth", "pending")

    def __init__(self, handle, path, depth, pending):
        self.handle = handle
        self.path = path
        self.depth = depth
        self.pending = pending


OPEN_ERRORS = {
    errno.ENOENT: ("skip", "vanished"),
    errno.ENOTDIR: ("skip", "vanished"),
    errno.EACCES: ("skip", "permission-denied"),
    errno.EPERM: ("skip", "permission-denied"),
    errno.ELOOP: ("skip", "symlink"),
    errno.ENXIO: ("skip", "socket"),
    errno.EMFILE: ("error", "too-deep"),
    errno.ENFILE: ("error", "too-deep"),
    errno.ENAMETOOLONG: ("error", "too-deep"),
}


class Walker(object):
    """Walk roots and hand every regular file to ``on_file(fd, path, st)``.

    ``recorder`` is a ``scanlog.Recorder``. ``excluded_mountpoints`` (bytes paths) and
    ``excluded_devs`` come from ``mounts.MountPlan``; ``scanner_dirs`` is a set of
    (st_dev, st_ino) of directories that belong to the scanner.
    """

    def __init__(
        self,
        recorder,
        on_file,
        excluded_mountpoints=(),
        excluded_devs=(),
        scanner_dirs=(),
        deadline_at=None,
        ops=None,
        mount_names=None,
        excluded_paths=(),
    ):
        self.recorder = recorder
        self.on_file = on_file
        self.excluded_mountpoints = set(excluded_mountpoints)
        self.excluded_devs = set(excluded_devs)
        self.scanner_dirs = set(scanner_dirs)
        self.excluded_paths = set(excluded_paths)
        self.deadline_at = deadline_at
        self.ops = ops or default_ops()
        self.visited = set()
        self.mount_names = mount_names or {}
        self.dirs_scanned = 0
        self.allowed_mountpoints = set()
        self.allowed_devs = set()

    # -- helpers -------------------------------------------------------------------------

    def check_deadline(self):
        if self.deadline_at is not None and time.monotonic() >= self.deadline_at:
            raise DeadlineReached()

    def _os_error(self, path, exc, default_kind, what):
        action, kind = OPEN_ERRORS.get(exc.errno, ("error", default_kind))
        message = "%s: %s" % (what, exc.strerror or exc)
        if action == "skip":
            self.recorder.skip(path, kind, message)
        else:
            self.recorder.error(path, kind, message)

    def _skip_type(self, path, kind):
        messages = {
            SYMLINK: "symlink not followed",
            "fifo": "FIFO not opened",
            "socket": "socket not opened",
            "char-device": "character device not opened",
            "block-device": "block device not opened",
            "other-type": "not a regular file or directory",
        }
        self.recorder.skip(path, kind, messages.get(kind, kind))

    # -- files ---------------------------------------------------------------------------

    def scan_file(self, parent, name, path, lst=None):
        """Open one regular file safely and pass it to ``on_file``."""
        if self.deadline_at is not None and time.monotonic() >= self.deadline_at:
            raise DeadlineReached()  # check_deadline, one call less per file
        try:
            fd = self.ops.open_file(parent, name, path)
        except OSError as exc:
            self._os_error(path, exc, "open-error", "cannot open")
            return
        try:
            try:
                st = os.fstat(fd)
            except OSError as exc:
                self._os_error(path, exc, "open-error", "cannot stat")
                return
            if not stat.S_ISREG(st.st_mode):
                self.recorder.skip(
                    path, "vanished", "replaced by a %s before it was opened" % kind_of(st.st_mode)
                )
                return
            if lst is not None and (st.st_dev, st.st_ino) != (lst.st_dev, lst.st_ino):
                self.recorder.skip(path, "vanished", "replaced between listing and opening")
                return
            try:
                self.on_file(fd, path, st)
            except DeadlineReached:
                raise
            except Exception as exc:  # a bug must cost one file, not the scan
                self.recorder.error(path, "internal-error", "%s: %s" % (type(exc).__name__, exc))
        finally:
            os.close(fd)

    # -- directories ---------------------------------------------------------------------

    def _enter(self, parent, name, path, depth, max_depth):
        """Open and list one directory. Returns a _Frame with its subdirectories or None."""
        self.check_deadline()
        if never_descend(path):
            self.recorder.skip(path, "excluded-path", "never descended (system pseudo-files)")
            return None
        if path in self.excluded_paths:
            self.recorder.skip(path, "excluded-path", "excluded by --exclude")
            return None
        if path in self.excluded_mountpoints and path not in self.allowed_mountpoints:
            self.recorder.skip(
                path,
                "excluded-mount",
                "mount point of an excluded filesystem (%s)"
                % self.mount_names.get(path, "excluded"),
            )
            return None
        try:
            handle, st = self.ops.open_dir(parent, name, path)
        except OSError as exc:
            self._os_error(path, exc, "list-error", "cannot open directory")
            return None
        keep = False
        try:
            if st.st_dev in self.excluded_devs and st.st_dev not in self.allowed_devs:
                self.recorder.skip(path, "excluded-mount", "directory on an excluded filesystem")
                return None
            ident = (st.st_dev, st.st_ino)
            if ident in self.scanner_dirs:
                self.recorder.skip(path, "scanner-dir", "the scanner's own files")
                return None
            if ident in self.visited:
                self.recorder.skip(path, "already-visited", "directory already scanned")
                return None
            self.visited.add(ident)
            subdirs = []
            listing = self.ops.list_dir(handle)
            prefix = join(path, b"")  # join(path, name) == prefix + name
            excluded = self.excluded_paths
            try:
                for child_name, kind, lst in listing:
                    child = prefix + child_name
                    if excluded and child in excluded and kind != DIR:
                        self.recorder.skip(child, "excluded-path", "excluded by --exclude")
                    elif kind == DIR:
                        if max_depth is None or depth < max_depth:
                            subdirs.append(child_name)
                    elif kind == FILE:
                        self.scan_file(handle, child_name, child, lst)
                    elif kind == ERR:
                        self._os_error(child, lst, "list-error", "cannot stat")
                    else:
                        self._skip_type(child, kind)
            except OSError as exc:
                self._os_error(path, exc, "list-error", "cannot list directory")
            finally:
                listing.close()
            self.dirs_scanned += 1
            subdirs.sort(reverse=True)
            keep = True
            return _Frame(handle, path, depth, subdirs)
        finally:
            if not keep:
                self.ops.close_dir(handle)

    def walk(self, root, max_depth=None, allow_mount=None):
        """Walk one root (bytes path). Raises DeadlineReached when the deadline passes.

        ``allow_mount``: (mount point bytes, st_dev) of an excluded mount this walk may
        enter anyway (an explicitly named root on, say, a USB stick); mounts below the root
        still follow the rules.
        """
        self.allowed_mountpoints = set()
        self.allowed_devs = set()
        if allow_mount is not None:
            self.allowed_mountpoints.add(allow_mount[0])
            if allow_mount[1] is not None:
                self.allowed_devs.add(allow_mount[1])
        self.check_deadline()
        try:
            lst = os.stat(root, follow_symlinks=False)
        except OSError as exc:
            self._os_error(root, exc, "not-found", "cannot stat")
            return
        kind = kind_of(lst.st_mode)
        if kind == FILE:
            self.scan_file(None, root, root, lst)
            return
        if kind != DIR:
            self._skip_type(root, kind)
            return
        stack = []
        try:
            frame = self._enter(None, root, root, 0, max_depth)
            if frame is not None:
                stack.append(frame)
            while stack:
                top = stack[-1]
                if not top.pending:
                    stack.pop()
                    self.ops.close_dir(top.handle)
                    continue
                name = top.pending.pop()
                frame = self._enter(
                    top.handle, name, join(top.path, name), top.depth + 1, max_depth
                )
                if frame is not None:
                    stack.append(frame)
        finally:
            for frame in stack:
                self.ops.close_dir(frame.handle)
