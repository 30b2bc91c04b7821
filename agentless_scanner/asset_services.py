"""Services and autostart entries on Linux, read from files only (no systemctl: it needs a
running systemd and D-Bus, which old or minimal hosts lack).

Services: systemd unit files (``/etc/systemd/system`` overrides ``/run/systemd/system``,
``/usr/lib/systemd/system`` and ``/lib/systemd/system``), enabled when a symlink with the
unit's name sits in a ``*.wants``/``*.requires`` folder under ``/etc/systemd/system``; plus
SysV scripts in ``/etc/init.d`` (enabled when an ``/etc/rc[2-5].d/S*`` link exists).
Autostart: cron tables, ``/etc/cron.{hourly,daily,weekly,monthly}``, ``/etc/rc.local``,
enabled systemd units, XDG ``.desktop`` autostart files.
"""

import os
import re

from agentless_scanner.asset_common import listdir, read_text, section

MAX_ITEMS = 5000
MAX_COMMAND = 1000
ETC_UNITS = "/etc/systemd/system"
UNIT_DIRS = (ETC_UNITS, "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
RUN_UNITS = "/run/systemd/units"
CRON_SCHEDULE = re.compile(r"^(@\w+|(\S+\s+){4}\S+)\s+(.*)$")


def unit_files(unit_dirs=UNIT_DIRS):
    """{unit name: path} of .service units, the first folder in ``unit_dirs`` winning; a
    symlink to /dev/null (masked) maps to None."""
    found = {}
    seen = set()
    for directory in unit_dirs:
        real = os.path.realpath(directory)
        if real in seen:
            continue  # /lib is a symlink to /usr/lib on merged-/usr systems
        seen.add(real)
        for name in listdir(directory):
            if not name.endswith(".service") or name in found:
                continue
            path = os.path.join(directory, name)
            if os.path.islink(path):
                target = os.readlink(path)
                if target == "/dev/null":
                    found[name] = None
                    continue
                if os.path.basename(target) != name:
                    continue  # an alias of another unit (dbus-org.*.service and friends)
            found[name] = path
    return found


def enabled_units(etc_units=ETC_UNITS):
    """{unit name: [wants/requires folder, ...]} for symlinks under /etc/systemd/system."""
    enabled = {}
    for sub in listdir(etc_units):
        if not sub.endswith((".wants", ".requires")):
            continue
        folder = os.path.join(etc_units, sub)
        for name in listdir(folder):
            if name.endswith(".service"):
                enabled.setdefault(name, []).append(folder)
    return enabled


def parse_unit(text):
    """(ExecStart command or None, has an [Install] section)."""
    command = None
    has_install = False
    for line in text.splitlines():
        line = line.strip()
        if line.lower() == "[install]":
            has_install = True
        elif command is None and line.startswith("ExecStart="):
            # Strip systemd's prefixes (-, @, +, !) that change how the command runs.
            command = line[len("ExecStart=") :].lstrip("-@+!:") or None
    return command, has_install


def _template_path(name, files):
    """foo@bar.service runs foo@.service."""
    if "@" in name:
        return files.get(name.split("@", 1)[0] + "@.service")
    return None


def systemd_services(unit_dirs=UNIT_DIRS, etc_units=ETC_UNITS, run_units=RUN_UNITS):
    files = unit_files(unit_dirs)
    enabled = enabled_units(etc_units)
    have_state = os.path.isdir(run_units)
    items = []
    for name in sorted(set(files) | set(enabled)):
        path = files.get(name) or _template_path(name, files)
        if name in files and files[name] is None:
            mode = "masked"
        elif name in enabled:
            mode = "enabled"
        else:
            text = read_text(path, 256 << 10) if path else None
            mode = "disabled" if text is None or parse_unit(text)[1] else "static"
        state = None
        if have_state:
            # systemd keeps an invocation:<unit> link there while the unit is active.
            state = (
                "active"
                if os.path.lexists(os.path.join(run_units, "invocation:" + name))
                else "inactive"
            )
        items.append({"name": name, "state": state, "start_mode": mode, "path": path})
    return items


def sysv_services(init_d="/etc/init.d", rc_base="/etc", skip=()):
    started = set()
    for level in "2345":
        for link in listdir(os.path.join(rc_base, "rc%s.d" % level)):
            if link.startswith("S") and len(link) > 3:
                started.add(link[3:])
    items = []
    for name in listdir(init_d):
        path = os.path.join(init_d, name)
        if name.startswith(".") or name in ("README", "skeleton", "rc", "rcS") or name in skip:
            continue
        if not os.path.isfile(path):
            continue
        items.append(
            {
                "name": name,
                "state": None,
                "start_mode": "enabled" if name in started else "disabled",
                "path": path,
            }
        )
    return items


def services(unit_dirs=UNIT_DIRS, etc_units=ETC_UNITS, run_units=RUN_UNITS, init_d="/etc/init.d"):
    items = systemd_services(unit_dirs, etc_units, run_units)
    # A SysV script shadowed by a systemd unit of the same name is the same service.
    units = set(i["name"][: -len(".service")] for i in items)
    items += sysv_services(init_d, os.path.dirname(init_d) or "/etc", skip=units)
    source = "systemd unit files + %s" % init_d
    if not os.path.isdir(run_units):
        source += " (state unknown: %s missing)" % run_units
    return section(items, source, cap=MAX_ITEMS)


# -- autostart ----------------------------------------------------------------------------


def _cut(text):
    return text if len(text) <= MAX_COMMAND else text[: MAX_COMMAND - 3] + "..."


def parse_crontab(text, location, user=None):
    """Entries of a crontab; ``user`` None means the system format (a user column)."""
    items = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = CRON_SCHEDULE.match(line)
        if not match:
            continue  # environment assignments (MAILTO=..., SHELL=...)
        head = match.group(1)
        if "=" in head.split()[0]:
            continue
        rest = match.group(3)
        owner = user
        if user is None:
            owner, _, rest = rest.partition(" ")
            rest = rest.strip()
        if not rest:
            continue
        items.append({"location": location, "name": head, "command": _cut(rest), "user": owner})
    return items


def parse_desktop(text):
    """(Name, Exec, hidden) of an XDG .desktop file's [Desktop Entry]."""
    values = {}
    in_entry = False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            in_entry = line == "[Desktop Entry]"
            continue
        if in_entry and "=" in line:
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), value.strip())
    hidden = values.get("Hidden", "").lower() == "true"
    return values.get("Name"), values.get("Exec"), hidden


