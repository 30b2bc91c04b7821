"""Asset information: host, OS, kernel, hardware, network interfaces, installed packages.

Cheap sources first (files under /etc, /proc, /sys), external tools only by absolute path,
always with a timeout, stdin closed, ``LC_ALL=C``. A missing or failing tool is recorded in
``asset.errors`` and the scan goes on.

- OS: ``/etc/os-release`` (then ``/usr/lib/os-release``), else ``platform``.
- Machine id: ``/etc/machine-id`` (then ``/var/lib/dbus/machine-id``); Windows: the
  ``MachineGuid`` of ``HKLM\\SOFTWARE\\Microsoft\\Cryptography``. Names the installation even
  when the hostname is reused (the controller compares it when importing offline kit logs).
- Interfaces: names and MACs from ``/sys/class/net/*/address``; addresses (CIDR strings such
  as ``192.0.2.2/24`` and ``fe80::1/64``) from ``ip -o addr show`` when ``ip`` exists, else
  IPv6 from ``/proc/net/if_inet6`` and the primary IPv4 per interface from the
  SIOCGIFADDR/SIOCGIFNETMASK ioctls (``addresses_source`` says which).
- Packages: ``/var/lib/dpkg/status`` read directly (with the Source package and install
  dates from ``/var/lib/dpkg/info/*.list``), else ``dpkg-query``, else ``rpm -qa``, else
  Alpine's ``/lib/apk/db/installed``.
- hardware, network, users, groups, services, autostart, usb_devices: one ``asset_*`` module
  each; patches on Linux are the package versions. Windows: ``asset_windows`` fills the same
  sections. Each collector is guarded: a failure becomes the section's ``reason`` and one
  ``asset.errors`` entry. Field by field: docs/asset-schema.md.
"""

import contextlib
import os
import platform
import socket
import struct
import sys
import threading
import time

from agentless_scanner import (
    asset_accounts,
    asset_hardware,
    asset_network,
    asset_packages,
    asset_services,
    asset_usb,
)

# Re-exported: callers and tests use asset.run_tool / asset.read_text / asset.find_tool.
from agentless_scanner.asset_common import (  # noqa: F401
    COMMAND_TIMEOUT_S,
    TOOL_DIRS,
    find_tool,
    guarded,
    read_text,
    run_tool,
    section,
    unreadable,
)
from agentless_scanner.timeutil import iso_utc

FQDN_TIMEOUT_S = 5


def parse_os_release(text):
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value.replace('\\"', '"').replace("\\$", "$").replace("\\\\", "\\")
    return values


def os_info():
    info = {
        "name": None,
        "version": None,
        "id": None,
        "pretty_name": None,
        "kernel": None,
        "kernel_version": None,
        "source": None,
        "family": "windows" if sys.platform == "win32" else sys.platform.rstrip("0123456789"),
        "version_id": None,
        "codename": None,
        "install_date": None,
        "install_date_source": None,
        "last_boot": None,
    }
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        text = read_text(path)
        if text:
            rel = parse_os_release(text)
            info.update(
                {
                    "name": rel.get("NAME"),
                    "version": rel.get("VERSION_ID") or rel.get("VERSION"),
                    "id": rel.get("ID"),
                    "pretty_name": rel.get("PRETTY_NAME"),
                    "source": path,
                    "version_id": rel.get("VERSION_ID"),
                    "codename": rel.get("VERSION_CODENAME") or rel.get("UBUNTU_CODENAME"),
                }
            )
            break
    if info["name"] is None:
        info["name"] = platform.system() or sys.platform
        if sys.platform == "win32":
            release, version, _csd, _ptype = platform.win32_ver()
            info["version"] = version or platform.version()
            info["pretty_name"] = "Windows %s" % release
            info["id"] = "windows"
            edition = getattr(platform, "win32_edition", None)
            if edition:
                info["edition"] = edition()
        else:
            info["version"] = platform.release()
            info["id"] = (platform.system() or sys.platform).lower()
        info["source"] = "platform"
    uname = platform.uname()
    info["kernel"] = uname.release
    info["kernel_version"] = uname.version
    return info


INSTALLER_LOG_DIRS = ("/var/log/installer", "/var/log/anaconda")
EARLIEST_INSTALL = 946684800  # 2000-01-01


def _earliest_mtime(folder):
    times = []
    for name in os.listdir(folder):
        with contextlib.suppress(OSError):
            times.append(os.lstat(os.path.join(folder, name)).st_mtime)
    return min(times) if times else None


