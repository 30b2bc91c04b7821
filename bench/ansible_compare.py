"""Benchmark: the same campaign run by ansible-core, a bare paramiko loop and plantsweep.

    .venv/bin/python bench/ansible_compare.py [--hosts 10 50] [--forks 20] [--runs 3]
                                              [--plantsweep-cmd TEMPLATE] [--keep]
                                              [--ansible-ssh-args '-C -o ControlMaster=no']

What is measured. One simulated plant (tests/harness, one real sshd per host in its own
network namespace, fleet "abench" on 10.203.231.0/24) with as many hosts as the largest
--hosts; each host count uses an inventory of the first N hosts. On every host the campaign
is: create a private temp dir, push the scanner zipapp (orchestrator.payload.build_payload)
and a zip of an empty pattern set, run the scanner (`--type folders` on the empty folder
/srv/plant/empty, so it measures orchestration overhead, not scanning), bring back its JSON
log and remove the temp dir. It is run three ways with the same number of workers (--forks):

1. ansible-core: `ansible-playbook` with bench/ansible/campaign.yml (tempfile, copy, copy,
   command, fetch flat, file absent), pipelining on, no fact gathering, host keys checked
   against the fleet's known_hosts, ControlPersist left at its default (60 s), a private
   ANSIBLE_HOME/ANSIBLE_LOCAL_TEMP and a fresh ControlPath dir per run (every run starts
   without master connections; the masters left behind are stopped after the run, untimed).
2. the bare paramiko loop (bench/bare_paramiko.run_bare, the floor: no engine, no proof), run
   in a child Python process so that it is timed and measured the same way as the others.
3. plantsweep: `plantsweep scan ...` by default, or `plantsweep run bench/plantsweep-campaign.yml
   ... --out DIR -e patterns=DIR -e scan_path=PATH` when that playbook exists and
   `plantsweep run --help` works, or the --plantsweep-cmd template.

For every run: wall time of the whole controller process (interpreter start included, for all
three ways), and the controller's peak memory: a thread samples every 50 ms the resident set
(/proc/PID/statm, the same figure as VmRSS) of every process of the run, summed (the run's
process, its descendants, and for ansible the ssh ControlPersist masters, which detach and are
caught because this process is a child subreaper). Summed RSS counts pages shared between
ansible's forked workers once per worker, so the proportional set size (Pss from
/proc/PID/smaps_rollup, sampled every 250 ms) is reported too. A run counts only if it
succeeded: exit code 0, one valid, complete JSON log per host naming that host (for ansible
also every host in PLAY RECAP with its 6 tasks ok), and each host's /tmp back to what it was
before the run; otherwise the benchmark stops with the reason. The three controllers run with
their Python bytecode cached (see bytecode_env), after an untimed 2-host warm-up of each
way. Runs are interleaved (ansible, bare, plantsweep, ansible, ...); each waits while a pytest
process runs on the machine, and a run during which pytest ran is repeated. Median of --runs.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
VENV_BIN = ROOT / ".venv" / "bin"
PLAYBOOK = BENCH / "ansible" / "campaign.yml"
CAMPAIGN = BENCH / "plantsweep-campaign.yml"
FLEET_ID = "abench"
NETWORK = "10.203.231.0/24"
SCAN_PATH = "/srv/plant/empty"
SCAN_TEMPLATE = (
    "{plantsweep} scan -i {inventory} --type folders --path {scan_path} "
    "--patterns {patterns} -f {forks} --out {out}"
)
RUN_TEMPLATE = (
    "{plantsweep} run {campaign} -i {inventory} -f {forks} --out {out} "
    "-e patterns={patterns} -e scan_path={scan_path}"
)
WAYS = ("ansible-core", "bare paramiko", "plantsweep")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
SAMPLE_S = 0.05
PSS_EVERY = 5  # samples
PR_SET_CHILD_SUBREAPER = 36


class BenchError(Exception):
    """A run failed or the setup is wrong: the benchmark stops with this message."""


# -- process tree sampling ------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return found


def _tree(roots: set[int]) -> set[int]:
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        pid = stack.pop()
        if pid not in seen:
            seen.add(pid)
            stack.extend(_children(pid))
    return seen


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_KIB
    except (OSError, IndexError, ValueError):
        return 0


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, IndexError, ValueError):
        pass
    return 0


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pytest_pids() -> list[int]:
    """Processes whose command line mentions pytest (what `pgrep -f pytest` finds)."""
    me = os.getpid()
    return [
        int(name)
        for name in os.listdir("/proc")
        if name.isdigit() and int(name) != me and "pytest" in _cmdline(int(name))
    ]


class TreeSampler(threading.Thread):
    """Peak summed RSS/PSS of every child of this process not in `baseline`, and below."""

    def __init__(self, baseline: set[int]) -> None:
        super().__init__(daemon=True)
        self.baseline = baseline
        self.peak_rss_kib = 0
        self.peak_pss_kib = 0
        self.peak_procs = 0
        self.cpu_s = 0.0
        self.saw_pytest = False
        self._done = threading.Event()

    def run(self) -> None:
        cpu0 = time.thread_time()
        me = os.getpid()
        i = 0
        while True:
            pids = _tree(set(_children(me)) - self.baseline)
            self.peak_procs = max(self.peak_procs, len(pids))
            self.peak_rss_kib = max(self.peak_rss_kib, sum(_rss_kib(p) for p in pids))
            if i % PSS_EVERY == 0:
                self.peak_pss_kib = max(self.peak_pss_kib, sum(_pss_kib(p) for p in pids))
            if i % 20 == 0 and pytest_pids():
                self.saw_pytest = True
            i += 1
            if self._done.wait(SAMPLE_S):
                break
        self.cpu_s = time.thread_time() - cpu0

    def stop(self) -> None:
        self._done.set()
        self.join()


def set_subreaper(on: bool) -> None:
    """Orphans of our runs (ssh ControlPersist masters) become our children, so they are seen."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise BenchError(f"prctl(PR_SET_CHILD_SUBREAPER): errno {ctypes.get_errno()}")


