"""The action of a scan, applied by the controller to a fetched scan log.

    summary = apply_action(session, log, hostvars, ActionPolicy("quarantine", vault=vault))

The scanner is always log-only; quarantine happens here, after the log is safely on the
controller, in the same session. Mission-critical hosts are never touched: each finding that
would have been quarantined gets a `refused` record instead. Every attempt is recorded in the
log's `actions` list and in the finding's `action`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentless_scanner.scoring import LEVELS, level_at_least
from orchestrator.errors import HostError, HostUnreachable
from orchestrator.quarantine.remote import QuarantineFailed, quarantine_file
from orchestrator.quarantine.vault import Vault
from orchestrator.results import utc_now
from orchestrator.session import HostSession

ACTIONS = ("log-only", "quarantine")
DEFAULT_MIN_LEVEL = "warning"
MISSION_CRITICAL = "mission-critical"

# The finding's `action` after the controller acted on it.
FINDING_ACTION = {
    "quarantined": "quarantined",
    "failed": "quarantine-failed",
    "refused": "quarantine-refused",
}


def finding_level(finding: dict[str, Any]) -> str:
    """The finding's level; a log from a scanner without levels counts every match as an alert
    (a match was the only kind of finding then)."""
    level = finding.get("level")
    return level if level in LEVELS else "alert"


def is_mission_critical(hostvars: dict[str, Any]) -> bool:
    return str(hostvars.get("criticality", "")).strip().lower() == MISSION_CRITICAL


@dataclass(frozen=True)
class ActionPolicy:
    """What to do with findings: log only, or quarantine those at or above `min_level`."""

    action: str = "log-only"
    min_level: str = DEFAULT_MIN_LEVEL
    vault: Vault | None = None


@dataclass
class ActionSummary:
    """Counts per result, for the recap line of the host."""

    quarantined: int = 0
    failed: int = 0
    refused: int = 0
    mission_critical: bool = False
    messages: list[str] = field(default_factory=list)  # "path: why" per file not quarantined

    @property
    def message(self) -> str:
        if self.mission_critical and self.refused:
            return (
                f"mission-critical host: quarantine refused, log-only ({self.refused} file(s) "
                "left in place)"
            )
        parts = []
        if self.quarantined:
            parts.append(f"quarantined {self.quarantined} file(s)")
        if self.failed or self.refused:
            parts.append(
                f"{self.failed + self.refused} file(s) NOT quarantined: " + "; ".join(self.messages)
            )
        return "; ".join(parts)


def _targets(findings: list[dict[str, Any]], min_level: str) -> dict[str, list[dict[str, Any]]]:
    """Findings to act on, grouped by the file on the host (a zip member's outer file; one
    file may carry several findings), in log order."""
    files: dict[str, list[dict[str, Any]]] = {}
    for f in findings:
        if level_at_least(finding_level(f), min_level):
            files.setdefault(f["path"], []).append(f)
    return files


def _expected_sha256(group: list[dict[str, Any]]) -> str | None:
    first = group[0]
    return first.get("container_sha256") if first.get("archive_member") else first.get("sha256")


def _strongest(group: list[dict[str, Any]]) -> dict[str, Any]:
    return max(group, key=lambda f: (LEVELS.index(finding_level(f)), f.get("score") or 0))


def apply_action(
    session: HostSession,
    log: dict[str, Any],
    hostvars: dict[str, Any],
    policy: ActionPolicy,
    log_path: Path | None = None,
) -> ActionSummary:
    """Carry out `policy` on the findings of `log` (changed in place). Never raises for one
    file; a lost connection ends the action (the files left are recorded as failed)."""
    summary = ActionSummary()
    actions: list[dict[str, Any]] = log.setdefault("actions", [])
    log["action"] = policy.action  # what was asked; `actions` says what was done
    if policy.action != "quarantine":
        return summary
    critical = is_mission_critical(hostvars)
    summary.mission_critical = critical
    lost: str | None = None
    for path, group in _targets(log.get("findings") or [], policy.min_level).items():
        sha256 = _expected_sha256(group)
        record: dict[str, Any] = {"action": "quarantine", "path": path, "sha256": sha256}
        if critical:
            result, reason = "refused", MISSION_CRITICAL
            message = "host is mission-critical: log-only is enforced, the file was not touched"
        elif not session.posix:
            result, reason = "refused", "unsupported"
            message = "quarantine on Windows hosts is not built yet: the file was left in place"
        elif any("path_b64" in f for f in group):
            result, reason = "refused", "name"
            message = "file name is not valid UTF-8: cannot be transferred, left in place"
        elif not sha256:
            result, reason = "failed", "no-hash"
            message = "the finding has no SHA-256 to verify a copy against: left in place"
        elif lost is not None:
            result, reason, message = "failed", "stopped", f"not attempted: {lost}"
        else:
            result, reason, message = _quarantine_one(session, policy, log, log_path, group, record)
            if reason in ("unreachable", "stopped"):
                lost = message
        record.update(result=result, message=message, time=utc_now())
        if reason:
            record["reason"] = reason
        actions.append(record)
        for f in group:
            f["action"] = FINDING_ACTION[result]
        setattr(summary, result, getattr(summary, result) + 1)
        if result != "quarantined":
            summary.messages.append(f"{path}: {message}")
    return summary


def _quarantine_one(
    session: HostSession,
    policy: ActionPolicy,
    log: dict[str, Any],
    log_path: Path | None,
    group: list[dict[str, Any]],
    record: dict[str, Any],
) -> tuple[str, str | None, str]:
    """(result, reason, message) for one file; sets record["vault_id"] when it got a copy."""
    assert policy.vault is not None
    top = _strongest(group)
    try:
        entry = quarantine_file(
            session,
            policy.vault,
            record["path"],
            record["sha256"],
            scan_id=log.get("scan_id"),
            log=str(log_path.absolute()) if log_path else None,
            rule=top.get("rule"),
            score=top.get("score"),
            level=finding_level(top),
        )
    except QuarantineFailed as exc:
        if exc.vault_id:
            record["vault_id"] = exc.vault_id
        return "failed", exc.reason, exc.message.removeprefix(f"{record['path']}: ")
    except HostError as exc:
        # Connection lost or Ctrl-C: the files after this one are not attempted.
        if isinstance(exc, HostUnreachable):
            return "failed", "unreachable", exc.message
        return "failed", "stopped" if session.cancel.is_set() else "error", exc.message
    record["vault_id"] = entry.id
    return "quarantined", None, f"copied to the vault as {entry.id}, verified, removed from host"
