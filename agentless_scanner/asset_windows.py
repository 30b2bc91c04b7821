"""Windows asset sections: OS, hardware, applications, hotfixes, users, services, autostart,
USB history and network, read from the registry and a few commands. Read-only.

    errors = []
    sections = collect_sections(errors)          # live host
    sections = collect_sections(errors, registry=FixtureRegistry.from_files(paths), run=fake)

``run(argv)`` returns ``(output, None)`` or ``(None, error message)``; output may be bytes
(decoded here: wmic writes ANSI with ``\\r\\r\\n`` or UTF-16). ``listdir(folder)`` lists the
Startup folders. A section that cannot be read gets a ``reason`` and an ``errors`` entry
``{"kind": section, "message": ...}``; nothing here raises.
"""

import codecs
import contextlib
import csv
import datetime
import os
import re
import subprocess
import sys

from agentless_scanner.asset_common import COMMAND_TIMEOUT_S, run_captured
from agentless_scanner.timeutil import iso_utc
from agentless_scanner.winreg_reader import LiveRegistry, MissingKey, short

CURRENT_VERSION = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"
PROFILE_LIST = CURRENT_VERSION + r"\ProfileList"
CPU_KEY = r"HKLM\HARDWARE\DESCRIPTION\System\CentralProcessor"
BIOS_KEY = r"HKLM\HARDWARE\DESCRIPTION\System\BIOS"
ENVIRONMENT = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Environment"
UNINSTALL_64 = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall"
UNINSTALL_32 = r"HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall"
CBS_PACKAGES = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\Packages"
SERVICES = r"HKLM\SYSTEM\CurrentControlSet\Services"
TCPIP_INTERFACES = SERVICES + r"\Tcpip\Parameters\Interfaces"
USBSTOR = r"HKLM\SYSTEM\CurrentControlSet\Enum\USBSTOR"
USB = r"HKLM\SYSTEM\CurrentControlSet\Enum\USB"
RUN_KEYS = (
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run",
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\RunOnce",
    r"HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Run",
    r"HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\RunOnce",
    r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run",
    r"HKCU\Software\Microsoft\Windows\CurrentVersion\RunOnce",
)
STARTUP_ALL_USERS = r"Microsoft\Windows\Start Menu\Programs\StartUp"  # under ProgramData
STARTUP_PER_USER = r"AppData\Roaming\Microsoft\Windows\Start Menu\Programs\Startup"
# Device property set: 0064 = first install, 0066 = last arrival (DEVPKEY_Device_*Date).
DEVICE_DATES = r"Properties\{83da6326-97a6-4088-9453-a1923f573b29}"

WMIC_QFE = ["wmic", "qfe", "get", "HotFixID,InstalledOn,Description", "/format:csv"]
# Windows 11 24H2 has no wmic. ISO dates: ConvertTo-Csv would print them in the host's culture.
PS_QFE = [
    "powershell.exe",
    "-NoProfile",
    "-NonInteractive",
    "-Command",
    "Get-CimInstance Win32_QuickFixEngineering | Select-Object HotFixID,Description,"
    "@{n='InstalledOn';e={if ($_.InstalledOn) { $_.InstalledOn.ToString('yyyy-MM-dd') }}}"
    " | ConvertTo-Csv -NoTypeInformation",
]
NETSTAT = ["netstat", "-ano"]
MAX_LISTENING = 1000  # the same cap as the Linux collector

WIN32_SERVICE_TYPES = (0x10, 0x20, 0x110, 0x120)  # own/shared process, optionally interactive
START_MODES = {0: "boot", 1: "system", 2: "auto", 3: "manual", 4: "disabled"}
WELL_KNOWN_SIDS = {"S-1-5-18": "SYSTEM", "S-1-5-19": "LOCAL SERVICE", "S-1-5-20": "NETWORK SERVICE"}
NATIVE_ARCH = {"AMD64": "x64", "X86": "x86", "ARM64": "arm64", "IA64": "ia64"}
FILETIME_EPOCH_OFFSET = 11644473600  # seconds from 1601-01-01 to 1970-01-01


# -- commands and small converters ----------------------------------------------------------


def run_command(argv, timeout=COMMAND_TIMEOUT_S):
    """Run a Windows command: (stdout bytes, None) or (None, error message)."""
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    return run_captured(argv, timeout, decode_output, creationflags=flags)


