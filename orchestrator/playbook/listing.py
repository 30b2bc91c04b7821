"""``--list-tasks`` / ``--list-tags`` text, line for line as ``ansible-playbook`` prints it."""

from __future__ import annotations

from .model import Playbook
from .selection import should_run, task_tags


def describe(
    playbook: Playbook,
    *,
    tags: set[str] | None = None,
    skip_tags: set[str] | None = None,
    list_tasks: bool = True,
    list_tags: bool = False,
) -> str:
    """The listing of a playbook's plays and the tasks the tag options select.

    Format (tabs before TAGS; play tags comma-joined in their order, task tags (the play's
    included) sorted and ", "-joined; a task without a name shows its action)::

        <blank>
        playbook: playbooks/x.yml
        <blank>
          play #1 (hosts): name<TAB>TAGS: [a,b]
            tasks:
              task name<TAB>TAGS: [a, b]
              TASK TAGS: [a, b]          (with list_tags)

    As Ansible, listing tags without --tags/--skip-tags includes ``never`` tasks.
    """
    if list_tags and not tags and not skip_tags:
        tags = {"never", "all"}
    lines = ["", f"playbook: {playbook.path}"]
    for number, play in enumerate(playbook.plays, start=1):
        lines.append("")
        lines.append(f"  play #{number} ({play.hosts}): {play.name}\tTAGS: [{','.join(play.tags)}]")
        if not (list_tasks or list_tags):
            continue
        if list_tasks:
            lines.append("    tasks:")
        seen: set[str] = set()
        for task in play.tasks:
            effective = task_tags(play, task)
            if not should_run(effective, tags, skip_tags):
                continue
            seen.update(task.tags)
            if list_tasks:
                lines.append(f"      {task.name}\tTAGS: [{', '.join(sorted(effective))}]")
        if list_tags:
            lines.append(f"      TASK TAGS: [{', '.join(sorted(seen | set(play.tags)))}]")
    return "\n".join(lines) + "\n"
