"""Quick-scan folders per OS: the places most exposed to malware.

A quick scan covers four groups (the reference product's "system, startup, temp, user
downloads"). Missing entries are simply absent on that host; symlinked entries (``/bin`` ->
``/usr/bin`` on merged-/usr systems) are resolved once and scanned once.

Linux
  system     /bin /sbin /usr/bin /usr/sbin /usr/local/bin /usr/local/sbin, ~/.local/bin
  startup    /etc/rc.local /etc/rc.d /etc/init.d /etc/init (upstart) /etc/systemd/system
             /etc/systemd/user /lib/systemd/system /usr/lib/systemd/system /etc/cron*
             /etc/anacrontab /var/spool/cron /etc/profile /etc/profile.d /etc/bash.bashrc
             /etc/xdg/autostart /etc/ld.so.preload /etc/update-motd.d /etc/udev/rules.d,
             ~/.config/autostart ~/.config/systemd/user
  temp       /tmp /var/tmp /dev/shm
  downloads  ~/Downloads
  where ``~`` is /root and every home directory below /home or of a regular user
  (uid 1000-65533) that exists.

Windows (``sys.platform == "win32"``; environment variables expanded)
  system     %SystemRoot% (top level only), %SystemRoot%\\System32 and %SystemRoot%\\SysWOW64
             (top level plus one level of subfolders), System32\\drivers (all levels),
             %ProgramData% (top level plus one level)
  startup    %ProgramData%\\Microsoft\\Windows\\Start Menu\\Programs\\Startup,
             each user's AppData\\Roaming\\Microsoft\\Windows\\Start Menu\\Programs\\Startup,
             System32\\Tasks and %SystemRoot%\\Tasks (scheduled tasks),
             System32\\GroupPolicy\\{Machine,User}\\Scripts (logon/startup scripts)
  temp       %TEMP%, %TMP%, %SystemRoot%\\Temp, each user's AppData\\Local\\Temp
  downloads  each user's Downloads, Users\\Public
  System32 *top level only* would miss the drivers folder (kernel-mode rootkits) and the
  task definitions; *all of System32* is several GB (DriverStore, catroot, ...) and is what
  the full scan is for. Top level + one level + drivers/Tasks in full is the compromise.

Never descended in any scan: /proc, /sys and /dev (except /dev/shm).
"""

import glob
import ntpath
import os

NEVER_DESCEND = ("/proc", "/sys", "/dev")
NEVER_DESCEND_EXCEPTIONS = ("/dev/shm",)

LINUX_SYSTEM = ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin")
LINUX_STARTUP = (
    "/etc/rc.local",
    "/etc/rc.d",
    "/etc/init.d",
    "/etc/init",
    "/etc/systemd/system",
    "/etc/systemd/user",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/etc/cron*",
    "/etc/anacrontab",
    "/var/spool/cron",
    "/etc/profile",
    "/etc/profile.d",
    "/etc/bash.bashrc",
    "/etc/xdg/autostart",
    "/etc/ld.so.preload",
    "/etc/update-motd.d",
    "/etc/udev/rules.d",
)
LINUX_TEMP = ("/tmp", "/var/tmp", "/dev/shm")
LINUX_PER_USER = (
    (".local/bin", "system"),
    (".config/autostart", "startup"),
    (".config/systemd/user", "startup"),
    ("Downloads", "downloads"),
)


class Root(object):
    """One place to walk: ``path`` (str), ``category`` and ``max_depth``.

    ``max_depth`` None = all levels; 0 = only the entries directly inside ``path``.
    """

    __slots__ = ("path", "category", "max_depth")

    def __init__(self, path, category, max_depth=None):
        self.path = path
        self.category = category
        self.max_depth = max_depth

    def __repr__(self):
        return "Root(%r, %r, %r)" % (self.path, self.category, self.max_depth)


