"""Windows asset collectors (agentless_scanner/asset_windows.py, winreg_reader.py) on recorded
fixtures: hand-written ``reg export`` files and command outputs for four Windows layouts
(tests/fixtures/windows_assets/README.md). No Windows machine is needed."""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
import types
from pathlib import Path

import jsonschema
import pytest

from agentless_scanner import asset_windows as aw
from agentless_scanner.winreg_reader import (
    FixtureRegistry,
    LiveRegistry,
    MissingKey,
    RegParseError,
    decode_reg_bytes,
    parse_reg,
)

sys.path.insert(0, str(Path(__file__).resolve().parent / "scanner"))
import scanner_support as S  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "windows_assets"
ALL_USERS_STARTUP = r"C:\ProgramData\Microsoft\Windows\Start Menu\Programs\StartUp"
LAYOUTS = ["win7-sp1-pro", "win10-ltsc2019", "win11-24h2-ent", "server2012r2-std"]
COMMAND_FILES = {
    "wmic": "wmic-qfe.csv",
    "powershell.exe": "powershell-qfe.csv",
    "netstat": "netstat-ano.txt",
}
NOT_FOUND = "could not run: [WinError 2] The system cannot find the file specified"

SECTION_KEYS = {"items", "count", "source", "reason"}
OS_KEYS = {
    "family",
    "name",
    "product_name",
    "edition",
    "display_version",
    "release_id",
    "version",
    "build",
    "ubr",
    "installation_type",
    "install_date",
    "csd_version",
    "kernel",
}


def registry(layout: str) -> FixtureRegistry:
    return FixtureRegistry.from_files(sorted((FIXTURES / layout).glob("*.reg")))


def recorded_runner(layout: str, calls: list | None = None):
    """Replays the layout's command outputs; a missing file is a command that does not exist."""

    def run(argv):
        if calls is not None:
            calls.append(argv[0])
        path = FIXTURES / layout / COMMAND_FILES[argv[0]]
        if not path.exists():
            return None, f"{argv[0]} {NOT_FOUND}"
        return path.read_bytes(), None

    return run


def recorded_listdir(layout: str):
    listing = json.loads((FIXTURES / layout / "startup-folders.json").read_text())

    def listdir(folder):
        if folder not in listing:
            raise FileNotFoundError(2, "No such file or directory", folder)
        return listing[folder]

    return listdir


def collect(layout: str, errors: list | None = None, **overrides) -> dict:
    errors = [] if errors is None else errors
    kwargs = {
        "registry": registry(layout),
        "run": recorded_runner(layout),
        "listdir": recorded_listdir(layout),
    }
    kwargs.update(overrides)
    return aw.collect_sections(errors, **kwargs)


def by(items: list[dict], key: str) -> dict:
    return {item[key]: item for item in items}


# -- the .reg parser ------------------------------------------------------------------------

ALL_TYPES = (
    "Windows Registry Editor Version 5.00\r\n"
    "\r\n"
    "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Test]\r\n"
    '@="default"\r\n'
    '"Plain"="C:\\\\Program Files\\\\A \\"quoted\\" name"\r\n'
    '"Dword"=dword:0000ffff\r\n'
    '"Qword"=hex(b):00,00,00,00,01,00,00,00\r\n'
    # "%SystemRoot%\x" as REG_EXPAND_SZ, wrapped the way reg.exe wraps at 80 columns
    '"Expand"=hex(2):25,00,53,00,79,00,73,00,74,00,65,00,6d,00,52,00,6f,00,6f,00,\\\r\n'
    "  74,00,25,00,5c,00,78,00,00,00\r\n"
    '"Multi"=hex(7):61,00,00,00,62,00,63,00,00,00,00,00\r\n'
    '"Binary"=hex:de,ad,\\\r\n'
    "  be,ef\r\n"
    '"Empty"=hex:\r\n'
    '"Devprop"=hex(ffff0010):00,80,3e,d5,de,b1,9d,01\r\n'
    '"Removed"=-\r\n'
    '"Tricky \\"name\\" = x"="ends with backslash\\\\"\r\n'
    "\r\n"
    "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Test\\Sub\\Deeper]\r\n"
    '"x"=dword:00000001\r\n'
)


def test_parser_reads_every_value_type():
    values = parse_reg(ALL_TYPES)["HKEY_LOCAL_MACHINE\\SOFTWARE\\Test"]
    assert values == {
        "": "default",
        "Plain": 'C:\\Program Files\\A "quoted" name',
        "Dword": 0xFFFF,
        "Qword": 1 << 32,
        "Expand": "%SystemRoot%\\x",  # not expanded, like winreg
        "Multi": ["a", "bc"],
        "Binary": b"\xde\xad\xbe\xef",
        "Empty": b"",
        "Devprop": b"\x00\x80\x3e\xd5\xde\xb1\x9d\x01",
        'Tricky "name" = x': "ends with backslash\\",
    }