def decode_output(raw):
    """Command output as text with ``\\n`` line ends (UTF-16 with/without BOM, UTF-8, ANSI)."""
    if raw is None:
        return ""
    if not isinstance(raw, bytes):
        text = raw
    elif raw.startswith(codecs.BOM_UTF16_LE):
        text = raw[2:].decode("utf-16-le", "replace")
    elif len(raw) >= 4 and raw[1:4:2] == b"\x00\x00" and raw[0:1] != b"\x00":
        text = raw.decode("utf-16-le", "replace")
    elif raw.startswith(codecs.BOM_UTF8):
        text = raw[3:].decode("utf-8", "replace")
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", "replace")
    # wmic piped through a console writes "\r\r\n".
    return text.replace("\r\r\n", "\n").replace("\r\n", "\n").replace("\r", "\n")


def filetime_to_iso(data):
    """8 little-endian bytes of FILETIME (or the int) -> RFC 3339 UTC, None if unusable."""
    if isinstance(data, (bytes, bytearray)):
        if len(data) < 8:
            return None
        data = int.from_bytes(bytes(data[:8]), "little")
    if not isinstance(data, int) or data <= 0:
        return None
    seconds = data / 10000000.0 - FILETIME_EPOCH_OFFSET
    if seconds <= 0:
        return None
    return iso_utc(int(seconds))


def normalize_date(text):
    """``1/15/2020``, ``6/10/2026 12:00:00 AM``, ``2026-06-10``, ``20190412`` -> ``YYYY-MM-DD``."""
    text = (text or "").strip()
    if not text:
        return None
    match = re.match(r"^(\d{4})-?(\d{2})-?(\d{2})(?:$|[T ])", text)
    if match:
        year, month, day = (int(g) for g in match.groups())
    else:
        match = re.match(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:$| )", text)
        if match:
            month, day, year = (int(g) for g in match.groups())
        elif re.match(r"^[0-9a-fA-F]{16}$", text):
            # Some wmic versions print InstalledOn as a hex FILETIME.
            iso = filetime_to_iso(int(text, 16))
            return iso[:10] if iso else None
        else:
            return None
    try:
        return datetime.date(year, month, day).isoformat()
    except ValueError:
        return None


def _str(value):
    """A registry value as a trimmed string, None when absent or empty."""
    if value is None:
        return None
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    elif isinstance(value, bytes):
        return None
    text = str(value).strip().strip("\x00").strip()
    return text or None


def _int(value):
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _section(items, source, reason=None, **extra):
    result = {"items": items, "count": len(items), "source": source, "reason": reason}
    result.update(extra)
    return result


def _failed(kind, errors, message, **extra):
    errors.append({"kind": kind, "message": message})
    return _section([], None, message, **extra)


# -- os and hardware ------------------------------------------------------------------------


def collect_os(reg):
    """The Windows fields of ``asset.os``, from ``HKLM\\...\\Windows NT\\CurrentVersion``."""
    cv = reg.values(CURRENT_VERSION)
    build = _int(cv.get("CurrentBuildNumber") or cv.get("CurrentBuild"))
    product = _str(cv.get("ProductName"))
    name = product
    # Windows 11 keeps "Windows 10 ..." in ProductName; the build tells them apart.
    if name and build is not None and build >= 22000 and name.startswith("Windows 10"):
        name = "Windows 11" + name[len("Windows 10") :]
    major, minor = cv.get("CurrentMajorVersionNumber"), cv.get("CurrentMinorVersionNumber")
    if isinstance(major, int) and isinstance(minor, int):
        version = "%d.%d" % (major, minor)
    else:
        # Windows 10+ also stores "6.3" in CurrentVersion for old installers.
        version = _str(cv.get("CurrentVersion"))
    installation_type = _str(cv.get("InstallationType"))
    if installation_type is None and product:
        installation_type = "Server" if "Server" in product else "Client"
    release_id = _str(cv.get("ReleaseId"))
    install_date = cv.get("InstallDate")
    return {
        "family": "windows",
        "name": name,
        "product_name": product,
        "edition": _str(cv.get("EditionID")),
        "display_version": _str(cv.get("DisplayVersion")) or release_id,
        "release_id": release_id,
        "version": version,
        "build": build,
        "ubr": _int(cv.get("UBR")),  # absent before Windows 10
        "installation_type": installation_type,
        "install_date": iso_utc(install_date) if isinstance(install_date, int) else None,
        "csd_version": _str(cv.get("CSDVersion")),
        "kernel": None,
    }


