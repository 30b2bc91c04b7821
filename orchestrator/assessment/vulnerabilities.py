"""Known vulnerabilities of a host from its packages (OSV) or its Windows build (MSRC), with KEV.

    find_vulnerabilities(asset, k)
    -> [{"cve": "CVE-2024-6387", "severity": None, "kev": False, "package": "openssh",
         "installed": "1:8.9p1-3ubuntu0.6", "fixed": "1:8.9p1-3ubuntu0.10",
         "source_id": "USN-6859-1"}, ...], [notes on what could not be assessed]

Linux: the host's ecosystem is Debian:<major>, Ubuntu:<version> (and Ubuntu:Pro:<version>),
AlmaLinux:<major> or Rocky Linux:<major>; each installed package is matched by its source
package (dpkg's Source field), then by its own (binary) name, and is affected when its version
is at or past ``introduced`` and below ``fixed`` (dpkg or rpm ordering, never semver). One row
per CVE and package. Windows: every CVE whose fix is in a cumulative update above the host's
build.UBR is open on it (the same build comparison as the patch level).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from orchestrator.assessment.versions import compare_dpkg, compare_rpm

if TYPE_CHECKING:  # only a type here: no bundle/crypto import for pure functions
    from orchestrator.knowledge.data import Knowledge

_SOURCE_RE = re.compile(r"^\s*([^\s(]+)")


def ecosystems_for(os_info: dict[str, Any]) -> list[str]:
    """The OSV ecosystems that describe this host's packages (most specific first)."""
    os_id = str(os_info.get("id") or "").lower()
    version = str(os_info.get("version_id") or "")
    major = version.split(".")[0]
    if not version:
        return []
    if os_id == "debian":
        return [f"Debian:{major}"]
    if os_id == "ubuntu":
        return [f"Ubuntu:{version}", f"Ubuntu:Pro:{version}"]
    if os_id == "almalinux":
        return [f"AlmaLinux:{major}"]
    if os_id == "rocky":
        return [f"Rocky Linux:{major}"]
    return []


def _kev(knowledge: Knowledge, cve: str) -> bool:
    return cve in knowledge.kev.get("vulnerabilities", {})


def _affected(cmp: Any, installed: str, entry: dict[str, Any]) -> bool:
    if entry.get("introduced") and cmp(installed, entry["introduced"]) < 0:
        return False
    return entry.get("fixed") is None or cmp(installed, entry["fixed"]) < 0


def _linux(asset: dict[str, Any], knowledge: Knowledge, notes: list[str]) -> list[dict[str, Any]]:
    os_info = asset.get("os") or {}
    packages = asset.get("packages") or {}
    manager = str(packages.get("manager") or "")
    items = packages.get("items")
    if not isinstance(items, list):
        notes.append("no package list in the asset data")
        return []
    ecos = ecosystems_for(os_info)
    data = knowledge.osv.get("ecosystems", {})
    present = [e for e in ecos if e in data]
    if not ecos:
        notes.append(
            f"no OSV ecosystem for {os_info.get('id') or '?'} "
            f"{os_info.get('version_id') or ''}".rstrip()
        )
        return []
    if not present:
        notes.append(f"the data has no OSV advisories for {', '.join(ecos)}")
        return []
    cmp = compare_dpkg if manager == "dpkg" else compare_rpm if manager == "rpm" else None
    if cmp is None:
        notes.append(f"package manager {manager or '?'} has no version ordering here")
        return []
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        if not isinstance(item, dict) or not item.get("name") or not item.get("version"):
            continue
        name, version = str(item["name"]), str(item["version"])
        match = _SOURCE_RE.match(str(item.get("source") or ""))
        source = match.group(1) if match else None
        for eco in present:  # Ubuntu before Ubuntu:Pro: a standard fix wins over an ESM one
            eco_data = data[eco]
            pkgs = eco_data.get("packages", {})
            key = next(
                (
                    k
                    for k in (source, name, eco_data.get("binaries", {}).get(name))
                    if k and k in pkgs
                ),
                None,
            )
            if key is None:
                continue
            for entry in pkgs[key]:
                if not _affected(cmp, version, entry):
                    continue
                for cve in entry.get("cves") or [entry.get("id")]:
                    row = found.get((cve, key))
                    if row is not None:
                        if name not in row["binaries"]:
                            row["binaries"].append(name)
                        continue
                    found[(cve, key)] = {
                        "cve": cve,
                        "severity": entry.get("severity"),
                        "kev": _kev(knowledge, cve),
                        "package": key,
                        "installed": version,
                        "fixed": entry.get("fixed"),
                        "source_id": entry.get("id"),
                        "ecosystem": eco,
                        "binaries": [name],
                    }
    return sorted(found.values(), key=lambda r: (not r["kev"], r["cve"], r["package"]))


def _windows(asset: dict[str, Any], knowledge: Knowledge, notes: list[str]) -> list[dict[str, Any]]:
    os_info = asset.get("os") or {}
    try:
        build, ubr = int(os_info.get("build")), int(os_info.get("ubr"))
    except (TypeError, ValueError):
        notes.append("Windows CVEs need build and UBR: not assessed")
        return []
    fam = knowledge.windows_builds.get("families", {}).get(str(build))
    if not fam:
        notes.append(f"the data has no cumulative updates for build {build}")
        return []
    severity = knowledge.windows_builds.get("cve_severity", {})
    updates = sorted(fam["updates"], key=lambda u: u["ubr"])
    if updates and ubr < updates[0]["ubr"]:
        notes.append(
            f"build {build}.{ubr} predates the data (from {updates[0]['released']}): "
            "older CVEs are not listed"
        )
    rows = []
    for u in updates:
        if u["ubr"] <= ubr:
            continue
        for cve in u.get("cves", []):
            rows.append(
                {
                    "cve": cve,
                    "severity": severity.get(cve),
                    "kev": _kev(knowledge, cve),
                    "package": f"Windows build {build}",
                    "installed": f"{build}.{ubr}",
                    "fixed": f"{build}.{u['ubr']}",
                    "source_id": u["kb"],
                }
            )
    return sorted(rows, key=lambda r: (not r["kev"], r["cve"]))


def find_vulnerabilities(
    asset: dict[str, Any], knowledge: Knowledge
) -> tuple[list[dict[str, Any]], list[str]]:
    """(vulnerability rows, notes on what could not be assessed)."""
    notes: list[str] = []
    family = str((asset.get("os") or {}).get("family") or "").lower()
    if family == "linux":
        return _linux(asset, knowledge, notes), notes
    if family == "windows":
        return _windows(asset, knowledge, notes), notes
    return [], ["no OS family in the asset data: vulnerabilities not assessed"]