def _dpkg_log_start(log_dir="/var/log"):
    """Time of the first line of the oldest dpkg.log* still kept (rotation loses older ones)."""
    import gzip

    names = [n for n in os.listdir(log_dir) if n.startswith("dpkg.log")]
    for name in sorted(names, key=lambda n: os.path.getmtime(os.path.join(log_dir, n))):
        path = os.path.join(log_dir, name)
        try:
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rb") as fh:
                first = fh.readline(200).decode("ascii", "replace")
            return time.mktime(time.strptime(first[:19], "%Y-%m-%d %H:%M:%S"))
        except (OSError, EOFError, ValueError, OverflowError):
            continue
    return None


def install_date(installer_dirs=INSTALLER_LOG_DIRS, lost_found="/lost+found", log_dir="/var/log"):
    """(RFC 3339 UTC, source) of the OS installation, best source first: the installer's own
    logs, the root file system's lost+found (made by mkfs), the oldest kept dpkg log."""
    candidates = [(lambda f=f: _earliest_mtime(f), f) for f in installer_dirs]
    candidates.append((lambda: os.lstat(lost_found).st_ctime, lost_found + " (ctime)"))
    candidates.append((lambda: _dpkg_log_start(log_dir), log_dir + "/dpkg.log* (oldest kept)"))
    for read, source in candidates:
        with contextlib.suppress(OSError):
            found = read()
            # Images built with zeroed or future times say nothing about the installation.
            if found is not None and EARLIEST_INSTALL <= found <= time.time() + 86400:
                return iso_utc(int(found)), source
    return None, None


def _fqdn(hostname):
    """socket.getfqdn can wait on DNS for long: give it FQDN_TIMEOUT_S in a thread."""
    box = []
    worker = threading.Thread(target=lambda: box.append(socket.getfqdn()))
    worker.daemon = True
    worker.start()
    worker.join(FQDN_TIMEOUT_S)
    return box[0] if box else hostname


def boot_info():
    out = {"boot_time": None, "uptime_s": None}
    text = read_text("/proc/stat")
    if text:
        for line in text.splitlines():
            if line.startswith("btime "):
                with contextlib.suppress(ValueError, IndexError):
                    out["boot_time"] = iso_utc(int(line.split()[1]))
    text = read_text("/proc/uptime")
    if text:
        with contextlib.suppress(ValueError, IndexError):
            out["uptime_s"] = round(float(text.split()[0]), 1)
    return out


MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")


def machine_id(files=MACHINE_ID_FILES):
    """The installation's stable id (lower case), or None when there is none."""
    if sys.platform == "win32":
        try:
            import winreg

            with winreg.OpenKey(
                winreg.HKEY_LOCAL_MACHINE,
                r"SOFTWARE\Microsoft\Cryptography",
                0,
                winreg.KEY_READ | getattr(winreg, "KEY_WOW64_64KEY", 0),
            ) as key:
                value = winreg.QueryValueEx(key, "MachineGuid")[0]
            return str(value).strip().lower() or None
        except (ImportError, OSError):
            return None
    for path in files:
        text = (read_text(path) or "").strip().lower()
        # systemd's format: 32 hex digits; "uninitialized" or empty files are not an id.
        if len(text) == 32 and all(c in "0123456789abcdef" for c in text):
            return text
    return None


def memory_bytes():
    text = read_text("/proc/meminfo")
    return asset_hardware.parse_meminfo(text) if text else None


# -- network ----------------------------------------------------------------------------


def cidr(address, prefix):
    """``192.0.2.2/24`` (just the address when the prefix is unknown)."""
    return address if prefix is None else "%s/%d" % (address, prefix)


def parse_ip_addr(text):
    """Parse ``ip -o addr show`` lines into {ifname: ["addr/prefix", ...]}."""
    result = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[2] not in ("inet", "inet6"):
            continue
        name = parts[1].split("@")[0]
        result.setdefault(name, []).append(parts[3])
    return result


def parse_if_inet6(text):
    """Parse /proc/net/if_inet6 into {ifname: ["addr/prefix", ...]}."""
    result = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 6 or len(parts[0]) != 32:
            continue
        raw = bytes(bytearray.fromhex(parts[0]))
        try:
            addr = socket.inet_ntop(socket.AF_INET6, raw)
        except (ValueError, OSError):
            continue
        result.setdefault(parts[5], []).append(cidr(addr, int(parts[2], 16)))
    return result


def ioctl_ipv4(name):
    """Primary IPv4 address of one interface via SIOCGIFADDR ("addr/prefix"), or None."""
    try:
        import fcntl
    except ImportError:
        return None
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack("256s", name.encode("utf-8")[:15])
        addr = socket.inet_ntoa(fcntl.ioctl(sock.fileno(), 0x8915, req)[20:24])
        try:
            mask = socket.inet_ntoa(fcntl.ioctl(sock.fileno(), 0x891B, req)[20:24])
            prefix = sum(bin(int(o)).count("1") for o in mask.split("."))
        except OSError:
            prefix = None
        return cidr(addr, prefix)
    except OSError:
        return None
    finally:
        sock.close()