@pytest.mark.parametrize(
    "encode",
    [
        lambda t: codecs.BOM_UTF16_LE + t.encode("utf-16-le"),  # reg.exe / regedit
        lambda t: codecs.BOM_UTF8 + t.encode("utf-8"),
        lambda t: t.encode("utf-8"),
    ],
    ids=["utf-16le-bom", "utf-8-bom", "utf-8"],
)
def test_parser_decodes_file_encodings(tmp_path, encode):
    path = tmp_path / "x.reg"
    path.write_bytes(encode(ALL_TYPES.replace("default", "défault")))
    reg = FixtureRegistry.from_files([path])
    assert reg.value(r"HKLM\SOFTWARE\Test", "") == "défault"
    assert reg.value(r"hklm\software\test", "MULTI") == ["a", "bc"]  # names ignore case


def test_regedit4_strings_are_ansi():
    text = 'REGEDIT4\r\n\r\n[HKEY_CURRENT_USER\\X]\r\n"E"=hex(2):25,41,25,00\r\n'
    assert parse_reg(text)["HKEY_CURRENT_USER\\X"] == {"E": "%A%"}


def test_fixture_registry_tree():
    reg = FixtureRegistry.from_text(ALL_TYPES)
    # "Sub" has no header of its own in the export, yet it is a key with a subkey.
    assert reg.subkeys(r"HKLM\SOFTWARE\Test") == ["Sub"]
    assert reg.subkeys(r"HKLM\SOFTWARE\Test\Sub") == ["Deeper"]
    assert reg.values(r"HKEY_LOCAL_MACHINE\SOFTWARE\Test\Sub") == {}
    assert reg.value(r"HKLM\SOFTWARE\Test", "missing", "dflt") == "dflt"
    assert reg.value(r"HKLM\SOFTWARE\Nope", "x", 7) == 7
    with pytest.raises(MissingKey, match=r"HKLM\\SOFTWARE\\Nope"):
        reg.subkeys(r"HKLM\SOFTWARE\Nope")
    with pytest.raises(MissingKey):
        reg.values(r"HKLM\SOFTWARE\Nope")


@pytest.mark.parametrize(
    "line, message",
    [
        ('"x"=dword:zz', "line 4"),
        ('"x"=hex:0g', "bad hex byte"),
        ('"x"=hex(q):00', "line 4"),
        ('"x"="unterminated', "must be quoted"),
        ("x=1", "quoted name"),
        ('"x"=something', "unknown data"),
    ],
)
def test_parser_rejects_bad_lines(line, message):
    with pytest.raises(RegParseError, match=message):
        parse_reg(f"Windows Registry Editor Version 5.00\r\n\r\n[HKEY_USERS\\X]\r\n{line}\r\n")


def test_fixture_files_are_reg_export_format():
    """What reg.exe writes: UTF-16LE with BOM, CRLF, the version 5 header, <= 80 columns."""
    files = sorted(FIXTURES.glob("*/*.reg"))
    assert len(files) >= 4 * 3
    hex_lines = []
    for path in files:
        raw = path.read_bytes()
        assert raw.startswith(codecs.BOM_UTF16_LE), path
        text = decode_reg_bytes(raw)
        assert text.startswith("Windows Registry Editor Version 5.00\r\n\r\n["), path
        assert "\n" not in text.replace("\r\n", ""), path
        hex_lines += [line for line in text.split("\r\n") if "=hex" in line or line[:2] == "  "]
    assert len(hex_lines) > 100 and max(len(line) for line in hex_lines) <= 80


# -- os -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layout, expected",
    [
        (
            "win7-sp1-pro",
            {
                "name": "Windows 7 Professional",
                "product_name": "Windows 7 Professional",
                "edition": "Professional",
                "display_version": None,
                "release_id": None,
                "version": "6.1",
                "build": 7601,
                "ubr": None,  # Windows 7 has no UBR value
                "installation_type": "Client",  # inferred: no InstallationType in this export
                "install_date": "2015-09-14T07:24:00Z",
                "csd_version": "Service Pack 1",
            },
        ),
        (
            "win10-ltsc2019",
            {
                "name": "Windows 10 Enterprise LTSC 2019",
                "product_name": "Windows 10 Enterprise LTSC 2019",
                "edition": "EnterpriseS",
                "display_version": "1809",  # no DisplayVersion before 20H2: ReleaseId
                "release_id": "1809",
                "version": "10.0",  # from CurrentMajor/MinorVersionNumber, not "6.3"
                "build": 17763,
                "ubr": 8755,
                "installation_type": "Client",
                "install_date": "2019-07-02T09:41:17Z",
                "csd_version": None,
            },
        ),
        (
            "win11-24h2-ent",
            {
                "name": "Windows 11 Enterprise",  # build 26100, although ProductName says 10
                "product_name": "Windows 10 Enterprise",
                "edition": "Enterprise",
                "display_version": "24H2",
                "release_id": "2009",
                "version": "10.0",
                "build": 26100,
                "ubr": 8655,
                "installation_type": "Client",
                "install_date": "2025-02-11T10:05:33Z",
                "csd_version": None,
            },
        ),
        (
            "server2012r2-std",
            {
                "name": "Windows Server 2012 R2 Standard",
                "product_name": "Windows Server 2012 R2 Standard",
                "edition": "ServerStandard",
                "display_version": None,
                "release_id": None,
                "version": "6.3",
                "build": 9600,
                "ubr": None,
                "installation_type": "Server",
                "install_date": "2016-04-19T13:22:08Z",
                "csd_version": None,
            },
        ),
    ],
)
def test_os(layout, expected):
    os_info = aw.collect_os(registry(layout))
    assert set(os_info) == OS_KEYS
    assert os_info == dict(expected, family="windows", kernel=None)


