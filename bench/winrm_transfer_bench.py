"""Benchmark: file transfer through the WinRM shell (the fallback when SMB's port 445 is closed).

    .venv/bin/python bench/winrm_transfer_bench.py [--size 50M] [--runs 3] [--json]

Starts the WS-Management test server (tests/winrm_server) on loopback and moves a random
file of --size with orchestrator/connections/winrm.py's put and get, as `plantsweep scan`
does (one shell, the file streamed into one command's stdin in 100,000-byte pieces, then
its SHA-256 computed on the host and compared). Transports, per run, interleaved:

- http+ntlm: HTTP with NTLM message encryption (what a domain-less plant gets by default
  when HTTPS is not set up);
- https+ntlm: HTTPS (TLS), NTLM without message encryption;
- https+ntlm, Windows wire format: the bytes travel as 76-character base64 lines, as
  `findstr "^"` and `certutil -decode` on a Windows host receive them (about 4/3 more bytes,
  like Ansible's win_copy), decoded on this host by `base64 -d`.

Prints the median MB/s (10^6 bytes/s) of each. There is no reference tool to run beside it:
Ansible's win_copy needs PowerShell on the host, which this machine does not have. The SMB
path and Samba's smbclient CLI are measured by bench/smb_bench.py.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from orchestrator.connections import Timeouts, remote_files  # noqa: E402
from orchestrator.connections.winrm import WinRMConnection  # noqa: E402
from orchestrator.targets import target_for  # noqa: E402
from tests.winrm_server import WinRMServer, make_test_ca  # noqa: E402

USER, PASSWORD = "bench", "Bench-pw-1"


class _Base64Receive(remote_files.PosixFiles):
    """Windows wire format on a POSIX host: base64 lines in, decoded by base64 -d."""

    def receive(self, path: str) -> str:
        return super().receive(path).replace("cat >", "base64 -d >")

    def encode(self, data: bytes) -> bytes:
        return remote_files.WindowsFiles().encode(data).replace(b"\r\n", b"\n")


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return (
        int(float(text[:-1]) * units[text[-1].upper()]) if text[-1:].upper() in units else int(text)
    )


def connection(server: WinRMServer, ca: Path | None) -> WinRMConnection:
    hostvars = {
        "ansible_connection": "winrm",
        "ansible_host": "127.0.0.1",
        "ansible_port": server.port,
        "ansible_user": USER,
        "ansible_password": PASSWORD,
        "ansible_shell_type": "sh",
        "plantsweep_smb": False,
    }
    if ca is None:
        hostvars["ansible_winrm_scheme"] = "http"
    else:
        hostvars["ansible_winrm_ca_trust_path"] = str(ca)
    target = target_for("bench-host", hostvars)
    assert target.winrm is not None
    return WinRMConnection(target, target.winrm, Timeouts())


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=parse_size, default=parse_size("50M"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="plantsweep-winrm-bench-"))
    source = work / "kit.zip"
    source.write_bytes(os.urandom(args.size))
    ca = make_test_ca(work / "ca")
    cert = ca.issue("127.0.0.1", work / "tls")
    rates: dict[str, list[float]] = {}
    with (
        WinRMServer(users={USER: PASSWORD}) as http,
        WinRMServer(users={USER: PASSWORD}, certfile=cert.cert_path, keyfile=cert.key_path) as tls,
    ):
        cases = [
            ("put http+ntlm (encrypted messages)", http, None, None),
            ("put https+ntlm", tls, ca.cert_path, None),
            ("put https+ntlm, Windows wire format (base64 lines)", tls, ca.cert_path, "b64"),
        ]
        for run in range(args.runs):
            for name, server, trust, wire in cases:
                with connection(server, trust) as conn:
                    if wire:
                        conn.files = _Base64Receive()
                        conn.chunk = 72_000
                    remote = work / f"remote-{run}-{len(rates.get(name, []))}.zip"
                    seconds = timed(lambda c=conn, r=remote: c.put(source, str(r), timeout=600))
                    assert remote.read_bytes() == source.read_bytes(), name
                    rates.setdefault(name, []).append(args.size / seconds / 1e6)
                    if not wire:
                        get_name = name.replace("put", "get")
                        back = work / f"back-{run}.zip"
                        seconds = timed(lambda c=conn, r=remote, b=back: c.get(str(r), b, 600))
                        assert back.read_bytes() == source.read_bytes(), get_name
                        rates.setdefault(get_name, []).append(args.size / seconds / 1e6)
                        back.unlink()
                    remote.unlink()
    result = {name: round(statistics.median(values), 1) for name, values in rates.items()}
    print(f"WinRM shell transfer of {args.size / 1e6:.1f} MB on loopback, median of {args.runs}:")
    for name, rate in result.items():
        print(f"  {name:<55} {rate:7.1f} MB/s")
    if args.json:
        print(json.dumps({"size": args.size, "runs": args.runs, "mb_per_s": result}, indent=1))
    for path in sorted(work.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    work.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