def stop_leftovers(baseline: set[int], marker: str) -> list[str]:
    """Stop and reap processes a run left behind (they carry `marker`, our work dir).

    Returns the command lines of other new children, which are left alone."""
    others: list[str] = []
    for pid in set(_children(os.getpid())) - baseline:
        cmd = _cmdline(pid)
        if marker in cmd:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        elif cmd:
            others.append(f"{pid}: {cmd}")
            continue
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    return others


# -- one timed run --------------------------------------------------------------------


@dataclass
class Run:
    wall_s: float
    peak_rss_kib: int
    peak_pss_kib: int
    peak_procs: int
    sampler_cpu_s: float
    note: str = ""


@dataclass
class Way:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)


def wait_quiet(label: str) -> None:
    waited = False
    while pids := pytest_pids():
        if not waited:
            print(f"  [{label}] pytest is running (pids {pids[:5]}): waiting", flush=True)
            waited = True
        time.sleep(10)
    if waited:
        print(f"  [{label}] pytest finished, going on", flush=True)


def timed_process(
    argv: Sequence[str], env: dict[str, str], cwd: Path, log: Path, marker: str
) -> tuple[int, Run, bool]:
    """Run argv, sampling its process tree. Returns (exit code, figures, pytest seen)."""
    baseline = set(_children(os.getpid()))
    full_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    full_env.update(env)
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), env=full_env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )
        sampler = TreeSampler(baseline)
        sampler.start()
        rc = proc.wait()
        wall = time.perf_counter() - t0
        sampler.stop()
    others = stop_leftovers(baseline, marker)
    if others:
        print("  warning: processes left by the run, not ours to stop:", *others, sep="\n    ")
    run = Run(wall, sampler.peak_rss_kib, sampler.peak_pss_kib, sampler.peak_procs, sampler.cpu_s)
    return rc, run, sampler.saw_pytest


