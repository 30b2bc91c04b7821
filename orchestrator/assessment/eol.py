"""End-of-life status of a host's operating system, from the knowledge data's eol.json.

    assess_eol({"family": "windows", "build": 19044, "edition": "EnterpriseS"}, k, today)
    -> {"status": "supported", "product": "Windows 10 Enterprise LTSC 2021",
        "cycle": "10-21h2-e-lts", "eol_date": "2027-01-12", ...}

Status (endoflife.date fields: eoas = end of mainstream/active support, eol = end of security
support, eoes = end of extended security updates, i.e. ESU / Debian LTS / Ubuntu ESM / RHEL ELS):

    supported               today <= eoas (or no eoas and today <= eol)
    extended-support-only   past eoas but not past eol (phase "extended": security updates
                            still published), or past eol but not past eoes (phase "esu":
                            security updates only through a paid or extended programme)
    end-of-life             past eol and eoes: no security updates at all
    unknown                 the OS or its cycle is not in the data (reason says why)

Windows 11 reports ProductName "Windows 10 ...": the build decides (>= 22000 is Windows 11).
Server and client share builds (14393, 17763, 26100): InstallationType / ProductName /
EditionID decide. LTSC editions (EditionID EnterpriseS, IoTEnterpriseS) map to LTSC cycles.
"""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only a type here: no bundle/crypto import for pure functions
    from orchestrator.knowledge.data import Knowledge


# Server builds -> endoflife.date windows-server cycle (LTSC releases; SAC ones by the data).
SERVER_BUILDS = {
    26100: "2025",
    20348: "2022",
    17763: "2019",
    14393: "2016",
    9600: "2012-r2",
    9200: "2012",
    7601: "2008-r2-sp1",
    7600: "2008-r2-sp1",
    6003: "2008-sp2",
    6002: "2008-sp2",
    6001: "2008-sp2",
    3790: "2003-sp2",
    2195: "2000",
}
# Pre-Windows 10 client builds -> windows cycle.
CLIENT_BUILDS = {
    2600: "5-sp3",
    6002: "6-sp2",
    6003: "6-sp2",
    7600: "7-sp1",
    7601: "7-sp1",
    9200: "8",
    9600: "8.1",
}
LTSC_NAMES = {
    "10-1507-e-lts": "Windows 10 Enterprise LTSB 2015",
    "10-1607-e-lts": "Windows 10 Enterprise LTSB 2016",
    "10-1809-e-lts": "Windows 10 Enterprise LTSC 2019",
    "10-21h2-e-lts": "Windows 10 Enterprise LTSC 2021",
    "10-21h2-iot-lts": "Windows 10 IoT Enterprise LTSC 2021",
    "11-24h2-e-lts": "Windows 11 Enterprise LTSC 2024",
    "11-24h2-iot-lts": "Windows 11 IoT Enterprise LTSC 2024",
}
# EditionID -> cycle suffix on endoflife.date ("w" Home/Pro, "e" Enterprise/Education).
_LTSC_EDITIONS = {"enterprises", "enterprisesn", "enterpriseseval", "enterprisesneval"}
_IOT_LTSC_EDITIONS = {"iotenterprises", "iotenterprisesk"}
_E_EDITIONS = {
    "enterprise",
    "enterprisen",
    "education",
    "educationn",
    "iotenterprise",
    "enterpriseeval",
    "enterpriseneval",
    "enterpriseg",
    "enterprisegn",
}
LINUX_NAMES = {
    "debian": "Debian",
    "ubuntu": "Ubuntu",
    "rhel": "Red Hat Enterprise Linux",
    "centos": "CentOS Linux",
    "centos-stream": "CentOS Stream",
    "sles": "SUSE Linux Enterprise Server",
    "almalinux": "AlmaLinux",
    "rocky": "Rocky Linux",
    "oracle": "Oracle Linux",
    "alpine": "Alpine Linux",
}
# os-release ID -> eol.json product
LINUX_PRODUCTS = {
    "debian": "debian",
    "ubuntu": "ubuntu",
    "rhel": "rhel",
    "centos": "centos",
    "sles": "sles",
    "sled": "sles",
    "almalinux": "almalinux",
    "rocky": "rocky",
    "ol": "oracle",
    "oracle": "oracle",
    "alpine": "alpine",
}


