"""One assessed row per host: the newest asset record plus its assessment (end of life, patch
level, known vulnerabilities, risk) against the knowledge data, as the `assets` views, the CSV
and JSON exports and the playbook facts show it.

    for row in assess_hosts(records.latest(conn), use_knowledge(), {"hmi-01": ["KB..."]}): ...
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from orchestrator.assessment import assess
from orchestrator.assets.records import HostAsset

# Short EOL states for filters and playbook facts (`when: asset.os.eol_status == 'eol'`).
EOL_STATUS = {
    "supported": "supported",
    "extended-support-only": "extended",
    "end-of-life": "eol",
    "unknown": "unknown",
}
STATUSES = tuple(EOL_STATUS.values())


@dataclass
class AssessedHost:
    record: HostAsset
    assessment: dict[str, Any]

    @property
    def eol_status(self) -> str:
        return EOL_STATUS.get((self.assessment.get("eol") or {}).get("status"), "unknown")

    def os_text(self) -> str:
        os_info = self.record.asset.get("os") or {}
        name = os_info.get("name") or os_info.get("pretty_name") or "-"
        if os_info.get("family") == "windows" and os_info.get("build"):
            ubr = os_info.get("ubr")
            name += f" ({os_info['build']}{'.' + str(ubr) if ubr is not None else ''})"
        elif os_info.get("version_id") and os_info["version_id"] not in name:
            name += f" {os_info['version_id']}"
        return name

    def eol_text(self) -> str:
        eol = self.assessment.get("eol") or {}
        status = self.eol_status
        if status == "eol":
            return f"END OF LIFE since {eol.get('eol_date') or eol.get('extended_until') or '?'}"
        if status == "extended":
            return f"extended support until {eol.get('extended_until') or '?'}"
        if status == "supported":
            return f"supported until {eol.get('eol_date') or '?'}"
        return "unknown"

    def patch_text(self) -> str:
        patch = self.assessment.get("patch_level")
        if not patch:  # Linux: the patch state is the package versions (vulnerabilities)
            linux = (self.record.asset.get("os") or {}).get("family") == "linux"
            return "packages" if linux else "-"
        parts = []
        latest = patch.get("latest_installed") or {}
        if latest.get("kb"):
            parts.append(f"{latest['kb']}")
        if patch.get("months_behind") is not None:
            parts.append(f"{patch['months_behind']} month(s) behind")
        missing = patch.get("missing_required") or []
        if missing:
            parts.append("missing " + ", ".join(missing))
        return "; ".join(parts) or "unknown"

    def vuln_counts(self) -> tuple[int, int]:
        vulns = self.assessment.get("vulnerabilities") or []
        return len(vulns), sum(1 for v in vulns if v.get("kev"))

    def as_row(self) -> dict[str, Any]:
        """Flat columns for CSV and tables."""
        vulns, kev = self.vuln_counts()
        eol = self.assessment.get("eol") or {}
        patch = self.assessment.get("patch_level") or {}
        return {
            "site": self.record.site,
            "area": self.record.area,
            "line": self.record.line,
            "host": self.record.name,
            "os": self.os_text(),
            "eol_status": self.eol_status,
            "eol_date": eol.get("eol_date") or "",
            "extended_until": eol.get("extended_until") or "",
            "patch_level": self.patch_text(),
            "months_behind": "" if patch.get("months_behind") is None else patch["months_behind"],
            "missing_required": " ".join(patch.get("missing_required") or []),
            "vulnerabilities": vulns,
            "kev": kev,
            "risk": (self.assessment.get("risk") or {}).get("level", "unknown"),
            "collected": self.record.collected,
            "scan_id": self.record.scan_id,
        }

    def as_json(self) -> dict[str, Any]:
        r = self.record
        return {
            "site": r.site, "area": r.area, "line": r.line, "host": r.name,
            "criticality": r.criticality, "collected": r.collected, "scan_id": r.scan_id,
            "eol_status": self.eol_status, "assessment": self.assessment, "asset": r.asset,
        }  # fmt: skip


def assess_host(
    record: HostAsset,
    knowledge: Any,
    required: list[str] | None = None,
    today: date | None = None,
    *,
    keep_asset: bool = False,
) -> AssessedHost:
    """Assess one record. Unless `keep_asset`, the row keeps only the record's `os`: a table
    of thousands of hosts must not hold every host's package list."""
    assessment = assess(record.asset, knowledge, required, today=today)
    if not keep_asset:
        record = replace(record, asset={"os": record.asset.get("os") or {}})
    return AssessedHost(record, assessment)


def assess_hosts(
    records: Iterable[HostAsset],
    knowledge: Any,
    required: dict[str, list[str]] | None = None,
    today: date | None = None,
    *,
    keep_asset: bool = False,
) -> Iterator[AssessedHost]:
    """Assess every record, one at a time; `required` maps host names to their required KBs."""
    required = required or {}
    for r in records:
        yield assess_host(r, knowledge, required.get(r.name), today, keep_asset=keep_asset)


def required_patches(hostvars: dict[str, Any], host: str = "") -> list[str]:
    """The host's `required_patches` inventory variable as upper-case KB ids (one id or a
    list); UsageError for anything else."""
    from orchestrator.errors import UsageError

    value = hostvars.get("required_patches") or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise UsageError(f"{host or 'a host'}: required_patches must be a list of KB ids")
    return [str(v).strip().upper() for v in value if str(v).strip()]


def asset_facts(asset: dict[str, Any], assessment: dict[str, Any]) -> dict[str, Any]:
    """The `asset` fact of playbooks: the collected asset with the assessment folded in, so
    `when: asset.os.eol_status == 'eol'` and `asset.assessment.risk.level` work."""
    facts = dict(asset)
    os_info = dict(asset.get("os") or {})
    eol = assessment.get("eol") or {}
    os_info["eol_status"] = EOL_STATUS.get(eol.get("status"), "unknown")
    os_info["eol_date"] = eol.get("eol_date")
    facts["os"] = os_info
    facts["assessment"] = assessment
    return facts


def mark_end_of_life(lines: list[Any], hosts: Iterable[HostAsset], knowledge: Any) -> None:
    """Fill `end_of_life` and `extended_support` of `status` lines (store.queries.LineStatus)
    from each host's newest asset record: only the OS is assessed, so this stays cheap."""
    from orchestrator.assessment import assess_eol

    by_place = {(line.site, line.area, line.line): line for line in lines}
    for h in hosts:
        line = by_place.get((h.site, h.area, h.line))
        if line is None:
            continue
        status = EOL_STATUS.get(assess_eol(h.asset.get("os"), knowledge).get("status"))
        if status == "eol":
            line.end_of_life.append(h.name)
        elif status == "extended":
            line.extended_support.append(h.name)
