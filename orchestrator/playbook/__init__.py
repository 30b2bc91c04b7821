"""The playbook language: load and validate playbooks, template values, select tasks and
batches. Pure functions over data; the engine (which runs plays on hosts) builds on these."""

from .listing import describe
from .loader import PLAY_KEYS, TASK_KEYS, load_playbook
from .model import Play, Playbook, Task
from .selection import (
    any_errors_fatal_triggered,
    batches,
    max_fail_exceeded,
    play_must_stop,
    select_tasks,
    serial_count,
    should_run,
    task_tags,
)
from .spec import ActionSpec, spec_table
from .templating import (
    TemplateError,
    Variables,
    check_condition,
    check_template,
    evaluate_condition,
    has_template,
    render,
    render_text,
    variables_for,
)

__all__ = [
    "PLAY_KEYS",
    "TASK_KEYS",
    "ActionSpec",
    "Play",
    "Playbook",
    "Task",
    "TemplateError",
    "Variables",
    "any_errors_fatal_triggered",
    "batches",
    "check_condition",
    "check_template",
    "describe",
    "evaluate_condition",
    "has_template",
    "load_playbook",
    "max_fail_exceeded",
    "play_must_stop",
    "render",
    "render_text",
    "select_tasks",
    "serial_count",
    "should_run",
    "spec_table",
    "task_tags",
    "variables_for",
]
