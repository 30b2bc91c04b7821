"""A simulated Windows host: the WinRM test server (tests/winrm_server) inside a Samba host's
namespaces, so one host answers WinRM on 5985/5986 and SMB on 445 like a Windows machine.

    with SambaHost(...) as smb, WinRMOnHost(smb, https=True) as winrm:
        winrm.endpoint, winrm.ca_file   # NTLM as smb.user, commands run as that user

The server runs as the same account Samba maps the logon to (plantops), with the host's
/tmp, /home and hostname. Its commands run under /bin/sh by default (hosts that use it are
inventoried with ``ansible_shell_type: sh``), or, with ``WinRMOnHost(smb, shell="cmd")``,
under the server's cmd.exe emulator (tests/winrm_server/cmd_shell.py, the default
``ansible_shell_type: cmd``) on the Samba host's C: drive, /srv/win (C$; ADMIN$ is
C:\\Windows), with Windows' environment variables (USERPROFILE=C:\\Users\\plantops,
SystemRoot, TEMP, PROCESSOR_ARCHITECTURE=AMD64, COMPUTERNAME, ...). prepare_windows_drive()
gives that drive a profile, temp folders, and the emulated registry and task list
(C:\\.emulated) with a few realistic entries, all owned by the account.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

from tests.winrm_server.cmd_shell import HIDDEN_PYTHONPATH_VAR

from .proc import HarnessError
from .samba import C_DRIVE, SambaHost

REPO = Path(__file__).resolve().parents[2]
SITE_PACKAGES = REPO / ".venv" / "lib" / "python3.11" / "site-packages"
SHELLS = ("sh", "cmd")
HOST_PYTHON = "/usr/bin/python3"  # what the emulated python.exe runs inside the host

# The emulated registry (subkeys are folders, values are files "TYPE\nDATA") and task list.
REGISTRY_SEED: dict[str, dict[str, tuple[str, str]]] = {
    "HKEY_LOCAL_MACHINE/SOFTWARE/Microsoft/Windows/CurrentVersion/Run": {
        "VMware User Process": (
            "REG_SZ",
            '"C:\\Program Files\\VMware\\VMware Tools\\vmtoolsd.exe" -n vmusr',
        ),
    },
    "HKEY_LOCAL_MACHINE/SOFTWARE/Siemens/Automation": {},
    "HKEY_LOCAL_MACHINE/SYSTEM/CurrentControlSet/Services/Dhcp": {
        "DisplayName": ("REG_SZ", "DHCP Client"),
        "Start": ("REG_DWORD", "0x2"),
    },
    "HKEY_LOCAL_MACHINE/SYSTEM/CurrentControlSet/Services/Dnscache": {
        "DisplayName": ("REG_SZ", "DNS Client"),
        "Start": ("REG_DWORD", "0x2"),
    },
    "HKEY_LOCAL_MACHINE/SYSTEM/CurrentControlSet/Services/W32Time": {
        "DisplayName": ("REG_SZ", "Windows Time"),
        "Start": ("REG_DWORD", "0x3"),
    },
    "HKEY_CURRENT_USER/Software/Microsoft/Windows/CurrentVersion": {},
}
TASKS_SEED = (
    '"\\Microsoft\\Windows\\Defrag\\ScheduledDefrag","N/A","Ready"\r\n'
    '"\\Microsoft\\Windows\\Time Synchronization\\SynchronizeTime","N/A","Disabled"\r\n'
)


def windows_environment(user: str, computer: str, drive_c: str = C_DRIVE) -> dict[str, str]:
    """The variables a WinRM shell of `user` sees on Windows, plus the emulator's own."""
    profile = f"C:\\Users\\{user}"
    temp = f"{profile}\\AppData\\Local\\Temp"
    return {
        "ALLUSERSPROFILE": "C:\\ProgramData",
        "APPDATA": f"{profile}\\AppData\\Roaming",
        "COMPUTERNAME": computer,
        "ComSpec": "C:\\Windows\\system32\\cmd.exe",
        "HOMEDRIVE": "C:",
        "HOMEPATH": f"\\Users\\{user}",
        "LOCALAPPDATA": f"{profile}\\AppData\\Local",
        "NUMBER_OF_PROCESSORS": "2",
        "OS": "Windows_NT",
        "PATHEXT": ".COM;.EXE;.BAT;.CMD;.VBS;.VBE;.JS;.JSE;.WSF;.WSH;.MSC",
        "PROCESSOR_ARCHITECTURE": "AMD64",
        "ProgramData": "C:\\ProgramData",
        "ProgramFiles": "C:\\Program Files",
        "ProgramFiles(x86)": "C:\\Program Files (x86)",
        "PUBLIC": "C:\\Users\\Public",
        "SystemDrive": "C:",
        "SystemRoot": "C:\\Windows",
        "TEMP": temp,
        "TMP": temp,
        "USERDOMAIN": computer,
        "USERNAME": user,
        "USERPROFILE": profile,
        "windir": "C:\\Windows",
        "WINRM_TEST_DRIVE_C": drive_c,
        "WINRM_TEST_PYTHON": HOST_PYTHON,
    }