def test_windows_11_detection_only_renames_windows_10():
    reg = FixtureRegistry(
        {
            aw.CURRENT_VERSION: {
                "ProductName": "Windows Server 2025 Standard",
                "CurrentBuildNumber": "26100",
                "InstallationType": "Server",
            }
        }
    )
    assert aw.collect_os(reg)["name"] == "Windows Server 2025 Standard"


# -- hardware -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layout, cpu, threads, vendor, product, bios",
    [
        (
            "win7-sp1-pro",
            "Intel(R) Core(TM) i5-4570 CPU @ 3.20GHz",
            4,
            "Siemens AG",
            "SIMATIC IPC547E",
            "V18.01.06",
        ),
        (
            "win10-ltsc2019",
            "Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz",
            12,
            "Dell Inc.",
            "OptiPlex 7060",
            "1.27.0",
        ),
        (
            "win11-24h2-ent",
            "13th Gen Intel(R) Core(TM) i7-1365U",
            12,
            "LENOVO",
            "21HDCTO1WW",
            "R2FET59W (1.39 )",
        ),
        (
            "server2012r2-std",
            "Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz",
            4,
            "VMware, Inc.",
            "VMware Virtual Platform",
            "6.00",
        ),
    ],
)
def test_hardware(layout, cpu, threads, vendor, product, bios):
    hw = aw.collect_hardware(registry(layout))
    assert hw["cpu_model"] == cpu
    assert hw["cpu_threads"] == threads
    assert (hw["vendor"], hw["product"], hw["bios_version"]) == (vendor, product, bios)
    assert hw["cpu_cores"] is hw["memory_bytes"] is hw["serial"] is None
    assert hw["disks"] == []


def test_cpu_name_padding_is_collapsed():
    key = aw.CPU_KEY + "\\0"
    reg = FixtureRegistry({key: {"ProcessorNameString": "      Intel(R) Core(TM)2  Duo   "}})
    assert aw.collect_hardware(reg)["cpu_model"] == "Intel(R) Core(TM)2 Duo"


# -- packages -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layout, expected",
    [
        (
            "win7-sp1-pro",
            {
                "SIMATIC WinCC Runtime Advanced V15.1": ("15.01.0000", "Siemens AG", "x64"),
                "7-Zip 19.00 (x64)": ("19.00", "Igor Pavlov", "x64"),
                "Microsoft .NET Framework 4.8": ("4.8.03761", "Microsoft Corporation", "x64"),
                "Microsoft Visual C++ 2015-2022 Redistributable (x86) - 14.38.33135": (
                    "14.38.33135.0",
                    "Microsoft Corporation",
                    "x86",
                ),
                "Automation License Manager": ("6.0.5", "Siemens AG", "x86"),
            },
        ),
        (
            "win10-ltsc2019",
            {
                "SIMATIC WinCC Runtime Advanced V16": ("16.00.0000", "Siemens AG", "x64"),
                "Totally Integrated Automation Portal V16": ("16.00.0000", "Siemens AG", "x64"),
                "Notepad++ (64-bit x64)": ("7.8.9", "Notepad++ Team", "x64"),
                "Microsoft Visual C++ 2015-2022 Redistributable (x86) - 14.38.33135": (
                    "14.38.33135.0",
                    "Microsoft Corporation",
                    "x86",
                ),
                "Wireshark 3.6.24 (32-bit)": (
                    "3.6.24",
                    "The Wireshark developer community, https://www.wireshark.org",
                    "x86",
                ),
            },
        ),
        (
            "win11-24h2-ent",
            {
                "Totally Integrated Automation Portal V18": ("18.00.0000", "Siemens AG", "x64"),
                "Wireshark 4.2.5 x64": (
                    "4.2.5",
                    "The Wireshark developer community, https://www.wireshark.org",
                    "x64",
                ),
                "Microsoft Edge": ("142.0.3595.94", "Microsoft Corporation", "x86"),
                "Microsoft Visual C++ 2015-2022 Redistributable (x86) - 14.40.33810": (
                    "14.40.33810.0",
                    "Microsoft Corporation",
                    "x86",
                ),
            },
        ),
        (
            "server2012r2-std",
            {
                "SIMATIC WinCC V7.5": ("7.5.2.0", "Siemens AG", "x64"),
                "Microsoft SQL Server 2014 (64-bit)": (None, "Microsoft Corporation", "x64"),
                "VMware Tools": ("12.3.5.22544099", "VMware, Inc.", "x64"),
                "Microsoft Visual C++ 2015-2022 Redistributable (x86) - 14.38.33135": (
                    "14.38.33135.0",
                    "Microsoft Corporation",
                    "x86",
                ),
                "SIMATIC WinCC/WebNavigator Client": ("7.5.2.0", "Siemens AG", "x86"),
            },
        ),
    ],
)
def test_packages(layout, expected):
    section = aw.collect_packages(registry(layout))
    assert section["manager"] == "windows-uninstall"
    assert section["reason"] is None and section["source"] == "registry"
    found = {i["name"]: (i["version"], i["vendor"], i["arch"]) for i in section["items"]}
    # Exactly these: no SystemComponent=1 runtimes, no updates (ParentKeyName), no empty keys.
    assert found == expected
    assert section["count"] == len(expected)
    assert all(i["source"] is None for i in section["items"])


