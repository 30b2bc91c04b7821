"""A scan campaign: inventory -> host selection -> one session per host -> logs -> recap.

code = run_scan(ScanRequest(inventories=["inventories/demo-plant.yml"], scan_type="quick"))
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from orchestrator import __version__, exit_codes, payload
from orchestrator.connections import SSHOptions, Target, Timeouts
from orchestrator.detection import DetectionOptions
from orchestrator.display import Reporter, recap
from orchestrator.errors import UsageError
from orchestrator.inventory import load_inventory
from orchestrator.journal import Journal, journal_dir
from orchestrator.pattern_source import pattern_archive
from orchestrator.quarantine.apply import ACTIONS
from orchestrator.quarantine.vault import Vault
from orchestrator.results import RunFolder, new_run_id, utc_now, write_json_atomic
from orchestrator.runner import run_hosts
from orchestrator.scan import HostResult, ScanPlan, scan_host
from orchestrator.store.after_run import store_run
from orchestrator.targets import target_for
from orchestrator.verdict_cache import VerdictCache, archive_ids


@dataclass(frozen=True)
class ScanRequest:
    inventories: list[str]
    scan_type: str = "quick"
    extra_vars: dict[str, Any] = field(default_factory=dict)
    limit: str | None = None
    paths: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    include_mounts: str | None = None
    patterns: str | Path | None = None
    forks: int = 20
    out: Path = Path("results")
    max_size: int | None = None
    known_hosts: Path | None = None
    trust_on_first_use: bool = False
    password: str | None = field(default=None, repr=False)
    connect_timeout: float = 10.0
    command_timeout: float = 60.0
    scan_timeout: float = 3600.0
    wheel_dir: Path | None = None
    detection: DetectionOptions = field(default_factory=DetectionOptions)
    action: str = "log-only"  # or quarantine (never on mission-critical hosts)
    store: str | None = None  # the central store's URL (None: $PLANTSWEEP_STORE or the default)
    store_kind: str = "scan"  # how the store records the run (the site gate: "checkpoint")


def exit_code(results: list[HostResult], interrupted: bool = False) -> int:
    """The run's exit code from its host results (see orchestrator.exit_codes)."""
    return exit_codes.for_run(
        findings=any(r.status == "findings" for r in results),
        failed=any(r.status in ("failed", "unreachable") for r in results),
        interrupted=interrupted,
    )


def zip_patterns(patterns: str | Path, dest: Path) -> tuple[Path, bool]:
    """One archive instead of one transfer per rule file; the host unpacks it in its temp dir.

    `patterns` is a folder or `bundle:NAME`. Also says whether the set holds YARA rules (else
    no yara engine is needed on hosts)."""
    return pattern_archive(patterns, dest)


def _wheel_cache(request: ScanRequest, err: Console) -> Path:
    wheel_dir = request.wheel_dir or payload.default_wheel_dir()
    if not any(wheel_dir.glob("yara_python-*.whl")):
        err.print(
            f"[yellow]warning:[/] no yara-python wheels in {wheel_dir}: hosts will be scanned "
            "with hash IOCs only (run `plantsweep wheels` to fill the cache)",
            markup=True,
        )
    return wheel_dir


def run_scan(request: ScanRequest, console: Console | None = None) -> int:
    inventory = load_inventory(request.inventories, extra_vars=request.extra_vars)
    hosts = inventory.select("all", limit=request.limit)
    # Resolve every host's connection settings first: a missing password variable or an
    # unknown connection type is an input error, reported before any host is touched.
    jobs = []
    for host in hosts:
        hostvars = inventory.host_vars(host.name)
        jobs.append((target_for(host.name, hostvars, request.password), hostvars))
    if request.action not in ACTIONS:
        raise UsageError(f"action must be one of {', '.join(ACTIONS)}, got {request.action!r}")
    vault = None
    if request.action == "quarantine":
        vault = Vault.open()
        vault.ensure_key()  # a key problem is reported before any host is touched
    run = RunFolder(request.out, new_run_id())
    try:
        run.path.mkdir(parents=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create the results folder: {exc.strerror or exc}", path=str(run.path)
        ) from None
    journal = Journal.open(journal_dir(), run.run_id, request.inventories)
    err = console or Console(stderr=True, highlight=False)
    with tempfile.TemporaryDirectory(prefix="plantsweep-build-") as build:
        patterns_zip = None
        wheel_dir = None
        if request.scan_type != "asset":
            patterns_dir = request.patterns or payload.default_patterns_dir()
            patterns_zip, has_yara = zip_patterns(patterns_dir, Path(build) / "patterns.zip")
            # The yara wheel (a few MB per host) is pushed only when there are rules to run.
            if has_yara:
                wheel_dir = _wheel_cache(request, err)
        plan = ScanPlan(
            scan_type=request.scan_type,
            run=run,
            payload=payload.build_payload(payload.default_wheel_dir().parent / "payload"),
            patterns_zip=patterns_zip,
            paths=request.paths,
            excludes=request.excludes,
            include_mounts=request.include_mounts,
            max_size=request.max_size,
            wheel_dir=wheel_dir,
            journal=journal,
            scanner_options=request.detection.scanner_args(),
            cache=VerdictCache.default() if request.detection.use_cache else None,
            pattern_ids=archive_ids(patterns_zip) if patterns_zip else None,
            since_last=request.detection.since_last,
            min_level=request.detection.min_level,
            action=request.action,
            vault=vault,
            ssh=SSHOptions(
                known_hosts=request.known_hosts,
                trust_on_first_use=request.trust_on_first_use,
                banner_timeout=request.connect_timeout,
            ),
            timeouts=Timeouts(
                connect=request.connect_timeout,
                command=request.command_timeout,
                transfer=max(request.command_timeout, 120.0),
                scan=request.scan_timeout,
            ),
        )
        started = utc_now()
        reporter = Reporter(len(hosts), f"{request.scan_type} scan, run {run.run_id}", err)

        def work(job: tuple[Target, dict[str, Any]], cancel: threading.Event) -> HostResult:
            target, hostvars = job
            return scan_host(target, hostvars, plan, reporter.step, cancel)

        try:
            outcome = run_hosts(jobs, work, request.forks, reporter.done)
        finally:
            reporter.close()
    journal.finished()
    results = outcome.results
    code = exit_code(results, outcome.interrupted)
    write_json_atomic(
        run.summary(),
        {
            "run_id": run.run_id,
            "plantsweep": __version__,
            "scan_type": request.scan_type,
            "action": request.action,
            "inventories": request.inventories,
            "limit": request.limit,
            "started": started,
            "finished": utc_now(),
            "exit_code": code,
            "interrupted": outcome.interrupted,
            "not_started": [t.name for t, _ in jobs[len(results) :]] if outcome.interrupted else [],
            "hosts": [r.as_summary() for r in results],
        },
    )
    recap(results)
    if outcome.interrupted:
        err.print(f"interrupted: {len(jobs) - len(results)} host(s) not scanned")
    err.print(f"logs: {run.path}")
    store_run(run.path, request.store_kind, request.store, err)
    return code
