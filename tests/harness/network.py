"""Network plumbing for a fleet: safety route, bridge, one namespace + veth per host.

Everything is done with `ip -batch` so 50 hosts cost a handful of process starts.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from .proc import CLEAN_ENV, HarnessError, run

# The unreachable route shares its prefix with the bridge's connected route; a high
# metric lets the connected route win while the bridge exists, and the metric also
# marks the route as ours when sweeping a crashed fleet.
SAFETY_METRIC = 4203
FLEET_ID_RE = re.compile(r"^[a-z0-9]{1,8}$")


@dataclass(frozen=True)
class NetPlan:
    """Names and addresses of a fleet's network objects (all derived, all ours)."""

    fleet_id: str
    network: str  # CIDR, e.g. 10.203.1.0/24
    bridge: str
    gateway: str
    prefixlen: int
    netns: tuple[str, ...]
    veths: tuple[str, ...]
    addresses: tuple[str, ...]


def bridge_name(fleet_id: str) -> str:
    return f"psw-{fleet_id}"


def netns_name(fleet_id: str, index: int) -> str:
    return f"psw-{fleet_id}-{index:02d}"


def veth_name(fleet_id: str, index: int) -> str:
    return f"psw{fleet_id}v{index}"  # <= 15 chars (IFNAMSIZ) for ids of <= 8 chars


def plan(fleet_id: str, network: str, count: int) -> NetPlan:
    if not FLEET_ID_RE.match(fleet_id):
        raise HarnessError(f"fleet id {fleet_id!r}: use 1-8 characters [a-z0-9]")
    net = ipaddress.IPv4Network(network, strict=True)
    if not net.is_private:
        raise HarnessError(f"network {network}: test fleets use private ranges only")
    usable = list(net.hosts())
    # .1 is the gateway (bridge); hosts start at .11 so addresses read like host numbers.
    if count < 1 or count + 10 > len(usable):
        raise HarnessError(f"network {network} cannot hold {count} hosts")
    if count > 999:
        raise HarnessError("at most 999 hosts per fleet")
    return NetPlan(
        fleet_id=fleet_id,
        network=str(net),
        bridge=bridge_name(fleet_id),
        gateway=str(usable[0]),
        prefixlen=net.prefixlen,
        netns=tuple(netns_name(fleet_id, i) for i in range(1, count + 1)),
        veths=tuple(veth_name(fleet_id, i) for i in range(1, count + 1)),
        addresses=tuple(str(usable[9 + i]) for i in range(1, count + 1)),
    )


def _batch(commands: Sequence[str], *, netns: str | None = None, check: bool = True) -> str:
    """Run `ip` commands in one process. -force keeps going after an error (teardown)."""
    argv = ["ip"]
    if netns:
        argv += ["-n", netns]
    argv += ["-force", "-batch", "-"] if not check else ["-batch", "-"]
    proc = run(argv, input=("\n".join(commands) + "\n").encode(), check=False)
    if check and proc.returncode != 0:
        raise HarnessError(f"ip batch failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stderr.decode(errors="replace")


def safety_route_present(network: str) -> bool:
    out = run(["ip", "-j", "route", "show", "type", "unreachable", network], check=False)
    try:
        routes = json.loads(out.stdout or b"[]")
    except json.JSONDecodeError:
        return False
    return any(r.get("metric") == SAFETY_METRIC for r in routes)


def _overlapping_routes(network: str) -> list[dict[str, str]]:
    """Routes (any table) overlapping `network`, except our own safety route."""
    mine = ipaddress.IPv4Network(network)
    routes = json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or b"[]")
    found = []
    for r in routes:
        dst = r.get("dst", "")
        if dst in ("default", "") or r.get("type") in ("local", "broadcast"):
            continue
        if r.get("type") == "unreachable" and r.get("metric") == SAFETY_METRIC and dst == network:
            continue
        try:
            other = ipaddress.IPv4Network(dst, strict=False)
        except ValueError:
            continue
        if other.overlaps(mine):
            found.append(r)
    return found


