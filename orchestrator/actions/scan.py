"""`scan` and `asset_info`: run the scanner payload in the host's temp dir and keep its log.

- scan: {type: quick}
- scan: {type: folders, paths: ["/srv/plant"], patterns: rules/}
- scan: {type: quick, action: quarantine, min_level: alert}
- scan: {type: full, threads: 2, low_impact: true, scan_archives: true, since_last: true}
- asset_info:
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from orchestrator.actions.base import Action, ActionContext, Outcome
from orchestrator.detection import DetectionOptions, counted
from orchestrator.errors import StepFailed, UsageError
from orchestrator.playbook.diff import asset_diff, findings_diff, previous_log
from orchestrator.playbook.spec import ActionSpec
from orchestrator.quarantine.apply import (
    ACTIONS,
    DEFAULT_MIN_LEVEL,
    ActionPolicy,
    ActionSummary,
    apply_action,
    is_mission_critical,
)
from orchestrator.quarantine.vault import Vault, VaultError
from orchestrator.results import write_json_atomic
from orchestrator.scan import SCAN_TYPES, ScanPlan, run_scanner
from orchestrator.verdict_cache import VerdictCache, archive_ids

# One read of each pattern archive per run, not one per host.
_archive_ids = lru_cache(maxsize=16)(archive_ids)


def _as_list(value: Any, name: str, host: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise StepFailed(host, f"{name} must be a path or a list of paths")


def _plan(ctx: ActionContext, args: dict[str, Any], scan_type: str) -> ScanPlan:
    patterns = args.get("patterns")
    source: str | Path = ctx.run.default_patterns
    if patterns and str(patterns).startswith("bundle:"):
        source = str(patterns)
    elif patterns:
        source = ctx.run.playbook_dir / patterns
    zip_path, has_yara = (None, False)
    if scan_type != "asset":
        zip_path, has_yara = ctx.run.archives.get(source)
    timeouts = ctx.run.timeouts
    if ctx.timeout:
        timeouts = replace(timeouts, scan=ctx.timeout)
    max_size = args.get("max_size")
    detection = _detection(ctx, args)
    return ScanPlan(
        scan_type=scan_type,
        run=ctx.run.run,
        payload=ctx.run.payload,
        patterns_zip=zip_path,
        paths=_as_list(args.get("paths"), "paths", ctx.host),
        excludes=_as_list(args.get("exclude"), "exclude", ctx.host),
        include_mounts=args.get("include_mounts"),
        max_size=int(max_size) if max_size is not None else None,
        wheel_dir=ctx.run.wheel_dir if has_yara else None,
        timeouts=timeouts,
        scanner_options=detection.scanner_args(),
        cache=VerdictCache.default() if detection.use_cache else None,
        pattern_ids=_archive_ids(zip_path) if zip_path else None,
        since_last=detection.since_last,
        min_level=detection.min_level,
    )


def _detection(ctx: ActionContext, args: dict[str, Any]) -> DetectionOptions:
    try:
        return DetectionOptions(
            min_level=args.get("min_level", "warning"),
            threads=args.get("threads"),
            low_impact=bool(args.get("low_impact", False)),
            cpu_limit=args.get("cpu_limit"),
            all_types=bool(args.get("all_types", False)),
            scan_archives=bool(args.get("scan_archives", False)),
            use_cache=bool(args.get("cache", True)),
            since_last=bool(args.get("since_last", False)),
        )
    except UsageError as exc:
        raise StepFailed(ctx.host, exc.message) from None


def _keep_log(ctx: ActionContext, log: dict[str, Any], kind: str) -> Path:
    """`<host>.json` for the first scan of a host, then `<host>.scan-2.json`, ...;
    asset logs `<host>.asset.json`. Remembered so the cleanup proof is added at play end."""
    logs: list[Path] = ctx.state.setdefault("logs", [])
    base = ctx.run.run.host_log(ctx.host)
    if kind == "asset":
        path = base.with_suffix(".asset.json")
    else:
        count = sum(1 for p in logs if not p.name.endswith(".asset.json"))
        path = base if count == 0 else base.with_suffix(f".scan-{count + 1}.json")
    write_json_atomic(path, log)
    logs.append(path)
    ctx.state.setdefault("log_data", {})[path] = log
    return path


def _diff(ctx: ActionContext, path: Path, log: dict[str, Any], compare: Any) -> list[str] | None:
    if not ctx.run.diff:
        return None
    before = previous_log(ctx.run.run.path.parent, ctx.run.run.run_id, path.name)
    return None if before is None else compare(before, log)


class Scan(Action):
    spec = ActionSpec(
        name="scan",
        optional=frozenset(
            {
                "type",
                "paths",
                "exclude",
                "patterns",
                "max_size",
                "include_mounts",
                "action",
                "min_level",
                "threads",
                "low_impact",
                "cpu_limit",
                "all_types",
                "scan_archives",
                "cache",
                "since_last",
            }
        ),
        choices={
            "type": SCAN_TYPES[:3],
            "action": ACTIONS,
            "min_level": ("notice", "warning", "alert"),
        },
    )

    def _scan_type(self, ctx: ActionContext, args: dict[str, Any]) -> str:
        scan_type = args.get("type", "quick")
        if scan_type not in SCAN_TYPES[:3]:
            raise StepFailed(
                ctx.host, f"scan type must be one of quick, full, folders: {scan_type!r}"
            )
        if args.get("action", "log-only") not in ACTIONS:
            raise StepFailed(ctx.host, f"action must be one of {', '.join(ACTIONS)}")
        if scan_type == "folders" and not args.get("paths"):
            raise StepFailed(ctx.host, "scan type folders needs paths")
        return scan_type

    def run(self, ctx: ActionContext, args: dict[str, Any]) -> Outcome:
        scan_type = self._scan_type(ctx, args)
        log = run_scanner(ctx.live_session(), _plan(ctx, args, scan_type), ctx.hostvars)
        path = _keep_log(ctx, log, "scan")
        acted = self._act(ctx, args, log, path)
        findings = log.get("findings") or []
        min_level = args.get("min_level", "warning")
        count = counted(findings, min_level)
        data = {
            "log": str(path),
            "complete": log.get("complete", True),
            "files_scanned": log["stats"]["files_scanned"],
            "errors": log["stats"]["errors"],
            "findings": [
                {
                    "path": f["path"],
                    "rule": f["rule"],
                    "engine": f["engine"],
                    "sha256": f["sha256"],
                    "score": f.get("score"),
                    "level": f.get("level"),
                }
                for f in findings
            ],
        }
        message = f"{scan_type}: {data['files_scanned']} files, {count} findings"
        if len(findings) > count:
            message += f" ({len(findings) - count} more below {min_level})"
        if acted.message:
            message += f"; {acted.message}"
            data["actions"] = log.get("actions", [])
        diff = _diff(ctx, path, log, findings_diff)
        if log.get("complete") is False:
            return Outcome("failed", data, f"{message}; scan incomplete", count, diff=diff)
        if acted.failed:
            return Outcome("failed", data, message, count, diff=diff)
        # Files removed from the host: the one scan outcome that changed something.
        status = "changed" if acted.quarantined else "ok"
        return Outcome(status, data, message, count, diff=diff)

    def _act(
        self, ctx: ActionContext, args: dict[str, Any], log: dict[str, Any], path: Path
    ) -> ActionSummary:
        """The scan's action (quarantine) on the fetched log; the log is kept again after."""
        action = args.get("action", "log-only")
        vault = None
        if action == "quarantine" and not is_mission_critical(ctx.hostvars):
            try:
                vault = Vault.open()
                vault.ensure_key()
            except VaultError as exc:
                raise StepFailed(ctx.host, str(exc)) from None
        policy = ActionPolicy(action, args.get("min_level", DEFAULT_MIN_LEVEL), vault)
        acted = apply_action(ctx.live_session(), log, ctx.hostvars, policy, path)
        write_json_atomic(path, log)
        return acted

    def check(self, ctx: ActionContext, args: dict[str, Any]) -> Outcome:
        scan_type = self._scan_type(ctx, args)
        plan = _plan(ctx, args, scan_type)
        where = ", ".join(plan.paths) if plan.paths else f"the {scan_type} scan folders"
        then = ""
        if args.get("action") == "quarantine":
            level = args.get("min_level", DEFAULT_MIN_LEVEL)
            then = (
                " (mission-critical: log-only, quarantine refused)"
                if is_mission_critical(ctx.hostvars)
                else f", quarantine findings at or above {level}"
            )
        return Outcome(
            "ok",
            message=f"would push {plan.payload.name} and the patterns, scan {where}, "
            f"fetch the log{then} and remove the temp dir",
        )


