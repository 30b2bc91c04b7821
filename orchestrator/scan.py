"""The scan of one host: push the payload and patterns, run the scanner, keep its log.

    result = scan_host(target, plan)

The controller never knows how the scanner walks or matches; it moves files, runs one command,
and records what came back together with the proof that the host was left clean.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.connections import SSHOptions, Target, Timeouts, make_connection
from orchestrator.detection import counted
from orchestrator.errors import HostError, HostUnreachable, StepFailed
from orchestrator.journal import Journal
from orchestrator.payload import find_yara_wheel
from orchestrator.quarantine.apply import ActionPolicy, ActionSummary, apply_action
from orchestrator.quarantine.vault import Vault
from orchestrator.results import RunFolder, write_json_atomic
from orchestrator.session import CleanupProof, HostSession, new_session
from orchestrator.verdict_cache import ArchiveIds, VerdictCache

SCAN_TYPES = ("quick", "full", "folders", "asset")
LOG_NAME = "scan-log.json"

# Inventory variables copied into each scan log so a log read alone says where the host sits.
PLANT_VARS = ("site", "area", "line", "cell", "criticality")

# Error kinds with which the scanner reports that it stopped before the end.
STOP_KINDS = ("deadline", "terminated")

StepCallback = Callable[[str, str], None]


@dataclass(frozen=True)
class ScanPlan:
    """Everything that is the same for every host of a run."""

    scan_type: str
    run: RunFolder
    payload: Path
    patterns_zip: Path | None = None
    paths: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    include_mounts: str | None = None
    max_size: int | None = None
    wheel_dir: Path | None = None
    journal: Journal | None = None
    ssh: SSHOptions = field(default_factory=SSHOptions)
    timeouts: Timeouts = field(default_factory=Timeouts)
    # Scanner flags for speed and depth (--threads, --low-impact, --scan-archives, ...).
    scanner_options: tuple[str, ...] = ()
    # The fleet verdict cache and --since-last (None: neither is used nor fed).
    cache: VerdictCache | None = None
    pattern_ids: ArchiveIds | None = None
    since_last: bool = False
    min_level: str = "warning"  # findings at or above count in the recap and exit code
    # log-only, or quarantine (findings at or above min_level) into `vault`
    action: str = "log-only"
    vault: Vault | None = None


@dataclass
class HostResult:
    """One line of the recap; the full log stays on disk."""

    host: str
    status: str  # clean | findings | failed | unreachable
    files_scanned: int = 0
    findings: int = 0
    errors: int = 0
    cleanup: CleanupProof | None = None
    message: str = ""
    log: Path | None = None
    duration: float = 0.0
    # Who cleaned up when the controller had no session (a log imported from a USB kit).
    cleanup_by: str = ""
    transfer: str | None = None  # how files travelled, where the transport has a choice

    def as_summary(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "status": self.status,
            "files_scanned": self.files_scanned,
            "findings": self.findings,
            "errors": self.errors,
            "message": self.message,
            "log": self.log.name if self.log else None,
            "cleanup": self.cleanup.as_log() if self.cleanup else None,
            "duration_s": round(self.duration, 3),
            "transfer": self.transfer,
        }


def _scanner_args(
    plan: ScanPlan, session: HostSession, host: str, wheel_dir: str | None, log_name: str
) -> list[str]:
    args = [
        session.arg_path(plan.payload.name),
        "--type",
        plan.scan_type,
        "--out",
        session.arg_path(log_name),
        "--scan-id",
        f"{plan.run.run_id}/{host}",
        "--host-name",
        host,
        # Leave the scanner time to write a partial log before the controller gives up.
        "--deadline",
        str(max(1, int(plan.timeouts.scan) - 10)),
    ]
    if plan.patterns_zip:
        args += ["--patterns", session.arg_path("patterns.zip")]
    if wheel_dir:
        args += ["--wheel-dir", wheel_dir]
    if plan.max_size is not None:
        args += ["--max-size", str(plan.max_size)]
    for path in plan.paths:
        args += ["--path", path]
    for path in plan.excludes:
        args += ["--exclude", path]
    if plan.include_mounts:
        args += ["--include-mounts", plan.include_mounts]
    args += list(plan.scanner_options)
    return args


VERDICTS_NAME = "verdicts.json.gz"
SINCE_NAME = "since.json.gz"
FILES_NAME = "files.json.gz"


def _push_history(plan: ScanPlan, session: HostSession, tmp: Path) -> list[str]:
    """Push what the cache knows for this host; return the scanner arguments for it."""
    if plan.cache is None or plan.pattern_ids is None or plan.scan_type == "asset":
        return []
    args = ["--files-out", session.arg_path(FILES_NAME)]
    local = tmp / VERDICTS_NAME
    if plan.cache.export(plan.pattern_ids.rules_id, local):
        session.push(local, VERDICTS_NAME)
        args += ["--verdicts", session.arg_path(VERDICTS_NAME)]
    local = tmp / SINCE_NAME
    if plan.since_last and plan.cache.previous_scan(session.name, local):
        session.push(local, SINCE_NAME)
        args += ["--since", session.arg_path(SINCE_NAME)]
    return args


def _push_once(session: HostSession, local: Path, name: str | None = None) -> None:
    """Push a file unless this session already has it (one push per host per play)."""
    name = name or local.name
    if session.pushed.get(name) != local:
        session.push(local, name)
        session.pushed[name] = local


def _push(plan: ScanPlan, session: HostSession) -> str | None:
    """Push the scanner, the pattern archive and, if the cache has one, the yara wheel;
    return the scanner's --wheel-dir (None: no wheel, hash IOCs only)."""
    _push_once(session, plan.payload)
    if plan.patterns_zip:
        _push_once(session, plan.patterns_zip, "patterns.zip")
    facts = session.facts
    assert facts is not None
    if plan.scan_type == "asset":
        return None
    if facts.wheel_dir is not None:
        return facts.wheel_dir  # the session's runtime brought its own (the Windows kit)
    wheel = None
    if plan.wheel_dir:
        wheel = find_yara_wheel(plan.wheel_dir, facts.version[:2], facts.machine)
    if wheel is None:
        return None
    _push_once(session, wheel)  # the scanner unpacks it inside the temp dir; nothing installed
    return facts.temp_dir


