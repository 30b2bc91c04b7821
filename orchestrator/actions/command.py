"""`command`: run a read-only check on the host and capture its output.

- command: "dpkg -s openssh-server"
  register: sshd_pkg
"""

from __future__ import annotations

from typing import Any

from orchestrator.actions.base import Action, ActionContext, Outcome
from orchestrator.playbook.spec import ActionSpec

OUTPUT_LIMIT = 1 << 20  # keep a megabyte of each stream: registered results stay small


class Command(Action):
    spec = ActionSpec(name="command", required=frozenset({"cmd"}), free_form="cmd")

    def run(self, ctx: ActionContext, args: dict[str, Any]) -> Outcome:
        session = ctx.live_session()
        result = session.run(str(args["cmd"]), ctx.timeout or ctx.run.timeouts.command)
        stdout = result.stdout[:OUTPUT_LIMIT].decode("utf-8", "replace")
        stderr = result.stderr[:OUTPUT_LIMIT].decode("utf-8", "replace")
        data = {
            "cmd": args["cmd"],
            "rc": result.rc,
            "stdout": stdout,
            "stderr": stderr,
            "stdout_lines": stdout.splitlines(),
        }
        if result.rc != 0:
            return Outcome(
                "failed", data, f"rc {result.rc}: {result.stderr_tail() or stdout[-200:]}"
            )
        return Outcome("ok", data, stdout.strip().splitlines()[0][:120] if stdout.strip() else "")

    def check(self, ctx: ActionContext, args: dict[str, Any]) -> Outcome:
        return Outcome("skipped", message=f"check mode: would run {args['cmd']!r}")
