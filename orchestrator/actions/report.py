"""`report`: write a summary file on the controller from a Jinja2 template.

- report:
    template: templates/host-report.md.j2      # relative to the playbook
    dest: "{{ inventory_hostname }}-report.md"  # relative to the run folder
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from orchestrator.actions.base import Action, ActionContext, Outcome
from orchestrator.errors import StepFailed
from orchestrator.playbook.spec import ActionSpec
from orchestrator.playbook.templating import render_text


class Report(Action):
    spec = ActionSpec(name="report", required=frozenset({"template", "dest"}))

    def _paths(self, ctx: ActionContext, args: dict[str, Any]) -> tuple[Path, Path]:
        template = ctx.run.playbook_dir / str(args["template"])
        dest = PurePosixPath(str(args["dest"]))
        if dest.is_absolute() or ".." in dest.parts:
            raise StepFailed(ctx.host, f"report dest must stay inside the run folder: {dest}")
        return template, ctx.run.run.path / dest

    def run(self, ctx: ActionContext, args: dict[str, Any]) -> Outcome:
        template, dest = self._paths(ctx, args)
        try:
            source = template.read_text(encoding="utf-8")
        except OSError as exc:
            raise StepFailed(ctx.host, f"cannot read template {template}: {exc.strerror}") from None
        text = render_text(source, ctx.variables)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        tmp.write_text(str(text), encoding="utf-8")
        tmp.replace(dest)
        return Outcome("ok", {"dest": str(dest)}, f"wrote {dest}")

    def check(self, ctx: ActionContext, args: dict[str, Any]) -> Outcome:
        template, dest = self._paths(ctx, args)
        return Outcome("skipped", message=f"check mode: would write {dest} from {template.name}")