def test_package_fields_and_dates():
    items = by(aw.collect_packages(registry("win7-sp1-pro"))["items"], "name")
    wincc = items["SIMATIC WinCC Runtime Advanced V15.1"]
    assert wincc["install_date"] == "2019-04-12"  # InstallDate "20190412"
    assert items["7-Zip 19.00 (x64)"]["install_date"] is None
    assert set(wincc) == {"name", "version", "vendor", "install_date", "arch", "source"}


def test_packages_on_32_bit_windows_are_x86_without_wow6432node():
    reg = FixtureRegistry(
        {
            aw.ENVIRONMENT: {"PROCESSOR_ARCHITECTURE": "x86"},
            aw.UNINSTALL_64 + r"\App": {"DisplayName": "HMI", "DisplayVersion": "1.0"},
        }
    )
    section = aw.collect_packages(reg)
    assert [(i["name"], i["arch"]) for i in section["items"]] == [("HMI", "x86")]


# -- patches --------------------------------------------------------------------------------


def test_patches_win7_wmic_dates_normalised_and_deduplicated():
    section = aw.collect_patches(registry("win7-sp1-pro"), recorded_runner("win7-sp1-pro"))
    assert section["source"] == "wmic qfe" and section["reason"] is None
    items = by(section["items"], "id")
    assert items["KB4534310"] == {
        "id": "KB4534310",
        "installed_on": "2020-01-15",  # wmic's 1/15/2020
        "description": "Security Update",
    }
    assert items["KB976902"]["installed_on"] == "2010-11-21"
    assert items["KB2534111"]["installed_on"] is None  # wmic printed no date
    # KB4474419 appears twice in the output (once without a date): one item, with the date.
    assert items["KB4474419"]["installed_on"] == "2019-10-09"
    assert section["count"] == len(section["items"]) == 7


@pytest.mark.parametrize(
    "layout, source, latest",
    [
        ("win10-ltsc2019", "wmic qfe", ("KB5087538", "2026-05-13")),
        ("win11-24h2-ent", "Win32_QuickFixEngineering", ("KB5094126", "2026-06-10")),
        ("server2012r2-std", "wmic qfe", ("KB5070886", "2025-10-15")),
    ],
)
def test_patches_other_layouts(layout, source, latest):
    calls = []
    section = aw.collect_patches(registry(layout), recorded_runner(layout, calls))
    assert section["source"] == source
    newest = max(section["items"], key=lambda i: i["installed_on"])
    assert (newest["id"], newest["installed_on"]) == latest
    assert len({i["id"] for i in section["items"]}) == section["count"]
    # Windows 11 24H2 has no wmic: PowerShell is the fallback, tried only then.
    assert calls == (["wmic", "powershell.exe"] if layout == "win11-24h2-ent" else ["wmic"])


def test_patches_powershell_default_csv_with_type_line_and_us_dates():
    text = (
        "#TYPE Selected.Microsoft.Management.Infrastructure.CimInstance\r\n"
        '"Description","HotFixID","InstalledOn"\r\n'
        '"Security Update","KB5034441","1/9/2024 12:00:00 AM"\r\n'
        '"Update","kb5001716",""\r\n'
    )
    assert aw.parse_qfe_csv(text) == [
        {"id": "KB5034441", "installed_on": "2024-01-09", "description": "Security Update"},
        {"id": "KB5001716", "installed_on": None, "description": "Update"},
    ]


def test_patches_fall_back_to_component_based_servicing():
    cbs = aw.CBS_PACKAGES
    reg = FixtureRegistry(
        {
            cbs + r"\Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.8755.1.7": {
                "CurrentState": 0x70,
            },
            cbs + r"\Package_for_KB5087538~31bf3856ad364e35~amd64~~17763.8755.1.7": {
                "CurrentState": 0x70,
                # FILETIME 2026-05-13T08:00:00Z split in two DWORDs as CBS stores it
                "InstallTimeHigh": 0x01DCE2AE,
                "InstallTimeLow": 0x7F2B4000,
            },
            cbs + r"\Package_for_KB4486153~31bf3856ad364e35~amd64~~17763.1.1.0": {
                "CurrentState": 0x20,  # staged, not installed
            },
        }
    )
    section = aw.collect_patches(reg, lambda argv: (None, f"{argv[0]} {NOT_FOUND}"))
    assert section["source"] == "registry" and section["reason"] is None
    assert section["items"] == [
        {"id": "KB5087538", "installed_on": "2026-05-13", "description": None}
    ]


