"""Tag selection, serial batches and early stops, checked against ansible-core's own rules."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from orchestrator.playbook import (
    Play,
    Task,
    any_errors_fatal_triggered,
    batches,
    describe,
    load_playbook,
    max_fail_exceeded,
    play_must_stop,
    select_tasks,
    serial_count,
    should_run,
    task_tags,
)
from tests.playbook.listing_cases import CASES, PLAYBOOK
from tests.playbook.specs import ACTIONS

FIXTURES = Path(__file__).parent / "playbook"
ROOT = Path(__file__).resolve().parents[1]


# --- tags -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def campaign_play() -> Play:
    return load_playbook(FIXTURES / "campaign.yml", ACTIONS).plays[0]


def _names(tasks: list[Task]) -> list[str]:
    return [task.name for task in tasks]


GATHER, SCAN, UNAME, DEBUG = "Gather asset information", "Quick scan", "command", "Debug only"


@pytest.mark.parametrize(
    ("tags", "skip_tags", "expected"),
    [
        # No options: everything but `never`.
        (None, None, [GATHER, SCAN, UNAME]),
        (set(), set(), [GATHER, SCAN, UNAME]),
        ({"all"}, None, [GATHER, SCAN, UNAME]),
        # `always` runs whatever --tags says; `never` needs one of its other tags.
        ({"scan"}, None, [GATHER, SCAN]),
        ({"debug"}, None, [GATHER, DEBUG]),
        ({"never"}, None, [GATHER, DEBUG]),
        # Play tags are inherited: asking for the play's tag selects even the `never` task.
        ({"line1"}, None, [GATHER, SCAN, UNAME, DEBUG]),
        # Skipping by name skips `always` too; --skip-tags all keeps only `always`.
        (None, {"always"}, [SCAN, UNAME]),
        (None, {"all"}, [GATHER]),
        (None, {"all", "always"}, []),
        ({"scan", "debug"}, {"scan"}, [GATHER, DEBUG]),
        # Every task of this play carries the play's tag, so none is untagged.
        ({"untagged"}, None, [GATHER]),
        ({"tagged"}, None, [GATHER, SCAN, UNAME]),
        (None, {"tagged"}, []),
        ({"nothing-has-this"}, None, [GATHER]),
    ],
)
def test_select_tasks(
    campaign_play: Play, tags: set[str] | None, skip_tags: set[str] | None, expected: list[str]
) -> None:
    assert _names(select_tasks(campaign_play, tags, skip_tags)) == expected


def test_task_tags_inherit_play_tags(campaign_play: Play) -> None:
    assert task_tags(campaign_play, campaign_play.tasks[1]) == {"scan", "line1"}


@pytest.mark.parametrize(
    ("tags", "only", "skip", "expected"),
    [
        ((), None, None, True),
        ((), {"untagged"}, None, True),
        ((), {"tagged"}, None, False),
        ((), None, {"untagged"}, False),
        ((), None, {"tagged"}, True),
        (("never",), None, None, False),
        (("never",), {"all"}, None, False),
        (("never", "x"), {"x"}, None, True),
        (("never",), {"tagged"}, None, False),
        (("always",), {"x"}, None, True),
        (("always",), None, {"all"}, True),
        (("always",), None, {"always"}, False),
        (("always", "x"), None, {"x"}, False),
    ],
)
def test_should_run_special_tags(
    tags: tuple[str, ...], only: set[str] | None, skip: set[str] | None, expected: bool
) -> None:
    assert should_run(tags, only, skip) is expected


def test_should_run_agrees_with_ansible_on_every_combination() -> None:
    taggable = pytest.importorskip("ansible.playbook.taggable").Taggable
    words = ["always", "never", "all", "tagged", "untagged", "a", "b"]
    task_sets = [set(c) for n in range(3) for c in itertools.combinations(words, n)]
    option_sets = [set(c) for n in range(3) for c in itertools.combinations(words, n)]
    checked = 0
    for tags in task_sets:
        task = SimpleNamespace(
            tags=sorted(tags),
            _loader=None,
            _get_all_taggable_objects=lambda: [],
            untagged=taggable.untagged,
        )
        for only in option_sets:
            for skip in option_sets:
                # ansible-playbook turns "no --tags" into ["all"] before asking the task.
                ansible = taggable.evaluate_tags(task, sorted(only) or ["all"], sorted(skip), {})
                assert should_run(tags, only, skip) is ansible, (tags, only, skip)
                checked += 1
    assert checked == len(task_sets) * len(option_sets) ** 2


# --- serial batches ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "serial", "sizes"),
    [
        (5, [], [5]),
        (5, [0], [5]),
        (5, [2], [2, 2, 1]),
        (10, ["25%"], [2, 2, 2, 2, 2]),
        (10, ["30%"], [3, 3, 3, 1]),
        (10, ["1%"], [1] * 10),  # rounded down to 0, but at least one host
        (3, ["50%"], [1, 1, 1]),
        (10, ["150%"], [10]),
        (10, [1, "25%", "100%"], [1, 2, 7]),
        (7, [1, 2], [1, 2, 2, 2]),  # the last value repeats
        (3, [5, 1], [3]),
        (0, [2], []),
    ],
)
def test_batches(count: int, serial: list[int | str], sizes: list[int]) -> None:
    hosts = [f"h{i}" for i in range(count)]
    result = batches(hosts, serial)
    assert [len(batch) for batch in result] == sizes
    assert [h for batch in result for h in batch] == hosts  # order kept, nothing lost


def test_batches_agree_with_ansible() -> None:
    executor = pytest.importorskip("ansible.executor.playbook_executor").PlaybookExecutor
    serials: list[list[int | str]] = [
        [], [1], [3], ["10%"], ["33%"], ["100%"], [1, "25%", "100%"], [2, 1], ["50%", 1],
        [0], ["0%"], [1, 0],
    ]  # fmt: skip
    for count, serial in itertools.product([1, 2, 7, 10, 23], serials):
        hosts = list(range(count))
        inventory = SimpleNamespace(get_hosts=lambda pattern, order=None, h=hosts: list(h))
        play = SimpleNamespace(hosts="all", order=None, serial=serial)
        ansible = executor._get_serialized_batches(SimpleNamespace(_inventory=inventory), play)
        assert batches(hosts, serial) == ansible, (count, serial)


def test_serial_count() -> None:
    assert serial_count("25%", 10) == 2
    assert serial_count("0%", 10) == 1
    assert serial_count(4, 10) == 4


# --- early stops ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failed", "batch", "limit", "expected"),
    [
        (3, 10, 30, False),  # exactly the limit is allowed
        (4, 10, 30, True),
        (0, 10, 0, False),
        (1, 10, 0, True),
        (1, 3, 33.3, True),
        (1, 3, 34, False),
        (10, 10, None, False),  # no limit given
        (0, 0, 10, False),
    ],
)
def test_max_fail_exceeded(failed: int, batch: int, limit: float | None, expected: bool) -> None:
    assert max_fail_exceeded(failed, batch, limit) is expected


def test_any_errors_fatal() -> None:
    assert any_errors_fatal_triggered(1, True) is True
    assert any_errors_fatal_triggered(0, True) is False
    assert any_errors_fatal_triggered(5, False) is False


@pytest.mark.parametrize(
    ("failed", "batch", "kwargs", "expected"),
    [
        (0, 5, {}, False),
        (4, 5, {}, False),
        (5, 5, {}, True),  # a whole batch failed: Ansible does not start the next one
        (1, 5, {"any_errors_fatal": True}, True),
        (2, 5, {"max_fail_percentage": 20}, True),
        (1, 5, {"max_fail_percentage": 20}, False),
        (0, 0, {"any_errors_fatal": True}, False),
    ],
)
def test_play_must_stop(failed: int, batch: int, kwargs: dict[str, Any], expected: bool) -> None:
    assert play_must_stop(failed, batch, **kwargs) is expected


# --- listing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_describe_matches_ansible_playbook(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The expected files are ansible-playbook's own output (tests/playbook/listing_cases.py).
    monkeypatch.chdir(ROOT)
    _, kwargs = CASES[name]
    playbook = load_playbook(PLAYBOOK, ACTIONS)
    expected = (FIXTURES / "expected" / f"{name}.txt").read_text()
    assert describe(playbook, **kwargs) == expected  # type: ignore[arg-type]


def test_describe_campaign() -> None:
    playbook = load_playbook(FIXTURES / "campaign.yml", ACTIONS)
    text = describe(playbook, skip_tags={"scan"})
    assert text == (
        f"\nplaybook: {FIXTURES / 'campaign.yml'}\n"
        "\n"
        "  play #1 (line1:&linux): Line 1 downtime scan\tTAGS: [line1]\n"
        "    tasks:\n"
        "      Gather asset information\tTAGS: [always, asset, line1]\n"
        "      command\tTAGS: [line1]\n"
        "\n"
        "  play #2 (historians,hmi): historians,hmi\tTAGS: []\n"
        "    tasks:\n"
        "      cleanup\tTAGS: []\n"
    )