def interfaces(sys_class_net="/sys/class/net", ip_tool="auto"):
    """[{name, mac, addresses:[...]}], source, errors."""
    errors = []
    names = []
    try:
        names = sorted(os.listdir(sys_class_net))
    except OSError as exc:
        errors.append(
            {"kind": "interfaces", "message": "cannot list %s: %s" % (sys_class_net, exc.strerror)}
        )
    addresses = None
    source = None
    tool = find_tool("ip") if ip_tool == "auto" else ip_tool
    if tool:
        text, err = run_tool([tool, "-o", "addr", "show"], timeout=20)
        if text is not None:
            addresses, source = parse_ip_addr(text), "ip"
        else:
            errors.append({"kind": "interfaces", "message": err})
    if addresses is None:
        addresses = parse_if_inet6(read_text("/proc/net/if_inet6") or "")
        for name in names:
            v4 = ioctl_ipv4(name)
            if v4:
                addresses.setdefault(name, []).insert(0, v4)
        source = "proc+ioctl"
    result = []
    for name in sorted(set(names) | set(addresses)):
        mac = read_text(os.path.join(sys_class_net, name, "address"), 128)
        result.append(
            {
                "name": name,
                "mac": mac.strip() if mac else None,
                "addresses": addresses.get(name, []),
            }
        )
    return result, source, errors


def windows_addresses(hostname):
    """No interface list on Windows yet: the host name's addresses, from the resolver."""
    found = []
    try:
        for family, _t, _p, _c, sockaddr in socket.getaddrinfo(hostname, None):
            if family in (socket.AF_INET, socket.AF_INET6) and sockaddr[0] not in found:
                found.append(sockaddr[0])
    except OSError:
        pass
    return [{"name": None, "mac": None, "addresses": found}]


# -- packages ---------------------------------------------------------------------------

DPKG_FORMAT = (
    "${Package}\\t${Version}\\t${Architecture}\\t${Status}\\t${source:Package}\\t${Maintainer}\\n"
)
RPM_FORMAT = (
    "%{NAME}\\t%{EPOCH}:%{VERSION}-%{RELEASE}\\t%{ARCH}"
    "\\t%{VENDOR}\\t%{INSTALLTIME}\\t%{SOURCERPM}\\n"
)


def parse_dpkg(text):
    """``dpkg-query -W`` lines; the source/maintainer columns are used when present."""
    items = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 4 or not parts[3].endswith(" installed"):
            continue
        item = {"name": parts[0], "version": parts[1], "arch": parts[2]}
        if len(parts) >= 6:
            item["source"] = parts[4] or parts[0]
            item["vendor"] = parts[5] or None
        items.append(item)
    return items


def parse_rpm(text):
    items = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or not parts[0]:
            continue
        version = parts[1]
        if version.startswith("(none):"):
            version = version[len("(none):") :]
        item = {"name": parts[0], "version": version, "arch": parts[2]}
        if len(parts) >= 6:
            item.update(asset_packages.rpm_details(parts))
        items.append(item)
    return items


APK_KEYS = {"P": "name", "V": "version", "A": "arch", "o": "source", "m": "vendor"}


def parse_apk(text):
    items = []
    current = {}
    for line in text.splitlines() + [""]:
        if not line.strip():
            if current.get("name"):
                item = {k: current.get(k) for k in ("name", "version", "arch")}
                item.update({k: current[k] for k in ("source", "vendor") if k in current})
                items.append(item)
            current = {}
            continue
        key, _, value = line.partition(":")
        if key in APK_KEYS:
            current[APK_KEYS[key]] = value
    return items


def default_package_tools():
    status = asset_packages.DPKG_STATUS
    return {
        "dpkg-status": status if os.path.isfile(status) else None,
        "dpkg-query": find_tool("dpkg-query"),
        "rpm": find_tool("rpm"),
    }


