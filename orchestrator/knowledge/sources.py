"""Turn the public source files into the compact, normalised knowledge files.

The source folder is laid out like ../shared/data (each part optional, but at least one)::

    endoflife/products/<product>.md         endoflife.date pages: YAML front matter `releases`
    endoflife/release-data/<product>.json   point-release dates (only their dates are read)
    msrc/CVE_KB_Mapping_<YYYY-Mon>.json     [{cve, patches: [{os, kb, fixedBuild, severity}]}]
    msrc/windows-versions-current.json      [{os, build, latestKB, releaseDate}]
    kev/known_exploited_vulnerabilities.json  the CISA KEV catalog
    osv/**/*.json                           OSV 1.x records (Debian, Ubuntu, AlmaLinux are kept)

``build_files(source)`` returns ``{name: bytes}`` for the files below (compact JSON, sorted
keys, so the same sources give the same bytes):

    eol.json             {"products": {product: [{cycle, label, release, eoas, eol, eoes, lts,
                          build}]}}  (dates "YYYY-MM-DD"; eoas/eol/eoes may be null)
    windows_builds.json  {"families": {"19045": {"products": [...], "updates": [{ubr, kb,
                          released "YYYY-MM", cves: [...]}] sorted by ubr}},
                          "cve_severity": {cve: "7.8"}}
    kev.json             {"catalog_version", "released", "vulnerabilities": {cve: {vendor,
                          product, name, added, due, ransomware (bool)}}}
    osv.json             {"ecosystems": {"Debian:12": {"packages": {source: [{id, cves,
                          severity, fixed, introduced}]}, "binaries": {binary: source}}}}
    sources.json         {"version", "date" (newest source date), "sources": [{name, date,
                          records, license}]}
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from orchestrator.knowledge.errors import KnowledgeError

DATA_FILES = ("eol.json", "windows_builds.json", "kev.json", "osv.json", "sources.json")

# endoflife.date page -> our product key (os-release IDs where they exist: "ol" is Oracle's ID,
# mapped in assessment/eol.py).
EOL_PRODUCTS = {
    "windows": "windows",
    "windows-server": "windows-server",
    "windows-embedded": "windows-embedded",
    "debian": "debian",
    "ubuntu": "ubuntu",
    "rhel": "rhel",
    "centos": "centos",
    "centos-stream": "centos-stream",
    "sles": "sles",
    "almalinux": "almalinux",
    "rocky-linux": "rocky",
    "oracle-linux": "oracle",
    "alpine-linux": "alpine",
}

# Embedded SKUs endoflife.date lacks (research §3.2, Microsoft lifecycle pages). Curated here,
# marked as such in the data, so an XP Embedded / POSReady 2009 box is not "unknown".
CURATED_EMBEDDED = [
    {
        "cycle": "xp-embedded-sp3",
        "label": "XP Embedded SP3",
        "release": "2008-04-21",
        "eoas": "2011-01-11",
        "eol": "2016-01-12",
        "build": "5.1.2600",
    },
    {
        "cycle": "wepos-sp3",
        "label": "Embedded for Point of Service SP3",
        "release": "2008-04-21",
        "eoas": "2011-04-12",
        "eol": "2016-04-12",
        "build": "5.1.2600",
    },
    {
        "cycle": "standard-2009",
        "label": "Embedded Standard 2009",
        "release": "2008-12-14",
        "eoas": "2014-01-14",
        "eol": "2019-01-08",
        "build": "5.1.2600",
    },
    {
        "cycle": "posready-2009",
        "label": "Embedded POSReady 2009",
        "release": "2009-02-17",
        "eoas": "2014-04-08",
        "eol": "2019-04-09",
        "build": "5.1.2600",
    },
    {
        "cycle": "8-standard",
        "label": "Embedded 8 Standard",
        "release": "2013-04-02",
        "eoas": "2018-07-10",
        "eol": "2023-07-11",
        "build": "6.2.9200",
    },
]

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_MAPPING_RE = re.compile(r"CVE_KB_Mapping_(\d{4})-([A-Z][a-z]{2})\.json")
_CVE_RE = re.compile(r"CVE-\d{4}-\d{4,}")
# OSV ecosystems whose packages a plant host's dpkg/rpm database can be matched against.
_OSV_ECOSYSTEMS = re.compile(r"(Debian|Ubuntu|AlmaLinux|Rocky Linux):")


def _dump(data: Any) -> bytes:
    return (
        json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    ).encode("utf-8")


def _iso(value: Any) -> str | bool | None:
    """endoflife.date values are dates, booleans (true = ended, date unknown) or absent."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return value
    return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KnowledgeError(f"cannot read source file: {exc}", path=str(path)) from None


