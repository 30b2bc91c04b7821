"""USB devices on Linux: those attached now (/sys/bus/usb/devices) and the history the kernel
log still holds ("New USB device found" lines in /var/log/kern.log* or /var/log/messages*,
else ``journalctl`` kernel messages). Linux keeps no registry of past devices: history
reaches back only as far as log rotation and journal retention allow."""

import calendar
import gzip
import os
import re
import time

from agentless_scanner.asset_common import find_tool, listdir, read_line, run_tool, section
from agentless_scanner.timeutil import iso_utc

SYS_USB = "/sys/bus/usb/devices"
LOG_DIR = "/var/log"
LOG_PREFIXES = ("kern.log", "messages")
MAX_LOG_FILES = 8
MAX_LOG_BYTES = 32 << 20  # per file: bounded time even on a host with huge logs
MAX_DEVICES = 1000
JOURNAL_TIMEOUT_S = 10

# "usb 1-1.2: New USB device found, idVendor=0781, idProduct=5567, bcdDevice= 1.00"
NEW_DEVICE = re.compile(r"usb (\S+): New USB device found, idVendor=(\w{4}), idProduct=(\w{4})")
# "usb 1-1.2: Product: Cruzer Blade" / "Manufacturer: SanDisk" / "SerialNumber: 4C53..."
DEVICE_STRING = re.compile(r"usb (\S+): (Product|Manufacturer|SerialNumber): (.*)$")
ISO_STAMP = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z|[+-]\d\d:?\d\d)")
SYSLOG_STAMP = re.compile(r"^([A-Z][a-z]{2}) +(\d{1,2}) (\d\d):(\d\d):(\d\d) ")
MONTHS = {m: i for i, m in enumerate(calendar.month_abbr) if m}


def attached(sys_usb=SYS_USB):
    items = []
    for name in listdir(sys_usb):
        if ":" in name or name.startswith("usb"):
            continue  # interfaces (1-1:1.0) and root hubs (usb1) are not devices

        base = os.path.join(sys_usb, name)

        def attr(key, base=base):
            return read_line(os.path.join(base, key))

        vendor_id = attr("idVendor")
        if not vendor_id:
            continue
        items.append(
            {
                "vendor_id": vendor_id.lower(),
                "product_id": (attr("idProduct") or "").lower() or None,
                "vendor": attr("manufacturer"),
                "product": attr("product"),
                "serial": attr("serial"),
                "first_seen": None,
                "last_seen": iso_utc(),
                "source": "sysfs",
            }
        )
    return items


def parse_stamp(line, year):
    """Epoch of a log line's timestamp (RFC 3339 or syslog's year-less form), else None."""
    m = ISO_STAMP.match(line)
    if m:
        y, mo, d, hh, mi, ss, tz = m.groups()
        epoch = calendar.timegm((int(y), int(mo), int(d), int(hh), int(mi), int(ss)))
        if tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            tz = tz[1:].replace(":", "")
            epoch -= sign * (int(tz[:2]) * 3600 + int(tz[2:]) * 60)
        return epoch
    m = SYSLOG_STAMP.match(line)
    if m and m.group(1) in MONTHS:
        # Year-less syslog time in local time; the year comes from the file's mtime.
        fields = (year, MONTHS[m.group(1)], int(m.group(2))) + tuple(int(x) for x in m.groups()[2:])
        try:
            return time.mktime(fields + (0, 0, -1))
        except (OverflowError, ValueError):
            return None
    return None


def parse_kernel_log(text, year=None):
    """[{vendor_id, product_id, vendor, product, serial, seen}] from kernel log text."""
    year = year or time.gmtime().tm_year
    events = []
    pending = {}  # bus port -> the event its Product/Manufacturer/SerialNumber lines fill
    for line in text.splitlines():
        if "usb " not in line:
            continue
        m = NEW_DEVICE.search(line)
        if m:
            event = {
                "vendor_id": m.group(2).lower(),
                "product_id": m.group(3).lower(),
                "vendor": None,
                "product": None,
                "serial": None,
                "seen": parse_stamp(line, year),
            }
            events.append(event)
            pending[m.group(1)] = event
            continue
        m = DEVICE_STRING.search(line)
        if m and m.group(1) in pending:
            key = {"Product": "product", "Manufacturer": "vendor", "SerialNumber": "serial"}
            pending[m.group(1)][key[m.group(2)]] = m.group(3).strip() or None
    return events


def _read_log(path):
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as fh:
            return fh.read(MAX_LOG_BYTES).decode("utf-8", "replace")
    except (OSError, EOFError):
        return None


def history(log_dir=LOG_DIR, journalctl="auto"):
    """(events, source, unread paths)."""
    names = [n for n in listdir(log_dir) if n.startswith(LOG_PREFIXES)]
    paths = sorted(
        (os.path.join(log_dir, n) for n in names),
        key=lambda p: os.path.getmtime(p) if os.path.exists(p) else 0,
        reverse=True,
    )[:MAX_LOG_FILES]
    events, read, unread = [], [], []
    for path in paths:
        text = _read_log(path)
        if text is None:
            unread.append(path)
            continue
        read.append(path)
        events += parse_kernel_log(text, time.localtime(os.path.getmtime(path)).tm_year)
    if read:
        return events, ", ".join(read), unread
    tool = find_tool("journalctl") if journalctl == "auto" else journalctl
    if tool:
        argv = [tool, "_TRANSPORT=kernel", "-o", "short-iso", "--no-pager", "-q"]
        text, _err = run_tool(argv, timeout=JOURNAL_TIMEOUT_S)
        if text is not None:
            return parse_kernel_log(text), "journalctl", unread
    return events, None, unread


def merge(current, events, label):
    """One item per (vendor_id, product_id, serial): attached devices get the log's first
    sighting, devices only in the log become history items (``source`` is ``label``)."""
    by_key = {}
    for item in current:
        by_key[(item["vendor_id"], item["product_id"], item["serial"])] = item
    for event in events:
        key = (event["vendor_id"], event["product_id"], event["serial"])
        seen = iso_utc(event["seen"]) if event["seen"] is not None else None
        item = by_key.get(key)
        if item is None:
            item = dict((k, event[k]) for k in ("vendor_id", "product_id", "vendor", "product"))
            item.update({"serial": event["serial"], "first_seen": seen, "last_seen": seen})
            item["source"] = label
            by_key[key] = item
            continue
        if item["source"] == "sysfs":
            item["source"] = "sysfs+" + label
        item["vendor"] = item["vendor"] or event["vendor"]
        item["product"] = item["product"] or event["product"]
        if seen and (item["first_seen"] is None or seen < item["first_seen"]):
            item["first_seen"] = seen
        # An attached device was last seen now; a past one at its latest log line.
        if seen and not item["source"].startswith("sysfs") and (item["last_seen"] or "") < seen:
            item["last_seen"] = seen
    items = list(by_key.values())
    items.sort(key=lambda i: (i["last_seen"] or "", i["vendor_id"], i["product_id"] or ""))
    return items


def usb_devices(sys_usb=SYS_USB, log_dir=LOG_DIR, journalctl="auto"):
    current = attached(sys_usb)
    events, history_source, unread = history(log_dir, journalctl)
    label = "journal" if history_source == "journalctl" else "kernel-log"
    items = merge(current, events, label)
    source = "%s + %s" % (sys_usb, history_source or "no kernel log found")
    reason = ("cannot read %s" % ", ".join(unread)) if unread else None
    return section(items, source, reason, cap=MAX_DEVICES)