def cron_entries(etc="/etc", spool="/var/spool/cron/crontabs"):
    items = []
    unread = []
    crontab = os.path.join(etc, "crontab")
    text = read_text(crontab)
    if text is not None:
        items += parse_crontab(text, crontab)
    cron_d = os.path.join(etc, "cron.d")
    for name in listdir(cron_d):
        text = read_text(os.path.join(cron_d, name))
        if text is not None and not name.startswith("."):
            items += parse_crontab(text, os.path.join(cron_d, name))
    for period in ("hourly", "daily", "weekly", "monthly"):
        folder = os.path.join(etc, "cron." + period)
        for name in listdir(folder):
            path = os.path.join(folder, name)
            if not name.startswith(".") and os.access(path, os.X_OK) and os.path.isfile(path):
                items.append({"location": folder, "name": "@" + period, "command": path})
    if os.path.isdir(spool) and not os.access(spool, os.R_OK | os.X_OK):
        unread.append(spool)
    for user in listdir(spool):
        path = os.path.join(spool, user)
        text = read_text(path)
        if text is None:
            unread.append(path)
        else:
            items += parse_crontab(text, path, user=user)
    return items, unread


def rc_local(path="/etc/rc.local"):
    text = read_text(path)
    if text is None:
        return []
    lines = [
        x.strip()
        for x in text.splitlines()
        if x.strip() and not x.strip().startswith("#") and x.strip() != "exit 0"
    ]
    if not lines:
        return []
    return [{"location": path, "name": "rc.local", "command": _cut("; ".join(lines))}]


def unit_autostart(etc_units=ETC_UNITS, unit_dirs=UNIT_DIRS):
    files = unit_files(unit_dirs)
    items = []
    for name, folders in sorted(enabled_units(etc_units).items()):
        path = files.get(name) or _template_path(name, files)
        text = read_text(path, 256 << 10) if path else None
        command = parse_unit(text)[0] if text else None
        for folder in folders:
            items.append(
                {"location": folder, "name": name, "command": _cut(command) if command else None}
            )
    return items


def xdg_autostart(folders):
    items = []
    for folder in folders:
        for name in listdir(folder):
            if not name.endswith(".desktop"):
                continue
            text = read_text(os.path.join(folder, name), 256 << 10)
            if text is None:
                continue
            title, command, hidden = parse_desktop(text)
            if hidden:
                continue  # Hidden=true is how a desktop file is disabled
            items.append(
                {
                    "location": os.path.join(folder, name),
                    "name": title or name,
                    "command": _cut(command) if command else None,
                }
            )
    return items


def autostart(
    etc="/etc", spool="/var/spool/cron/crontabs", homes=("/root", "/home"), unit_dirs=None
):
    items, unread = cron_entries(etc, spool)
    items += rc_local(os.path.join(etc, "rc.local"))
    etc_units = os.path.join(etc, "systemd", "system")
    items += unit_autostart(etc_units, unit_dirs or (etc_units,) + UNIT_DIRS[1:])
    xdg = [os.path.join(etc, "xdg", "autostart")]
    for home in homes:
        if home == "/root":
            xdg.append("/root/.config/autostart")
        else:
            xdg += [os.path.join(home, u, ".config", "autostart") for u in listdir(home)]
    items += xdg_autostart(xdg)
    for item in items:
        item.setdefault("user", None)
    source = "cron, rc.local, systemd wants, xdg autostart"
    reason = ("cannot read %s" % ", ".join(unread)) if unread else None
    return section(items, source, reason, cap=MAX_ITEMS)