def collect_hardware(reg):
    cpus = reg.subkeys(CPU_KEY)
    model = None
    if cpus:
        model = _str(reg.value(CPU_KEY + "\\" + cpus[0], "ProcessorNameString"))
    return {
        "cpu_model": " ".join(model.split()) if model else None,  # Intel pads with spaces
        "cpu_threads": len(cpus) or None,
        "cpu_cores": None,
        "memory_bytes": None,
        "vendor": _str(reg.value(BIOS_KEY, "SystemManufacturer")),
        "product": _str(reg.value(BIOS_KEY, "SystemProductName")),
        "bios_version": _str(reg.value(BIOS_KEY, "BIOSVersion")),
        "serial": None,
        "disks": [],
        "source": "registry",
        "reason": None,
    }


# -- packages and patches -------------------------------------------------------------------


def native_arch(reg):
    arch = _str(reg.value(ENVIRONMENT, "PROCESSOR_ARCHITECTURE")) or "AMD64"
    return NATIVE_ARCH.get(arch.upper(), arch.lower())


def collect_packages(reg):
    """Programs and Features: both Uninstall views, filtered the way Windows lists them."""
    items = []
    read = 0
    for root, arch in ((UNINSTALL_64, native_arch(reg)), (UNINSTALL_32, "x86")):
        try:
            names = reg.subkeys(root)
        except MissingKey:
            continue  # no WOW6432Node on 32-bit Windows
        read += 1
        for sub in names:
            values = reg.values(root + "\\" + sub)
            name = _str(values.get("DisplayName"))
            if not name or values.get("SystemComponent") == 1:
                continue
            # Updates hang under their product (ParentKeyName) and are hidden there too.
            if _str(values.get("ParentKeyName")):
                continue
            items.append(
                {
                    "name": name,
                    "version": _str(values.get("DisplayVersion")),
                    "vendor": _str(values.get("Publisher")),
                    "install_date": normalize_date(_str(values.get("InstallDate"))),
                    "arch": arch,
                    "source": None,
                }
            )
    if not read:
        raise MissingKey(short(UNINSTALL_64))
    items.sort(key=lambda i: (i["name"].lower(), i["arch"]))
    return _section(items, "registry", manager="windows-uninstall")


def parse_qfe_csv(text):
    """wmic ``/format:csv`` or ``ConvertTo-Csv`` output -> [{id, installed_on, description}]."""
    lines = [
        line
        for line in decode_output(text).split("\n")
        if line.strip() and not line.startswith("#TYPE")  # PowerShell 5.1 without -NoTypeInfo
    ]
    if not lines or "hotfixid" not in lines[0].lower():
        return []
    items = []
    for row in csv.DictReader(lines):
        fields = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        hotfix = fields.get("hotfixid", "").upper()
        if not hotfix or hotfix == "FILE 1":  # placeholder rows of pre-Vista style updates
            continue
        items.append(
            {
                "id": hotfix,
                "installed_on": normalize_date(fields.get("installedon")),
                "description": fields.get("description") or None,
            }
        )
    return items


def patches_from_registry(reg):
    """Installed KB packages from Component Based Servicing (when no command works)."""
    items = []
    for name in reg.subkeys(CBS_PACKAGES):
        match = re.search(r"KB(\d{6,7})", name, re.I)
        if not match:
            continue
        values = reg.values(CBS_PACKAGES + "\\" + name)
        if values.get("CurrentState") != 0x70:  # 0x70 = installed
            continue
        high, low = values.get("InstallTimeHigh"), values.get("InstallTimeLow")
        installed = None
        if isinstance(high, int) and isinstance(low, int):
            iso = filetime_to_iso((high << 32) | low)
            installed = iso[:10] if iso else None
        items.append({"id": "KB" + match.group(1), "installed_on": installed, "description": None})
    return items


def dedup_patches(items):
    """One entry per KB, keeping the one that has a date and the earliest date."""
    best = {}
    for item in items:
        kept = best.get(item["id"])
        if kept is None or (
            item["installed_on"]
            and (not kept["installed_on"] or item["installed_on"] < kept["installed_on"])
        ):
            merged = dict(item)
            if kept is not None and not merged["description"]:
                merged["description"] = kept["description"]
            best[item["id"]] = merged
    return sorted(best.values(), key=lambda i: (i["installed_on"] or "", i["id"]))