def packages(tools=None):
    """{manager, count, items, source, reason}. ``tools`` overrides tool lookup (tests):
    keys dpkg-status (path), dpkg-query, rpm, apk-db."""
    if sys.platform == "win32":
        return {
            "manager": None,
            "count": 0,
            "items": [],
            "source": None,
            "reason": "package inventory on Windows is not implemented yet",
        }
    tools = tools or default_package_tools()
    tried = []
    # The status file first: it is what dpkg-query reads, and it has Source and Maintainer.
    if tools.get("dpkg-status"):
        text = read_text(tools["dpkg-status"], limit=256 << 20)
        if text is None:
            tried.append("cannot read %s" % tools["dpkg-status"])
        else:
            items = asset_packages.parse_dpkg_status(text)
            if items:
                info = os.path.join(os.path.dirname(tools["dpkg-status"]), "info")
                asset_packages.dpkg_install_dates(items, info)
                return _package_result("dpkg", items, tools["dpkg-status"])
    if tools.get("dpkg-query"):
        text, err = run_tool([tools["dpkg-query"], "-W", "-f=" + DPKG_FORMAT])
        if text is not None:
            items = parse_dpkg(text)
            if items or not tools.get("rpm"):
                asset_packages.dpkg_install_dates(items)
                return _package_result("dpkg", items, "dpkg-query")
        tried.append(err or "dpkg-query listed no installed packages")
    if tools.get("rpm"):
        text, err = run_tool([tools["rpm"], "-qa", "--qf", RPM_FORMAT])
        if text is not None:
            return _package_result("rpm", parse_rpm(text), "rpm -qa")
        tried.append(err)
    apk_db = tools.get("apk-db", "/lib/apk/db/installed")
    text = read_text(apk_db, limit=64 << 20)
    if text:
        return _package_result("apk", parse_apk(text), apk_db)
    reason = "; ".join(t for t in tried if t) or "no package manager found (dpkg-query, rpm, apk)"
    return {"manager": None, "count": 0, "items": [], "reason": reason}


def _package_result(manager, items, source):
    asset_packages.normalise(items)
    items.sort(key=lambda i: (i["name"], i.get("arch") or ""))
    return {
        "manager": manager,
        "count": len(items),
        "items": items,
        "source": source,
        "reason": None,
    }


LINUX_PATCHES_REASON = "Linux patch state is the package versions (see packages)"
LIST_SECTIONS = ("patches", "users", "groups", "services", "autostart", "usb_devices")


def linux_sections(errors):
    """The sections beyond the basics, each collector guarded on its own."""
    return {
        "hardware": guarded(errors, "hardware", asset_hardware.collect, asset_hardware.empty),
        "network": guarded(errors, "network", asset_network.collect, asset_network.empty),
        # Not an error: on Linux the installed package versions are the patch state.
        "patches": section([], None, LINUX_PATCHES_REASON),
        "users": guarded(errors, "users", asset_accounts.users, unreadable),
        "groups": guarded(errors, "groups", asset_accounts.groups, unreadable),
        "services": guarded(errors, "services", asset_services.services, unreadable),
        "autostart": guarded(errors, "autostart", asset_services.autostart, unreadable),
        "usb_devices": guarded(errors, "usb_devices", asset_usb.usb_devices, unreadable),
    }


def windows_sections(result, errors):
    """Merge what agentless_scanner.asset_windows collects (written separately)."""
    try:
        from agentless_scanner import asset_windows

        sections = asset_windows.collect_sections(errors)
    except Exception as exc:  # noqa: BLE001 - ImportError while it is missing, or its bugs
        errors.append(
            {
                "kind": "internal-error",
                "message": "Windows asset collection: %s: %s" % (type(exc).__name__, exc),
            }
        )
        return
    result["os"].update(sections.pop("os", {}))
    result.update(sections)


def _report_reasons(result, errors):
    """An errors entry for every section that says it could not (fully) be read, unless
    its collector already added one."""
    reported = set(e["kind"] for e in errors)
    for kind in ("hardware", "network") + LIST_SECTIONS:
        part = result.get(kind)
        if not isinstance(part, dict) or not part.get("reason") or kind in reported:
            continue
        if kind == "patches" and part["reason"] == LINUX_PATCHES_REASON:
            continue
        errors.append({"kind": kind, "message": part["reason"]})


def collect():
    """The ``asset`` section of the scan log."""
    errors = []
    hostname = socket.gethostname()
    result = {
        "hostname": hostname,
        "fqdn": _fqdn(hostname),
        "os": os_info(),
        "architecture": platform.machine() or None,
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "cpu_count": os.cpu_count(),
        "memory_bytes": memory_bytes(),
        "machine_id": machine_id(),
    }
    result.update(boot_info())
    result["os"]["last_boot"] = result["boot_time"]
    if sys.platform == "win32":
        result["interfaces"] = windows_addresses(hostname)
        result["addresses_source"] = "resolver"
    else:
        result["interfaces"], result["addresses_source"], errs = interfaces()
        errors.extend(errs)
        date, source = guarded(errors, "os", install_date, lambda _reason: (None, None))
        result["os"]["install_date"], result["os"]["install_date_source"] = date, source
    result["packages"] = packages()
    if result["packages"]["reason"]:
        errors.append({"kind": "packages", "message": result["packages"]["reason"]})
    if sys.platform == "win32":
        windows_sections(result, errors)
    else:
        result.update(linux_sections(errors))
    _report_reasons(result, errors)
    result["errors"] = errors
    return result
