"""Assessment over the real shipped knowledge data (orchestrator/data/knowledge, built from
../shared/data): end of life, patch level with supersedence by build, vulnerabilities from
OSV and MSRC with KEV flags, the risk summary, and package version ordering."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from datetime import date
from typing import Any

import pytest

from orchestrator.assessment import assess, assess_eol, compare_dpkg, compare_rpm
from orchestrator.knowledge import Knowledge, load_default

TODAY = date(2026, 11, 26)


@pytest.fixture(scope="module")
def k() -> Knowledge:
    return load_default()


def win(build: int, ubr: int | None = None, **os: Any) -> dict[str, Any]:
    return {"family": "windows", "version": "10.0", "build": build, "ubr": ubr, **os}


@pytest.mark.parametrize(
    ("os_info", "product", "eol_date"),
    [
        (dict(win(2600), version="5.1", product_name="Microsoft Windows XP",
              csd_version="Service Pack 3"), "Windows XP SP3", "2014-04-08"),
        (dict(win(7601), version="6.1", product_name="Windows 7 Professional",
              edition="Professional", installation_type="Client",
              csd_version="Service Pack 1"), "Windows 7 SP1", "2020-01-14"),
        (dict(win(9600), version="6.3", product_name="Windows Server 2012 R2 Standard",
              edition="ServerStandard", installation_type="Server"),
         "Windows Server 2012 R2", "2023-10-10"),
    ],
)  # fmt: skip
def test_old_windows_is_end_of_life_with_its_date(k, os_info, product, eol_date):
    eol = assess_eol(os_info, k, TODAY)
    assert (eol["status"], eol["product"], eol["eol_date"]) == ("end-of-life", product, eol_date)
    assert eol["data_date"] == k.date.isoformat()
    report = assess({"os": os_info}, k, today=TODAY)
    assert report["risk"]["level"] == "high"
    assert report["risk"]["reasons"][0].startswith(f"end-of-life OS ({product}")


def test_server_2012_r2_esu_ended_too(k):
    eol = assess_eol(win(9600, installation_type="Server", version="6.3"), k, TODAY)
    assert eol["extended_until"] == "2026-10-13"  # the paid ESU years, over by TODAY
    during_esu = assess_eol(win(9600, installation_type="Server"), k, date(2025, 1, 1))
    assert (during_esu["status"], during_esu["phase"]) == ("extended-support-only", "esu")


def test_ltsc_2021_is_supported_until_its_date_then_end_of_life(k):
    ltsc = win(19044, 5854, product_name="Windows 10 Enterprise LTSC 2021", edition="EnterpriseS",
               display_version="21H2", installation_type="Client")  # fmt: skip
    before = assess_eol(ltsc, k, TODAY)
    assert (before["status"], before["cycle"], before["eol_date"]) == (
        "supported",
        "10-21h2-e-lts",
        "2027-01-12",
    )
    assert before["product"] == "Windows 10 Enterprise LTSC 2021"
    assert assess_eol(ltsc, k, date(2027, 1, 12))["status"] == "supported"
    assert assess_eol(ltsc, k, date(2027, 1, 13))["status"] == "end-of-life"
    # The same build as plain Enterprise 21H2 (not LTSC) ended in 2024.
    plain = assess_eol(dict(ltsc, edition="Enterprise"), k, TODAY)
    assert (plain["status"], plain["cycle"]) == ("end-of-life", "10-21h2-e")
    # IoT Enterprise LTSC 2021 runs to 2032.
    iot = assess_eol(dict(ltsc, edition="IoTEnterpriseS"), k, TODAY)
    assert (iot["cycle"], iot["eol_date"]) == ("10-21h2-iot-lts", "2032-01-13")


def test_windows_11_is_told_by_build_not_by_product_name(k):
    host = win(26100, 4061, product_name="Windows 10 Enterprise", edition="Enterprise",
               display_version="24H2", installation_type="Client")  # fmt: skip
    eol = assess_eol(host, k, TODAY)
    assert eol["cycle"] == "11-24h2-e" and eol["product"].startswith("Windows 11")
    assert (eol["status"], eol["eol_date"]) == ("supported", "2027-10-12")
    # The same build on a server is Windows Server 2025, and as LTSC 2024 runs to 2029.
    server = assess_eol(dict(host, installation_type="Server", product_name="Windows Server "
                             "2025 Standard", edition="ServerStandard"), k, TODAY)  # fmt: skip
    assert (server["product"], server["eol_date"]) == ("Windows Server 2025", "2034-11-14")
    ltsc = assess_eol(dict(host, edition="EnterpriseS"), k, TODAY)
    assert ltsc["product"] == "Windows 11 Enterprise LTSC 2024"


def test_newer_cumulative_update_supersedes_a_required_kb(k):
    required = ["KB5062554"]  # July 2025 CU of 19044/19045, shipped in build 6093
    newer = {"os": win(19045, 6332), "patches": {"items": [{"id": "KB5065429"}]}}
    report = assess(newer, k, required_patches=required, today=TODAY)
    level = report["patch_level"]
    assert level["missing_required"] == []
    assert level["required"][0]["status"] == "superseded"
    assert level["latest_installed"] == {"kb": "KB5065429", "build": "19045.6332",
                                         "released": "2025-09"}  # fmt: skip
    assert level["latest_available"]["kb"] == "KB5120249"
    assert level["months_behind"] == 11  # 2025-09 -> 2026-08

    older = {"os": win(19045, 5854), "patches": {"items": [{"id": "KB5058379"}]}}
    old_level = assess(older, k, required_patches=required, today=TODAY)["patch_level"]
    assert old_level["missing_required"] == ["KB5062554"]
    assert old_level["months_behind"] == 14


def test_required_kb_unknown_to_the_data_or_for_another_build(k):
    host = {"os": win(19045, 7663), "patches": {"items": [{"id": "KB5034441"}]}}
    level = assess(host, k, required_patches=["KB5034441", "KB5000001", "KB5120238"],
                   today=TODAY)["patch_level"]  # fmt: skip
    by_kb = {r["kb"]: r["status"] for r in level["required"]}
    assert by_kb == {"KB5034441": "installed", "KB5000001": "missing",
                     "KB5120238": "not-applicable"}  # fmt: skip
    assert level["missing_required"] == ["KB5000001"]
    assert level["months_behind"] == 0


def test_windows_7_without_ubr_falls_back_to_the_hotfix_list(k):
    host = {"os": win(7601, None, version="6.1", product_name="Windows 7 Enterprise"),
            "patches": {"items": [{"id": "KB4534310", "installed_on": "2020-01-20"},
                                  {"id": "KB4490628", "installed_on": "2019-03-20"}]}}  # fmt: skip
    level = assess(host, k, required_patches=["KB4534310", "KB4536952"], today=TODAY)["patch_level"]
    assert level["latest_installed"]["kb"] == "KB4534310"
    assert level["missing_required"] == ["KB4536952"]
    assert "supersedence cannot be checked" in level["reason"]


def test_windows_cves_above_the_build_and_kev_flag(k):
    report = assess({"os": win(19045, 5854)}, k, today=TODAY)
    vulns = {v["cve"]: v for v in report["vulnerabilities"]}
    webdav = vulns["CVE-2025-33053"]  # fixed in June 2025 (19045.5965), in the KEV catalog
    assert (webdav["kev"], webdav["fixed"], webdav["source_id"]) == (
        True,
        "19045.5965",
        "KB5060533",
    )
    assert any("CISA KEV" in r for r in report["risk"]["reasons"])
    current = assess({"os": win(19045, 7663)}, k, today=TODAY)
    assert current["vulnerabilities"] == []


def deb(pkgs: list[tuple[str, str, str | None]], os_id: str = "debian", version: str = "7"):
    items = [{"name": n, "version": v, "arch": "amd64", "source": s} for n, v, s in pkgs]
    return {"os": {"family": "linux", "id": os_id, "version_id": version},
            "packages": {"manager": "dpkg", "items": items}}  # fmt: skip


def test_debian_package_below_the_osv_fix_reports_the_cve(k):
    old = "1.2.1-2.2+wheezy2"
    report = assess(deb([("nginx-full", old, "nginx"), ("nginx-common", old, "nginx")]), k,
                    today=TODAY)  # fmt: skip
    assert [(v["cve"], v["package"], v["fixed"], v["source_id"]) for v in report["vulnerabilities"]
            ] == [("CVE-2014-3616", "nginx", "1.2.1-2.2+wheezy3", "DSA-3029-1")]  # fmt: skip
    assert report["vulnerabilities"][0]["binaries"] == ["nginx-full", "nginx-common"]
    assert report["data"] == {"version": k.version, "date": k.date.isoformat(),
                              "origin": "default"}  # fmt: skip
    for fixed in ("1.2.1-2.2+wheezy3", "1.2.1-2.2+wheezy3.1", "1:1.0-1"):
        assert (
            assess(deb([("nginx-full", fixed, "nginx")]), k, today=TODAY)["vulnerabilities"] == []
        ), fixed


def test_ubuntu_usn_by_source_and_by_binary_name_with_kev(k):
    host = deb([("openssh-server", "1:8.9p1-3ubuntu0.6", "openssh"),
                ("libc6", "2.35-0ubuntu3.1", None),  # no Source field: found by binary name
                ("curl", "7.81.0-1ubuntu1.14", "curl")], "ubuntu", "22.04")  # fmt: skip
    vulns = {v["cve"]: v for v in assess(host, k, today=TODAY)["vulnerabilities"]}
    assert set(vulns) == {"CVE-2024-6387", "CVE-2023-4911", "CVE-2023-4527"}  # curl is fixed
    assert vulns["CVE-2024-6387"]["source_id"] == "USN-6859-1"
    assert vulns["CVE-2023-4911"]["kev"] is True  # "Looney Tunables" is in the KEV catalog
    assert vulns["CVE-2023-4527"]["kev"] is False
    assert vulns["CVE-2023-4911"]["package"] == "glibc"
    patched = deb([("openssh-server", "1:8.9p1-3ubuntu0.10", "openssh")], "ubuntu", "22.04")
    assert assess(patched, k, today=TODAY)["vulnerabilities"] == []
    other_release = deb([("openssh-server", "1:8.9p1-3ubuntu0.6", "openssh")], "ubuntu", "20.04")
    assert assess(other_release, k, today=TODAY)["vulnerabilities"] == []


def test_almalinux_rpm_versions(k):
    host = {"os": {"family": "linux", "id": "almalinux", "version_id": "9.6"},
            "packages": {"manager": "rpm", "items": [
                {"name": "python3.11", "version": "3.11.13-8.el9_8", "source": None}]}}  # fmt: skip
    cves = {v["cve"] for v in assess(host, k, today=TODAY)["vulnerabilities"]}
    assert {"CVE-2026-4519", "CVE-2026-6100", "CVE-2026-4786"} <= cves
    host["packages"]["items"][0]["version"] = "3.11.13-9.el9_8"
    still = {v["source_id"] for v in assess(host, k, today=TODAY)["vulnerabilities"]}
    assert "ALSA-2026:19175" not in still


def test_linux_end_of_life_phases(k):
    def status(os_id: str, version: str, when: date = TODAY) -> tuple[str, str | None]:
        eol = assess_eol({"family": "linux", "id": os_id, "version_id": version}, k, when)
        return eol["status"], eol["phase"]

    assert status("debian", "12") == ("extended-support-only", "esu")  # Debian LTS
    assert status("debian", "11") == ("end-of-life", "ended")
    assert status("debian", "13") == ("supported", "mainstream")
    assert status("ubuntu", "18.04") == ("extended-support-only", "esu")  # ESM
    assert status("rhel", "9.4") == ("supported", "mainstream")
    assert status("centos", "7") == ("end-of-life", "ended")
    assert status("alpine", "3.19.1") == ("end-of-life", "ended")


def test_missing_asset_keys_say_what_was_not_assessed(k):
    empty = assess({}, k, today=TODAY)
    assert empty["eol"]["status"] == "unknown" and empty["risk"]["level"] == "unknown"
    no_build = assess({"os": {"family": "windows"}}, k, today=TODAY)
    assert no_build["eol"]["status"] == "unknown"
    assert any("no build number" in n for n in no_build["not_assessed"])
    no_packages = assess({"os": {"family": "linux", "id": "debian", "version_id": "13"}}, k,
                         today=TODAY)  # fmt: skip
    assert "no package list in the asset data" in no_packages["not_assessed"]
    assert no_packages["eol"]["status"] == "supported"


DPKG_CASES = [
    ("1.0", "1.0-0", 0),  # no revision means revision 0
    ("1:0.9", "1.0", 1),  # the epoch wins
    ("0:1.0", "1.0", 0),
    ("1.0~rc1", "1.0", -1),  # '~' sorts before the end
    ("1.0~~", "1.0~", -1),
    ("1.0", "1.0+b1", -1),
    ("1.0a", "1.0", 1),  # letters sort after the end
    ("1.0-1", "1.0-1ubuntu0.1", -1),
    ("2.35-0ubuntu3.10", "2.35-0ubuntu3.4", 1),  # numbers compare as numbers
    ("1.01", "1.1", 0),  # leading zeros do not count
    ("1.2.1-2.2+wheezy3", "1.2.1-2.2+wheezy2", 1),
    ("1.2-3-4", "1.2-3-5", -1),  # the revision is after the last hyphen
    ("1.0-1.1", "1.0-1+deb12u1", 1),  # non-letters in ASCII order: '.' after '+'
    ("1.0-1+deb12u1", "1.0-1", 1),
]


@pytest.mark.parametrize(("a", "b", "expected"), DPKG_CASES)
def test_dpkg_version_order(a, b, expected):
    assert compare_dpkg(a, b) == expected
    assert compare_dpkg(b, a) == -expected


def test_dpkg_order_matches_the_real_dpkg():
    dpkg = shutil.which("dpkg")
    assert dpkg, "dpkg is part of every Debian system this runs on"
    versions = sorted({v for a, b, _ in DPKG_CASES for v in (a, b)})
    for a, b in itertools.combinations(versions, 2):
        lt = subprocess.run([dpkg, "--compare-versions", a, "lt", b]).returncode == 0
        gt = subprocess.run([dpkg, "--compare-versions", a, "gt", b]).returncode == 0
        assert compare_dpkg(a, b) == (-1 if lt else 1 if gt else 0), (a, b)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.0", "1.0", 0),
        ("2.0.1", "2.0", 1),
        ("1.0~rc1", "1.0", -1),
        ("1.0^git1", "1.0", 1),
        ("1.0^git1", "1.0.1", -1),
        ("5.5p1", "5.5p10", -1),
        ("1.01", "1.1", 0),
        ("a", "1", -1),  # a numeric segment is newer than an alphabetic one
        ("1:1.0-1", "2.0-1", 1),
        ("1.9.5p2-7.el9_1.1", "1.9.5p2-7.el9", 1),
        ("3.11.13-8.el9_8", "3.11.13-9.el9_8", -1),
        ("1.0", "1.0-5", 0),  # no release on one side: the versions decide
    ],
)
def test_rpm_version_order(a, b, expected):
    assert compare_rpm(a, b) == expected
    assert compare_rpm(b, a) == -expected
