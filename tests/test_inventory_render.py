"""render.py beyond what the ansible-inventory comparisons cover: limits and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import HostPatternError
from orchestrator.inventory import load_inventory, render
from orchestrator.inventory.render import dumps, render_graph, render_host, render_list

FIXTURES = Path(__file__).parent / "inventory" / "fixtures"


@pytest.fixture(scope="module")
def inv():
    return load_inventory([str(FIXTURES / "files" / "children.yml")])


def test_list_with_limit_keeps_only_limited_hosts_and_drops_emptied_groups(inv) -> None:
    listed = render_list(inv, limit="east")
    assert listed["webservers"] == {"hosts": ["foo.example.com"]}
    assert listed["dbservers"] == {"hosts": ["one.example.com", "two.example.com"]}
    assert "west" not in listed and "ungrouped" not in listed
    assert listed["test"] == {"children": ["west"]}  # children are kept, as ansible-inventory


def test_list_is_plain_json_data(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text("g:\n  hosts:\n    h1: {installed: 2024-01-02}\n")
    inv = load_inventory([str(tmp_path / "hosts.yml")])
    listed = render_list(inv)
    assert listed["_meta"]["hostvars"]["h1"] == {"installed": "2024-01-02"}
    assert json.loads(json.dumps(listed)) == listed  # the CLI's own json.dumps works


def test_host_needs_exactly_one_host(inv) -> None:
    with pytest.raises(HostPatternError, match="single valid host"):
        render_host(inv, "east")
    with pytest.raises(HostPatternError, match="single valid host"):
        render_host(inv, "nosuch")
    assert render_host(inv, "east[0]") == {}


def test_graph_needs_a_group_name(inv) -> None:
    with pytest.raises(HostPatternError, match="valid group name"):
        render_graph(inv, "foo.example.com")
    assert render_graph(inv, None) == render_graph(inv, "all")


def test_magic_and_internal_names_are_not_printed(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text("[g]\nh1 inventory_dir=/x keep=1\n")
    inv = load_inventory([str(tmp_path / "hosts")])
    assert render_host(inv, "h1") == {"keep": 1}


def test_cli_names(inv) -> None:
    assert render.to_list(inv) == render_list(inv)
    assert render.to_graph(inv, "prod") == render_graph(inv, "prod")
    assert render.host_vars(inv, "one.example.com") == render_host(inv, "one.example.com")
    assert dumps({"b": 1, "a": "ü"}) == '{\n    "a": "ü",\n    "b": 1\n}'
