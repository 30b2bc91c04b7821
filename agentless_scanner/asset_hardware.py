"""Hardware on Linux: CPU from /proc/cpuinfo, memory from /proc/meminfo, board and BIOS from
/sys/class/dmi/id (serial numbers are readable by root only), disks from /sys/block."""

import os

from agentless_scanner.asset_common import listdir, read_line, read_text

DMI_DIR = "/sys/class/dmi/id"
# Virtual block devices that are not disks of the machine.
SKIP_DISK_PREFIXES = ("loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd")


def parse_cpuinfo(text):
    """(model, cores, threads) from /proc/cpuinfo text; cores = distinct (package, core id)."""
    model = None
    threads = 0
    cores = set()
    physical = core = None
    for line in text.splitlines() + [""]:
        if not line.strip():
            if physical is not None or core is not None:
                cores.add((physical, core))
            physical = core = None
            continue
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "processor":
            threads += 1
        elif key in ("model name", "Model", "cpu model", "Processor") and model is None:
            model = value or None
        elif key == "physical id":
            physical = value
        elif key == "core id":
            core = value
    # No topology lines (many ARM and virtual CPUs): every processor counts as a core.
    return model, (len(cores) or threads or None), (threads or None)


def parse_meminfo(text):
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            try:
                return int(line.split()[1]) * 1024
            except (ValueError, IndexError):
                return None
    return None


def disks(block_dir="/sys/block"):
    result = []
    for name in listdir(block_dir):
        if name.startswith(SKIP_DISK_PREFIXES):
            continue
        base = os.path.join(block_dir, name)
        sectors = read_line(os.path.join(base, "size"))
        try:
            # /sys/block/*/size counts 512-byte sectors whatever the device's sector size.
            size = int(sectors) * 512
        except (TypeError, ValueError):
            size = None
        result.append(
            {
                "name": name,
                "size_bytes": size,
                "model": read_line(os.path.join(base, "device", "model")),
                "serial": read_line(os.path.join(base, "device", "serial"))
                or read_line(os.path.join(base, "serial")),
            }
        )
    return result


def collect(dmi_dir=DMI_DIR, block_dir="/sys/block", proc="/proc"):
    notes = []
    cpu_text = read_text(os.path.join(proc, "cpuinfo"))
    if cpu_text is None:
        notes.append("%s/cpuinfo not readable" % proc)
        model, cores, threads = None, None, None
    else:
        model, cores, threads = parse_cpuinfo(cpu_text)
    result = {
        "cpu_model": model,
        "cpu_cores": cores,
        "cpu_threads": threads,
        "memory_bytes": parse_meminfo(read_text(os.path.join(proc, "meminfo")) or ""),
        "vendor": None,
        "product": None,
        "serial": None,
        "bios_version": None,
        "disks": disks(block_dir),
        "source": "%s/cpuinfo, %s/meminfo, %s, %s" % (proc, proc, dmi_dir, block_dir),
        "reason": None,
    }
    if os.path.isdir(dmi_dir):

        def dmi(name):
            return read_line(os.path.join(dmi_dir, name))

        result["vendor"] = dmi("sys_vendor") or dmi("board_vendor")
        result["product"] = dmi("product_name") or dmi("board_name")
        result["bios_version"] = dmi("bios_version")
        serial_file = os.path.join(dmi_dir, "product_serial")
        result["serial"] = dmi("product_serial") or dmi("board_serial")
        if (
            result["serial"] is None
            and os.path.exists(serial_file)
            and not os.access(serial_file, os.R_OK)
        ):
            notes.append("serial numbers are readable by root only (%s)" % serial_file)
    else:
        notes.append("no DMI data (%s missing: virtual machine or non-x86 board)" % dmi_dir)
    result["reason"] = "; ".join(notes) or None
    return result


def empty(reason):
    return {
        "cpu_model": None,
        "cpu_cores": None,
        "cpu_threads": None,
        "memory_bytes": None,
        "vendor": None,
        "product": None,
        "serial": None,
        "bios_version": None,
        "disks": [],
        "source": None,
        "reason": reason,
    }
