"""`run.cmd`, the one file an operator starts from the stick on a Windows host.

A thin launcher: it picks the kit's Python runtime for the host's CPU, refuses clearly when
the stick has none for it, and hands every argument to `run_windows.py` (which holds all the
logic, see orchestrator/kit/run_windows.py), passing its exit code on. Plain cmd.exe of
Windows 7 and newer: no delayed expansion, no parenthesised blocks, every path quoted and
taken from `%~dp0` (the stick's kit folder, whatever the drive letter), ASCII only and CRLF
line endings (cmd.exe misreads labels in a batch file with bare LF line endings).

The CPU is the machine's, not the shell's: a 32-bit cmd.exe on 64-bit Windows has
PROCESSOR_ARCHITECTURE=x86 and PROCESSOR_ARCHITEW6432=AMD64. A 32-bit Python on 64-bit
Windows would see SysWOW64 in place of System32 (file system redirection), so the win32 runtime
is never used on a 64-bit host. On ARM64 the x64 runtime is started: only Windows 11 runs
x64 programs there (emulation), and that was never tested.
"""

from __future__ import annotations

from orchestrator.kit.registry import valid_kit_id
from orchestrator.kit.windows import PLATFORM_OF_ARCH

SCRIPT = "run_windows.py"  # beside run.cmd on the stick
WINDOWS_DIR = "windows"  # windows/<platform>/python/ and windows/<platform>/wheels/
# Exit code of a program whose DLL is missing (0xC0000135, STATUS_DLL_NOT_FOUND, as cmd's
# signed ERRORLEVEL): python.exe of the embeddable package without the Universal C Runtime.
DLL_NOT_FOUND = -1073741515
UCRT_UPDATE = "KB2999226"
# The x64 runtime on an ARM64 host: only under Windows 11's emulation, never tested.
EMULATED = {"ARM64": "win_amd64"}

_HEAD = """\
@echo off
rem plantsweep offline kit @KIT_ID@: scan this Windows host, write the scan log onto the stick.
rem
rem   run.cmd [--type quick or full or folders or asset] [--path DIR ...] [scanner options]
rem
rem Start it from a Command Prompt run as administrator, so that every file can be read.
rem It starts the kit's Python for this CPU, windows\\PLATFORM\\python\\python.exe, on
rem run_windows.py, which does the work and removes its temp dir; see README.txt.
rem Exit codes: those of run_windows.py; 2 also when this stick has no runtime for this CPU.
setlocal
set "PSK_ARCH=%PROCESSOR_ARCHITECTURE%"
if defined PROCESSOR_ARCHITEW6432 set "PSK_ARCH=%PROCESSOR_ARCHITEW6432%"
set "PSK_PLATFORM="
"""

# A backslash at a line's end only continues the Python string: cmd sees one line.
_TAIL = """\
if not defined PSK_PLATFORM goto unknown_cpu
if not exist "%~dp0@WINDOWS@\\%PSK_PLATFORM%\\python\\python.exe" goto no_runtime
"%~dp0@WINDOWS@\\%PSK_PLATFORM%\\python\\python.exe" -I -B "%~dp0@SCRIPT@" %*
set "PSK_RC=%ERRORLEVEL%"
if "%PSK_RC%"=="@DLL_NOT_FOUND@" goto no_ucrt
exit /b %PSK_RC%

:unknown_cpu
echo plantsweep-kit: ERROR: no runtime for a "%PSK_ARCH%" CPU: the kit has x64 and x86 only 1>&2
exit /b 2

:no_runtime
echo plantsweep-kit: ERROR: this stick has no Windows runtime for %PSK_PLATFORM%: build the kit \
with --windows %PSK_PLATFORM% 1>&2
exit /b 2

:no_ucrt
echo plantsweep-kit: ERROR: Python could not start: a DLL is missing. On Windows 7 and 8.1 \
install the Universal C Runtime update @UCRT@, then run this again 1>&2
exit /b %PSK_RC%
"""


def render(kit_id: str) -> bytes:
    """The launcher for one kit, as the bytes to write (ASCII, CRLF)."""
    if not valid_kit_id(kit_id):
        raise ValueError(f"bad kit id {kit_id!r}")
    lines = [
        f'if /I "%PSK_ARCH%"=="{arch}" set "PSK_PLATFORM={platform}"'
        for arch, platform in PLATFORM_OF_ARCH.items()
    ]
    for arch, platform in EMULATED.items():
        lines.append(f'if /I "%PSK_ARCH%"=="{arch}" set "PSK_PLATFORM={platform}"')
        lines.append(
            f'if /I "%PSK_ARCH%"=="{arch}" echo plantsweep-kit: WARNING: {arch} host: the '
            f"{platform} runtime runs only under the x64 emulation of Windows 11, never "
            "tested 1>&2"
        )
    tail = (
        _TAIL.replace("@WINDOWS@", WINDOWS_DIR)
        .replace("@SCRIPT@", SCRIPT)
        .replace("@DLL_NOT_FOUND@", str(DLL_NOT_FOUND))
        .replace("@UCRT@", UCRT_UPDATE)
    )
    text = _HEAD.replace("@KIT_ID@", kit_id) + "\n".join(lines) + "\n" + tail
    return text.replace("\n", "\r\n").encode("ascii")