def test_patches_unreadable_everywhere_is_a_reason_and_an_error():
    errors = []
    sections = collect(
        "win10-ltsc2019",
        errors,
        registry=FixtureRegistry.from_text(ALL_TYPES),
        run=lambda argv: (None, f"{argv[0]} {NOT_FOUND}"),
    )
    patches = sections["patches"]
    assert patches["items"] == [] and patches["count"] == 0
    assert "wmic could not run" in patches["reason"]
    assert "powershell.exe could not run" in patches["reason"]
    assert "Component Based Servicing" in patches["reason"]
    assert {"kind": "patches", "message": patches["reason"]} in errors


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1/15/2020", "2020-01-15"),
        ("12/31/2019", "2019-12-31"),
        ("6/10/2026 12:00:00 AM", "2026-06-10"),
        ("2026-06-10", "2026-06-10"),
        ("20190412", "2019-04-12"),
        ("01d61e9b0a1c0000", "2020-04-30"),  # hex FILETIME some wmic builds print
        ("13/45/2020", None),
        ("", None),
        ("yesterday", None),
    ],
)
def test_normalize_date(text, expected):
    assert aw.normalize_date(text) == expected


# -- users, services, autostart -------------------------------------------------------------


@pytest.mark.parametrize(
    "layout, people",
    [
        ("win7-sp1-pro", {"-500": "Administrator", "-1001": "operator"}),
        ("win10-ltsc2019", {"-1001": "engineer", "-1002": "operator"}),
        ("win11-24h2-ent", {"-1104": "m.keller"}),
        ("server2012r2-std", {"-500": "Administrator", "-1005": "svc_historian"}),
    ],
)
def test_users(layout, people):
    section = aw.collect_users(registry(layout))
    found = {i["sid"]: i["name"] for i in section["items"]}
    assert found.pop("S-1-5-18") == "SYSTEM"
    assert found.pop("S-1-5-19") == "LOCAL SERVICE"
    assert found.pop("S-1-5-20") == "NETWORK SERVICE"
    assert {sid[sid.rindex("-") :]: name for sid, name in found.items()} == people
    assert all(i["disabled"] is None for i in section["items"])


@pytest.mark.parametrize(
    "layout, expected",
    [
        (
            "win7-sp1-pro",
            {
                "MpsSvc": "auto",
                "RemoteRegistry": "manual",
                "RSLinx": "auto",  # interactive own-process service (0x110)
                "Schedule": "auto",
            },
        ),
        (
            "win10-ltsc2019",
            {
                "RemoteRegistry": "disabled",
                "Schedule": "auto",
                "SIMATIC HMI RT Advanced": "manual",
                "WinRM": "manual",
            },
        ),
        (
            "win11-24h2-ent",
            {
                "Schedule": "auto",
                "WinRM": "auto",
                "Siemens.Automation.ObjectFrame.FileStorage.Server": "manual",
            },
        ),
        (
            "server2012r2-std",
            {
                "MSSQLSERVER": "auto",
                "RemoteRegistry": "auto",
                "TermService": "manual",
                "VMTools": "auto",
            },
        ),
    ],
)
def test_services(layout, expected):
    section = aw.collect_services(registry(layout))
    # Drivers (Type 1: Tcpip, USBSTOR, vmci) and per-user templates (0x60) are not listed.
    assert {i["name"]: i["start_mode"] for i in section["items"]} == expected


def test_service_fields():
    items = by(aw.collect_services(registry("server2012r2-std"))["items"], "name")
    assert items["MSSQLSERVER"] == {
        "name": "MSSQLSERVER",
        "display_name": "SQL Server (MSSQLSERVER)",
        "state": None,
        "start_mode": "auto",
        "path": '"C:\\Program Files\\Microsoft SQL Server\\MSSQL12.MSSQLSERVER\\MSSQL\\Binn\\'
        'sqlservr.exe" -sMSSQLSERVER',
    }
    # ImagePath as REG_EXPAND_SZ (hex(2) in the export) stays unexpanded
    assert items["TermService"]["path"] == r"%SystemRoot%\System32\svchost.exe -k NetworkService"


