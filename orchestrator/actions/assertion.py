"""`assert`: fail a host on a condition, e.g. a required patch missing.

- assert:
    that: "'openssh-server' in asset.packages.items | map(attribute='name') | list"
    fail_msg: openssh-server is not installed
"""

from __future__ import annotations

from typing import Any

from orchestrator.actions.base import Action, ActionContext, Outcome
from orchestrator.playbook.spec import ActionSpec
from orchestrator.playbook.templating import evaluate_condition


class Assert(Action):
    spec = ActionSpec(
        name="assert", required=frozenset({"that"}), optional=frozenset({"fail_msg", "success_msg"})
    )

    def run(self, ctx: ActionContext, args: dict[str, Any]) -> Outcome:
        conditions = args["that"] if isinstance(args["that"], list) else [args["that"]]
        for condition in conditions:
            if not evaluate_condition(condition, ctx.variables):
                message = args.get("fail_msg") or f"assertion failed: {condition}"
                return Outcome("failed", {"assertion": condition}, str(message))
        return Outcome("ok", {}, str(args.get("success_msg") or "all assertions passed"))

    def check(self, ctx: ActionContext, args: dict[str, Any]) -> Outcome:
        return Outcome("skipped", message="check mode: facts are not gathered, nothing to assert")
