"""The built-in actions a playbook task can name, one module each."""

from __future__ import annotations

from orchestrator.actions.assertion import Assert
from orchestrator.actions.base import Action, ActionContext, Outcome, PatternArchives, RunContext
from orchestrator.actions.cleanup import Cleanup
from orchestrator.actions.command import Command
from orchestrator.actions.fetch_logs import FetchLogs
from orchestrator.actions.report import Report
from orchestrator.actions.scan import AssetInfo, Scan

ACTIONS: dict[str, Action] = {
    a.spec.name: a
    for a in (AssetInfo(), Scan(), FetchLogs(), Assert(), Command(), Report(), Cleanup())
}
SPECS = {name: action.spec for name, action in ACTIONS.items()}

__all__ = [
    "ACTIONS",
    "SPECS",
    "Action",
    "ActionContext",
    "Outcome",
    "PatternArchives",
    "RunContext",
]
