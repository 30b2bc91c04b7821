"""`cleanup`: remove the host's temp dir now and prove it (it also always runs at play end).

- cleanup:
"""

from __future__ import annotations

from typing import Any

from orchestrator.actions.base import Action, ActionContext, Outcome
from orchestrator.playbook.spec import ActionSpec


class Cleanup(Action):
    spec = ActionSpec(name="cleanup")

    def run(self, ctx: ActionContext, args: dict[str, Any]) -> Outcome:
        proof = ctx.live_session().cleanup()
        if not proof.clean:
            left = proof.errors + [f"left: {p}" for p in proof.residue]
            return Outcome("failed", proof.as_log(), "cleanup not proven: " + "; ".join(left))
        return Outcome("ok", proof.as_log(), f"{proof.temp_dir} removed, nothing else left")

    def check(self, ctx: ActionContext, args: dict[str, Any]) -> Outcome:
        return Outcome("ok", message="check mode: no temp dir was created")
