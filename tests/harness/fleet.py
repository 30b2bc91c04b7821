"""A simulated plant: N Linux hosts, each a real sshd in its own network namespace.

    with Fleet(5, fleet_id="demo", network="10.204.0.0/24") as fleet:
        fleet["plant-host-01"].stop()           # hung host
        fleet.write_inventory(path)

Lifecycle: up() builds everything and records it in <state>/fleet.json before creating
it; down() (also on context exit, at interpreter exit, or from the CLI for a crashed
fleet) kills by recorded PID after checking the command line, kills whatever else is in
the fleet's namespaces, then deletes namespaces, links and the safety route.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import files as planted_files
from . import hostfs, inventory, keys, sshd, state
from . import network as net
from . import pythons as py
from .proc import (
    CLEAN_ENV,
    HarnessError,
    alive,
    in_netns,
    kill_leaf_first,
    kill_verified,
    netns_inode,
    run,
    wait_gone,
    wait_reaped,
)

if TYPE_CHECKING:
    import paramiko

DEFAULT_NETWORK = "10.203.0.0/24"


class Host:
    """One plant host. Fault injection and inspection work from the controller side."""

    def __init__(self, fleet: Fleet, index: int, name: str, address: str, python: str) -> None:
        self.fleet = fleet
        self.index = index
        self.name = name
        self.address = address
        self.python = python
        self.netns = net.netns_name(fleet.fleet_id, index)
        self.veth = net.veth_name(fleet.fleet_id, index)
        self.dir = fleet.state_dir / "hosts" / name
        self.config = self.dir / "sshd_config"
        self.host_key = fleet.state_dir / "keys" / name / "ssh_host_ed25519_key"
        self.vars: dict[str, Any] = {}
        self.anchor_pid: int | None = None
        self.sshd_pid: int | None = None
        self._anchor: subprocess.Popen[bytes] | None = None
        self._sshd: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.address} sshd={self.sshd_pid}>"

    # -- fault injection -------------------------------------------------------------

    def _signal_sshd(self, sig: int) -> None:
        if self.sshd_pid is None or not kill_verified(
            self.sshd_pid, lambda a: sshd.is_our_sshd(a, self.config), sig
        ):
            raise HarnessError(f"{self.name}: sshd is not running")

    def stop(self) -> None:
        """Freeze sshd (SIGSTOP): TCP still connects, no banner ever comes = hung host."""
        self._signal_sshd(signal.SIGSTOP)

    def cont(self) -> None:
        self._signal_sshd(signal.SIGCONT)

    def kill_sshd(self) -> None:
        """Stop listening: new connections are refused. Open sessions stay, like a real sshd."""
        pid = self.sshd_pid
        if pid is None:
            return
        matches = lambda a: sshd.is_our_sshd(a, self.config)  # noqa: E731
        kill_verified(pid, matches, signal.SIGTERM)
        kill_verified(pid, matches, signal.SIGCONT)  # a stopped sshd must run to exit
        if wait_gone([pid], timeout=3.0):
            kill_verified(pid, matches, signal.SIGKILL)
            wait_gone([pid], timeout=3.0)
        if self._sshd is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._sshd.wait(timeout=1)
        self.sshd_pid = None
        self._sshd = None
        self.fleet._save()

    def start_sshd(self, wait: bool = True) -> None:
        if self.sshd_pid is not None and alive(self.sshd_pid):
            return
        if self.anchor_pid is None:
            raise HarnessError(f"{self.name}: host is not up")
        self._sshd = sshd.spawn_sshd(self.anchor_pid, self.config, self.dir / "sshd.log")
        self.sshd_pid = self._sshd.pid
        self.fleet._save()
        if wait:
            sshd.wait_ports([self.address], {self.address: self._sshd}, timeout=10.0)

    def link_down(self) -> None:
        """Pull the cable: the host's veth goes down; connects time out."""
        net.set_link(self.veth, up=False)

    def link_up(self) -> None:
        net.set_link(self.veth, up=True)

    # -- inspection ------------------------------------------------------------------

    def exec(
        self,
        argv: list[str],
        *,
        input: bytes | None = None,
        check: bool = True,
        timeout: float = 30.0,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a command inside the host (its mounts, hostname, network), not over SSH.

        Works while sshd is stopped, killed or unreachable.
        """
        if self.anchor_pid is None:
            raise HarnessError(f"{self.name}: host is not up")
        cmd = ["nsenter", "-t", str(self.anchor_pid), "-m", "-u", "-n", "--", *argv]
        return run(cmd, input=input, check=check, timeout=timeout)

    def path(self, inhost: str) -> Path:
        """Controller-side path for an absolute path inside this host."""
        return hostfs.inhost_to_controller(self.dir, self.anchor_pid, inhost)

    def listdir(self, inhost: str) -> list[str]:
        """Names in a folder inside the host (e.g. "/tmp"), sorted."""
        return sorted(os.listdir(self.path(inhost)))

    @property
    def planted(self) -> list[planted_files.PlantedFile]:
        return list(self.fleet.planted.get(self.name, {}).values())

    @property
    def expected_findings(self) -> list[planted_files.PlantedFile]:
        return [f for f in self.planted if f.indicator is not None]

    def ssh(
        self,
        user: str = "root",
        *,
        password: str | None = None,
        timeout: float = 3.0,
        banner_timeout: float = 2.0,
    ) -> paramiko.SSHClient:
        """A connected paramiko client that verifies the host key strictly."""
        import paramiko

        client = paramiko.SSHClient()
        client.load_host_keys(str(self.fleet.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                self.address,
                port=22,
                username=user,
                password=password,
                key_filename=None if password else str(self.fleet.client_key.private),
                look_for_keys=False,
                allow_agent=False,
                timeout=timeout,
                banner_timeout=banner_timeout,
                auth_timeout=timeout,
                channel_timeout=timeout,
            )
        except BaseException:
            client.close()
            raise
        return client

    def to_state(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "address": self.address,
            "python": self.python,
            "netns": self.netns,
            "veth": self.veth,
            "config": str(self.config),
            "dir": str(self.dir),
            "anchor_pid": self.anchor_pid,
            "sshd_pid": self.sshd_pid,
            "vars": self.vars,
        }


class Fleet:
    """N plant hosts on one bridge, in `network`, with state in `state_dir`."""

    def __init__(
        self,
        hosts: int = 5,
        *,
        fleet_id: str = "t",
        network: str = DEFAULT_NETWORK,
        state_dir: str | Path | None = None,
        pythons: Mapping[str, str] | None = None,
        name_prefix: str = "plant-host",
        plant: bool = True,
        host_vars: Mapping[str, Mapping[str, Any]] | None = None,
        names: Sequence[str] | None = None,
    ) -> None:
        self.fleet_id = fleet_id
        self.plan = net.plan(fleet_id, network, hosts)
        self.network = self.plan.network
        self.gateway = self.plan.gateway
        self.state_dir = Path(state_dir or state.DEFAULT_BASE / fleet_id).absolute()
        self.known_hosts = self.state_dir / "known_hosts"
        self.client_key = keys.KeyPair(
            self.state_dir / "controller" / "id_ed25519",
            self.state_dir / "controller" / "id_ed25519.pub",
        )
        self._plant_defaults = plant
        self.planted: dict[str, dict[str, planted_files.PlantedFile]] = {}
        width = 3 if hosts > 99 else 2
        self.hosts: list[Host] = []
        if names is not None and len(names) != hosts:
            raise HarnessError(f"names: {len(names)} given for {hosts} hosts")
        for i, addr in enumerate(self.plan.addresses, start=1):
            name = names[i - 1] if names else f"{name_prefix}-{i:0{width}d}"
            self.hosts.append(Host(self, i, name, addr, py.DEFAULT_PYTHON))
        by_name = {h.name: h for h in self.hosts}
        for name, spec in (pythons or {}).items():
            if name not in by_name:
                raise HarnessError(f"pythons: unknown host {name}")
            by_name[name].python = py.resolve(spec)
        for h in self.hosts:
            h.vars = {
                "site": "site-a",
                "area": f"area-{(h.index - 1) // 10 + 1}",
                "line": f"line-{(h.index - 1) // 5 + 1}",
                "criticality": "mission-critical" if h.index == 1 else "standard",
            }
        for name, extra in (host_vars or {}).items():
            if name not in by_name:
                raise HarnessError(f"host_vars: unknown host {name}")
            by_name[name].vars.update(extra)
        self._lock: state.Lock | None = None
        self._is_up = False
        self._owns_route = False
        self.timings: dict[str, float] = {}

    # -- access ----------------------------------------------------------------------

    def __getitem__(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def __iter__(self) -> Any:
        return iter(self.hosts)

    def __len__(self) -> int:
        return len(self.hosts)

    def host_dir(self, name: str, inhost: str) -> Path:
        """Controller-side path of a folder inside a host, e.g. host_dir(n, "/home")."""
        return self[name].path(inhost)

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> Fleet:
        self.up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    def up(self) -> Fleet:
        t0 = time.monotonic()
        self.state_dir = state.check_state_dir(self.state_dir)
        self._lock = state.Lock(self.state_dir)
        self._lock.acquire()
        try:
            clean_stale(self.state_dir, self.fleet_id, self.network)
            self._prepare()
            self._save(status="starting")
            atexit.register(self.down)
            net.check_free(self.plan)
            # Recorded before the route exists, so a crash right after is still cleaned;
            # never set for a range someone else routes (check_free refused that).
            self._owns_route = True
            self._save(status="starting")
            net.create(self.plan)
            t_net = time.monotonic()
            self._start_anchors()
            t_anchor = time.monotonic()
            self._start_sshds()
            t_sshd = time.monotonic()
            if self._plant_defaults:
                for h in self.hosts:
                    for path, data, kind, indicator in planted_files.default_set(h.index, h.name):
                        self._plant(h, path, data, kind, indicator)
            self._write_manifest()
            self._is_up = True
            self._save(status="up")
        except BaseException:
            self.down()
            raise
        self.timings = {
            "prepare+network": t_net - t0,
            "anchors": t_anchor - t_net,
            "sshd": t_sshd - t_anchor,
            "total": time.monotonic() - t0,
        }
        return self

    def _prepare(self) -> None:
        keys.ensure_ed25519(self.client_key.private, f"plantsweep-controller@{self.fleet_id}")
        users = hostfs.pick_users(self.state_dir)
        ld_cache = py.ld_cache(self.state_dir)
        authorized = self.client_key.public_line + " plantsweep-controller"
        entries = []
        for h in self.hosts:
            pair = keys.ensure_ed25519(h.host_key, f"root@{h.name}")
            entries.append((h.address, h.name, pair))
            hostfs.build_tree(h.dir, h.name, users, authorized)
            h.config.write_text(
                sshd.render_config(
                    address=h.address, host_key=h.host_key, pid_file=h.dir / "sshd.pid"
                )
            )
            (h.dir / "setup.sh").write_text(hostfs.setup_script(h.dir, h.name, h.netns, ld_cache))
        keys.write_known_hosts(self.known_hosts, entries)
        self.planted = {h.name: {} for h in self.hosts}
        # Drop host folders of a previous, larger fleet in this state dir.
        keep = {h.name for h in self.hosts}
        for old in (self.state_dir / "hosts").iterdir():
            if old.name not in keep and old.is_dir():
                shutil.rmtree(old)

    def _start_anchors(self) -> None:
        for h in self.hosts:
            h._anchor = sshd.spawn_anchor(h.netns, h.dir / "setup.sh", h.dir / "host.log")
            h.anchor_pid = h._anchor.pid
        self._save(status="starting")
        try:
            sshd.wait_anchors([h._anchor for h in self.hosts if h._anchor is not None])
        except HarnessError as e:
            raise HarnessError(f"{e}\n{self._log_tails('host.log')}") from None

    def _start_sshds(self) -> None:
        procs: dict[str, subprocess.Popen[bytes]] = {}
        for h in self.hosts:
            assert h.anchor_pid is not None
            h._sshd = sshd.spawn_sshd(h.anchor_pid, h.config, h.dir / "sshd.log")
            h.sshd_pid = h._sshd.pid
            procs[h.address] = h._sshd
        self._save(status="starting")
        try:
            sshd.wait_ports([h.address for h in self.hosts], procs)
        except HarnessError as e:
            raise HarnessError(f"{e}\n{self._log_tails('sshd.log')}") from None

    def _log_tails(self, name: str) -> str:
        out = []
        for h in self.hosts:
            log = h.dir / name
            if log.exists() and log.stat().st_size:
                out.append(f"{h.name}: {log.read_text(errors='replace')[-400:].strip()}")
        return "\n".join(out[:5])

    @property
    def is_up(self) -> bool:
        return self._is_up

    def down(self) -> list[str]:
        """Tear everything down; safe to call repeatedly and after a failed up().

        Returns what could not be removed (empty when clean), and warns about it.
        """
        atexit.unregister(self.down)
        problems = teardown(self._state_dict("down"))
        if problems:
            warnings.warn(f"fleet {self.fleet_id}: {'; '.join(problems)}", stacklevel=2)
        self._owns_route = False
        for h in self.hosts:
            for p in (h._sshd, h._anchor):
                if p is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        p.wait(timeout=2)
            h._sshd = h._anchor = None
            h.sshd_pid = h.anchor_pid = None
        if self.state_dir.exists():
            self._save(status="down")
        self._is_up = False
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        return problems

    def detach(self) -> None:
        """Leave the fleet running after this process exits (CLI `up`)."""
        atexit.unregister(self.down)
        for h in self.hosts:
            h._sshd = h._anchor = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- state -----------------------------------------------------------------------

    def _state_dict(self, status: str) -> dict[str, Any]:
        return {
            "version": 1,
            "status": status,
            "fleet_id": self.fleet_id,
            "network": self.network,
            "owns_route": self._owns_route,
            "gateway": self.gateway,
            "bridge": self.plan.bridge,
            "state_dir": str(self.state_dir),
            "known_hosts": str(self.known_hosts),
            "client_key": str(self.client_key.private),
            "owner_pid": os.getpid(),
            "hosts": [h.to_state() for h in self.hosts],
        }

    def _save(self, status: str | None = None) -> None:
        if status is None:
            old = state.read(self.state_dir) or {}
            status = str(old.get("status", "up"))
        state.write(self.state_dir, self._state_dict(status))

    # -- files -----------------------------------------------------------------------

    def plant_files(
        self,
        host: str,
        files: Mapping[str, bytes],
        *,
        kind: str = "custom",
        indicator: str | None = None,
    ) -> list[planted_files.PlantedFile]:
        """Write files into a host (paths are in-host, absolute or relative to /)."""
        h = self[host]
        out = [self._plant(h, rel, data, kind, indicator) for rel, data in files.items()]
        self._write_manifest()
        return out

    def _plant(
        self, h: Host, rel: str, data: bytes, kind: str, indicator: str | None
    ) -> planted_files.PlantedFile:
        inhost = "/" + rel.lstrip("/")
        target = h.path(inhost)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        pf = planted_files.describe(h.name, inhost, data, kind, indicator)
        self.planted.setdefault(h.name, {})[inhost] = pf
        return pf

    def remove_planted(self, host: str, inhost: str) -> None:
        h = self[host]
        with contextlib.suppress(FileNotFoundError):
            h.path(inhost).unlink()
        self.planted.get(h.name, {}).pop(inhost, None)
        self._write_manifest()

    def expected_findings(self, host: str) -> list[planted_files.PlantedFile]:
        return self[host].expected_findings

    def _write_manifest(self) -> None:
        manifest = {
            name: [pf.to_json() for pf in files.values()] for name, files in self.planted.items()
        }
        (self.state_dir / "planted.json").write_text(json.dumps(manifest, indent=2) + "\n")

    def write_test_patterns(self, directory: Path | None = None) -> dict[str, Path]:
        return planted_files.write_test_patterns(directory or self.state_dir / "patterns")

    # -- inventory -------------------------------------------------------------------

    def write_inventory(
        self, path: str | Path, groups: Mapping[str, Iterable[str]] | None = None
    ) -> Path:
        data = inventory.render(
            self.hosts, key=self.client_key.private, known_hosts=self.known_hosts, groups=groups
        )
        return inventory.write(Path(path), data)


# -- teardown (shared by Fleet.down, stale cleanup and the CLI) -----------------------


def teardown(data: Mapping[str, Any]) -> list[str]:
    """Tear down what a state file describes. Returns problems left over (empty = clean)."""
    hosts = list(data.get("hosts", []))
    fleet_id = str(data.get("fleet_id", ""))
    names = [str(h["netns"]) for h in hosts]
    links = [str(h["veth"]) for h in hosts] + ([str(data["bridge"])] if data.get("bridge") else [])
    if fleet_id and net.FLEET_ID_RE.match(fleet_id):
        extra_ns, extra_links = net.owned_leftovers(fleet_id)
        names += [n for n in extra_ns if n not in names]
        links += [n for n in extra_links if n not in links]
    inodes = {ns: netns_inode(f"/run/netns/{ns}") for ns in names}
    # 1. Recorded PIDs (anchor, listening sshd), only if the command line and the
    #    namespace are still ours: a crashed fleet's PIDs may have been reused.
    roots: list[int] = []
    for h in hosts:
        ino = inodes.get(str(h["netns"]))
        config = Path(str(h["config"]))
        netns = str(h["netns"])
        for key, matches in (
            ("sshd_pid", lambda a, c=config: sshd.is_our_sshd(a, c)),
            ("anchor_pid", lambda a, n=netns: sshd.is_our_anchor(a, n)),
        ):
            pid = h.get(key)
            ours = isinstance(pid, int) and (ino is None or in_netns(pid, ino))
            # SIGCONT: a stopped sshd must run to reap its sessions below.
            if ours and kill_verified(pid, matches, signal.SIGCONT):
                roots.append(pid)
    # 2. Everything else inside our namespaces (ssh sessions and what they run), deepest
    #    first so each parent, still alive, reaps its child.
    others = [
        pid
        for ns in names
        for pid in net.netns_pids(ns)
        if pid not in roots and in_netns(pid, inodes[ns])
    ]
    killed = kill_leaf_first(others)
    # 3. Then the roots; reaped here when this process started them.
    for pid in roots:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    killed += roots
    left = wait_gone(killed, timeout=5.0)
    wait_reaped(killed, timeout=1.0)
    # 3. Namespaces, links, then the safety route.
    route = str(data["network"]) if data.get("network") and data.get("owns_route") else None
    net.destroy(names, links, route)
    problems = [f"process {pid} did not exit" for pid in left]
    remaining_ns, remaining_links = net.owned_leftovers(fleet_id) if fleet_id else ([], [])
    problems += [f"netns {n} left" for n in remaining_ns]
    problems += [f"link {n} left" for n in remaining_links]
    if route and net.safety_route_present(route):
        problems.append(f"route unreachable {data['network']} left")
    return problems


def clean_stale(state_dir: Path, fleet_id: str, network: str) -> None:
    """Remove a crashed or still-running fleet with this id or state folder."""
    old = state.read(state_dir)
    if old is not None:
        teardown(old)
    teardown({"fleet_id": fleet_id, "bridge": net.bridge_name(fleet_id)})
    # A safety route left alone on our range is an orphan; if a bridge still routes the
    # range, another fleet owns it and check_free() will refuse to start.
    if net.safety_route_present(network) and not net.range_in_use(network):
        net.destroy([], [], network)


def down_state_dir(state_dir: Path) -> list[str]:
    """CLI `down`: tear down the fleet recorded in a state folder."""
    data = state.read(state_dir)
    if data is None:
        raise HarnessError(f"{state_dir}: no fleet state file ({state.STATE_FILE})")
    lock = state.Lock(state_dir)
    lock.acquire()
    try:
        problems = teardown(data)
        data = dict(data)
        data["status"] = "down"
        for h in data.get("hosts", []):
            h["anchor_pid"] = h["sshd_pid"] = None
        state.write(state_dir, data)
        return problems
    finally:
        lock.release()


__all__ = [
    "CLEAN_ENV",
    "DEFAULT_NETWORK",
    "Fleet",
    "Host",
    "clean_stale",
    "down_state_dir",
    "teardown",
]