def collect_patches(reg, run):
    tried = []
    for argv, source in ((WMIC_QFE, "wmic qfe"), (PS_QFE, "Win32_QuickFixEngineering")):
        output, err = run(argv)
        if output is None:
            tried.append(err)
            continue
        text = decode_output(output)
        items = parse_qfe_csv(text)
        if items or "No Instance" in text:
            return _section(dedup_patches(items), source)
        tried.append("%s printed no hotfix table" % argv[0])
    try:
        items = patches_from_registry(reg)
    except MissingKey as exc:
        tried.append("registry key not found: %s" % exc)
        raise RuntimeError("; ".join(t for t in tried if t)) from None
    return _section(dedup_patches(items), "registry")


# -- users, services, autostart -------------------------------------------------------------


def _profile_dir_name(path):
    return re.split(r"[\\/]", path.rstrip("\\/"))[-1] if path else None


def collect_users(reg):
    """Accounts with a profile on this machine (ProfileList); the folder name is the name."""
    items = []
    for sid in reg.subkeys(PROFILE_LIST):
        path = _str(reg.value(PROFILE_LIST + "\\" + sid, "ProfileImagePath"))
        name = WELL_KNOWN_SIDS.get(sid) or _profile_dir_name(path)
        items.append({"name": name, "sid": sid, "disabled": None})
    return _section(items, "registry")


def collect_services(reg):
    items = []
    for name in reg.subkeys(SERVICES):
        values = reg.values(SERVICES + "\\" + name)
        if values.get("Type") not in WIN32_SERVICE_TYPES:
            continue  # drivers, file systems, per-user templates
        items.append(
            {
                "name": name,
                "display_name": _str(values.get("DisplayName")),
                "state": None,
                "start_mode": START_MODES.get(values.get("Start")),
                "path": _str(values.get("ImagePath")),
            }
        )
    return _section(items, "registry")


def startup_folders(reg):
    """All Users Startup folder, then each profile's (from ProfileList)."""
    cv_values = {}
    with contextlib.suppress(MissingKey):
        cv_values = reg.values(PROFILE_LIST)
    program_data = _str(cv_values.get("ProgramData")) or "%SystemDrive%\\ProgramData"
    folders = [_expand(program_data) + "\\" + STARTUP_ALL_USERS]
    try:
        sids = reg.subkeys(PROFILE_LIST)
    except MissingKey:
        sids = []
    for sid in sids:
        if not sid.startswith("S-1-5-21-"):
            continue  # service accounts have no interactive Startup folder
        path = _str(reg.value(PROFILE_LIST + "\\" + sid, "ProfileImagePath"))
        if path:
            folders.append(_expand(path) + "\\" + STARTUP_PER_USER)
    return folders


def _expand(path):
    """Expand %SystemDrive% / %SystemRoot% (the only variables ProfileList uses)."""
    live = sys.platform == "win32"
    drive = os.environ.get("SYSTEMDRIVE", "C:") if live else "C:"
    root = os.environ.get("SYSTEMROOT", drive + "\\Windows") if live else drive + "\\Windows"
    path = re.sub(r"%systemdrive%", lambda _m: drive, path, flags=re.I)
    return re.sub(r"%systemroot%", lambda _m: root, path, flags=re.I)


def collect_autostart(reg, listdir):
    items = []
    read = 0
    for key in RUN_KEYS:
        try:
            values = reg.values(key)
        except MissingKey:
            continue
        read += 1
        for name in sorted(values, key=str.lower):
            if name == "":
                continue  # the unnamed default value does not start anything
            items.append({"location": key, "name": name, "command": _str(values[name])})
    for folder in startup_folders(reg):
        try:
            names = listdir(folder)
        except OSError:
            continue
        read += 1
        for name in sorted(names, key=str.lower):
            if name.lower() == "desktop.ini":
                continue
            items.append({"location": folder, "name": name, "command": folder + "\\" + name})
    if not read:
        raise MissingKey(short(RUN_KEYS[0]))
    return _section(items, "registry+startup folders")


# -- USB ------------------------------------------------------------------------------------


def _device_dates(reg, instance_path):
    """(first_seen, last_seen) from the device property keys when the export has them."""
    found = []
    for prop in ("0064", "0066"):
        key = instance_path + "\\" + DEVICE_DATES + "\\" + prop
        data = reg.value(key, "")
        if data is None:
            data = reg.value(key + "\\00000000", "Data")  # Windows 7 layout
        found.append(filetime_to_iso(data) if isinstance(data, (bytes, int)) else None)
    return found[0], found[1]


