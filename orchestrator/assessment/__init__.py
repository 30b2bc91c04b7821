"""Assessment of one host's asset data against the offline knowledge data (pure functions).

    from orchestrator.assessment import assess
    from orchestrator.knowledge import load_knowledge
    report = assess(scan_log["asset"], load_knowledge(), required_patches=["KB5034441"])
    report["eol"]["status"], report["risk"]["level"]

    assess(asset, knowledge, required_patches=None, today=None) -> dict
    assess_eol(os_info, knowledge, today=None) -> dict              (eol.py)
    assess_patch_level(asset, knowledge, required_patches=None) -> dict   (patch_level.py)
    find_vulnerabilities(asset, knowledge) -> (rows, notes)         (vulnerabilities.py)
    summarise(eol, patch_level, vulns, assessed_packages) -> dict   (risk.py)
    compare_dpkg(a, b), compare_rpm(a, b) -> -1 | 0 | 1             (versions.py)

The result is JSON-able: ``eol``, ``patch_level``, ``vulnerabilities``, ``risk``, ``data``
({version, date, origin}) and ``not_assessed`` (what the asset data did not allow). No store,
no CLI: callers (views, reports, playbook facts) decide what to do with it.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from orchestrator.assessment.eol import assess_eol
from orchestrator.assessment.patch_level import assess_patch_level
from orchestrator.assessment.risk import summarise
from orchestrator.assessment.versions import compare_dpkg, compare_rpm
from orchestrator.assessment.vulnerabilities import find_vulnerabilities

if TYPE_CHECKING:  # only a type here: no bundle/crypto import for pure functions
    from orchestrator.knowledge.data import Knowledge


def assess(
    asset: dict[str, Any] | None,
    knowledge: Knowledge,
    required_patches: list[str] | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """Everything the data can say about one host (any asset key may be missing)."""
    asset = asset or {}
    today = today or date.today()
    os_info = asset.get("os") or {}
    eol = assess_eol(os_info, knowledge, today)
    windows = str(os_info.get("family") or "").lower() == "windows"
    patch_level = assess_patch_level(asset, knowledge, required_patches)
    vulns, notes = find_vulnerabilities(asset, knowledge)
    not_assessed = list(notes)
    if eol["status"] == "unknown":
        not_assessed.insert(0, f"end of life: {eol['reason']}")
    if windows and patch_level["latest_installed"] is None and not patch_level["required"]:
        not_assessed.append(f"patch level: {patch_level['reason']}")
    assessed_packages = not windows and not notes
    return {
        "eol": eol,
        "patch_level": patch_level if windows else None,
        "vulnerabilities": vulns,
        "risk": summarise(eol, patch_level if windows else None, vulns, assessed_packages),
        "data": knowledge.stamp(),
        "not_assessed": not_assessed,
    }


__all__ = [
    "assess",
    "assess_eol",
    "assess_patch_level",
    "compare_dpkg",
    "compare_rpm",
    "find_vulnerabilities",
    "summarise",
]
