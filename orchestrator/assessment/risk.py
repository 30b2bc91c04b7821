"""The risk summary: one level and the reasons behind it, from the other sections.

high     end-of-life OS, a vulnerability in the CISA KEV catalog, a missing required
         patch, or 6 months or more behind on cumulative updates
medium   security updates only through ESU/LTS/ESM, other open vulnerabilities, or 2 to 5
         months behind
low      assessed, and none of the above
unknown  neither the OS lifecycle, the patch level nor the packages could be assessed
"""

from __future__ import annotations

from typing import Any

HIGH_MONTHS = 6
MEDIUM_MONTHS = 2


def summarise(
    eol: dict[str, Any],
    patch_level: dict[str, Any] | None,
    vulns: list[dict[str, Any]],
    assessed_packages: bool,
) -> dict[str, Any]:
    high: list[str] = []
    medium: list[str] = []
    status = eol.get("status")
    if status == "end-of-life":
        high.append(f"end-of-life OS ({eol.get('product')}, {eol.get('reason')})")
    elif status == "extended-support-only" and eol.get("phase") == "esu":
        medium.append(
            f"security updates only through ESU/LTS/ESM until "
            f"{eol.get('extended_until')} ({eol.get('product')})"
        )
    kev = sorted({v["cve"] for v in vulns if v.get("kev")})
    if kev:
        high.append(
            f"{len(kev)} known exploited vulnerabilities (CISA KEV): "
            f"{', '.join(kev[:5])}{' ...' if len(kev) > 5 else ''}"
        )
    others = len({v["cve"] for v in vulns}) - len(kev)
    if others > 0:
        medium.append(f"{others} other open vulnerabilities")
    months = (patch_level or {}).get("months_behind")
    missing = (patch_level or {}).get("missing_required") or []
    if missing:
        high.append(f"missing required patches: {', '.join(missing)}")
    if months is not None:
        text = f"{months} months behind the newest cumulative update in the data"
        if months >= HIGH_MONTHS:
            high.append(text)
        elif months >= MEDIUM_MONTHS:
            medium.append(text)
    patch_known = bool(
        patch_level and (patch_level.get("latest_installed") or patch_level.get("required"))
    )
    if high:
        return {"level": "high", "reasons": high + medium}
    if medium:
        return {"level": "medium", "reasons": medium}
    if status == "unknown" and not patch_known and not assessed_packages:
        return {"level": "unknown", "reasons": ["nothing could be assessed: " + eol["reason"]]}
    return {
        "level": "low",
        "reasons": ["supported OS, no open vulnerabilities or missing patches found in the data"],
    }