def _usbstor_id(device_class):
    """``Disk&Ven_SanDisk&Prod_Cruzer_Blade&Rev_1.00`` -> (vendor, product)."""
    parts = {}
    for chunk in device_class.split("&"):
        key, sep, value = chunk.partition("_")
        if sep:
            parts[key.lower()] = value.replace("_", " ").strip() or None
    return parts.get("ven"), parts.get("prod")


def _serial(instance):
    """``4C530001230412116082&0`` -> serial; ``7&2a9f3c1d&0`` is made up by Windows -> None."""
    if len(instance) > 1 and instance[1] == "&":
        return None
    return instance.split("&")[0] or None


def _desc(value):
    """``@usb.inf,%usb.devicedesc%;USB Mass Storage Device`` -> the text after ';'.

    Names in parentheses, such as "(Standard USB Host Controller)", are the generic driver's
    placeholder, not the device's maker: None.
    """
    text = _str(value)
    if not text:
        return None
    text = text.split(";")[-1].strip()
    return None if not text or text.startswith("(") else text


def collect_usb(reg):
    items = []
    by_serial = {}
    read = 0
    try:
        classes = reg.subkeys(USBSTOR)
        read += 1
    except MissingKey:
        classes = []
    for device_class in classes:
        vendor, product = _usbstor_id(device_class)
        for instance in reg.subkeys(USBSTOR + "\\" + device_class):
            path = USBSTOR + "\\" + device_class + "\\" + instance
            first, last = _device_dates(reg, path)
            item = {
                "vendor_id": None,
                "product_id": None,
                "vendor": vendor,
                "product": product,
                "serial": _serial(instance),
                "first_seen": first,
                "last_seen": last,
                "source": "USBSTOR",
            }
            items.append(item)
            if item["serial"]:
                by_serial[item["serial"].upper()] = item
    try:
        ids = reg.subkeys(USB)
        read += 1
    except MissingKey:
        ids = []
    for hw_id in ids:
        match = re.match(r"^VID_([0-9A-Fa-f]{4})&PID_([0-9A-Fa-f]{4})$", hw_id)
        if not match:
            continue  # ROOT_HUB*, and &MI_xx interfaces of composite devices
        vid, pid = match.group(1).lower(), match.group(2).lower()
        for instance in reg.subkeys(USB + "\\" + hw_id):
            serial = _serial(instance)
            linked = by_serial.get(serial.upper()) if serial else None
            if linked is not None:  # the same stick seen as a storage device
                linked["vendor_id"], linked["product_id"] = vid, pid
                continue
            path = USB + "\\" + hw_id + "\\" + instance
            first, last = _device_dates(reg, path)
            items.append(
                {
                    "vendor_id": vid,
                    "product_id": pid,
                    "vendor": _desc(reg.value(path, "Mfg")),
                    "product": _desc(reg.value(path, "FriendlyName"))
                    or _desc(reg.value(path, "DeviceDesc")),
                    "serial": serial,
                    "first_seen": first,
                    "last_seen": last,
                    "source": "USB",
                }
            )
    if not read:
        raise MissingKey(short(USB))
    return _section(items, "registry")


# -- network --------------------------------------------------------------------------------


def _addresses(value):
    """REG_MULTI_SZ list, or a comma/space separated REG_SZ (NameServer) -> list."""
    if isinstance(value, list):
        raw = value
    elif isinstance(value, str):
        raw = re.split(r"[,\s]+", value)
    else:
        raw = []
    return [a.strip() for a in raw if a.strip() and a.strip() != "0.0.0.0"]


def _add_unique(target, values):
    for value in values:
        if value not in target:
            target.append(value)


def parse_netstat(text):
    """``netstat -ano`` -> listening sockets [{proto, address, port, pid, process}].

    TCP rows listen when the foreign address is the wildcard (the State column is
    translated on non-English Windows); UDP rows are all bound sockets.
    """
    items = []
    for line in decode_output(text).split("\n"):
        parts = line.split()
        if len(parts) < 4 or parts[0].upper() not in ("TCP", "UDP"):
            continue
        proto = parts[0].lower()
        local, foreign, pid = parts[1], parts[2], parts[-1]
        if proto == "tcp" and foreign not in ("0.0.0.0:0", "[::]:0"):
            continue
        address, _, port = local.rpartition(":")
        if proto == "tcp" and address.startswith("["):
            proto = "tcp6"
        elif proto == "udp" and address.startswith("["):
            proto = "udp6"
        items.append(
            {
                "proto": proto,
                "address": address.strip("[]"),
                "port": _int(port),
                "pid": _int(pid),
                "process": None,
            }
        )
    return items


