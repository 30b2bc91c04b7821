"""Our inventory output against ansible-inventory's own, for Ansible's documentation examples.

The expected files were made once with the real ansible-inventory (ansible-core 2.19) by
tests/inventory/regenerate_expected.sh from the cases in tests/inventory/fixtures/cases.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.inventory import load_inventory
from orchestrator.inventory.render import dumps, render_graph, render_host, render_list

FIXTURES = Path(__file__).parent / "inventory" / "fixtures"
EXPECTED = FIXTURES / "expected"
CASES: list[dict[str, Any]] = json.loads((FIXTURES / "cases.json").read_text())


def _load(case: dict[str, Any]):
    return load_inventory(
        [str(FIXTURES / s) for s in case["sources"]], extra_vars=case.get("extra_vars")
    )


def _ids(items: list[tuple[Any, ...]]) -> list[str]:
    return ["-".join(str(p) for p in (item[0]["name"], *item[1:])) for item in items]


def test_every_case_has_its_expected_files() -> None:
    # Guards against a case added to cases.json without running regenerate_expected.sh.
    for case in CASES:
        assert (EXPECTED / f"{case['name']}.list.json").is_file(), case["name"]
        assert (EXPECTED / f"{case['name']}.graph.txt").is_file(), case["name"]
        for host in case.get("hosts", []):
            assert (EXPECTED / f"{case['name']}.host-{host}.json").is_file(), host


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_list_matches_ansible_inventory(case: dict[str, Any]) -> None:
    expected = json.loads((EXPECTED / f"{case['name']}.list.json").read_text())
    assert json.loads(dumps(render_list(_load(case), limit=case.get("limit")))) == expected


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_graph_matches_ansible_inventory(case: dict[str, Any]) -> None:
    expected = (EXPECTED / f"{case['name']}.graph.txt").read_text()
    assert render_graph(_load(case)) + "\n" == expected


GRAPH_GROUPS = [(c, g) for c in CASES for g in c.get("graph_groups", [])]


@pytest.mark.parametrize(("case", "group"), GRAPH_GROUPS, ids=_ids(GRAPH_GROUPS))
def test_graph_of_one_group_matches_ansible_inventory(case: dict[str, Any], group: str) -> None:
    expected = (EXPECTED / f"{case['name']}.graph-{group}.txt").read_text()
    assert render_graph(_load(case), group) + "\n" == expected


GRAPH_VARS = [c for c in CASES if c.get("graph_vars")]


@pytest.mark.parametrize("case", GRAPH_VARS, ids=[c["name"] for c in GRAPH_VARS])
def test_graph_with_vars_matches_ansible_inventory(case: dict[str, Any]) -> None:
    expected = (EXPECTED / f"{case['name']}.graph-vars.txt").read_text()
    assert render_graph(_load(case), show_vars=True) + "\n" == expected


HOSTS = [(c, h) for c in CASES for h in c.get("hosts", [])]


@pytest.mark.parametrize(("case", "host"), HOSTS, ids=_ids(HOSTS))
def test_host_matches_ansible_inventory(case: dict[str, Any], host: str) -> None:
    expected = json.loads((EXPECTED / f"{case['name']}.host-{host}.json").read_text())
    assert json.loads(dumps(render_host(_load(case), host))) == expected


def test_dumps_lays_out_json_like_ansible_inventory() -> None:
    # Same text, not just the same data: sorted keys, 4-space indent, no trailing newline.
    case = next(c for c in CASES if c["name"] == "hostvars_ini")
    expected = (EXPECTED / "hostvars_ini.host-host1.json").read_text()
    assert dumps(render_host(_load(case), "host1")) + "\n" == expected