def _date(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _result(status: str, reason: str, data_date: str | None, **fields: Any) -> dict[str, Any]:
    out = {
        "status": status,
        "product": None,
        "cycle": None,
        "eol_date": None,
        "extended_until": None,
        "mainstream_until": None,
        "phase": None,
        "data_date": data_date,
        "reason": reason,
    }
    out.update(fields)
    return out


def _rows(knowledge: Knowledge, product: str) -> list[dict[str, Any]]:
    return list(knowledge.eol.get("products", {}).get(product) or [])


def _find(rows: list[dict[str, Any]], cycle: str) -> dict[str, Any] | None:
    return next((r for r in rows if r.get("cycle") == cycle), None)


def _is_server(os_info: dict[str, Any]) -> bool:
    kind = str(os_info.get("installation_type") or "").lower()
    name = str(os_info.get("product_name") or os_info.get("name") or "").lower()
    edition = str(os_info.get("edition") or "").lower()
    return kind.startswith("server") or "server" in name or edition.startswith("server")


def windows_cycle(os_info: dict[str, Any], knowledge: Knowledge) -> tuple[str, dict | None, str]:
    """(product key, eol row or None, how it was decided) for a Windows host."""
    build = _int(os_info.get("build"))
    name = str(os_info.get("product_name") or os_info.get("name") or "")
    lname = name.lower()
    edition = str(os_info.get("edition") or "").lower()
    if build is None:
        version = str(os_info.get("version") or "")
        build = {"5.1": 2600, "6.0": 6002, "6.1": 7601, "6.2": 9200, "6.3": 9600}.get(version)
        if build is None:
            return "windows", None, "no build number in the asset data"
    if "embedded" in lname or "posready" in lname or "industry" in lname:
        cycle = _embedded_cycle(lname, build)
        if cycle:
            row = _find(_rows(knowledge, "windows-embedded"), cycle)
            return "windows-embedded", row, f"embedded SKU from product name {name!r}"
    if _is_server(os_info):
        rows = _rows(knowledge, "windows-server")
        cycle = SERVER_BUILDS.get(build)
        if cycle is None:  # a Semi-Annual Channel server: match the data's build number
            row = next((r for r in rows if r.get("build") == f"10.0.{build}"), None)
            return "windows-server", row, f"server build {build}"
        return "windows-server", _find(rows, cycle), f"server build {build}"
    rows = _rows(knowledge, "windows")
    if build < 10000:
        cycle = CLIENT_BUILDS.get(build)
        return "windows", _find(rows, cycle) if cycle else None, f"client build {build}"
    candidates = [r for r in rows if r.get("build") == f"10.0.{build}"]
    if not candidates:
        return "windows", None, f"build {build} is not in the data"
    major = "11" if build >= 22000 else "10"  # Windows 11 still says "Windows 10" in its name
    by_suffix = {
        r["cycle"].split("-", 2)[2] if r["cycle"].count("-") >= 2 else "": r for r in candidates
    }
    if edition in _IOT_LTSC_EDITIONS:
        order = ["iot-lts", "e-lts"]
    elif edition in _LTSC_EDITIONS:
        order = ["e-lts"]
    elif edition in _E_EDITIONS:
        order = ["e", ""]
    else:  # Home/Pro, or unknown: the shorter (Home/Pro) servicing is the safe assumption
        order = ["w", "", "e"]
    for suffix in order:
        if suffix in by_suffix:
            how = f"Windows {major} by build {build}, edition {os_info.get('edition') or '?'}"
            return "windows", by_suffix[suffix], how
    return "windows", None, f"no {edition or 'unknown'} edition cycle for build {build}"


def _embedded_cycle(lname: str, build: int) -> str | None:
    if "posready 7" in lname:
        return "posready-7"
    if "posready" in lname:
        return "posready-2009"
    if "8.1" in lname and "industry" in lname:
        return "8.1-industry"
    if "8.1" in lname:
        return "8.1-pro"
    if build == 9200:
        return "8-standard"
    if build in (7600, 7601):
        return "standard-7-sp1"
    if build == 2600:
        if "point of service" in lname:
            return "wepos-sp3"
        return "standard-2009" if "2009" in lname else "xp-embedded-sp3"
    return None


def _product_name(product: str, row: dict[str, Any]) -> str:
    cycle = str(row.get("cycle"))
    if cycle in LTSC_NAMES:
        return LTSC_NAMES[cycle]
    label = row.get("label") or cycle
    if product == "windows":
        return f"Windows {label}"
    if product == "windows-server":
        return label if str(label).startswith("Windows") else f"Windows Server {label}"
    if product == "windows-embedded":
        return f"Windows Embedded {label}".replace("Embedded Embedded", "Embedded")
    return f"{LINUX_NAMES.get(product, product)} {label}" + (" LTS" if row.get("lts") else "")


def linux_cycle(os_info: dict[str, Any], knowledge: Knowledge) -> tuple[str, dict | None, str]:
    os_id = str(os_info.get("id") or "").lower()
    version = str(os_info.get("version_id") or "")
    name = str(os_info.get("name") or "").lower()
    product = LINUX_PRODUCTS.get(os_id)
    if os_id == "centos" and "stream" in name:
        product = "centos-stream"
    if product is None:
        return os_id or "linux", None, f"distribution {os_id or '?'} is not in the data"
    if not version:
        return product, None, "no VERSION_ID in the asset data"
    rows = _rows(knowledge, product)
    parts = version.split(".")
    # Exact ("22.04", "15.5"), then major.minor ("3.19.1" -> "3.19"), then major ("9.4" -> "9").
    for cycle in (version, ".".join(parts[:2]), parts[0]):
        row = _find(rows, cycle)
        if row:
            return product, row, f"{os_id} {version}"
    return product, None, f"{os_id} {version} is not in the data"


def status_of(row: dict[str, Any], today: date) -> tuple[str, str | None]:
    """(status, phase) of one eol.json row on ``today`` (see the module doc)."""
    eoas, eol, eoes = _date(row.get("eoas")), row.get("eol"), _date(row.get("eoes"))
    eol_date = _date(eol)
    if eol is True and eol_date is None:  # ended, date unknown
        eol_date = date.min
    if eol_date is None or today <= eol_date:
        if eoas is not None and today > eoas:
            return "extended-support-only", "extended"
        return "supported", "mainstream"
    if eoes is not None and today <= eoes:
        return "extended-support-only", "esu"
    return "end-of-life", "ended"


def assess_eol(
    os_info: dict[str, Any] | None, knowledge: Knowledge, today: date | None = None
) -> dict[str, Any]:
    """The ``eol`` section of an assessment for the asset's ``os`` dict."""
    today = today or date.today()
    data_date = knowledge.date.isoformat() if knowledge.date else None
    if not os_info:
        return _result("unknown", "no OS information in the asset data", data_date)
    family = str(os_info.get("family") or "").lower()
    if family == "windows":
        product, row, how = windows_cycle(os_info, knowledge)
    elif family == "linux":
        product, row, how = linux_cycle(os_info, knowledge)
    else:
        return _result("unknown", f"OS family {family or '?'} is not assessed", data_date)
    if row is None:
        return _result("unknown", how, data_date, product=product)
    status, phase = status_of(row, today)
    eol = row.get("eol") if isinstance(row.get("eol"), str) else None
    ends = {
        "supported": (
            f"supported: mainstream until {row.get('eoas')}, security updates until {eol}"
            if row.get("eoas") and eol and row.get("eoas") != eol
            else f"supported until {eol or row.get('eoas') or 'no announced date'}"
        ),
        "extended-support-only": (
            f"mainstream support ended {row.get('eoas')}; security updates until {eol}"
            if phase == "extended"
            else f"security support ended {eol}; extended security updates (ESU/LTS/ESM) "
            f"only, until {row.get('eoes')}"
        ),
        "end-of-life": f"end of life since {row.get('eoes') or eol}: no security updates",
    }[status]
    if row.get("curated"):
        how += " (curated row, not from endoflife.date)"
    return _result(
        status,
        f"{ends} ({how}; data of {data_date})",
        data_date,
        product=_product_name(product, row),
        cycle=row.get("cycle"),
        eol_date=eol,
        extended_until=row.get("eoes") if isinstance(row.get("eoes"), str) else None,
        mainstream_until=row.get("eoas") if isinstance(row.get("eoas"), str) else None,
        phase=phase,
    )


def major_version(version_id: str) -> str:
    match = re.match(r"\d+", version_id or "")
    return match.group(0) if match else ""