def _assessed(asset: dict[str, Any], hostvars: dict[str, Any]) -> dict[str, Any]:
    """The asset fact with its offline assessment folded in (`asset.os.eol_status`,
    `asset.assessment.patch_level.missing_required`, ...), against the host's
    `required_patches`."""
    from orchestrator.assessment import assess
    from orchestrator.assets.report import asset_facts, required_patches
    from orchestrator.knowledge import use_knowledge

    assessment = assess(asset, use_knowledge(), required_patches(hostvars))
    return asset_facts(asset, assessment)


class AssetInfo(Action):
    spec = ActionSpec(name="asset_info")

    def run(self, ctx: ActionContext, args: dict[str, Any]) -> Outcome:
        log = run_scanner(
            ctx.live_session(), _plan(ctx, {}, "asset"), ctx.hostvars, log_name="asset-log.json"
        )
        path = _keep_log(ctx, log, "asset")
        asset = log.get("asset") or {}
        os_info = asset.get("os") or {}
        packages = (asset.get("packages") or {}).get("count", 0)
        facts = _assessed(asset, ctx.hostvars)
        eol = facts["os"]["eol_status"]
        message = (
            f"{os_info.get('pretty_name') or os_info.get('name')}, {packages} packages, "
            f"end of life: {eol}, risk {facts['assessment']['risk'].get('level', 'unknown')}"
        )
        return Outcome(
            "ok",
            {"asset": facts, "log": str(path)},
            message,
            facts={"asset": facts},
            diff=_diff(ctx, path, log, asset_diff),
        )

    def check(self, ctx: ActionContext, args: dict[str, Any]) -> Outcome:
        return Outcome("ok", message="would collect asset information with the scanner")