def test_autostart_win7():
    section = aw.collect_autostart(registry("win7-sp1-pro"), recorded_listdir("win7-sp1-pro"))
    found = [(i["location"], i["name"]) for i in section["items"]]
    assert found == [
        (r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run", "IAStorIcon"),
        (r"HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Run", "SunJavaUpdateSched"),
        (r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run", "HmiStart"),
        (ALL_USERS_STARTUP, "WinCC RT Start.lnk"),  # desktop.ini left out
    ]
    assert section["items"][-1]["command"] == ALL_USERS_STARTUP + r"\WinCC RT Start.lnk"
    assert section["items"][2]["command"] == r"C:\HMI\start_runtime.cmd"


@pytest.mark.parametrize(
    "layout, expected",
    [
        (
            "win10-ltsc2019",
            [
                (r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run", "SecurityHealth"),
                (
                    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\RunOnce",
                    "Delete Cached Update Binary",
                ),
                (
                    r"HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Run",
                    "SIMATIC HMI Loader",
                ),
                (
                    r"C:\Users\engineer\AppData\Roaming\Microsoft\Windows\Start Menu\Programs"
                    r"\Startup",
                    "TIA Portal V16.lnk",
                ),
            ],
        ),
        (
            "win11-24h2-ent",
            [
                (r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run", "SecurityHealth"),
                (r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run", "OneDrive"),
            ],
        ),
        (
            "server2012r2-std",
            [(r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run", "VMware User Process")],
        ),
    ],
)
def test_autostart_other_layouts(layout, expected):
    section = aw.collect_autostart(registry(layout), recorded_listdir(layout))
    assert [(i["location"], i["name"]) for i in section["items"]] == expected
    commands = {i["name"]: i["command"] for i in section["items"]}
    if "SecurityHealth" in commands:  # REG_EXPAND_SZ (hex(2)) value, not expanded
        assert commands["SecurityHealth"] == r"%windir%\system32\SecurityHealthSystray.exe"


# -- USB ------------------------------------------------------------------------------------


def test_usb_win7_usbstor_linked_to_usb_ids():
    items = aw.collect_usb(registry("win7-sp1-pro"))["items"]
    assert items == [
        {
            "vendor_id": "0781",
            "product_id": "5567",
            "vendor": "SanDisk",
            "product": "Cruzer Blade",
            "serial": "4C530001230412116082",
            "first_seen": None,  # Windows 7 export has no device property dates
            "last_seen": None,
            "source": "USBSTOR",
        },
        {
            # ROOT_HUB20 and the &MI_00 interface are not devices of their own
            "vendor_id": "046d",
            "product_id": "c31c",
            "vendor": None,  # "(Standard USB Host Controller)" is the driver, not the maker
            "product": "USB Composite Device",
            "serial": None,  # 6&2f3c7b1b&0&4 is made up by Windows
            "first_seen": None,
            "last_seen": None,
            "source": "USB",
        },
    ]


def test_usb_win10_dates_and_generated_serial():
    items = by(aw.collect_usb(registry("win10-ltsc2019"))["items"], "product")
    kingston = items["DataTraveler 3.0"]
    assert (kingston["vendor"], kingston["vendor_id"], kingston["product_id"]) == (
        "Kingston",
        "0951",
        "1666",
    )
    assert kingston["serial"] == "E0D55EA574C6E3A1C8A80F12"
    assert kingston["first_seen"] == "2025-03-04T08:12:55Z"
    assert kingston["last_seen"] == "2026-10-21T13:40:02Z"
    generic = items["Flash Disk"]
    assert (generic["vendor"], generic["serial"], generic["vendor_id"]) == ("Generic", None, None)


def test_usb_win11_and_server():
    items = aw.collect_usb(registry("win11-24h2-ent"))["items"]
    assert [(i["vendor_id"], i["product_id"], i["source"]) for i in items] == [
        ("0781", "5581", "USBSTOR"),
        ("1050", "0407", "USB"),
    ]
    assert items[0]["last_seen"] == "2026-11-20T15:27:09Z"
    assert (items[1]["first_seen"], items[1]["last_seen"]) == ("2025-02-12T08:30:00Z", None)
    server = aw.collect_usb(registry("server2012r2-std"))
    assert (server["items"], server["reason"]) == ([], None)  # a VM with only a root hub


def test_usb_windows7_property_layout():
    """Windows 7 keeps the date in ...\\0064\\00000000 "Data" (when the export has it)."""
    base = aw.USBSTOR + r"\Disk&Ven_&Prod_USB_DISK_2.0&Rev_PMAP\0701587AB29C2A14&0"
    reg = FixtureRegistry(
        {
            base: {"FriendlyName": " USB DISK 2.0 USB Device"},
            base + "\\" + aw.DEVICE_DATES + r"\0064\00000000": {
                "Type": 0x10,
                "Data": bytes.fromhex("0000056936c0d501"),
            },
        }
    )
    (item,) = aw.collect_usb(reg)["items"]
    assert (item["vendor"], item["product"]) == (None, "USB DISK 2.0")
    assert item["first_seen"] == "2020-01-01T00:00:00Z"


# -- network --------------------------------------------------------------------------------


def test_network_win7_static_and_dhcp_interfaces():
    net = aw.collect_network(registry("win7-sp1-pro"), recorded_runner("win7-sp1-pro"))
    assert net["gateways"] == [
        {"interface": "{0A6B2E35-7C34-4B51-9A2B-33C1D1A5E2F0}", "address": "10.20.3.1"},
        {"interface": "{5C1E8D3A-0B7F-4E29-8E6D-9F0A2C4B7D13}", "address": "192.168.0.1"},
    ]
    assert net["dns_servers"] == ["10.20.0.10", "10.20.0.11", "192.168.0.1"]
    assert net["addresses"] == ["10.20.3.15", "192.168.0.23"]  # the 0.0.0.0 adapter is left out
    listening = {(i["proto"], i["address"], i["port"]) for i in net["listening"]}
    assert ("tcp", "0.0.0.0", 102) in listening  # S7 / ISO-TSAP
    assert ("tcp6", "::", 445) in listening
    assert ("udp", "0.0.0.0", 161) in listening
    assert not any(i["port"] == 49158 for i in net["listening"])  # ESTABLISHED
    assert net["source"] == "registry+netstat" and net["reason"] is None


def test_network_win11_dhcp_and_german_netstat():
    net = aw.collect_network(registry("win11-24h2-ent"), recorded_runner("win11-24h2-ent"))
    assert [g["address"] for g in net["gateways"]] == ["10.40.12.1"]  # DhcpDefaultGateway
    assert net["dns_servers"] == ["10.40.0.10", "10.40.0.11"]  # space separated DhcpNameServer
    ports = [(i["proto"], i["address"], i["port"], i["pid"]) for i in net["listening"]]
    assert ("tcp", "0.0.0.0", 7680, 6112) in ports  # "ABHÖREN", not "LISTENING"
    assert ("tcp6", "::1", 49670, 3876) in ports
    assert all(i["process"] is None for i in net["listening"])
    assert 443 not in {p for _, _, p, _ in ports}


def test_listening_is_capped_like_on_linux():
    rows = "".join(
        f"  TCP    0.0.0.0:{port}    0.0.0.0:0    LISTENING    4\r\n" for port in range(1, 1102)
    )
    net = aw.collect_network(FixtureRegistry({}), lambda argv: (rows.encode(), None))
    assert len(net["listening"]) == aw.MAX_LISTENING == 1000
    assert net["listening_truncated"] is True


def test_network_without_netstat_keeps_registry_data():
    net = aw.collect_network(
        registry("server2012r2-std"), lambda argv: (None, "netstat timed out after 120s")
    )
    assert [g["address"] for g in net["gateways"]] == ["10.20.0.1"]
    assert net["listening"] == []
    assert net["reason"] == "listening ports: netstat timed out after 120s"
    assert net["source"] == "registry"


# -- failures never raise -------------------------------------------------------------------


class ExplodingRegistry:
    """Every read fails the way a broken hive or an access check might."""

    def subkeys(self, path):
        raise PermissionError(5, "Access is denied")

    values = subkeys

    def value(self, path, name, default=None):
        raise PermissionError(5, "Access is denied")


def test_a_collector_that_raises_becomes_reason_and_error():
    errors = []
    sections = collect("win10-ltsc2019", errors, registry=ExplodingRegistry())
    kinds = [e["kind"] for e in errors]
    assert kinds == [
        "os",
        "hardware",
        "packages",
        "users",
        "services",
        "autostart",
        "usb_devices",
        "network",
    ]
    assert "Access is denied" in sections["packages"]["reason"]
    assert sections["packages"]["items"] == [] and sections["packages"]["count"] == 0
    assert sections["os"] == {"family": "windows"}
    assert "Access is denied" in sections["hardware"]["reason"]
    # wmic still answered, so patches are there although the registry is unreadable
    assert sections["patches"]["source"] == "wmic qfe" and sections["patches"]["count"] == 3


def test_missing_keys_give_reasons_not_exceptions():
    errors = []
    sections = collect("win7-sp1-pro", errors, registry=FixtureRegistry({}))
    by_kind = {e["kind"]: e["message"] for e in errors}
    assert (
        by_kind["os"]
        == r"registry key not found: HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"
    )
    assert by_kind["packages"] == (
        r"registry key not found: HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall"
    )
    assert sections["services"]["reason"] == by_kind["services"]
    assert sections["usb_devices"]["reason"].startswith("registry key not found: HKLM\\SYSTEM")
    # network keeps the netstat part and says what is missing
    assert sections["network"]["listening"] and "Tcpip" in sections["network"]["reason"]
    assert "network" not in by_kind


def test_without_winreg_every_section_has_a_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "winreg", None)  # import winreg -> ImportError (Linux)
    errors = []
    sections = aw.collect_sections(
        errors, run=lambda argv: (None, f"{argv[0]} {NOT_FOUND}"), listdir=lambda f: []
    )
    assert errors[0]["kind"] == "registry"
    assert sections["packages"]["reason"].startswith("registry key not found")
    assert sections["os"] == {"family": "windows"}


# -- end to end -----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_collect_sections_end_to_end(layout):
    errors = []
    sections = collect(layout, errors)
    assert errors == []
    assert set(sections) == {
        "os",
        "hardware",
        "packages",
        "patches",
        "users",
        "groups",
        "services",
        "autostart",
        "usb_devices",
        "network",
    }
    for name in ("packages", "patches", "users", "groups", "services", "autostart", "usb_devices"):
        section = sections[name]
        assert set(section) >= SECTION_KEYS, name
        assert section["count"] == len(section["items"]), name
    for name in ("packages", "patches", "users", "services", "autostart"):
        assert sections[name]["count"] > 0 and sections[name]["reason"] is None, name
    assert sections["groups"]["reason"] == "not collected on Windows"
    assert set(sections["os"]) == OS_KEYS and sections["os"]["family"] == "windows"
    assert set(sections["network"]) == {
        "gateways",
        "dns_servers",
        "addresses",
        "listening",
        "source",
        "reason",
    }
    assert sections["network"]["listening"]
    json.dumps(sections)  # goes into the JSON scan log as is


@pytest.mark.parametrize("layout", LAYOUTS)
def test_sections_match_the_scan_log_schema(layout):
    asset_schema = S.schema()["properties"]["asset"]["properties"]
    sections = collect(layout)
    sections["os"]["id"] = "windows"  # asset.py's part of the os object (required there)
    for name, value in sections.items():
        jsonschema.validate(value, asset_schema[name])


def test_sections_merge_the_way_asset_py_merges_them():
    errors = []
    result = {"os": {"name": "Windows", "kernel": "10", "source": "platform"}}
    sections = collect("win11-24h2-ent", errors)
    result["os"].update(sections.pop("os", {}))
    result.update(sections)
    assert result["os"]["name"] == "Windows 11 Enterprise"
    assert result["os"]["source"] == "platform"  # untouched keys survive
    assert result["patches"]["source"] == "Win32_QuickFixEngineering"


# -- live reader (with a stand-in for winreg) and Python 3.6 --------------------------------


def fake_winreg(tree):
    """A winreg stand-in over {path: ({value: data}, [subkeys])} to check LiveRegistry's calls."""
    opened = []

    class Key:
        def __init__(self, path):
            self.path = path

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def open_key(root, sub, reserved, access):
        opened.append((root, sub, access))
        if sub not in tree:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        return Key(sub)

    def enum_key(key, i):
        names = tree[key.path][1]
        if i >= len(names):
            raise OSError(259, "No more data is available")
        return names[i]

    def enum_value(key, i):
        items = list(tree[key.path][0].items())
        if i >= len(items):
            raise OSError(259, "No more data is available")
        return items[i][0], items[i][1], 1

    def query_value(key, name):
        if name not in tree[key.path][0]:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        return tree[key.path][0][name], 1

    module = types.SimpleNamespace(
        HKEY_LOCAL_MACHINE="HKLM-handle",
        HKEY_CURRENT_USER="HKCU-handle",
        KEY_READ=0x20019,
        KEY_WOW64_64KEY=0x0100,
        OpenKey=open_key,
        EnumKey=enum_key,
        EnumValue=enum_value,
        QueryValueEx=query_value,
    )
    return module, opened


def test_live_registry_reads_the_64_bit_view():
    tree = {
        r"SOFTWARE\Microsoft\Windows NT\CurrentVersion": (
            {"ProductName": "Windows 10 Enterprise", "CurrentBuildNumber": "26100", "UBR": 8655},
            [],
        ),
        r"SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall": ({}, ["B", "a"]),
    }
    module, opened = fake_winreg(tree)
    reg = LiveRegistry(module)
    assert aw.collect_os(reg)["name"] == "Windows 11 Enterprise"
    assert reg.subkeys(aw.UNINSTALL_32) == ["a", "B"]
    assert reg.value(aw.CURRENT_VERSION, "Missing", "d") == "d"
    with pytest.raises(MissingKey):
        reg.values(r"HKLM\SOFTWARE\Nope")
    assert reg.value(r"HKCU\Nope", "x") is None
    assert {access for _, _, access in opened} == {0x20019 | 0x0100}
    assert opened[-1][0] == "HKCU-handle"


def test_payload_module_runs_under_python36():
    """The parser and the collectors run on the oldest Python the Windows kit may carry."""
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(S.REPO)!r})\n"
        "from agentless_scanner import asset_windows as aw\n"
        "from agentless_scanner.winreg_reader import FixtureRegistry\n"
        f"base = {str(FIXTURES / 'win11-24h2-ent')!r}\n"
        "reg = FixtureRegistry.from_files([base + '/software.reg', base + '/system.reg'])\n"
        "def run(argv):\n"
        "    name = {'netstat': 'netstat-ano.txt', 'powershell.exe': 'powershell-qfe.csv'}\n"
        "    if argv[0] not in name:\n"
        "        return None, 'not found'\n"
        "    with open(base + '/' + name[argv[0]], 'rb') as fh:\n"
        "        return fh.read(), None\n"
        "errors = []\n"
        "s = aw.collect_sections(errors, registry=reg, run=run, listdir=lambda f: [])\n"
        "print(json.dumps([sys.version_info[:2], s['os']['name'], s['os']['ubr'],\n"
        "                  s['patches']['count'], s['usb_devices']['items'][0]['last_seen'],\n"
        "                  [e['kind'] for e in errors]]))\n"
    )
    proc = subprocess.run(
        [S.PY36, "-I", "-B", "-c", code], capture_output=True, text=True, cwd=str(S.REPO)
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [
        [3, 6],
        "Windows 11 Enterprise",
        8655,
        2,
        "2026-11-20T15:27:09Z",
        ["hardware"],  # hardware.reg was not loaded
    ]


def test_a_failing_command_reports_its_last_stderr_line_decoded_like_windows_output():
    # UTF-16LE with a BOM, as Windows tools write it: decode_output reads it for the message.
    script = r"printf '\377\376o\000n\000e\000\n\000l\000a\000s\000t\000' >&2; exit 4"
    out, error = aw.run_command(["sh", "-c", script])
    assert out is None and error == "sh exited with 4: last"
    out, error = aw.run_command(["sh", "-c", "printf 'ok'"])
    assert (out, error) == (b"ok", None)
    out, error = aw.run_command(["sleep", "5"], timeout=0.2)
    assert out is None and error == "sleep timed out after 0.2s"