def range_in_use(network: str) -> bool:
    return bool(_overlapping_routes(network))


def check_free(p: NetPlan) -> None:
    """Refuse to build over a range that is already routed on this machine.

    Protects against two fleets (tests and demo) sharing a range, and against a test
    range that overlaps a real network.
    """
    for r in _overlapping_routes(p.network):
        raise HarnessError(
            f"network {p.network} overlaps existing route {r.get('dst')} "
            f"(dev {r.get('dev', r.get('type', '?'))}); another fleet or a real network "
            "uses it: pick another range or run `python -m tests.harness down`"
        )
    if safety_route_present(p.network):
        raise HarnessError(f"network {p.network}: a plantsweep safety route already exists")


def create(p: NetPlan) -> None:
    """Safety route first, then bridge, namespaces and veths, then addresses inside."""
    run(["ip", "route", "add", "unreachable", p.network, "metric", str(SAFETY_METRIC)])
    cmds = [
        f"link add {p.bridge} type bridge forward_delay 0 stp_state 0",
        f"link set {p.bridge} addrgenmode none",
        f"addr add {p.gateway}/{p.prefixlen} dev {p.bridge}",
        f"link set {p.bridge} up",
    ]
    for ns, veth in zip(p.netns, p.veths, strict=True):
        cmds += [
            f"netns add {ns}",
            f"link add {veth} type veth peer name eth0 netns {ns}",
            f"link set {veth} master {p.bridge} up",
        ]
    _batch(cmds)
    # Per-namespace configuration, all namespaces in parallel.
    procs = []
    for ns, addr in zip(p.netns, p.addresses, strict=True):
        cmds = [
            "link set lo up",
            f"addr add {addr}/{p.prefixlen} dev eth0",
            "link set eth0 up",
        ]
        procs.append(
            (
                ns,
                subprocess.Popen(
                    ["ip", "-n", ns, "-batch", "-"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    env=CLEAN_ENV,
                ),
                "\n".join(cmds) + "\n",
            )
        )
    errors = []
    for ns, proc, text in procs:
        _, err = proc.communicate(text.encode(), timeout=30)
        if proc.returncode != 0:
            errors.append(f"{ns}: {err.decode(errors='replace').strip()}")
    if errors:
        raise HarnessError("namespace setup failed: " + "; ".join(errors))


def set_link(veth: str, up: bool) -> None:
    run(["ip", "link", "set", veth, "up" if up else "down"])


def list_netns() -> list[str]:
    out = run(["ip", "netns", "list"], check=False).stdout.decode()
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def netns_pids(ns: str) -> list[int]:
    out = run(["ip", "netns", "pids", ns], check=False).stdout.decode()
    return [int(x) for x in out.split() if x.isdigit()]


def list_links() -> list[str]:
    out = run(["ip", "-j", "link", "show"], check=False).stdout
    try:
        return [link["ifname"] for link in json.loads(out or b"[]")]
    except (json.JSONDecodeError, KeyError):
        return []


def owned_leftovers(fleet_id: str) -> tuple[list[str], list[str]]:
    """Namespaces and links that carry this fleet id's names (from a crashed run)."""
    ns_prefix = f"psw-{fleet_id}-"
    veth_re = re.compile(rf"^psw{re.escape(fleet_id)}v\d+$")
    nss = [n for n in list_netns() if n.startswith(ns_prefix) and n[len(ns_prefix) :].isdigit()]
    links = [name for name in list_links() if veth_re.match(name) or name == bridge_name(fleet_id)]
    return nss, links


def destroy(netns: Sequence[str], links: Sequence[str], network: str | None) -> None:
    """Delete namespaces, links and the safety route; missing objects are fine.

    The route goes last so the range stays unroutable until nothing is left.
    """
    cmds = [f"netns del {ns}" for ns in netns] + [f"link del {name}" for name in links]
    if cmds:
        _batch(cmds, check=False)
    if network and safety_route_present(network):
        run(
            ["ip", "route", "del", "unreachable", network, "metric", str(SAFETY_METRIC)],
            check=False,
        )
