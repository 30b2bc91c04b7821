"""Windows patch level from the host's build.UBR against the cumulative updates in the data.

    assess_patch_level(asset, k, required_patches=["KB5062554"])
    -> {"latest_installed": {"kb": "KB5065429", "build": "19045.6332", "released": "2025-09"},
        "latest_available": {"kb": "KB5120249", "build": "19045.7663", "released": "2026-08"},
        "months_behind": 11, "missing_required": [], "required": [...], "reason": "..."}

Supersedence is decided by build number, not by KB lists: a cumulative update carries every
earlier fix, so a host whose UBR is at or past the build a required KB shipped in has that
KB's fixes even when the KB id is not in its hotfix list. A required KB the data does not
know (older than the data, or not an OS cumulative update) and not in the hotfix list is
reported missing, with that caveat. Without a UBR (Windows 7, old 2012 R2) only the hotfix
list can answer (supersedence cannot be checked there: the caveat says so).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only a type here: no bundle/crypto import for pure functions
    from orchestrator.knowledge.data import Knowledge


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _months(earlier: str, later: str) -> int:
    """Whole months from "YYYY-MM" to "YYYY-MM"."""
    (y1, m1), (y2, m2) = (map(int, earlier.split("-")[:2]), map(int, later.split("-")[:2]))
    return max(0, (y2 - y1) * 12 + (m2 - m1))


def _norm_kb(kb: Any) -> str:
    text = str(kb or "").strip().upper()
    return text if text.startswith("KB") else f"KB{text}" if text.isdigit() else text


def _update(family: str, entry: dict[str, Any] | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {"kb": entry["kb"], "build": f"{family}.{entry['ubr']}", "released": entry["released"]}


def kb_index(knowledge: Knowledge) -> dict[str, list[tuple[str, int, str]]]:
    """KB -> [(build family, ubr, released month)] over all families of the data."""
    index: dict[str, list[tuple[str, int, str]]] = {}
    for family, fam in knowledge.windows_builds.get("families", {}).items():
        for u in fam.get("updates", []):
            index.setdefault(u["kb"], []).append((family, u["ubr"], u["released"]))
    return index


def assess_patch_level(
    asset: dict[str, Any],
    knowledge: Knowledge,
    required_patches: list[str] | None = None,
) -> dict[str, Any]:
    """The ``patch_level`` section for a Windows asset (see module doc)."""
    os_info = asset.get("os") or {}
    data_date = knowledge.date.isoformat() if knowledge.date else None
    out: dict[str, Any] = {
        "latest_installed": None,
        "latest_available": None,
        "months_behind": None,
        "missing_required": [],
        "required": [],
        "data_date": data_date,
        "reason": "",
    }
    if str(os_info.get("family") or "").lower() != "windows":
        out["reason"] = (
            "not a Windows host: Linux patch state is assessed per package (vulnerabilities)"
        )
        return out
    build, ubr = _int(os_info.get("build")), _int(os_info.get("ubr"))
    patches = asset.get("patches")
    hotfixes = None
    if isinstance(patches, dict) and isinstance(patches.get("items"), list):
        hotfixes = {_norm_kb(p.get("id")): p for p in patches["items"] if isinstance(p, dict)}
    family = str(build) if build is not None else None
    fam = knowledge.windows_builds.get("families", {}).get(family) if family else None
    updates = sorted(fam["updates"], key=lambda u: u["ubr"]) if fam else []
    notes: list[str] = []

    installed = None
    if updates and ubr is not None:
        at_or_below = [u for u in updates if u["ubr"] <= ubr]
        installed = at_or_below[-1] if at_or_below else None
        latest = updates[-1]
        out["latest_available"] = _update(family, latest)  # type: ignore[arg-type]
        if installed is not None:
            out["latest_installed"] = _update(family, installed)  # type: ignore[arg-type]
            out["months_behind"] = _months(installed["released"], latest["released"])
            notes.append(
                f"build {family}.{ubr} carries {installed['kb']} ({installed['released']}); "
                f"newest in the data: {latest['kb']} ({latest['released']})"
            )
        else:
            # Older than anything the data covers: at least as far behind as the data reaches.
            out["months_behind"] = _months(updates[0]["released"], latest["released"]) + 1
            out["months_behind_at_least"] = True
            notes.append(
                f"build {family}.{ubr} is older than the oldest update in the data "
                f"({updates[0]['kb']}, {updates[0]['released']}): at least "
                f"{out['months_behind']} months behind"
            )
    elif build is None:
        notes.append("no build number in the asset data")
    elif ubr is None:
        notes.append(
            f"no UBR for build {build}: patch level from the hotfix list only "
            "(supersedence cannot be checked)"
        )
        if hotfixes:
            newest = max(
                hotfixes.values(),
                key=lambda p: (str(p.get("installed_on") or ""), _norm_kb(p.get("id"))),
            )
            out["latest_installed"] = {
                "kb": _norm_kb(newest.get("id")),
                "build": None,
                "released": None,
                "installed_on": newest.get("installed_on"),
            }
    else:
        notes.append(f"build family {build} has no cumulative updates in the data")

    index = kb_index(knowledge)
    for raw in required_patches or []:
        kb = _norm_kb(raw)
        out["required"].append(_required(kb, family, ubr, hotfixes, index))
    out["missing_required"] = [r["kb"] for r in out["required"] if r["status"] == "missing"]
    if hotfixes is None and required_patches:
        notes.append("no hotfix list in the asset data")
    out["reason"] = "; ".join(notes + [f"data of {data_date}"])
    return out


def _required(
    kb: str,
    family: str | None,
    ubr: int | None,
    hotfixes: dict[str, Any] | None,
    index: dict[str, list[tuple[str, int, str]]],
) -> dict[str, Any]:
    if hotfixes is not None and kb in hotfixes:
        return {"kb": kb, "status": "installed", "evidence": "in the hotfix list"}
    known = index.get(kb, [])
    same_family = [k for k in known if k[0] == family]
    if same_family and ubr is not None:
        fixed_ubr = same_family[0][1]
        if ubr >= fixed_ubr:
            return {
                "kb": kb,
                "status": "superseded",
                "evidence": f"build {family}.{ubr} is at or past {family}.{fixed_ubr}, "
                f"the build {kb} shipped in",
            }
        return {
            "kb": kb,
            "status": "missing",
            "evidence": f"build {family}.{ubr} is below {family}.{fixed_ubr} ({kb})",
        }
    if known and not same_family:
        others = ", ".join(sorted({k[0] for k in known}))
        return {
            "kb": kb,
            "status": "not-applicable",
            "evidence": f"{kb} is for build {others}, not this host's build {family}",
        }
    caveat = (
        "not in the hotfix list; the data does not map it to a build, so a newer "
        "cumulative update may already carry it"
    )
    if same_family:  # known, but the host has no UBR to compare
        caveat = "not in the hotfix list and no UBR to compare builds"
    return {"kb": kb, "status": "missing", "evidence": caveat}
