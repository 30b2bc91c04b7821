"""The few commands a Windows plant host runs for a session, built for cmd.exe.

WinRM runs each command through `cmd.exe /c`. These use only cmd built-ins and tools that
every Windows since 7 / Server 2008 R2 has (mkdir, rmdir, dir, echo, ver, reg, schtasks), never
PowerShell: hardened plant hosts often block it (AppLocker, constrained language). Everything
else runs under the Python carried in the Windows kit, started by one fixed launcher that reads
its script and arguments from stdin, so no data passes through cmd's quoting rules.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import PureWindowsPath

from orchestrator.hostside import TEMP_PREFIX

NO_TEMP_DIR_RC = 99
DEFAULT_TEMP_ROOT = "C:\\Windows\\Temp"  # ADMIN$\Temp: what the SMB transfer reaches

# Characters cmd.exe would act on even inside double quotes (%VAR%, !VAR! with delayed
# expansion) or that cannot be in a Windows path at all.
_UNSAFE = re.compile(r'["%!\x00-\x1f<>|?*]')
_ABSOLUTE = re.compile(r"^[A-Za-z]:\\")

# What the probe and the cleanup record, so that the cleanup can prove nothing was left: the
# temp dir's parent, the profile, and every place a program registers itself to stay.
RUN_KEY = "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run"
REGISTRY_PLACES = (
    ("services", "HKLM\\SYSTEM\\CurrentControlSet\\Services"),
    ("registry", "HKLM\\SOFTWARE"),
    ("registry", "HKCU\\Software"),
    ("autostart", "HKLM\\" + RUN_KEY),
    ("autostart", "HKLM\\" + RUN_KEY + "Once"),
    ("autostart", "HKCU\\" + RUN_KEY),
    ("autostart", "HKCU\\" + RUN_KEY + "Once"),
)
TASKS = "scheduled tasks"

# The kit's Python reads one JSON line from stdin: the script (or None: run argv[0] as a file),
# argv and environment. Single quotes only, no %: nothing in it means anything to cmd.exe.
LAUNCHER = (
    "import json,os,runpy,sys;d=json.loads(sys.stdin.readline());"
    "os.environ.update(d['env']);sys.argv=d['argv'];"
    "runpy.run_path(sys.argv[0],run_name='__main__') if d['code'] is None "
    "else exec(compile(d['code'],'<plantsweep>','exec'),{'__name__':'__main__'})"
)


def check_temp_root(remote_tmp: str) -> str:
    """An absolute drive path without characters cmd.exe would expand; ValueError if not."""
    root = remote_tmp.rstrip("\\") if len(remote_tmp) > 3 else remote_tmp
    if not _ABSOLUTE.match(root + "\\") or _UNSAFE.search(root) or ".." in root.split("\\"):
        raise ValueError(
            f"ansible_remote_tmp {remote_tmp!r}: a Windows host needs an absolute path such as "
            f'{DEFAULT_TEMP_ROOT} without " % ! < > | ? *'
        )
    return root


def new_temp_dir(remote_tmp: str) -> str:
    return str(PureWindowsPath(check_temp_root(remote_tmp)) / (TEMP_PREFIX + secrets.token_hex(6)))


def q(path: str) -> str:
    """A path for cmd.exe: double-quoted (paths were checked for characters quoting misses)."""
    if _UNSAFE.search(path):
        raise ValueError(f"refusing a path cmd.exe would change: {path!r}")
    return f'"{path}"'


def _section(marker: str, name: str) -> str:
    return f"echo {marker} {name}"


def _snapshot(marker: str, parent: str) -> list[str]:
    """Commands that list, each under its own section, every place residue could appear."""
    parts = [_section(marker, f"dir {parent}"), f"dir /b /a {q(parent)} 2>nul"]
    parts += [_section(marker, "dir %USERPROFILE%"), 'dir /b /a "%USERPROFILE%" 2>nul']
    for kind, key in REGISTRY_PLACES:
        parts += [_section(marker, f"{kind} {key}"), f"reg query {key} 2>nul"]
    parts += [_section(marker, TASKS), "schtasks /query /fo csv /nh 2>nul"]
    return parts


def probe_command(temp_dir: str, marker: str) -> str:
    """One round trip: the facts the controller needs, the snapshot of every place checked
    later for residue, then the private temp dir (refused if the name exists: mkdir fails)."""
    parent = str(PureWindowsPath(temp_dir).parent)
    parts = _snapshot(marker, parent) + [
        _section(marker, "arch %PROCESSOR_ARCHITECTURE% %PROCESSOR_ARCHITEW6432%"),
        _section(marker, "ver"),
        "ver",
        f"mkdir {q(temp_dir)} || exit {NO_TEMP_DIR_RC}",
        _section(marker, "end"),
    ]
    return "&".join(parts)


def mkdirs_command(paths: list[str]) -> str:
    return " && ".join(f"mkdir {q(p)}" for p in paths)


def cleanup_command(temp_dir: str, marker: str) -> str:
    """Remove the temp dir (rmdir /s does not follow junctions or symlinks out of it), say if
    it is still there, and take the snapshot again."""
    parent = str(PureWindowsPath(temp_dir).parent)
    parts = [
        f"rmdir /s /q {q(temp_dir)} 2>nul",
        *_snapshot(marker, parent),
        _section(marker, "end"),
        # Last: cmd runs everything after an `if`'s command only when the condition holds.
        f"if exist {q(temp_dir)} {_section(marker, 'present')}",
    ]
    return "&".join(parts)


def undo_probe_command(temp_dir: str) -> str:
    """The probe failed after mkdir: remove the (empty) dir; say if it is still there (the
    `if` last: cmd makes the rest of the line part of its command)."""
    return f"rmdir {q(temp_dir)} 2>nul&if exist {q(temp_dir)} echo present"


def python_command(temp_dir: str, python: str) -> str:
    """Start the kit's Python in the temp dir with the launcher; the request goes to stdin."""
    return f'cd /d {q(temp_dir)} && {q(python)} -I -B -c "{LAUNCHER}"'


def python_request(argv: list[str], env: dict[str, str], code: str | None = None) -> bytes:
    return (json.dumps({"argv": argv, "env": env, "code": code}) + "\n").encode("utf-8")


def sections(output: bytes, marker: str) -> dict[str, list[str]]:
    """Marked output split into {section: lines}; cmd writes CRLF and padded echo lines."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in output.decode("utf-8", "surrogateescape").split("\n"):
        line = raw.rstrip("\r")
        if line.startswith(marker + " "):
            current = found.setdefault(line[len(marker) + 1 :].strip(), [])
        elif current is not None and line.strip():
            current.append(line.rstrip())
    return found


@dataclass(frozen=True)
class WindowsVersion:
    text: str  # "6.1.7601"
    major_minor: tuple[int, int]


_VER = re.compile(r"\[Version (\d+)\.(\d+)\.([\d.]+)\]")


def parse_ver(lines: list[str]) -> WindowsVersion | None:
    """`ver` prints "Microsoft Windows [Version 6.1.7601]" (localised outside the brackets)."""
    for line in lines:
        found = _VER.search(line)
        if found:
            major, minor, rest = found.groups()
            return WindowsVersion(f"{major}.{minor}.{rest}", (int(major), int(minor)))
    return None


def parse_arch(section_name: str) -> str:
    """The OS's CPU from "arch AMD64 %PROCESSOR_ARCHITEW6432%": a 32-bit shell on a 64-bit
    Windows sees x86 in the first and the real one in the second."""
    words = [w for w in section_name.split()[1:] if not w.startswith("%")]
    return words[-1].upper() if words else ""