def linux_homes(home_glob="/home/*", passwd=None):
    """Home directories of real users: /root, /home/*, and uid 1000-65533 from passwd."""
    homes = {"/root"}
    homes.update(p for p in glob.glob(home_glob) if os.path.isdir(p))
    if passwd is None:
        try:
            import pwd

            passwd = [(e.pw_uid, e.pw_dir) for e in pwd.getpwall()]
        except (ImportError, KeyError, OSError):
            passwd = []
    for uid, home in passwd:
        if home and home != "/" and (1000 <= uid < 65534 or home.startswith("/home/")):
            homes.add(home)
    return sorted(homes)


def linux_quick_roots(homes=None):
    roots = [Root(p, "system") for p in LINUX_SYSTEM]
    for pattern in LINUX_STARTUP:
        matches = sorted(glob.glob(pattern)) if "*" in pattern else [pattern]
        roots.extend(Root(p, "startup") for p in matches)
    roots.extend(Root(p, "temp") for p in LINUX_TEMP)
    for home in linux_homes() if homes is None else homes:
        for sub, category in LINUX_PER_USER:
            roots.append(Root(os.path.join(home, sub), category))
    return roots


def windows_quick_roots(env=None, listdir=os.listdir):
    """Quick-scan roots on Windows. ``env`` and ``listdir`` are injectable for tests."""
    env = os.environ if env is None else env

    def get(name, default):
        for key, value in env.items():
            if key.upper() == name.upper() and value:
                return value
        return default

    drive = get("SystemDrive", "C:")
    sysroot = get("SystemRoot", get("windir", drive + "\\Windows"))
    program_data = get("ProgramData", ntpath.join(drive + "\\", "ProgramData"))
    users = ntpath.join(drive + "\\", "Users")
    j = ntpath.join
    roots = [
        Root(j(sysroot, "System32", "drivers"), "system"),
        Root(j(sysroot, "System32", "Tasks"), "startup"),
        Root(j(sysroot, "System32", "GroupPolicy", "Machine", "Scripts"), "startup"),
        Root(j(sysroot, "System32", "GroupPolicy", "User", "Scripts"), "startup"),
        Root(j(sysroot, "Tasks"), "startup"),
        Root(sysroot, "system", 0),
        Root(j(sysroot, "System32"), "system", 1),
        Root(j(sysroot, "SysWOW64"), "system", 1),
        Root(program_data, "system", 1),
        Root(
            j(program_data, "Microsoft", "Windows", "Start Menu", "Programs", "Startup"), "startup"
        ),
        Root(j(sysroot, "Temp"), "temp"),
    ]
    for name in ("TEMP", "TMP"):
        value = get(name, None)
        if value:
            roots.append(Root(value, "temp"))
    try:
        profiles = sorted(listdir(users))
    except OSError:
        profiles = []
    for profile in profiles:
        if profile.lower() in ("all users", "default user", "desktop.ini"):
            continue
        base = j(users, profile)
        if profile.lower() == "public":
            roots.append(Root(base, "downloads"))
            continue
        roots.append(
            Root(
                j(
                    base,
                    "AppData",
                    "Roaming",
                    "Microsoft",
                    "Windows",
                    "Start Menu",
                    "Programs",
                    "Startup",
                ),
                "startup",
            )
        )
        roots.append(Root(j(base, "AppData", "Local", "Temp"), "temp"))
        roots.append(Root(j(base, "Downloads"), "downloads"))
    return roots


def quick_roots(platform=None):
    import sys

    platform = platform or sys.platform
    if platform == "win32":
        return windows_quick_roots()
    return linux_quick_roots()


def never_descend(path):
    """True for /proc, /sys, /dev and anything below them, except /dev/shm."""
    if os.name == "nt":
        return False
    for exception in NEVER_DESCEND_EXCEPTIONS:
        if path == exception or path.startswith(exception + "/"):
            return False
    return any(path == prefix or path.startswith(prefix + "/") for prefix in NEVER_DESCEND)
