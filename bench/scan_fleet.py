"""Benchmark: scan a simulated plant and measure the per-host overhead of a session.

    .venv/bin/python bench/scan_fleet.py [--hosts 50] [--forks 20] [--runs 3]

Starts N hosts (tests/harness), then, median of --runs each:
  1. overhead: `plantsweep scan --type folders` on an empty folder with an empty pattern set,
     i.e. connect + probe/mkdtemp + push + run + fetch + cleanup and its proof, and the same
     steps done by a bare paramiko loop in a thread pool of the same size (the floor);
  2. the same overhead run with one worker, giving the serial cost per host;
  3. a quick scan of every host with the shipped patterns.
Prints wall times, per-host figures and the plantsweep / bare-paramiko ratio.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bare_paramiko import run_bare  # noqa: E402

from orchestrator.campaign import zip_patterns  # noqa: E402
from orchestrator.payload import build_payload, default_wheel_dir  # noqa: E402
from tests.harness import Fleet  # noqa: E402

PLANTSWEEP = str(ROOT / ".venv" / "bin" / "plantsweep")


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def plantsweep(out: Path, inventory: Path, forks: int, *args: str) -> None:
    cmd = [PLANTSWEEP, "scan", "-i", str(inventory), "--out", str(out), "-f", str(forks), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"plantsweep failed ({proc.returncode}):\n{proc.stderr[-2000:]}")


def median_of(runs: int, fn) -> float:
    return statistics.median(timed(fn) for _ in range(runs))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--forks", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    with (
        Fleet(args.hosts, fleet_id="bench", network="10.203.230.0/24", plant=False) as fleet,
        tempfile.TemporaryDirectory(dir="/var/tmp") as work,
    ):
        base = Path(work)
        inventory = fleet.write_inventory(base / "bench.yml")
        empty_patterns = base / "empty-patterns"
        empty_patterns.mkdir()
        for host in fleet:
            host.path("/srv/plant/empty").mkdir(parents=True, exist_ok=True)
        out = base / "results"
        overhead_args = [
            "--type",
            "folders",
            "--path",
            "/srv/plant/empty",
            "--patterns",
            str(empty_patterns),
        ]

        payload = build_payload(default_wheel_dir().parent / "payload")
        patterns_zip, _ = zip_patterns(empty_patterns, base / "patterns.zip")
        hosts = [
            {
                "address": h.address,
                "python": h.python,
                "key": str(fleet.client_key.private),
                "known_hosts": str(fleet.known_hosts),
            }
            for h in fleet
        ]
        bare_args = ["--type", "folders", "--path", "/srv/plant/empty"]

        def bare(workers: int):
            return lambda: run_bare(hosts, payload, patterns_zip, bare_args, workers)

        plantsweep(out, inventory, args.forks, *overhead_args)  # warm-up: payload cache, imports
        ps = median_of(args.runs, lambda: plantsweep(out, inventory, args.forks, *overhead_args))
        floor = median_of(args.runs, bare(args.forks))
        ps1 = median_of(args.runs, lambda: plantsweep(out, inventory, 1, *overhead_args))
        floor1 = median_of(args.runs, bare(1))
        quick = median_of(
            args.runs, lambda: plantsweep(out, inventory, args.forks, "--type", "quick")
        )

    n = args.hosts
    print(f"\nplantsweep bench: {n} hosts, {args.forks} workers, median of {args.runs} runs")
    print(f"{'run':<44}{'wall s':>9}{'per host ms':>13}")
    rows = [
        (f"overhead, plantsweep, {args.forks} workers", ps),
        (f"overhead, bare paramiko, {args.forks} workers", floor),
        ("overhead, plantsweep, 1 worker", ps1),
        ("overhead, bare paramiko, 1 worker", floor1),
        (f"quick scan, plantsweep, {args.forks} workers", quick),
    ]
    for label, wall in rows:
        print(f"{label:<44}{wall:>9.2f}{wall / n * 1000:>13.0f}")
    print(
        f"ratio plantsweep / bare paramiko: {ps / floor:.2f}x ({args.forks} workers), "
        f"{ps1 / floor1:.2f}x (1 worker)"
    )
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"controller peak RSS (largest plantsweep process): {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
