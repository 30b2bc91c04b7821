"""sshd per host: config, the anchor process that owns the host's namespaces, startup."""

from __future__ import annotations

import functools
import os
import re
import selectors
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from .proc import CLEAN_ENV, HarnessError, run

SSHD = "/usr/sbin/sshd"


@functools.cache
def openssh_version() -> tuple[int, int]:
    out = run([SSHD, "-V"], check=False)
    m = re.search(r"OpenSSH_(\d+)\.(\d+)", (out.stderr + out.stdout).decode())
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def render_config(*, address: str, host_key: Path, pid_file: Path) -> str:
    lines = [
        "Port 22",
        "AddressFamily inet",
        f"ListenAddress {address}",
        f"HostKey {host_key}",
        f"PidFile {pid_file}",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "AuthorizedKeysFile .ssh/authorized_keys",
        "PasswordAuthentication yes",  # for the plantops user only (root is key-only)
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",  # the state dir's permissions are not a real home's
        "UseDNS no",
        "LogLevel ERROR",
        "MaxStartups 200:30:400",  # parallel connects from a busy controller
        "MaxSessions 20",
        "LoginGraceTime 30",
        "PrintMotd no",
        "PrintLastLog no",
        "X11Forwarding no",
        "AllowTcpForwarding no",
        "Subsystem sftp internal-sftp",
        "AcceptEnv LANG LC_*",
    ]
    if openssh_version() >= (9, 8):
        # Newer sshd blocks sources after failed auths: would break fault-injection tests.
        lines.append("PerSourcePenalties no")
    return "\n".join(lines) + "\n"


def check_config(config: Path) -> None:
    run([SSHD, "-t", "-f", str(config)])


def spawn_anchor(netns: str, script: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start the host's anchor: new mount (by ip netns exec) and UTS namespaces."""
    with open(log, "ab") as err:
        # start_new_session: no controlling tty, so the demo fleet survives the CLI's
        # terminal, and a Ctrl-C in pytest reaches only pytest (which tears down).
        return subprocess.Popen(
            ["ip", "netns", "exec", netns, "unshare", "--uts", "bash", str(script)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            env=CLEAN_ENV,
            start_new_session=True,
            cwd="/",
        )


def wait_anchors(procs: Sequence[subprocess.Popen[bytes]], timeout: float = 20.0) -> None:
    """Wait for every anchor to print "ready" (mounts done) or fail."""
    sel = selectors.DefaultSelector()
    for p in procs:
        assert p.stdout is not None
        sel.register(p.stdout, selectors.EVENT_READ, p)
    buf: dict[int, bytes] = {}
    pending = len(procs)
    deadline = time.monotonic() + timeout
    failed: list[int] = []
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            raise HarnessError(f"{pending} host(s) did not finish their mount setup")
        for key, _ in sel.select(timeout=left):
            p = key.data
            chunk = os.read(key.fd, 64)
            buf[p.pid] = buf.get(p.pid, b"") + chunk
            if b"ready\n" in buf[p.pid] or not chunk:
                sel.unregister(key.fileobj)
                key.fileobj.close()
                pending -= 1
                if b"ready\n" not in buf[p.pid]:
                    failed.append(p.pid)
    sel.close()
    if failed:
        raise HarnessError(f"host setup failed for anchor pid(s) {failed}; see hosts/*/host.log")


def spawn_sshd(anchor_pid: int, config: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start sshd inside the anchor's mount, UTS and network namespaces.

    nsenter execs sshd in place, so the returned PID is the listening sshd itself.
    """
    with open(log, "ab") as err:
        return subprocess.Popen(
            [
                "nsenter", "-t", str(anchor_pid), "-m", "-u", "-n", "--",
                SSHD, "-D", "-e", "-f", str(config),
            ],
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            env=CLEAN_ENV,
            start_new_session=True,
            cwd="/",
        )  # fmt: skip


def is_our_sshd(argv: list[str], config: Path) -> bool:
    # sshd rewrites its title to "sshd: /usr/sbin/sshd -D -e -f CONFIG [listener] ...".
    title = " ".join(argv)
    return title.startswith(("sshd", SSHD)) and f"-f {config}" in title


def is_our_anchor(argv: list[str], netns: str) -> bool:
    return bool(argv) and argv[0] == f"psw-anchor:{netns}"


def wait_ports(
    addresses: Sequence[str],
    procs: dict[str, subprocess.Popen[bytes]] | None = None,
    timeout: float = 20.0,
    port: int = 22,
) -> None:
    """Poll until each address accepts TCP on `port`; fail fast if its sshd exited."""
    pending = list(addresses)
    deadline = time.monotonic() + timeout
    while pending:
        for addr in list(pending):
            proc = (procs or {}).get(addr)
            if proc is not None and proc.poll() is not None:
                raise HarnessError(f"sshd for {addr} exited with {proc.returncode}")
            try:
                with socket.create_connection((addr, port), timeout=0.5):
                    pending.remove(addr)
            except OSError:
                pass
        if pending:
            if time.monotonic() > deadline:
                raise HarnessError(f"sshd not listening in time on: {', '.join(pending)}")
            time.sleep(0.01)