def prepare_windows_drive(drive: Path, user: str, owner: tuple[int, int] | None = None) -> None:
    """Give a C: drive folder (controller-side path) what the cmd emulator and a profile need:
    C:\\Users\\<user> with AppData\\Local\\Temp, C:\\Windows\\Temp, and the emulated registry
    and task list. What exists is kept (a test may have changed it); what is made belongs to
    owner (uid, gid)."""
    made: list[Path] = []

    def folder(path: Path) -> None:
        missing = [p for p in (path, *path.parents) if not p.exists() and drive in p.parents]
        path.mkdir(parents=True, exist_ok=True)
        made.extend(missing)

    profile = drive / "Users" / user
    for sub in ("AppData/Local/Temp", "AppData/Roaming", "Desktop", "Documents"):
        folder(profile / sub)
    folder(drive / "Windows" / "Temp")
    emulated = drive / ".emulated"
    registry = emulated / "registry"
    for key, values in REGISTRY_SEED.items():
        if (registry / key).exists():
            continue
        folder(registry / key)
        for name, (kind, data) in values.items():
            (registry / key / name).write_text(f"{kind}\n{data}\n", encoding="utf-8")
            made.append(registry / key / name)
    for root in ("HKEY_CLASSES_ROOT", "HKEY_USERS", "HKEY_CURRENT_CONFIG"):
        folder(registry / root)
    tasks = emulated / "schtasks.csv"
    if not tasks.exists():
        tasks.write_bytes(TASKS_SEED.encode("utf-8"))  # CRLF, and one at the end
        made.append(tasks)
    if owner is not None:
        for path in made:
            os.chown(path, *owner)


def computer_name(host_name: str) -> str:
    """COMPUTERNAME is the NetBIOS name: upper case, at most 15 characters."""
    return re.sub(r"[^A-Za-z0-9-]", "", host_name).upper()[:15] or "PLANTWIN"


class WinRMOnHost:
    def __init__(
        self,
        samba: SambaHost,
        *,
        https: bool = False,
        port: int | None = None,
        shell: str = "sh",
    ):
        if shell not in SHELLS:
            raise HarnessError(f"shell must be one of {', '.join(SHELLS)}, not {shell!r}")
        self.samba = samba
        self.shell = shell
        self.https = https
        self.port = port or (5986 if https else 5985)
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint = ""
        self.ca_file: Path | None = None
        self.log = samba.host.dir / "winrm.log"

    def __enter__(self) -> WinRMOnHost:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 20.0) -> None:
        host = self.samba.host
        if host.anchor_pid is None:
            raise HarnessError(f"{host.name}: host is not up")
        uid, gid = self._ids(self.samba.user)
        argv = [
            "nsenter", "-t", str(host.anchor_pid), "-m", "-u", "-n", "--",
            "setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
            # Debian's own 3.11 (the host sees /usr), with the venv's packages.
            "/usr/bin/python3", "-m", "tests.winrm_server",
            "--host", host.address, "--port", str(self.port), "--auth", "ntlm",
            "--user", f"{self.samba.user}:{self.samba.password}",
        ]  # fmt: skip
        if self.https:
            argv.append("--self-signed")
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "PYTHONPATH": f"{REPO}:{SITE_PACKAGES}",
            "HOME": f"/home/{self.samba.user}",
            "LANG": "C.UTF-8",
        }
        if self.shell == "cmd":
            # PATH, HOME, LANG stay Linux ones: the python.exe it runs is this host's Python.
            # PYTHONPATH is the server's own: commands do not see it, as on Windows.
            prepare_windows_drive(host.path(C_DRIVE), self.samba.user, (uid, gid))
            argv += ["--shell", "cmd", "--drive-c", C_DRIVE]
            env.update(windows_environment(self.samba.user, computer_name(host.name)))
            env[HIDDEN_PYTHONPATH_VAR] = env["PYTHONPATH"]
        err = self.log.open("ab")
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=err, env=env, cwd=str(REPO), start_new_session=True
        )
        err.close()
        line = self._first_line(timeout)
        self.endpoint = line.split(" on ", 1)[1].split()[0]
        if " ca=" in line:
            # A copy: the server deletes its own (in the host's /tmp) when it stops.
            self.ca_file = host.dir / f"winrm-ca-{self.port}.pem"
            shutil.copyfile(host.path(line.split(" ca=", 1)[1].strip()), self.ca_file)

    def _ids(self, user: str) -> tuple[int, int]:
        for line in self.samba.host.path("/etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == user:
                return int(fields[2]), int(fields[3])
        raise HarnessError(f"no user {user} on {self.samba.host.name}")

    def _first_line(self, timeout: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, left))
            chunk = os.read(self.proc.stdout.fileno(), 4096) if ready else b""
            if not chunk:
                self.stop()
                raise HarnessError(
                    f"WinRM test server did not start on {self.samba.host.name}: "
                    f"{self.log.read_text(errors='replace')[-800:]}"
                )
            buf += chunk
        return buf.split(b"\n", 1)[0].decode()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