def _front_matter(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        _, head, _ = text.split("---", 2)
        data = yaml.safe_load(head)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise KnowledgeError(f"not an endoflife.date page: {exc}", path=str(path)) from None
    if not isinstance(data, dict) or not isinstance(data.get("releases"), list):
        raise KnowledgeError("endoflife.date page without a releases list", path=str(path))
    return data


def parse_eol(folder: Path) -> tuple[dict[str, Any], str | None, int]:
    """(eol.json data, newest date seen, number of cycles)."""
    products: dict[str, list[dict[str, Any]]] = {}
    newest: list[str] = []
    for page, key in EOL_PRODUCTS.items():
        path = folder / "products" / f"{page}.md"
        if not path.is_file():
            continue
        rows = []
        for rel in _front_matter(path)["releases"]:
            row = {
                "cycle": str(rel.get("releaseCycle")),
                "label": rel.get("releaseLabel"),
                "release": _iso(rel.get("releaseDate")),
                "eoas": _iso(rel.get("eoas")),
                "eol": _iso(rel.get("eol")),
                "eoes": _iso(rel.get("eoes")),
                # rhel gives lts as a date (end of the LTS phase): it is an LTS release.
                "lts": bool(rel.get("lts")),
                "build": str(rel["latest"])
                if key.startswith("windows") and rel.get("latest")
                else None,
            }
            rows.append(row)
            newest += [
                d
                for d in (_iso(rel.get("latestReleaseDate")), row["release"])
                if isinstance(d, str)
            ]
        if key == "windows-embedded":
            rows += [dict(r, lts=False, eoes=None, curated=True) for r in CURATED_EMBEDDED]
        products[key] = rows
    for path in sorted((folder / "release-data").glob("*.json")):
        data = _read_json(path)
        for section in ("releases", "versions"):
            for item in (data.get(section) or {}).values():
                for k in ("date", "releaseDate"):
                    if isinstance(item, dict) and isinstance(item.get(k), str):
                        newest.append(item[k][:10])
    return {"products": products}, max(newest, default=None), sum(map(len, products.values()))


def _month(year: str, mon: str) -> str:
    return f"{year}-{_MONTHS[mon]:02d}"


def parse_msrc(folder: Path) -> tuple[dict[str, Any], str | None, int]:
    """windows_builds.json data from the monthly CVE→KB→fixed build files.

    An update's month is the first monthly file it appears in (later files repeat older KBs).
    A CVE is attached to the lowest UBR of its family that fixes it: every later cumulative
    update carries the fix too (supersedence by build number)."""
    first_month: dict[tuple[str, int, str], str] = {}
    fixed_at: dict[tuple[str, str], int] = {}
    products: dict[str, set[str]] = defaultdict(set)
    severity: dict[str, str] = {}
    newest: list[str] = []
    files = sorted(
        (m.group(1), _MONTHS[m.group(2)], p)
        for p in folder.glob("CVE_KB_Mapping_*.json")
        if (m := _MAPPING_RE.fullmatch(p.name)) and m.group(2) in _MONTHS
    )
    for year, mon, path in files:
        month = f"{year}-{mon:02d}"
        for entry in _read_json(path):
            cve = entry.get("cve")
            for patch in entry.get("patches") or []:
                family, ubr = _split_build(patch.get("fixedBuild"))
                kb = str(patch.get("kb") or "")
                if family is None or ubr is None or not kb.startswith("KB"):
                    continue  # .NET and other non-OS products: no build to compare
                key = (family, ubr, kb)
                first_month[key] = min(first_month.get(key, month), month)
                products[family].add(str(patch.get("os")))
                if isinstance(cve, str) and _CVE_RE.fullmatch(cve):
                    fixed_at[(family, cve)] = min(fixed_at.get((family, cve), ubr), ubr)
                    score = str(patch.get("severity") or "")
                    if score and score > severity.get(cve, ""):
                        severity[cve] = score
    current = folder / "windows-versions-current.json"
    if current.is_file():
        for row in _read_json(current):
            family, ubr = _split_build(row.get("build"))
            released = str(row.get("releaseDate") or "")
            if released:
                newest.append(released[:10])
            if family and ubr is not None and str(row.get("latestKB", "")).startswith("KB"):
                key = (family, ubr, row["latestKB"])
                first_month[key] = min(first_month.get(key, released[:7]), released[:7])
                products[family].add(str(row.get("os")))
    cves_at: dict[tuple[str, int], list[str]] = defaultdict(list)
    for (family, cve), ubr in fixed_at.items():
        cves_at[(family, ubr)].append(cve)
    families: dict[str, Any] = {}
    for (family, ubr, kb), month in sorted(first_month.items()):
        fam = families.setdefault(family, {"products": sorted(products[family]), "updates": []})
        fam["updates"].append(
            {
                "ubr": ubr,
                "kb": kb,
                "released": month,
                "cves": sorted(cves_at.pop((family, ubr), [])),
            }
        )
    if files:
        year, mon, _ = files[-1]
        newest.append(f"{year}-{mon:02d}-01")
    data = {"families": families, "cve_severity": dict(sorted(severity.items()))}
    return data, max(newest, default=None), sum(len(f["updates"]) for f in families.values())


def _split_build(value: Any) -> tuple[str | None, int | None]:
    """ "19045.7663" or "10.0.19045.7663" or "6.3.9600.22826" -> ("19045", 7663)."""
    parts = str(value or "").strip().split(".")
    if not all(p.isdigit() for p in parts):
        return None, None
    if len(parts) == 2:
        return parts[0], int(parts[1])
    if len(parts) == 4 and parts[0] in ("6", "10"):
        return parts[2], int(parts[3])
    return None, None


def parse_kev(folder: Path) -> tuple[dict[str, Any], str | None, int]:
    data = _read_json(folder / "known_exploited_vulnerabilities.json")
    vulns = {}
    for v in data.get("vulnerabilities") or []:
        cve = v.get("cveID")
        if not isinstance(cve, str):
            continue
        vulns[cve] = {
            "vendor": v.get("vendorProject"),
            "product": v.get("product"),
            "name": v.get("vulnerabilityName"),
            "added": v.get("dateAdded"),
            "due": v.get("dueDate"),
            "ransomware": v.get("knownRansomwareCampaignUse") == "Known",
        }
    released = str(data.get("dateReleased") or "")[:10] or None
    out = {
        "catalog_version": data.get("catalogVersion"),
        "released": released,
        "vulnerabilities": dict(sorted(vulns.items())),
    }
    return out, released, len(vulns)


def _ecosystem(name: str) -> str:
    """ "Ubuntu:22.04:LTS" -> "Ubuntu:22.04"; "Ubuntu:Pro:16.04:LTS" -> "Ubuntu:Pro:16.04"."""
    return name.removesuffix(":LTS")


def _osv_cves(record: dict[str, Any]) -> list[str]:
    found = set()
    for key in ("aliases", "upstream", "related"):
        for item in record.get(key) or []:
            found.update(_CVE_RE.findall(str(item)))
    found.update(_CVE_RE.findall(str(record.get("id", ""))))
    return sorted(found)


def _osv_severity(record: dict[str, Any], affected: dict[str, Any]) -> str | None:
    for sev in (affected.get("severity") or []) + (record.get("severity") or []):
        if isinstance(sev, dict) and sev.get("score"):
            return str(sev["score"])
    return None


def parse_osv(folder: Path) -> tuple[dict[str, Any], str | None, int]:
    ecosystems: dict[str, Any] = {}
    newest: list[str] = []
    kept = 0
    for path in sorted(folder.rglob("*.json")):
        record = _read_json(path)
        if not isinstance(record, dict) or "affected" not in record or record.get("withdrawn"):
            continue
        used = False
        for affected in record["affected"]:
            pkg = affected.get("package") or {}
            eco = str(pkg.get("ecosystem") or "")
            if not _OSV_ECOSYSTEMS.match(eco):
                continue
            eco = _ecosystem(eco)
            for rng in affected.get("ranges") or []:
                if rng.get("type") != "ECOSYSTEM":
                    continue
                introduced = fixed = None
                for event in rng.get("events") or []:
                    introduced = event.get("introduced", introduced)
                    fixed = event.get("fixed", fixed)
                entry = {
                    "id": record.get("id"),
                    "cves": _osv_cves(record),
                    "severity": _osv_severity(record, affected),
                    "fixed": fixed,
                    "introduced": None if introduced in (None, "0") else introduced,
                }
                target = ecosystems.setdefault(eco, {"packages": {}, "binaries": {}})
                target["packages"].setdefault(pkg.get("name"), []).append(entry)
                for binary in (affected.get("ecosystem_specific") or {}).get("binaries") or []:
                    # Debug symbol packages are never what a plant host runs: keep the data small.
                    name = binary.get("binary_name") if isinstance(binary, dict) else None
                    if name and not name.endswith("-dbgsym"):
                        target["binaries"][name] = pkg.get("name")
                used = True
        if used:
            kept += 1
            newest.append(str(record.get("modified") or "")[:10])
    for eco in ecosystems.values():
        for entries in eco["packages"].values():
            entries.sort(key=lambda e: (str(e["id"]), str(e["fixed"])))
    return {"ecosystems": ecosystems}, max(filter(None, newest), default=None), kept


_LICENSES = {
    "endoflife": "MIT (endoflife.date contributors)",
    "msrc": "MIT (ZentrixLabs/windows-version-feed, derived from MSRC CVRF)",
    "kev": "CC0 1.0 (CISA)",
    "osv": "per record source: Apache-2.0 (osv.dev), CC BY-SA 4.0 (Ubuntu), MIT (AlmaLinux)",
}


def build_files(source: Path, version: int) -> dict[str, bytes]:
    """The knowledge files from the source folder ``source`` (see module doc)."""
    source = Path(source)
    if not source.is_dir():
        raise KnowledgeError("source folder not found", path=str(source))
    parsers = {
        "endoflife": (parse_eol, "eol.json"),
        "msrc": (parse_msrc, "windows_builds.json"),
        "kev": (parse_kev, "kev.json"),
        "osv": (parse_osv, "osv.json"),
    }
    empty = {
        "eol.json": {"products": {}},
        "windows_builds.json": {"families": {}, "cve_severity": {}},
        "kev.json": {"vulnerabilities": {}, "released": None, "catalog_version": None},
        "osv.json": {"ecosystems": {}},
    }
    files: dict[str, bytes] = {}
    sources = []
    for name, (parse, out) in parsers.items():
        folder = source / name
        if not folder.is_dir():
            files[out] = _dump(empty[out])
            continue
        data, newest, records = parse(folder)
        files[out] = _dump(data)
        sources.append(
            {"name": name, "date": newest, "records": records, "license": _LICENSES[name]}
        )
    if not sources:
        raise KnowledgeError(
            "no source data (endoflife/, msrc/, kev/ or osv/ folders)", path=str(source)
        )
    dates = [s["date"] for s in sources if s["date"]]
    files["sources.json"] = _dump(
        {"version": version, "date": max(dates, default=None), "sources": sources}
    )
    return files
