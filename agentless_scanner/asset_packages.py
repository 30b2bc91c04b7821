"""Package details on Linux: the dpkg database read directly (/var/lib/dpkg/status: a text
file, so no dpkg-query is needed), install dates from /var/lib/dpkg/info/<pkg>.list, and the
source package name that Debian/Ubuntu advisories are keyed by."""

import os

from agentless_scanner.timeutil import iso_utc

DPKG_STATUS = "/var/lib/dpkg/status"


def parse_dpkg_status(text):
    """Installed packages from a dpkg status file: [{name, version, arch, vendor, source}].

    ``source`` is the Source field without its optional "(version)" (for binNMUs and
    renamed binaries), else the package's own name, as dpkg defines it.
    """
    items = []
    fields = {}
    last = None
    for line in text.splitlines() + [""]:
        if not line.strip():
            status = fields.get("Status", "")
            if fields.get("Package") and status.endswith(" installed"):
                source = fields.get("Source", "").split(" ")[0] or fields["Package"]
                items.append(
                    {
                        "name": fields["Package"],
                        "version": fields.get("Version"),
                        "arch": fields.get("Architecture"),
                        "vendor": fields.get("Maintainer"),
                        "source": source,
                    }
                )
            fields, last = {}, None
            continue
        if line[0] in " \t":
            continue  # continuation of a multi-line field (Description, Conffiles)
        key, sep, value = line.partition(":")
        if sep:
            last = key.strip()
            fields[last] = value.strip()
    return items


def dpkg_install_dates(items, info_dir="/var/lib/dpkg/info"):
    """Set ``install_date`` from the mtime of <name>.list or <name>:<arch>.list (rewritten by
    dpkg on every install or upgrade of the package, so: the last install/upgrade)."""
    for item in items:
        item["install_date"] = None
        names = [item["name"] + ".list"]
        if item.get("arch"):
            names.insert(0, "%s:%s.list" % (item["name"], item["arch"]))
        for name in names:
            try:
                item["install_date"] = iso_utc(int(os.stat(os.path.join(info_dir, name)).st_mtime))
                break
            except OSError:
                continue
    return items


def rpm_source_name(srpm):
    """``openssh-8.7p1-34.el9.src.rpm`` -> ``openssh`` (name-version-release.src.rpm)."""
    if not srpm or srpm == "(none)":
        return None
    base = srpm[: -len(".src.rpm")] if srpm.endswith(".src.rpm") else srpm
    parts = base.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else base


def rpm_details(parts):
    """vendor, install_date, source from the extra --qf columns (VENDOR, INSTALLTIME, SOURCERPM)."""
    vendor = parts[3] if parts[3] and parts[3] != "(none)" else None
    try:
        installed = iso_utc(int(parts[4]))
    except ValueError:
        installed = None
    return {"vendor": vendor, "install_date": installed, "source": rpm_source_name(parts[5])}


def normalise(items):
    """Every item has the same keys whatever the manager could tell."""
    for item in items:
        for key in ("vendor", "install_date", "source"):
            item.setdefault(key, None)
    return items
