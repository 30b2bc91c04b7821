"""A simulated Windows host: the WinRM test server (tests/winrm_server) inside a Samba host's
namespaces, so one host answers WinRM on 5985/5986 and SMB on 445 like a Windows machine.

    with SambaHost(...) as smb, WinRMOnHost(smb, https=True) as winrm:
        winrm.endpoint, winrm.ca_file   # NTLM as smb.user, commands run as that user

The server runs as the same account Samba maps the logon to (plantops), with the host's
/tmp, /home and hostname, and its commands run under /bin/sh: hosts that use it are
inventoried with ``ansible_shell_type: sh``.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

from .proc import HarnessError
from .samba import SambaHost

REPO = Path(__file__).resolve().parents[2]
SITE_PACKAGES = REPO / ".venv" / "lib" / "python3.11" / "site-packages"


class WinRMOnHost:
    def __init__(self, samba: SambaHost, *, https: bool = False, port: int | None = None):
        self.samba = samba
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