# -- checks ---------------------------------------------------------------------------


def check_log(path: Path, host: str, way: str) -> None:
    if not path.is_file():
        raise BenchError(f"{way}: no scan log for {host} ({path} missing)")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BenchError(f"{way}: scan log of {host} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("host") != host:
        raise BenchError(f"{way}: scan log {path} does not name host {host}")
    if data.get("complete") is not True:
        raise BenchError(f"{way}: scan log of {host} says the scan is not complete")


RECAP_RE = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=\d+\s+unreachable=(\d+)\s+failed=(\d+)")
ANSIBLE_TASKS = 6  # tasks in bench/ansible/campaign.yml


def check_recap(log: Path, names: list[str]) -> None:
    """Every host in ansible's PLAY RECAP with all tasks ok, none unreachable or failed."""
    recap: dict[str, tuple[int, int, int]] = {}
    for line in log.read_text(errors="replace").splitlines():
        if m := RECAP_RE.match(line):
            recap[m[1]] = (int(m[2]), int(m[3]), int(m[4]))
    for name in names:
        ok, unreachable, failed = recap.get(name, (0, 0, 0))
        if ok != ANSIBLE_TASKS or unreachable or failed:
            raise BenchError(
                f"ansible-core: PLAY RECAP for {name}: ok={ok} unreachable={unreachable} "
                f"failed={failed} (expected ok={ANSIBLE_TASKS}); output:\n{tail(log)}"
            )


def tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "(no output)"


# -- main -----------------------------------------------------------------------------


def plantsweep_template(override: str | None) -> tuple[str, str]:
    """The command template for plantsweep and why it was chosen."""
    if override:
        return override, "--plantsweep-cmd"
    if CAMPAIGN.is_file():
        probe = subprocess.run(
            [str(VENV_BIN / "plantsweep"), "run", "--help"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return RUN_TEMPLATE, f"plantsweep run ({CAMPAIGN.relative_to(ROOT)} exists)"
        return SCAN_TEMPLATE, f"plantsweep scan ({CAMPAIGN.name} exists but `run` does not work)"
    return SCAN_TEMPLATE, f"plantsweep scan (no {CAMPAIGN.relative_to(ROOT)})"


def bare_child(spec_path: str) -> int:
    """Child process mode: the bare paramiko loop, then its own figures as JSON on stdout."""
    sys.path.insert(0, str(BENCH))
    t0 = time.perf_counter()
    from bare_paramiko import run_bare

    spec = json.loads(Path(spec_path).read_text())
    t1 = time.perf_counter()
    done = run_bare(
        spec["hosts"],
        Path(spec["payload"]),
        Path(spec["patterns_zip"]),
        spec["args"],
        spec["workers"],
    )
    t2 = time.perf_counter()
    print(json.dumps({"done": done, "import_s": t1 - t0, "loop_s": t2 - t1}))
    return 0 if done == len(spec["hosts"]) else 1


def fmt_cmd(way: Way) -> str:
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in way.env.items())
    return f"env -u PYTHONDONTWRITEBYTECODE {env} \\\n      {shlex.join(way.argv)}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, nargs="+", default=[10, 50])
    ap.add_argument("--forks", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--plantsweep-cmd",
        help="command template for plantsweep, with {plantsweep} {inventory} {forks} {out} "
        "{patterns} {scan_path} {campaign}; the logs must land as <host>.json under {out}",
    )
    ap.add_argument(
        "--ansible-ssh-args",
        help="ANSIBLE_SSH_ARGS for ansible-core (default: unset, i.e. ansible's "
        "'-C -o ControlMaster=auto -o ControlPersist=60s'); e.g. '-C -o ControlMaster=no' "
        "to see what ControlPersist saves",
    )
    ap.add_argument(
        "--keep",
        action="store_true",
        help="keep the work dir (inventories, outputs, fetched logs) under /var/tmp",
    )
    ap.add_argument("--bare-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bare_child:
        return bare_child(args.bare_child)
    try:
        return bench(args)
    except BenchError as exc:
        print(f"\nBENCHMARK ABORTED: {exc}", file=sys.stderr)
        return 1


@contextlib.contextmanager
def work_dir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="abench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"work dir kept: {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def bench(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))
    from orchestrator.campaign import zip_patterns
    from orchestrator.payload import build_payload
    from tests.harness import Fleet
    from tests.harness import inventory as harness_inventory

    if min(args.hosts) < 1 or args.forks < 1 or args.runs < 1:
        raise BenchError("--hosts, --forks and --runs must be positive")
    template, why = plantsweep_template(args.plantsweep_cmd)
    started = datetime.now().astimezone()
    print(
        f"ansible_compare: {started:%Y-%m-%d %H:%M %Z}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} (1 min)"
    )
    print(f"plantsweep command: {why}")
    default_ssh = "ansible's default: -C -o ControlMaster=auto -o ControlPersist=60s"
    print(f"ansible-core ANSIBLE_SSH_ARGS: {args.ansible_ssh_args or default_ssh}")
    wait_quiet("start")
    results: dict[int, dict[str, Way]] = {}

    with (
        Fleet(max(args.hosts), fleet_id=FLEET_ID, network=NETWORK, plant=False) as fleet,
        work_dir(args.keep) as work,
    ):
        for host in fleet:
            host.path(SCAN_PATH).mkdir(parents=True, exist_ok=True)
        empty_patterns = work / "empty-patterns"
        empty_patterns.mkdir()
        payload = build_payload(work / "payload")
        patterns_zip, _ = zip_patterns(empty_patterns, work / "patterns.zip")
        (work / "ansible.cfg").write_text("")  # no ~/.ansible.cfg or /etc/ansible leaks in
        host_python = sorted({h.python for h in fleet})
        print(
            f"fleet: {len(fleet)} hosts up in {fleet.timings.get('total', 0):.1f} s, "
            f"host python {', '.join(host_python)}, payload {payload.name} "
            f"({payload.stat().st_size // 1024} KiB), work dir {work}"
        )
        set_subreaper(True)
        try:
            # Warm-up (untimed, 2 hosts): bytecode and payload caches, and proof that all
            # three ways work before the long runs.
            phases = [("warm-up", min(2, len(fleet)), 1)]
            phases += [(f"{n} hosts", n, args.runs) for n in sorted(set(args.hosts))]
            for label, n, runs in phases:
                hosts = fleet.hosts[:n]
                names = [h.name for h in hosts]
                inv = harness_inventory.write(
                    work / f"inventory-{n}.yml",
                    harness_inventory.render(
                        hosts, key=fleet.client_key.private, known_hosts=fleet.known_hosts
                    ),
                )
                ways = {w: Way(w, []) for w in WAYS}
                for i in range(runs):
                    for way in ways.values():
                        attempt = 0
                        while True:
                            attempt += 1
                            rundir = work / f"{label.replace(' ', '')}-{way.name[:4]}-{i}-{attempt}"
                            rundir.mkdir()
                            wait_quiet(label)
                            tmp_before = {h.name: h.listdir("/tmp") for h in hosts}
                            run, seen = run_way(
                                way,
                                rundir,
                                work,
                                inv,
                                names,
                                args.forks,
                                payload,
                                patterns_zip,
                                empty_patterns,
                                fleet,
                                template,
                                args.ansible_ssh_args,
                            )
                            for h in hosts:
                                left = sorted(set(h.listdir("/tmp")) - set(tmp_before[h.name]))
                                if left:
                                    raise BenchError(f"{way.name}: {h.name}:/tmp kept {left}")
                            if not seen:
                                break
                            print(
                                f"  [{label}] pytest ran during {way.name} run {i + 1}: "
                                "repeating it",
                                flush=True,
                            )
                        way.runs.append(run)
                        print(
                            f"  [{label}] {way.name:<14} run {i + 1}: {run.wall_s:7.2f} s, "
                            f"peak RSS {run.peak_rss_kib / 1024:6.0f} MiB, "
                            f"PSS {run.peak_pss_kib / 1024:5.0f} MiB, "
                            f"{run.peak_procs} processes",
                            flush=True,
                        )
                if label != "warm-up":
                    results[n] = ways
            ansible_home = [h.name for h in fleet if (h.path("/root") / ".ansible").exists()]
        finally:
            set_subreaper(False)

    report(args, results, template, why, started, host_python, ansible_home)
    return 0


def bytecode_env(work: Path) -> dict[str, str]:
    """Compiled bytecode for every controller, as an installed package has.

    PYTHONDONTWRITEBYTECODE is dropped (it is set in some environments here, and the editable
    plantsweep install has no .pyc of its own, so it would compile ~50 modules every run);
    the .pyc files go to a private cache under the work dir, filled by the warm-up run, so
    nothing is written into the repository or the virtualenv."""
    return {"PYTHONPYCACHEPREFIX": str(work / "pycache")}


def run_way(
    way: Way,
    rundir: Path,
    work: Path,
    inventory: Path,
    names: list[str],
    forks: int,
    payload: Path,
    patterns_zip: Path,
    empty_patterns: Path,
    fleet: Any,
    template: str,
    ssh_args: str | None,
) -> tuple[Run, bool]:
    log = rundir / "output.txt"
    marker = str(work)
    if way.name == "ansible-core":
        fetch_dir = rundir / "fetched"
        fetch_dir.mkdir()
        extra = rundir / "vars.json"
        extra.write_text(
            json.dumps(
                {
                    "payload": str(payload),
                    "patterns_zip": str(patterns_zip),
                    "fetch_dir": str(fetch_dir),
                    "scan_path": SCAN_PATH,
                }
            )
        )
        home = work / "ansible-home"
        way.env = {
            "ANSIBLE_CONFIG": str(work / "ansible.cfg"),
            "ANSIBLE_HOME": str(home),
            "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(rundir / "cp"),
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_FORKS": str(forks),
            "ANSIBLE_STDOUT_CALLBACK": "default",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
        }
        if ssh_args is not None:
            way.env["ANSIBLE_SSH_ARGS"] = ssh_args
        way.argv = [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            str(inventory),
            "-f",
            str(forks),
            "-e",
            f"@{extra}",
            str(PLAYBOOK),
        ]
        way.env.update(bytecode_env(work))
        rc, run, seen = timed_process(way.argv, way.env, work, log, marker)
        if rc != 0:
            raise BenchError(f"ansible-playbook exited {rc}; its output:\n{tail(log)}")
        check_recap(log, names)
        for name in names:
            check_log(fetch_dir / f"{name}.json", name, way.name)
        return run, seen

    if way.name == "bare paramiko":
        spec = rundir / "spec.json"
        spec.write_text(
            json.dumps(
                {
                    "hosts": [
                        {
                            "address": fleet[n].address,
                            "python": fleet[n].python,
                            "key": str(fleet.client_key.private),
                            "known_hosts": str(fleet.known_hosts),
                        }
                        for n in names
                    ],
                    "payload": str(payload),
                    "patterns_zip": str(patterns_zip),
                    "args": ["--type", "folders", "--path", SCAN_PATH],
                    "workers": forks,
                }
            )
        )
        way.argv = [sys.executable, str(Path(__file__).resolve()), "--bare-child", str(spec)]
        way.env = bytecode_env(work)
        rc, run, seen = timed_process(way.argv, way.env, work, log, marker)
        text = tail(log)
        try:
            figures = json.loads(text.strip().splitlines()[-1])
        except (ValueError, IndexError):
            figures = {}
        if rc != 0 or figures.get("done") != len(names):
            raise BenchError(f"bare paramiko loop exited {rc}; its output:\n{text}")
        run.note = str(figures["loop_s"])
        return run, seen

    out = rundir / "out"
    way.argv = shlex.split(
        template.format(
            plantsweep=str(VENV_BIN / "plantsweep"),
            inventory=str(inventory),
            forks=forks,
            out=str(out),
            patterns=str(empty_patterns),
            scan_path=SCAN_PATH,
            campaign=str(CAMPAIGN),
        )
    )
    way.env = bytecode_env(work)
    rc, run, seen = timed_process(way.argv, way.env, work, log, marker)
    if rc != 0:
        raise BenchError(f"plantsweep exited {rc} (0 required); its output:\n{tail(log)}")
    if "{out}" in template:
        for name in names:
            found = sorted(out.rglob(f"{name}.json"))
            check_log(found[0] if found else out / f"{name}.json", name, way.name)
    else:
        print("  warning: the plantsweep template has no {out}: its logs were not checked")
    return run, seen


def report(
    args: argparse.Namespace,
    results: dict[int, dict[str, Way]],
    template: str,
    why: str,
    started: datetime,
    host_python: list[str],
    ansible_home: list[str],
) -> None:
    print(
        f"\nansible-core vs bare paramiko vs plantsweep: {args.forks} workers, "
        f"median of {args.runs} runs, {started:%Y-%m-%d}"
    )
    head = (
        f"{'hosts':>5}  {'way':<14}{'wall s':>8}{'per host ms':>13}{'peak RSS MiB':>14}"
        f"{'peak PSS MiB':>14}{'ansible/this':>14}{'this/bare':>11}"
    )
    print(head)
    print("-" * len(head))
    for n, ways in results.items():
        med = {name: statistics.median(r.wall_s for r in w.runs) for name, w in ways.items()}
        for name, way in ways.items():
            rss = max(r.peak_rss_kib for r in way.runs) / 1024
            pss = max(r.peak_pss_kib for r in way.runs) / 1024
            print(
                f"{n:>5}  {name:<14}{med[name]:>8.2f}{med[name] / n * 1000:>13.0f}{rss:>14.0f}"
                f"{pss:>14.0f}{med['ansible-core'] / med[name]:>13.1f}x"
                f"{med[name] / med['bare paramiko']:>10.2f}x"
            )
        loop = statistics.median(float(r.note) for r in ways["bare paramiko"].runs)
        runs = "; ".join(
            f"{name} " + ", ".join(f"{r.wall_s:.2f}" for r in w.runs) for name, w in ways.items()
        )
        print(f"       every run (s): {runs}")
        print(f"       bare paramiko loop alone (no interpreter start/imports): {loop:.2f} s")
    print(
        "\nwall = whole controller process, start to exit; peak RSS/PSS = the run's process tree"
        f" summed, sampled every {SAMPLE_S * 1000:.0f} ms (PSS every "
        f"{SAMPLE_S * PSS_EVERY * 1000:.0f} ms), max over runs; ansible/this = how many times "
        "faster than ansible-core; this/bare = ratio to the bare paramiko process."
    )
    sampler_cpu = [
        f"{n} hosts {way.name} {statistics.median(r.sampler_cpu_s for r in way.runs):.2f} s"
        for n, ways in results.items()
        for way in ways.values()
    ]
    print("sampler CPU per run (median): " + ", ".join(sampler_cpu))
    print(f"host python: {', '.join(host_python)}; plantsweep command: {why}")
    if ansible_home:
        print(
            f"ansible-core left /root/.ansible on {len(ansible_home)} hosts (its remote_tmp "
            "parent; the run's own temp dirs were removed)"
        )
    print("\ncommands (last run of the largest host count; paths are per run):")
    last = results[max(results)]
    for name, way in last.items():
        print(f"  {name}:\n    {fmt_cmd(way)}")
    print(f"  plantsweep template: {template}")


if __name__ == "__main__":
    sys.exit(main())
