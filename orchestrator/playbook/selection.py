"""Which tasks run (``--tags``/``--skip-tags``), in which host batches (``serial``), and when a
play stops early (``max_fail_percentage``, ``any_errors_fatal``): Ansible's rules exactly, so a
campaign written for Ansible is cut up the same way.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TypeVar

from .model import Play, Task

T = TypeVar("T")

# A task without tags counts as tagged "untagged" (so `--tags untagged` selects it).
_UNTAGGED = frozenset({"untagged"})


def task_tags(play: Play, task: Task) -> frozenset[str]:
    """A task's effective tags: its own plus its play's (Ansible's inheritance)."""
    return frozenset(play.tags) | frozenset(task.tags)


def should_run(
    tags: Collection[str], only_tags: Collection[str] | None, skip_tags: Collection[str] | None
) -> bool:
    """Ansible's ``Taggable.evaluate_tags`` for a task whose effective tags are ``tags``.

    ``only_tags`` None or empty means ``{"all"}`` (no --tags). Special tags: ``always`` runs
    unless skipped by name; ``never`` runs only when one of its other tags is asked for;
    ``tagged``/``untagged`` select tasks with/without tags; ``all`` is every task but ``never``.
    """
    own = frozenset(tags) or _UNTAGGED
    only = frozenset(only_tags or ("all",))
    skip = frozenset(skip_tags or ())

    # Same order of checks as Ansible, so the corner cases (never+tag, always+skip) agree.
    run = (
        "always" in own
        or ("all" in only and "never" not in own)
        or not own.isdisjoint(only)
        or ("tagged" in only and own != _UNTAGGED and "never" not in own)
    )
    if run and skip:
        if "all" in skip:
            run = "always" in own and "always" not in skip
        else:
            run = own.isdisjoint(skip) and not ("tagged" in skip and own != _UNTAGGED)
    return run


def select_tasks(
    play: Play, tags: set[str] | None = None, skip_tags: set[str] | None = None
) -> list[Task]:
    """The play's tasks that ``--tags``/``--skip-tags`` let run, in order."""
    return [task for task in play.tasks if should_run(task_tags(play, task), tags, skip_tags)]


def serial_count(value: int | str, total: int) -> int:
    """One ``serial`` value as a host count: "25%" of ``total`` rounded down, at least 1;
    0 (or a negative number) means every host (Ansible's ``pct_to_int``)."""
    if isinstance(value, str) and value.endswith("%"):
        return int(float(value[:-1]) / 100.0 * total) or 1
    return int(value)


def batches(hosts: list[T], serial: list[int | str]) -> list[list[T]]:
    """Split ``hosts`` into the batches ``serial`` asks for, in order.

    Percentages are of all the play's hosts; the last value repeats until every host has a
    batch, so ``[1, "25%", "100%"]`` is one canary host, then a quarter, then all the rest.
    An empty ``serial`` is one batch of all hosts; no hosts is no batches.
    """
    remaining = list(hosts)
    total = len(remaining)
    values = serial or [0]
    result: list[list[T]] = []
    index = 0
    while remaining:
        size = serial_count(values[index], total)
        if size <= 0:
            result.append(remaining)
            break
        result.append(remaining[:size])
        remaining = remaining[size:]
        index = min(index + 1, len(values) - 1)
    return result


def max_fail_exceeded(failed: int, batch_size: int, max_fail_percentage: float | None) -> bool:
    """True if more than ``max_fail_percentage`` % of a batch failed (strictly more, as
    Ansible: 10 hosts at 30% stop at the 4th failure). None means no limit."""
    if max_fail_percentage is None or batch_size <= 0:
        return False
    return failed / batch_size * 100 > max_fail_percentage


def any_errors_fatal_triggered(failed: int, any_errors_fatal: bool) -> bool:
    """With ``any_errors_fatal``, one failed host (not ignored) stops the play for all."""
    return any_errors_fatal and failed > 0


def play_must_stop(
    failed: int,
    batch_size: int,
    *,
    max_fail_percentage: float | None = None,
    any_errors_fatal: bool = False,
) -> bool:
    """Whether the play stops after a task (or batch) with ``failed`` of ``batch_size`` hosts
    failed or unreachable (failures under ``ignore_errors`` do not count). Ansible stops when
    ``any_errors_fatal`` sees a failure, when ``max_fail_percentage`` is exceeded, and always
    when a whole batch failed: the next batches are then not started.
    """
    if batch_size > 0 and failed >= batch_size:
        return True
    return any_errors_fatal_triggered(failed, any_errors_fatal) or max_fail_exceeded(
        failed, batch_size, max_fail_percentage
    )
