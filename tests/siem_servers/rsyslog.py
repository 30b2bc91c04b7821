"""A private rsyslogd (Debian's package) on loopback: imtcp (plain or GnuTLS) and imudp in,
omfile out. `raw.log` holds each message as received (%rawmsg%: the RFC 5424 message without
the octet count), `msg.log` rsyslog's parse of its MSG part (%msg%).

    with Rsyslog(tmp_path / "rs", pki=pki) as rs:
        ...send to rs.tcp_port...
        lines = rs.wait_for_lines(10)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from tests.siem_servers.certs import TestPKI

RSYSLOGD = "/usr/sbin/rsyslogd"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Rsyslog:
    def __init__(
        self,
        folder: Path,
        pki: TestPKI | None = None,
        tcp_port: int | None = None,
        udp_port: int | None = None,
    ):
        self.folder = folder
        self.pki = pki
        self.tcp_port = tcp_port or free_port()
        self.udp_port = udp_port or free_port(socket.SOCK_DGRAM)
        self.raw_log = folder / "raw.log"
        self.msg_log = folder / "msg.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _config(self) -> str:
        work = self.folder / "work"
        work.mkdir(parents=True, exist_ok=True)
        tls_global = tls_module = ""
        if self.pki:
            tls_global = (
                f' defaultNetstreamDriverCAFile="{self.pki.ca}"'
                f' defaultNetstreamDriverCertFile="{self.pki.cert}"'
                f' defaultNetstreamDriverKeyFile="{self.pki.key}"'
            )
            tls_module = (
                ' streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon"'
            )
        return f"""
global(workDirectory="{work}" maxMessageSize="64k"{tls_global})
module(load="imtcp"{tls_module})
module(load="imudp")
input(type="imtcp" address="127.0.0.1" port="{self.tcp_port}")
input(type="imudp" address="127.0.0.1" port="{self.udp_port}")
template(name="raw" type="string" string="%rawmsg%\\n")
template(name="msg" type="string" string="%msg%\\n")
action(type="omfile" file="{self.raw_log}" template="raw")
action(type="omfile" file="{self.msg_log}" template="msg")
"""

    def start(self) -> Rsyslog:
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "rsyslog.conf"
        conf.write_text(self._config())
        pidfile = self.folder / "rsyslogd.pid"
        pidfile.unlink(missing_ok=True)
        log = (self.folder / "rsyslogd.out").open("ab")
        self.proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(conf), "-i", str(pidfile)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = (self.folder / "rsyslogd.out").read_text(errors="replace")
                raise RuntimeError(f"rsyslogd exited {self.proc.returncode}: {out[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.tcp_port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("rsyslogd did not listen within 15 s")

    def stop(self) -> None:
        """SIGTERM: rsyslog closes its connections and writes what it has queued."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def lines(self, path: Path | None = None) -> list[str]:
        path = path or self.raw_log
        if not path.exists():
            return []
        return path.read_bytes().decode("utf-8").splitlines()

    def wait_for_lines(
        self, count: int, path: Path | None = None, timeout: float = 15.0
    ) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.lines(path)
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.05)

    def __enter__(self) -> Rsyslog:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
