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
- Packages: ``dpkg-query`` (installed packages only), else ``rpm -qa``, else Alpine's
  ``/lib/apk/db/installed``. Windows: not collected yet (``packages.reason`` says so).
"""

import contextlib
import os
import platform
import socket
import struct
import subprocess
import sys
import threading

from agentless_scanner.timeutil import iso_utc

COMMAND_TIMEOUT_S = 120
FQDN_TIMEOUT_S = 5
TOOL_DIRS = ("/usr/bin", "/bin", "/usr/sbin", "/sbin")


def find_tool(name, dirs=TOOL_DIRS):
    for directory in dirs:
        path = os.path.join(directory, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def run_tool(argv, timeout=COMMAND_TIMEOUT_S):
    """Run a command; return (stdout text, None) or (None, error message)."""
    env = {"LC_ALL": "C", "LANG": "C", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return None, "%s timed out after %ss" % (argv[0], timeout)
    except OSError as exc:
        return None, "%s could not run: %s" % (argv[0], exc)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        return None, "%s exited with %d%s" % (
            argv[0],
            proc.returncode,
            (": " + err[-1][:200]) if err else "",
        )
    return proc.stdout.decode("utf-8", "replace"), None


def read_text(path, limit=1 << 20):
    try:
        with open(path, "rb") as fh:
            return fh.read(limit).decode("utf-8", "replace")
    except OSError:
        return None


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
    if text:
        for line in text.splitlines():
            if line.startswith("MemTotal:"):
                try:
                    return int(line.split()[1]) * 1024
                except (ValueError, IndexError):
                    return None
    return None


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

DPKG_FORMAT = "${Package}\\t${Version}\\t${Architecture}\\t${Status}\\n"
RPM_FORMAT = "%{NAME}\\t%{EPOCH}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\n"


def parse_dpkg(text):
    items = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 4 or not parts[3].endswith(" installed"):
            continue
        items.append({"name": parts[0], "version": parts[1], "arch": parts[2]})
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
        items.append({"name": parts[0], "version": version, "arch": parts[2]})
    return items


def parse_apk(text):
    items = []
    current = {}
    for line in text.splitlines() + [""]:
        if not line.strip():
            if current.get("name"):
                items.append(
                    {
                        "name": current["name"],
                        "version": current.get("version"),
                        "arch": current.get("arch"),
                    }
                )
            current = {}
            continue
        key, _, value = line.partition(":")
        if key == "P":
            current["name"] = value
        elif key == "V":
            current["version"] = value
        elif key == "A":
            current["arch"] = value
    return items


def packages(tools=None):
    """{manager, count, items, reason}. ``tools`` overrides tool lookup (tests)."""
    if sys.platform == "win32":
        return {
            "manager": None,
            "count": 0,
            "items": [],
            "reason": "package inventory on Windows is not implemented yet",
        }
    tools = tools or {"dpkg-query": find_tool("dpkg-query"), "rpm": find_tool("rpm")}
    tried = []
    if tools.get("dpkg-query"):
        text, err = run_tool([tools["dpkg-query"], "-W", "-f=" + DPKG_FORMAT])
        if text is not None:
            items = parse_dpkg(text)
            if items or not tools.get("rpm"):
                return _package_result("dpkg", items)
        tried.append(err or "dpkg-query listed no installed packages")
    if tools.get("rpm"):
        text, err = run_tool([tools["rpm"], "-qa", "--qf", RPM_FORMAT])
        if text is not None:
            return _package_result("rpm", parse_rpm(text))
        tried.append(err)
    apk_db = tools.get("apk-db", "/lib/apk/db/installed")
    text = read_text(apk_db, limit=64 << 20)
    if text:
        return _package_result("apk", parse_apk(text))
    reason = "; ".join(t for t in tried if t) or "no package manager found (dpkg-query, rpm, apk)"
    return {"manager": None, "count": 0, "items": [], "reason": reason}


def _package_result(manager, items):
    items.sort(key=lambda i: (i["name"], i.get("arch") or ""))
    return {"manager": manager, "count": len(items), "items": items, "reason": None}


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
    if sys.platform == "win32":
        result["interfaces"] = windows_addresses(hostname)
        result["addresses_source"] = "resolver"
    else:
        result["interfaces"], result["addresses_source"], errs = interfaces()
        errors.extend(errs)
    result["packages"] = packages()
    if result["packages"]["reason"]:
        errors.append({"kind": "packages", "message": result["packages"]["reason"]})
    result["errors"] = errors
    return result
