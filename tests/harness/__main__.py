"""Command line for the simulated plant (used by the demo and for manual testing).

python -m tests.harness up --hosts 5 --state /var/lib/plantsweep-demo [--inventory PATH]
python -m tests.harness status --state /var/lib/plantsweep-demo
python -m tests.harness down --state /var/lib/plantsweep-demo
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from . import state
from .fleet import Fleet, down_state_dir
from .proc import HarnessError, alive

DEMO_NETWORK = "10.204.0.0/24"  # tests use 10.203.x.0/24: the demo never collides with them
DEMO_ID = "demo"
DEMO_STATE = "/var/lib/plantsweep-demo"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM during `up` becomes KeyboardInterrupt so the half-built fleet is torn down.
    raise KeyboardInterrupt


def cmd_up(args: argparse.Namespace) -> int:
    pythons = {}
    for spec in args.python or []:
        name, _, version = spec.partition("=")
        if not version:
            raise HarnessError(f"--python {spec}: use HOST=VERSION, e.g. plant-host-02=3.6")
        pythons[name] = version
    fleet = Fleet(
        args.hosts,
        fleet_id=args.id,
        network=args.network,
        state_dir=args.state,
        pythons=pythons,
        name_prefix=args.name_prefix,
        plant=not args.no_plant,
        names=args.names.split(",") if args.names else None,
    )
    signal.signal(signal.SIGTERM, _interrupt)
    fleet.up()
    inv = fleet.write_inventory(Path(args.inventory or Path(args.state) / "inventory.yml"))
    patterns = fleet.write_test_patterns()
    fleet.detach()
    print(f"fleet {fleet.fleet_id}: {len(fleet)} hosts up in {fleet.timings['total']:.2f} s")
    print(f"  network     {fleet.network} (gateway {fleet.gateway})")
    print(f"  inventory   {inv}")
    print(f"  known_hosts {fleet.known_hosts}")
    print(f"  client key  {fleet.client_key.private}")
    print(f"  planted     {fleet.state_dir / 'planted.json'}")
    print(f"  patterns    {patterns['yara']} {patterns['sha256']}")
    print(f"  stop with   python -m tests.harness down --state {fleet.state_dir}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    problems = down_state_dir(Path(args.state))
    for p in problems:
        print(f"warning: {p}", file=sys.stderr)
    print(f"fleet in {args.state} down in {time.monotonic() - t0:.2f} s")
    return 1 if problems else 0


def cmd_status(args: argparse.Namespace) -> int:
    data = state.read(Path(args.state))
    if data is None:
        raise HarnessError(f"{args.state}: no fleet state file")
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"fleet {data['fleet_id']} ({data['status']}) network {data['network']}")
    for h in data["hosts"]:
        pid = h.get("sshd_pid")
        up = "up" if isinstance(pid, int) and alive(pid) else "down"
        print(f"  {h['name']:<16} {h['address']:<15} sshd {up:<5} python {h['python']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a fleet (tears down a stale one with the same id)")
    up.add_argument("--hosts", type=int, default=5)
    up.add_argument("--state", default=DEMO_STATE, help=f"state folder (default {DEMO_STATE})")
    up.add_argument("--id", default=DEMO_ID, help="fleet id, 1-8 of [a-z0-9] (default demo)")
    up.add_argument("--network", default=DEMO_NETWORK, help=f"default {DEMO_NETWORK}")
    up.add_argument("--name-prefix", default="plant-host")
    up.add_argument("--names", metavar="A,B,...", help="host names (default PREFIX-01, ...)")
    up.add_argument("--python", action="append", metavar="HOST=VERSION")
    up.add_argument("--inventory", help="inventory path (default STATE/inventory.yml)")
    up.add_argument("--no-plant", action="store_true", help="do not plant the default files")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="tear down the fleet recorded in a state folder")
    down.add_argument("--state", default=DEMO_STATE)
    down.set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="show the fleet recorded in a state folder")
    status.add_argument("--state", default=DEMO_STATE)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; fleet torn down", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
