"""README.txt on the stick: the procedure for the person at the host (not an IT expert)."""

from __future__ import annotations

from typing import Any

_TEXT = """\
{title}
{underline}

Kit:       {kit_id}{name_line}
Built:     {created} by plantsweep {version}
Patterns:  {patterns}

What this is
------------
A malware scanner that runs straight from this stick on a {hosts} host that no network
reaches (or a vendor's laptop at the site gate). Nothing is installed. The scan only reads
files (log-only): nothing on the host is changed, moved or deleted.

Procedure on a Linux host
-------------------------
1. Plug the stick into the host and note where it is mounted, e.g. /media/usb
   (run `lsblk -o NAME,MOUNTPOINT` or `mount` if you are not sure).
2. Open a terminal and run, as root so that every file can be read:

       sudo sh /media/usb/plantsweep-kit/run.sh

   Use `sh` as shown: it works even when the stick is mounted noexec.
   Other scans:  sh run.sh --type full                  (all local disks)
                 sh run.sh --type folders --path /opt   (chosen folders)
                 sh run.sh --low-impact                 (weak or busy hosts)
   If no Python 3.6+ is found at the usual places, name it:
                 sh run.sh --python /opt/python3/bin/python3
3. Wait for "scan finished". It prints where the log went and its SHA-256; write the
   SHA-256 on the inspection form if your procedure asks for it.
4. Unmount the stick (umount /media/usb) before you pull it.
5. Bring the stick back to the plantsweep controller, where the engineer runs:

       plantsweep logs import /media/usb

What the Linux host sees
------------------------
- One Python 3.6+ interpreter from a fixed list of paths (never your PATH), run with -I -B.
- One private folder /tmp/plantsweep-kit.XXXXXXXXXX (mode 0700) while the scan runs. It is
  removed when the script ends, also on Ctrl-C. If the script says it could not remove it,
  remove it by hand.
- Nothing else is written on the host. The log and its .mac file are written to the
  logs/ folder of this stick.
{windows}
What is on this stick
---------------------
run.sh          the script you run (Linux)
scanner.pyz     the plantsweep scanner (Python, standard library only)
patterns.zip    the detection patterns (YARA rules, hash lists)
wheels/         YARA for the Linux host's Python (unpacked into the temp folder, never installed)
kit.key         this kit's key for the log MACs (see below)
kit.json        the kit's manifest: every file with its SHA-256
logs/           scan logs (<host>-<UTC time>.json) and their MACs (.json.mac)
{windows_files}
Before each scan, run.sh checks the scanner, the patterns and the wheels against kit.json and
refuses to run if any of them is damaged or changed.{windows_check}

Integrity of the logs (and its limit)
-------------------------------------
Each log gets a .mac file: an HMAC-SHA256 of the exact log bytes and the kit id, made with
the key in kit.key. The controller keeps the same key and refuses, on import, a log that was
edited after the scan, a log without its .mac, a log made by another kit, a log from a kit it
did not build, and (when the engineer names the host) a log of another host.
The key is on this stick: someone who can read the stick can also forge a log. Keep the
stick under the same control as the inspection forms, and build a new kit for each campaign
or after the stick was out of your hands.
"""


_WINDOWS = """
Procedure on a Windows host
---------------------------
This stick carries its own Python for Windows (nothing is installed):
{runtimes}
1. Plug the stick into the host and note its drive letter, e.g. E:
2. Open a Command Prompt as administrator (Start, type cmd, right-click "Command Prompt",
   "Run as administrator"), so that every file can be read, and run:

       E:\\plantsweep-kit\\run.cmd

   Other scans:  run.cmd --type full                       (all local disks)
                 run.cmd --type folders --path D:\\Projects (chosen folders)
                 run.cmd --low-impact                      (weak or busy hosts)
   Do not double-click run.cmd: the window would close before you can read the result.
3. Wait for "scan finished". It prints where the log went and its SHA-256.
4. Eject the stick (Safely Remove Hardware) before you pull it, and bring it back as above.

What the Windows host sees
--------------------------
- The kit's python.exe from this stick, run with -I -B: it reads no Python settings of the
  host and writes no bytecode.
- One private folder %TEMP%\\plantsweep-kit.XXXXXXXX while the scan runs. It is removed
  when the scan ends, also on Ctrl-C (cmd may then ask "Terminate batch job (Y/N)?": either
  answer is fine). Closing the window instead may leave it behind: then remove it by hand.
- Nothing else is written on the host. The log and its .mac file go to logs/ on this stick.
- Windows 7 and 8.1 hosts need the Universal C Runtime (update KB2999226, normally installed
  by Windows Update). Without it run.cmd says a DLL is missing.
"""

_WINDOWS_FILES = """\
run.cmd         the file you run (Windows): starts run_windows.py with this stick's Python
run_windows.py  the Windows procedure: checks the stick, scans, writes the log
windows/        Python and YARA for Windows, one folder per CPU ({platforms})
"""

_WINDOWS_CHECK = """
run_windows.py checks the same, plus itself and the Python for Windows it runs on."""


def _windows(windows: dict[str, dict[str, Any]]) -> dict[str, str]:
    if not windows:
        return {"windows": "", "windows_files": "", "windows_check": ""}
    runtimes = "".join(
        f"  {platform:<10} Python {info['python']}: {info['runs_on']}\n"
        for platform, info in windows.items()
    )
    return {
        "windows": _WINDOWS.format(runtimes=runtimes),
        "windows_files": _WINDOWS_FILES.format(platforms=", ".join(windows)),
        "windows_check": _WINDOWS_CHECK,
    }


def render(
    kit_id: str,
    name: str | None,
    created: str,
    version: str,
    patterns: dict[str, Any],
    windows: dict[str, dict[str, Any]] | None = None,
) -> str:
    """`windows`: platform -> {"python", "runs_on", ...} of the runtimes on the stick."""
    described = (
        f"{patterns.get('name')} version {patterns.get('version')} of {patterns.get('date')}"
    )
    title = "plantsweep offline scan kit for Linux" + (" and Windows" if windows else "") + " hosts"
    return _TEXT.format(
        title=title,
        hosts="Linux or Windows" if windows else "Linux",
        underline="=" * len(title),
        **_windows(windows or {}),
        kit_id=kit_id,
        name_line=f"\nName:      {name}" if name else "",
        created=created,
        version=version,
        patterns=described,
    )
