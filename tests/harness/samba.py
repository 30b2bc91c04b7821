"""A simulated Windows file server: a real Samba `smbd` in its own network namespace.

    with SambaHost(fleet_id="smb", network="10.206.0.0/24", encrypt="desired") as win:
        win.address, win.user, win.password     # \\\\<address>\\ADMIN$ with NTLMv2 logon
        win.share_dir("ADMIN$") / "Temp"        # controller-side path of the share's folder
        win.set_encrypt("required")             # rewrite smb.conf and restart smbd
        win.set_signing("auto")                 # default "mandatory"
        win.block_port(); win.unblock_port()    # 445 silently dropped (firewalled host)
        win.stop_smbd(); win.start_smbd()       # 445 closed (connection refused)

The namespace, veth, safety route, private filesystem view and teardown are the Fleet's
(a one-host fleet without planted files): smbd is started inside that host's mount, UTS
and network namespaces, so its shares are folders of the host's private /srv. Only smbd
runs (no nmbd, winbindd or samba-dcerpcd); its config, passdb, lock, state, cache, pid
and log folders are all under the host's folder in the fleet's state dir.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from . import network as net
from .fleet import Fleet, Host
from .hostfs import OPERATOR_USER, PLANTOPS_USER
from .proc import CLEAN_ENV, HarnessError, cmdline, kill_verified, run, wait_gone

SMBD = "/usr/sbin/smbd"
SMBPASSWD = "/usr/bin/smbpasswd"
SMB_PORT = 445
ENCRYPT_MODES = ("required", "desired", "off")
SIGNING_MODES = ("mandatory", "auto")

# In-host folders the shares expose: C$ is the "system drive", ADMIN$ its Windows folder
# (with Temp, where the controller puts its run folders), plus an ordinary data share.
C_DRIVE = "/srv/win"
WINDOWS_DIR = "/srv/win/Windows"
DATA_DIR = "/srv/plant"
ADMIN_SHARE = "ADMIN$"
C_SHARE = "C$"
DATA_SHARE = "plantdata"

# Test-only secrets. The admin may use every share; the operator may log on but is refused
# the admin shares (like a Windows local account under the UAC remote restriction).
ADMIN_USER = PLANTOPS_USER
ADMIN_PASSWORD = "Plant-SMB-test-pw1"
OTHER_USER = OPERATOR_USER
OTHER_PASSWORD = "Operator-SMB-pw2"

# Policy-routing table that drops replies from port 445 (see block_port).
_BLOCK_TABLE = 445
_BLOCK_PRIORITY = 100


def smbd_available() -> bool:
    return os.access(SMBD, os.X_OK) and os.access(SMBPASSWD, os.X_OK)


def render_config(
    *,
    address: str,
    prefixlen: int,
    netbios_name: str,
    samba_dir: Path,
    encrypt: str,
    signing: str = "mandatory",
) -> str:
    if encrypt not in ENCRYPT_MODES:
        raise HarnessError(f"encrypt must be one of {', '.join(ENCRYPT_MODES)}, not {encrypt!r}")
    if signing not in SIGNING_MODES:
        raise HarnessError(f"signing must be one of {', '.join(SIGNING_MODES)}, not {signing!r}")
    d = samba_dir
    share_opts = [
        "    read only = no",
        "    browseable = no",
        "    create mask = 0644",
        "    directory mask = 0755",
    ]
    lines = [
        "[global]",
        "    server role = standalone server",
        "    workgroup = PLANT",
        f"    netbios name = {netbios_name}",
        "    server string = plantsweep simulated Windows host",
        # Only this namespace's address, only 445, no NetBIOS: nothing else listens.
        f"    interfaces = {address}/{prefixlen}",
        "    bind interfaces only = yes",
        f"    smb ports = {SMB_PORT}",
        "    disable netbios = yes",
        "    server min protocol = SMB2_02",
        f"    server signing = {signing}",  # auto: signed only if the client asks
        f"    server smb encrypt = {encrypt}",
        "    ntlm auth = ntlmv2-only",
        "    map to guest = never",
        "    restrict anonymous = 2",
        # Everything stateful stays in the host's folder, never in /var/lib/samba.
        f"    passdb backend = tdbsam:{d / 'private' / 'passdb.tdb'}",
        f"    private dir = {d / 'private'}",
        f"    lock directory = {d / 'lock'}",
        f"    state directory = {d / 'state'}",
        f"    cache directory = {d / 'cache'}",
        f"    pid directory = {d / 'pid'}",
        f"    ncalrpc dir = {d / 'ncalrpc'}",
        f"    binddns dir = {d / 'binddns'}",
        f"    log file = {d / 'log' / 'smbd.log'}",
        "    logging = file",
        "    max log size = 1000",
        "    log level = 1",
        # No printers, no user shares, no RPC helper daemons: smbd alone.
        "    load printers = no",
        "    printing = bsd",
        "    printcap name = /dev/null",
        "    disable spoolss = yes",
        "    usershare max shares = 0",
        "    rpc start on demand helpers = no",
        "    obey pam restrictions = no",
        "    unix password sync = no",
        "",
        f"[{ADMIN_SHARE}]",
        f"    path = {WINDOWS_DIR}",
        f"    valid users = {ADMIN_USER}",
        *share_opts,
        "",
        f"[{C_SHARE}]",
        f"    path = {C_DRIVE}",
        f"    valid users = {ADMIN_USER}",
        *share_opts,
        "",
        f"[{DATA_SHARE}]",
        f"    path = {DATA_DIR}",
        f"    valid users = {ADMIN_USER} {OTHER_USER}",
        *share_opts,
    ]
    return "\n".join(lines) + "\n"


def is_our_smbd(argv: list[str], config: Path) -> bool:
    # smbd keeps its argv; its children (per-client, notifyd, cleanupd) inherit it.
    return bool(argv) and argv[0] == SMBD and str(config) in argv


class SambaHost:
    """One namespace host running smbd with ADMIN$, C$ and a data share."""

    def __init__(
        self,
        *,
        fleet_id: str = "smb",
        network: str = "10.206.0.0/24",
        state_dir: str | Path | None = None,
        encrypt: str = "desired",
        signing: str = "mandatory",
        name: str = "win-host-01",
        start: bool = True,
    ) -> None:
        if encrypt not in ENCRYPT_MODES:
            raise HarnessError(f"encrypt must be one of {', '.join(ENCRYPT_MODES)}")
        if signing not in SIGNING_MODES:
            raise HarnessError(f"signing must be one of {', '.join(SIGNING_MODES)}")
        self.fleet = Fleet(
            1, fleet_id=fleet_id, network=network, state_dir=state_dir, plant=False, names=[name]
        )
        self.name = name
        self.encrypt = encrypt
        self.signing = signing
        self._start_on_up = start
        self.user = ADMIN_USER
        self.password = ADMIN_PASSWORD
        self.other_user = OTHER_USER
        self.other_password = OTHER_PASSWORD
        self.smbd_pid: int | None = None
        self._smbd: subprocess.Popen[bytes] | None = None
        self._blocked = False

    def __repr__(self) -> str:  # never the password
        return f"<SambaHost {self.name} {self.address} smbd={self.smbd_pid}>"

    # -- access ----------------------------------------------------------------------

    @property
    def host(self) -> Host:
        return self.fleet.hosts[0]

    @property
    def address(self) -> str:
        return self.host.address

    @property
    def samba_dir(self) -> Path:
        return self.host.dir / "samba"

    @property
    def config(self) -> Path:
        return self.samba_dir / "smb.conf"

    @property
    def log(self) -> Path:
        return self.samba_dir / "log" / "smbd.log"

    def unc(self, share: str = ADMIN_SHARE, *parts: str) -> str:
        return "\\\\" + "\\".join([self.address, share, *parts])

    def share_dir(self, share: str = ADMIN_SHARE) -> Path:
        """Controller-side folder behind a share (check results on the host directly)."""
        inhost = {ADMIN_SHARE: WINDOWS_DIR, C_SHARE: C_DRIVE, DATA_SHARE: DATA_DIR}[share]
        return self.host.path(inhost)

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> SambaHost:
        self.up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    def up(self) -> SambaHost:
        if not smbd_available():
            raise HarnessError(
                f"{SMBD} or {SMBPASSWD} is missing: install Debian's samba (scripts/setup.sh does)"
            )
        self.fleet.up()
        try:
            self._prepare()
            if self._start_on_up:
                self.start_smbd()
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> list[str]:
        """Stop smbd, then the fleet tears down the namespace (and anything left in it)."""
        with contextlib.suppress(HarnessError):
            self.stop_smbd()
        problems = self.fleet.down()
        if not problems and self.host.dir.exists():
            # Config, passdb, logs and whatever the tests left in the shares.
            shutil.rmtree(self.host.dir, ignore_errors=True)
        return problems

    def _prepare(self) -> None:
        d = self.samba_dir
        if d.exists():
            shutil.rmtree(d)
        for sub in ("private", "lock", "state", "cache", "pid", "ncalrpc", "binddns", "log"):
            (d / sub).mkdir(parents=True)
        (d / "private").chmod(0o700)
        self._write_config()
        uid = self._uid(ADMIN_USER)
        for inhost in (C_DRIVE, WINDOWS_DIR, WINDOWS_DIR + "/Temp", DATA_DIR):
            path = self.host.path(inhost)
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, uid, uid)
        self.host.path(DATA_DIR).chmod(0o777)  # both users write to the data share
        for user, password in ((ADMIN_USER, ADMIN_PASSWORD), (OTHER_USER, OTHER_PASSWORD)):
            # Inside the host: smbpasswd needs the user in the host's own /etc/passwd.
            self.host.exec(
                [SMBPASSWD, "-c", str(self.config), "-a", "-s", user],
                input=f"{password}\n{password}\n".encode(),
            )

    def _uid(self, user: str) -> int:
        for line in (self.host.dir / "etc" / "passwd").read_text().splitlines():
            parts = line.split(":")
            if parts[0] == user:
                return int(parts[2])
        raise HarnessError(f"{self.name}: user {user} not in the host's /etc/passwd")

    def _write_config(self) -> None:
        netbios = re.sub(r"[^A-Za-z0-9-]", "", self.name).upper()[:15] or "PLANTWIN"
        self.config.write_text(
            render_config(
                address=self.address,
                prefixlen=self.fleet.plan.prefixlen,
                netbios_name=netbios,
                samba_dir=self.samba_dir,
                encrypt=self.encrypt,
                signing=self.signing,
            )
        )

    # -- smbd ------------------------------------------------------------------------

    def start_smbd(self, timeout: float = 15.0) -> None:
        if self._smbd is not None and self._smbd.poll() is None:
            return
        anchor = self.host.anchor_pid
        if anchor is None:
            raise HarnessError(f"{self.name}: host is not up")
        out = open(self.samba_dir / "log" / "smbd.stdout", "ab")  # noqa: SIM115
        try:
            # -F: foreground, our child. smbd calls setsid() itself (and fails to start if
            # it is already a session leader, so no start_new_session); never pass
            # --no-process-group: on SIGTERM smbd kills its process group, which would then
            # be the test runner's.
            self._smbd = subprocess.Popen(
                [
                    "nsenter", "-t", str(anchor), "-m", "-u", "-n", "--",
                    SMBD, "-F", "-s", str(self.config),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=CLEAN_ENV,
                cwd="/",
            )  # fmt: skip
        finally:
            out.close()
        self.smbd_pid = self._smbd.pid
        self._wait_listening(timeout)

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self._smbd is not None
            if self._smbd.poll() is not None:
                raise HarnessError(
                    f"{self.name}: smbd exited with {self._smbd.returncode}\n{self.log_tail()}"
                )
            try:
                with socket.create_connection((self.address, SMB_PORT), timeout=0.5):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise HarnessError(f"{self.name}: smbd not listening on 445\n{self.log_tail()}")
            time.sleep(0.02)

    def stop_smbd(self) -> None:
        """Stop smbd and its children: port 445 refuses connections afterwards."""
        pid = self.smbd_pid
        if pid is not None:
            matches = lambda a: is_our_smbd(a, self.config)  # noqa: E731
            kill_verified(pid, matches, signal.SIGTERM)
            self.resume_smbd()  # a paused smbd must run to exit
            if wait_gone([pid], timeout=5.0):
                kill_verified(pid, matches, signal.SIGKILL)
                wait_gone([pid], timeout=3.0)
        if self._smbd is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._smbd.wait(timeout=2)
        # Children (one smbd per client, notifyd, cleanupd) that outlived their parent.
        leftovers = [
            p
            for p in net.netns_pids(self.host.netns)
            if (argv := cmdline(p)) is not None and is_our_smbd(argv, self.config)
        ]
        for p in leftovers:
            kill_verified(p, lambda a: is_our_smbd(a, self.config), signal.SIGKILL)
        wait_gone(leftovers, timeout=3.0)
        self._smbd = None
        self.smbd_pid = None

    def set_encrypt(self, mode: str) -> None:
        """Change `server smb encrypt` (required | desired | off) and restart smbd."""
        self.reconfigure(encrypt=mode)

    def set_signing(self, mode: str) -> None:
        """Change `server signing` (mandatory | auto) and restart smbd."""
        self.reconfigure(signing=mode)

    def reconfigure(self, *, encrypt: str | None = None, signing: str | None = None) -> None:
        if encrypt is not None and encrypt not in ENCRYPT_MODES:
            raise HarnessError(f"encrypt must be one of {', '.join(ENCRYPT_MODES)}")
        if signing is not None and signing not in SIGNING_MODES:
            raise HarnessError(f"signing must be one of {', '.join(SIGNING_MODES)}")
        self.encrypt = encrypt or self.encrypt
        self.signing = signing or self.signing
        self._write_config()
        running = self.smbd_pid is not None
        self.stop_smbd()
        if running:
            self.start_smbd()

    def pause_smbd(self) -> None:
        """SIGSTOP every smbd of the host (listener and per-client servers): TCP still
        connects (kernel backlog) and open sessions stay up, but nothing answers."""
        pids = self.smbd_processes()
        if not pids:
            raise HarnessError(f"{self.name}: smbd is not running")
        for pid in pids:
            kill_verified(pid, lambda a: is_our_smbd(a, self.config), signal.SIGSTOP)

    def resume_smbd(self) -> None:
        for pid in self.smbd_processes():
            kill_verified(pid, lambda a: is_our_smbd(a, self.config), signal.SIGCONT)

    # -- firewall --------------------------------------------------------------------

    def block_port(self) -> None:
        """Drop port 445 silently, like a plant firewall: connects time out, other ports work.

        No nftables/iptables needed: a policy-routing rule sends every packet *from* port
        445 (the SYN-ACK) to a blackhole table inside the host's namespace.
        """
        if self._blocked:
            return
        ns = self.host.netns
        run(["ip", "-n", ns, "route", "add", "blackhole", "default", "table", str(_BLOCK_TABLE)])
        run(
            [
                "ip", "-n", ns, "rule", "add", "priority", str(_BLOCK_PRIORITY),
                "ipproto", "tcp", "sport", str(SMB_PORT), "lookup", str(_BLOCK_TABLE),
            ]
        )  # fmt: skip
        self._blocked = True

    def unblock_port(self) -> None:
        ns = self.host.netns
        run(["ip", "-n", ns, "rule", "del", "priority", str(_BLOCK_PRIORITY)], check=False)
        run(
            ["ip", "-n", ns, "route", "del", "blackhole", "default", "table", str(_BLOCK_TABLE)],
            check=False,
        )
        self._blocked = False

    # -- inspection ------------------------------------------------------------------

    def log_tail(self, chars: int = 800) -> str:
        parts = []
        for f in (self.samba_dir / "log" / "smbd.stdout", self.log):
            if f.exists():
                parts.append(f.read_text(errors="replace")[-chars:].strip())
        return "\n".join(p for p in parts if p)

    def smbd_processes(self) -> list[int]:
        """PIDs of our smbd processes still alive in the host (parent and children)."""
        return [
            p
            for p in net.netns_pids(self.host.netns)
            if (argv := cmdline(p)) is not None and is_our_smbd(argv, self.config)
        ]


__all__ = [
    "ADMIN_PASSWORD",
    "ADMIN_SHARE",
    "ADMIN_USER",
    "C_SHARE",
    "DATA_SHARE",
    "ENCRYPT_MODES",
    "OTHER_PASSWORD",
    "OTHER_USER",
    "SIGNING_MODES",
    "SMB_PORT",
    "SambaHost",
    "render_config",
    "smbd_available",
]
