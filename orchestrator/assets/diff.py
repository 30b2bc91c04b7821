"""What changed on a host between two asset records: OS, applications/packages added,
removed or changed in version, patches (hotfixes) installed or gone, listening ports opened or
closed, services and autostart entries added or removed, USB devices seen for the first time.

    changes = diff_assets(older["asset"], newer["asset"])
    for line in changes.lines(): print(line)      # "+ package openssl 3.0.15-1~deb12u1"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class AssetDiff:
    os: tuple[str | None, str | None] | None = None
    packages_added: list[tuple[str, str]] = field(default_factory=list)
    packages_removed: list[tuple[str, str]] = field(default_factory=list)
    packages_changed: list[tuple[str, str, str]] = field(default_factory=list)
    patches_added: list[str] = field(default_factory=list)
    patches_removed: list[str] = field(default_factory=list)
    ports_opened: list[str] = field(default_factory=list)
    ports_closed: list[str] = field(default_factory=list)
    services_added: list[str] = field(default_factory=list)
    services_removed: list[str] = field(default_factory=list)
    autostart_added: list[str] = field(default_factory=list)
    autostart_removed: list[str] = field(default_factory=list)
    usb_new: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.lines()

    def lines(self) -> list[str]:
        out = []
        if self.os:
            out.append(f"~ os {self.os[0]} -> {self.os[1]}")
        out += [f"+ package {n} {v}" for n, v in self.packages_added]
        out += [f"- package {n} {v}" for n, v in self.packages_removed]
        out += [f"~ package {n} {a} -> {b}" for n, a, b in self.packages_changed]
        out += [f"+ patch {k}" for k in self.patches_added]
        out += [f"- patch {k}" for k in self.patches_removed]
        out += [f"+ port {p}" for p in self.ports_opened]
        out += [f"- port {p}" for p in self.ports_closed]
        out += [f"+ service {s}" for s in self.services_added]
        out += [f"- service {s}" for s in self.services_removed]
        out += [f"+ autostart {a}" for a in self.autostart_added]
        out += [f"- autostart {a}" for a in self.autostart_removed]
        out += [f"+ usb {u}" for u in self.usb_new]
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "os": list(self.os) if self.os else None,
            "packages": {
                "added": [{"name": n, "version": v} for n, v in self.packages_added],
                "removed": [{"name": n, "version": v} for n, v in self.packages_removed],
                "changed": [{"name": n, "from": a, "to": b} for n, a, b in self.packages_changed],
            },
            "patches": {"added": self.patches_added, "removed": self.patches_removed},
            "ports": {"opened": self.ports_opened, "closed": self.ports_closed},
            "services": {"added": self.services_added, "removed": self.services_removed},
            "autostart": {"added": self.autostart_added, "removed": self.autostart_removed},
            "usb": {"new": self.usb_new},
        }


def _items(asset: dict[str, Any], section: str) -> list[dict[str, Any]]:
    value = asset.get(section)
    items = value.get("items") if isinstance(value, dict) else None
    return [i for i in items or [] if isinstance(i, dict)]


def _os_text(asset: dict[str, Any]) -> str | None:
    os_info = asset.get("os") if isinstance(asset.get("os"), dict) else {}
    name = os_info.get("pretty_name") or os_info.get("name")
    build = os_info.get("build")
    if build is not None:  # Windows: the build and UBR say which cumulative update is in
        ubr = os_info.get("ubr")
        name = f"{name} (build {build}{'.' + str(ubr) if ubr is not None else ''})"
    return name


def _packages(asset: dict[str, Any]) -> dict[str, str]:
    out = {}
    for p in _items(asset, "packages"):
        if not p.get("name"):
            continue
        key = f"{p['name']}:{p.get('arch') or ''}".rstrip(":")
        out[key] = str(p.get("version") or "")
    return out


def _ports(asset: dict[str, Any]) -> set[str]:
    network = asset.get("network") if isinstance(asset.get("network"), dict) else {}
    out = set()
    for p in network.get("listening") or []:
        if isinstance(p, dict) and p.get("port") is not None:
            proc = f" ({p['process']})" if p.get("process") else ""
            out.add(f"{p.get('proto') or 'tcp'}/{p.get('address') or '*'}:{p['port']}{proc}")
    return out


def _names(asset: dict[str, Any], section: str, *keys: str) -> set[str]:
    out = set()
    for item in _items(asset, section):
        parts = [str(item.get(k)) for k in keys if item.get(k)]
        if parts:
            out.add(" ".join(parts))
    return out


def diff_assets(before: dict[str, Any], after: dict[str, Any]) -> AssetDiff:
    """The changes from `before` to `after` (two `asset` objects of scan logs)."""
    d = AssetDiff()
    old_os, new_os = _os_text(before), _os_text(after)
    if old_os != new_os:
        d.os = (old_os, new_os)
    old, new = _packages(before), _packages(after)
    d.packages_added = [(n, new[n]) for n in sorted(new.keys() - old.keys())]
    d.packages_removed = [(n, old[n]) for n in sorted(old.keys() - new.keys())]
    d.packages_changed = [
        (n, old[n], new[n]) for n in sorted(old.keys() & new.keys()) if old[n] != new[n]
    ]
    old_kb = {str(p["id"]).upper() for p in _items(before, "patches") if p.get("id")}
    new_kb = {str(p["id"]).upper() for p in _items(after, "patches") if p.get("id")}
    d.patches_added, d.patches_removed = sorted(new_kb - old_kb), sorted(old_kb - new_kb)
    old_ports, new_ports = _ports(before), _ports(after)
    d.ports_opened, d.ports_closed = sorted(new_ports - old_ports), sorted(old_ports - new_ports)
    old_svc, new_svc = _names(before, "services", "name"), _names(after, "services", "name")
    d.services_added, d.services_removed = sorted(new_svc - old_svc), sorted(old_svc - new_svc)
    old_run = _names(before, "autostart", "location", "name")
    new_run = _names(after, "autostart", "location", "name")
    d.autostart_added, d.autostart_removed = sorted(new_run - old_run), sorted(old_run - new_run)
    old_usb = _names(before, "usb_devices", "vendor", "product", "serial")
    new_usb = _names(after, "usb_devices", "vendor", "product", "serial")
    d.usb_new = sorted(new_usb - old_usb)
    return d