def run_scanner(
    session: HostSession,
    plan: ScanPlan,
    hostvars: dict[str, Any],
    on_step: StepCallback | None = None,
    log_name: str = LOG_NAME,
) -> dict[str, Any]:
    """Push what is missing, run the scanner in the session's temp dir, return its log."""
    step = on_step or (lambda host, name: None)
    host = session.name
    step(host, "push")
    wheel_dir = _push(plan, session)
    with tempfile.TemporaryDirectory(prefix="plantsweep-fetch-") as tmp:
        history = _push_history(plan, session, Path(tmp))
        step(host, "scan")
        args = _scanner_args(plan, session, host, wheel_dir, log_name) + history
        run = session.run_python(args, plan.timeouts.scan, leaves_nothing_running=True)
        if not run.ok:
            raise StepFailed(host, f"scanner exited with {run.rc}: {run.stderr_tail()}")
        step(host, "fetch")
        local = Path(tmp) / log_name
        session.fetch(log_name, local)
        try:
            log = json.loads(local.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise StepFailed(host, f"scan log is not valid JSON: {exc}") from None
        if history and plan.cache is not None:
            files = Path(tmp) / FILES_NAME
            session.fetch(FILES_NAME, files)
            log["verdict_cache"] = plan.cache.absorb(host, files, log)
    _annotate(log, plan, hostvars)
    return log


def _keep(path: Path, log: dict[str, Any], host: str) -> None:
    try:
        write_json_atomic(path, log)
    except OSError as exc:
        raise StepFailed(host, f"cannot write the scan log {path}: {exc.strerror or exc}") from None


def _annotate(log: dict[str, Any], plan: ScanPlan, hostvars: dict[str, Any]) -> None:
    log["inventory"] = {k: hostvars[k] for k in PLANT_VARS if k in hostvars}
    log["run_id"] = plan.run.run_id


def _result_from_log(host: str, log: dict[str, Any], path: Path, min_level: str) -> HostResult:
    stats = log.get("stats") or {}
    findings = counted(log.get("findings") or [], min_level)
    result = HostResult(
        host=host,
        status="findings" if findings else "clean",
        files_scanned=int(stats.get("files_scanned", 0)),
        findings=findings,
        errors=int(stats.get("errors", 0)),
        log=path,
    )
    if log.get("complete") is False:
        # A partial scan is never reported clean: the host was not fully inspected.
        # Only the error entries: the per-file skips of kind "deadline" say the same, once
        # per file that was queued when the walk stopped.
        stops = [
            e["message"]
            for e in log.get("errors", [])
            if e.get("kind") in STOP_KINDS and e.get("category", "error") == "error"
        ]
        result.status = "failed"
        result.message = "scan incomplete: " + ("; ".join(stops) or "stopped early")
    return result


def _add_action(result: HostResult, acted: ActionSummary) -> None:
    """A file the user asked to quarantine and that is still on the host fails the host."""
    if acted.message:
        result.message = "; ".join(m for m in (result.message, acted.message) if m)
    if acted.failed:
        result.status = "failed"


def scan_host(
    target: Target,
    hostvars: dict[str, Any],
    plan: ScanPlan,
    on_step: StepCallback | None = None,
    cancel: threading.Event | None = None,
) -> HostResult:
    """Scan one host; never raises for a host problem, it returns a failed/unreachable result."""
    started = time.monotonic()
    step = on_step or (lambda host, name: None)
    host = target.name
    log_path = plan.run.host_log(host)
    log: dict[str, Any] | None = None
    session: HostSession | None = None
    try:
        step(host, "connect")
        session = new_session(
            make_connection(target, plan.ssh, plan.timeouts),
            target,
            plan.timeouts,
            cancel,
            plan.journal,
        )
        with session:
            log = run_scanner(session, plan, hostvars, on_step)
            # On disk before cleanup: a failure from here on loses nothing.
            _keep(log_path, log, host)
            if plan.action != "log-only":
                step(host, plan.action)
            policy = ActionPolicy(plan.action, plan.min_level, plan.vault)
            acted = apply_action(session, log, hostvars, policy, log_path)
            _keep(log_path, log, host)
            step(host, "cleanup")
        result = _result_from_log(host, log, log_path, plan.min_level)
        _add_action(result, acted)
    except HostUnreachable as exc:
        result = HostResult(host=host, status="unreachable", message=exc.message)
    except HostError as exc:
        result = HostResult(host=host, status="failed", message=exc.message)
    except Exception as exc:  # a bug must not end the campaign for the other hosts
        result = HostResult(
            host=host, status="failed", message=f"internal error: {type(exc).__name__}: {exc}"
        )
    result.cleanup = session.proof if session else None
    result.transfer = session.conn.describe_transfer() if session else None
    if log is not None and result.cleanup is not None:
        log["cleanup"] = result.cleanup.as_log()
        try:
            _keep(log_path, log, host)
        except StepFailed as exc:
            result.status, result.message = "failed", exc.message
    if result.cleanup is not None and not result.cleanup.clean and result.status != "unreachable":
        result.status = "failed"
        result.message = result.message or "cleanup could not be proven: " + "; ".join(
            result.cleanup.errors + [f"left: {p}" for p in result.cleanup.residue]
        )
    result.duration = time.monotonic() - started
    return result