def collect_network(reg, run):
    result = {
        "gateways": [],
        "dns_servers": [],
        "addresses": [],
        "listening": [],
        "source": "registry",
        "reason": None,
    }
    reasons = []
    try:
        guids = reg.subkeys(TCPIP_INTERFACES)
    except MissingKey as exc:
        guids = []
        reasons.append("registry key not found: %s" % exc)
    for guid in guids:
        values = reg.values(TCPIP_INTERFACES + "\\" + guid)
        dhcp = values.get("EnableDHCP") == 1
        # DHCP-learned values count only while DHCP is on (they linger after a switch to static).
        for prefix in ("Dhcp", "") if dhcp else ("",):
            _add_unique(result["addresses"], _addresses(values.get(prefix + "IPAddress")))
            gateways = _addresses(values.get(prefix + "DefaultGateway"))
            _add_unique(result["gateways"], [{"interface": guid, "address": a} for a in gateways])
            _add_unique(result["dns_servers"], _addresses(values.get(prefix + "NameServer")))
    output, err = run(NETSTAT)
    if output is None:
        reasons.append("listening ports: %s" % err)
    else:
        listening = parse_netstat(output)
        result["listening"] = listening[:MAX_LISTENING]
        if len(listening) > MAX_LISTENING:
            result["listening_truncated"] = True
        result["source"] = "registry+netstat"
    result["reason"] = "; ".join(reasons) or None
    return result


# -- all sections ---------------------------------------------------------------------------


def _guard(kind, errors, collect, empty):
    """Run one collector; a failure becomes ``reason`` + an errors entry, never an exception."""
    try:
        return collect()
    except MissingKey as exc:
        message = "registry key not found: %s" % exc
    except Exception as exc:  # one unreadable section must not lose the others
        message = "%s: %s" % (type(exc).__name__, exc)
    errors.append({"kind": kind, "message": message})
    result = {k: list(v) if isinstance(v, list) else v for k, v in empty.items()}
    if "reason" in result:
        result["reason"] = message
    return result


def _empty_list(**extra):
    return _section([], None, None, **extra)


EMPTY_OS = {"family": "windows"}
EMPTY_HARDWARE = {
    "cpu_model": None,
    "cpu_threads": None,
    "cpu_cores": None,
    "memory_bytes": None,
    "vendor": None,
    "product": None,
    "bios_version": None,
    "serial": None,
    "disks": [],
    "source": None,
    "reason": None,
}
EMPTY_NETWORK = {
    "gateways": [],
    "dns_servers": [],
    "addresses": [],
    "listening": [],
    "source": None,
    "reason": None,
}


def collect_sections(errors, registry=None, run=None, listdir=None):
    """All Windows sections; appends ``{"kind", "message"}`` to ``errors`` for each failure."""
    if registry is None:
        try:
            registry = LiveRegistry()
        except ImportError as exc:  # not on Windows
            message = "registry not available: %s" % exc
            errors.append({"kind": "registry", "message": message})
            registry = _NoRegistry(message)
    run = run or run_command
    listdir = listdir or os.listdir
    reg = registry
    sections = {
        "os": _guard("os", errors, lambda: collect_os(reg), EMPTY_OS),
        "hardware": _guard("hardware", errors, lambda: collect_hardware(reg), EMPTY_HARDWARE),
        "packages": _guard(
            "packages",
            errors,
            lambda: collect_packages(reg),
            _empty_list(manager="windows-uninstall"),
        ),
        "patches": _guard("patches", errors, lambda: collect_patches(reg, run), _empty_list()),
        "users": _guard("users", errors, lambda: collect_users(reg), _empty_list()),
        "groups": _section([], None, "not collected on Windows"),
        "services": _guard("services", errors, lambda: collect_services(reg), _empty_list()),
        "autostart": _guard(
            "autostart", errors, lambda: collect_autostart(reg, listdir), _empty_list()
        ),
        "usb_devices": _guard("usb_devices", errors, lambda: collect_usb(reg), _empty_list()),
        "network": _guard("network", errors, lambda: collect_network(reg, run), EMPTY_NETWORK),
    }
    return sections


class _NoRegistry(object):
    """Stands in when winreg cannot be imported: every key is missing."""

    def __init__(self, message):
        self._message = message

    def subkeys(self, path):
        raise MissingKey(short(path))

    def values(self, path):
        raise MissingKey(short(path))

    def value(self, path, name, default=None):
        return default
