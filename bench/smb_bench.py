"""Benchmark: SMB transfer (orchestrator/connections/smb.py) against Samba's smbclient CLI.

    sudo .venv/bin/python bench/smb_bench.py [--size 50M] [--runs 3] [--encrypt desired]
        [--work /var/tmp/plantsweep-smb-bench] [--json]

Starts the simulated Windows host of the tests (tests/harness/samba.py: a real smbd in its
own network namespace, reached over a veth pair and a bridge), makes a random file of --size,
then per run, interleaved: SMBTransfer.put without and with read-back verification, get,
smbprotocol's stock smbclient.shutil.copyfile (64 KiB requests, for reference), and the
smbclient CLI's put and get (Debian package smbclient; installed here if missing). Prints
the median MB/s (10^6 bytes/s) of each and our/CLI ratios.

What is timed: the transfer only, on an open, logged-on session: for SMBTransfer from opening
the remote file to closing it (for "put+verify" plus reading it back and hashing); for the
CLI its own "kb/s" figure for the put/get command (open to close, KiB/s converted). Session
setup is printed separately. Every copy's bytes are checked (SHA-256) after the timed part.

--encrypt sets the server's `server smb encrypt` (required | desired | off). With "desired"
or "required" both clients encrypt (ours: encrypt="auto"; the CLI: --client-protection=
encrypt); with "off" both only sign (the CLI: --client-protection=sign).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import smbclient  # noqa: E402
from smbclient import shutil as smbshutil  # noqa: E402

from orchestrator.connections.smb import SMBTransfer  # noqa: E402
from tests.harness.samba import ADMIN_SHARE, SambaHost  # noqa: E402

SLOT = int(os.environ.get("PLANTSWEEP_TEST_SLOT", "0") or 0)
CLI = "/usr/bin/smbclient"


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)([KMG]?)", text.upper())
    if not m:
        raise argparse.ArgumentTypeError(f"size like 50M, not {text!r}")
    return int(m.group(1)) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[m.group(2)]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def ensure_cli() -> None:
    if os.access(CLI, os.X_OK):
        return
    print("installing Debian's smbclient (the CLI to compare with)...", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "smbclient"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def cli(win: SambaHost, work: Path, protection: str, command: str) -> tuple[str, float]:
    """Run one smbclient CLI command on ADMIN$; return its output and wall time."""
    auth = work / "cli-auth"
    if not auth.exists():
        # An authentication file keeps the password off the command line (and out of ps).
        auth.write_text(f"username = {win.user}\npassword = {win.password}\n")
        auth.chmod(0o600)
    conf = work / "cli-smb.conf"
    conf.write_text("[global]\n    client min protocol = SMB2_02\n")
    argv = [
        CLI, f"//{win.address}/{ADMIN_SHARE}", "-s", str(conf), "-A", str(auth),
        f"--client-protection={protection}", "-m", "SMB3", "-c", command,
    ]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"smbclient CLI failed: {proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr, wall


def cli_rate(output: str) -> float:
    """MB/s from the CLI's "(N kb/s)" (put) or "(N KiloBytes/sec)" (get): N is bytes per
    1.024 ms, i.e. KiB/s."""
    m = re.search(r"\(([\d.]+) (?:kb/s|KiloBytes/sec)\)", output)
    if not m:
        raise SystemExit(f"no rate in smbclient output: {output!r}")
    return float(m.group(1)) * 1024 / 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=parse_size, default=parse_size("50M"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--encrypt", choices=("required", "desired", "off"), default="desired")
    ap.add_argument("--work", type=Path, default=Path("/var/tmp/plantsweep-smb-bench"))
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    ensure_cli()
    work: Path = args.work
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    src = work / "payload.bin"
    with open(src, "wb") as f:
        left = args.size
        while left:
            n = min(left, 8 << 20)
            f.write(os.urandom(n))
            left -= n
    expected = sha256(src)
    protection = "sign" if args.encrypt == "off" else "encrypt"
    mb = args.size / 1e6
    rates: dict[str, list[float]] = {
        k: []
        for k in (
            "put",
            "put+verify",
            "get",
            "copyfile (64 KiB)",
            "smbclient CLI put",
            "smbclient CLI get",
        )
    }
    info: dict[str, Any] = {}
    with SambaHost(
        fleet_id=f"smbb{SLOT}", network=f"10.206.{100 + SLOT}.0/24", encrypt=args.encrypt
    ) as win:
        temp = win.share_dir(ADMIN_SHARE) / "Temp"
        t0 = time.monotonic()
        smb = SMBTransfer(win.address, win.user, win.password, host="bench", encrypt="auto")
        smb.open()
        info = {
            "session_setup_s": round(time.monotonic() - t0, 4),
            "protection": smb.describe(),
            "max_write_size": smb.max_write_size,
            "max_read_size": smb.max_read_size,
            "size_bytes": args.size,
            "runs": args.runs,
            "server_encrypt": args.encrypt,
        }
        try:
            for run in range(args.runs):
                remote = smb.unc("Temp", f"bench-{run}.bin")
                smb.put(src, remote, verify=False)
                assert smb.last is not None
                rates["put"].append(mb / smb.last.seconds)
                assert sha256(temp / f"bench-{run}.bin") == expected

                smb.put(src, remote, verify=True)
                assert smb.last is not None
                rates["put+verify"].append(mb / (smb.last.seconds + smb.last.verify_seconds))

                back = work / "back.bin"
                smb.get(remote, back)
                assert smb.last is not None
                rates["get"].append(mb / smb.last.seconds)
                assert sha256(back) == expected
                back.unlink()

                # smbprotocol's stock copy on the same session (64 KiB per request).
                t1 = time.monotonic()
                smbshutil.copyfile(
                    str(src),
                    smb.unc("Temp", f"stock-{run}.bin"),
                    username=win.user,
                    password=win.password,
                    connection_cache=smb._cache,
                )
                rates["copyfile (64 KiB)"].append(mb / (time.monotonic() - t1))
                assert sha256(temp / f"stock-{run}.bin") == expected

                out, _ = cli(win, work, protection, f'put "{src}" Temp\\cli-{run}.bin')
                rates["smbclient CLI put"].append(cli_rate(out))
                assert sha256(temp / f"cli-{run}.bin") == expected
                cli_back = work / "cli-back.bin"
                out, _ = cli(win, work, protection, f'get Temp\\cli-{run}.bin "{cli_back}"')
                rates["smbclient CLI get"].append(cli_rate(out))
                assert sha256(cli_back) == expected
                cli_back.unlink()
                for name in (f"bench-{run}.bin", f"stock-{run}.bin", f"cli-{run}.bin"):
                    smb.remove(smb.unc("Temp", name))
            _, wall = cli(win, work, protection, "ls")
            info["cli_session_wall_s"] = round(wall, 4)  # process + connect + logon + ls
        finally:
            smb.close()
            smbclient.reset_connection_cache(connection_cache=smb._cache)
    shutil.rmtree(work)

    med = {k: statistics.median(v) for k, v in rates.items()}
    print(
        f"SMB transfer of {mb:.1f} MB, {args.runs} runs (median), server encrypt="
        f"{args.encrypt}, {info['protection']}, max write/read "
        f"{info['max_write_size'] // 1024} / {info['max_read_size'] // 1024} KiB"
    )
    print(f"  session setup (connect, negotiate, logon, tree): {info['session_setup_s']:.3f} s")
    for k, v in med.items():
        runs = ", ".join(f"{x:.0f}" for x in rates[k])
        print(f"  {k:<20} {v:7.1f} MB/s   ({runs})")
    ratios = {
        "put / CLI put": med["put"] / med["smbclient CLI put"],
        "put+verify / CLI put": med["put+verify"] / med["smbclient CLI put"],
        "get / CLI get": med["get"] / med["smbclient CLI get"],
        "put / copyfile": med["put"] / med["copyfile (64 KiB)"],
    }
    for k, v in ratios.items():
        print(f"  {k:<22} {v:5.2f}x")
    if args.json:
        print(json.dumps({"info": info, "median_mb_s": med, "runs": rates, "ratios": ratios}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
