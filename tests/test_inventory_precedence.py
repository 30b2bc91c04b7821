"""Variable precedence: all < parent < child < host, group_vars/host_vars files, -e.

The fixtures' expected values are also checked against ansible-inventory's own output in
test_inventory_ansible_parity.py; here each rule is asserted by name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.inventory import Inventory, load_inventory

FIXTURES = Path(__file__).parent / "inventory" / "fixtures"


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return load_inventory([str(FIXTURES / "precedence" / "plant.yml")])


def test_all_then_parent_then_child_then_host(inv: Inventory) -> None:
    assert inv.host_vars("hmi04")["lvl"] == "all"  # only in groups that do not set it
    assert inv.host_vars("hmi01")["lvl"] == "line_a"  # child line_a beats parent site
    assert inv.host_vars("hmi02")["lvl"] == "hmi02"  # host var beats every group


def test_deeper_group_beats_shallower_group_whatever_the_names(inv: Inventory) -> None:
    # hmi03 is in line_b (depth 2, under site) and zeta (depth 1): depth wins over name order.
    assert inv.host_vars("hmi03")["lvl"] == "line_b"


def test_sibling_groups_merge_in_name_order(inv: Inventory) -> None:
    assert inv.host_vars("hmi03")["sib"] == "zeta"  # alpha then zeta: zeta wins
    assert inv.host_vars("hmi02")["lvl"] == "hmi02"
    # hmi02 is in line_a and line_b (siblings): without its host var line_b would win.
    assert inv.groups["line_b"].depth == inv.groups["line_a"].depth == 2


def test_ansible_group_priority_beats_name_order(inv: Inventory) -> None:
    # 'alarms' sorts before 'basic' but has ansible_group_priority 10, so it merges last.
    assert inv.host_vars("hmi04")["prio"] == "alarms"
    assert inv.groups["alarms"].priority == 10
    # Like Ansible, the priority is not a variable.
    assert "ansible_group_priority" not in inv.host_vars("hmi04")
    assert "ansible_group_priority" not in inv.groups["alarms"].vars


def test_group_vars_files_beat_inventory_group_vars(inv: Inventory) -> None:
    # hmi04 is in no group with group_vars/ but all: group_vars/all.yml beats all's vars.
    assert inv.host_vars("hmi04")["gv"] == "all_group_vars"
    # hmi03 (site via line_b): group_vars/site.yml beats every inventory group var.
    assert inv.host_vars("hmi03")["gv"] == "site_group_vars"
    # hmi01 (line_a): group_vars/line_a/ (deeper) beats group_vars/site.yml.
    assert inv.host_vars("hmi01")["gv"] == "line_a_first"


def test_group_vars_directory_files_merge_in_lexical_order(inv: Inventory) -> None:
    assert inv.host_vars("hmi01")["line_a_file"] == "second"
    assert inv.groups["line_a"].vars["line_a_file"] == "second"


def test_host_vars_file_beats_inventory_host_vars(inv: Inventory) -> None:
    assert inv.host_vars("hmi01")["hv"] == "hmi01_host_vars"
    assert inv.host_vars("hmi02")["hv"] == "line_a"


def test_extra_vars_win_over_everything() -> None:
    inv = load_inventory(
        [str(FIXTURES / "precedence" / "plant.yml")], extra_vars={"lvl": "x", "hv": "x"}
    )
    for host in inv.hosts.values():
        assert host.vars["lvl"] == "x"
    assert inv.host_vars("hmi01")["hv"] == "x"  # beats the host_vars/ file too


def test_group_vars_all_beats_a_groups_inventory_vars() -> None:
    # Ansible's order: inventory group vars < group_vars/all < group_vars/<group>.
    inv = load_inventory([str(FIXTURES / "vars_layout" / "hosts")])
    assert inv.host_vars("www1")["ntp_server"] == "ntp.group-vars-all.example.com"
    assert inv.host_vars("foosball")["ntp_server"] == "acme.example.org"  # group_vars/raleigh/


def test_group_vars_dir_skips_other_extensions_and_first_host_file_wins() -> None:
    inv = load_inventory([str(FIXTURES / "vars_layout" / "hosts")])
    foosball = inv.host_vars("foosball")
    assert "not_read" not in foosball  # group_vars/raleigh/notes.txt
    assert foosball["role"] == "kiosk"  # host_vars/foosball, not host_vars/foosball.json
    assert foosball["http_port"] == 8000  # host_vars beat group_vars/webservers.yml (8080)
    assert inv.host_vars("www1")["http_port"] == 8080  # group_vars file beats [webservers:vars]


@pytest.mark.parametrize(
    ("order", "myvar"),
    [
        (["staging/hosts", "production/hosts.yml"], 2),
        (["production/hosts.yml", "staging/hosts"], 1),
    ],
)
def test_later_sources_win(order: list[str], myvar: int) -> None:
    inv = load_inventory([str(FIXTURES / "multi_source" / s) for s in order])
    assert inv.host_vars("app01.test.example.com")["myvar"] == myvar
    # group_vars/ next to the production source apply to groups from either source.
    assert inv.host_vars("db01.test.example.com")["backup"] == "nightly"


def test_files_in_a_directory_load_in_ascii_order() -> None:
    inv = load_inventory([str(FIXTURES / "inventory_dir")])
    assert inv.host_vars("gw-1")["myvar"] == 3  # 03-on-prem's [all:vars] after 01-plant.yaml


def test_group_priority_in_group_vars_is_only_a_variable(tmp_path: Path) -> None:
    # Ansible: "ansible_group_priority can only be set in the inventory source".
    (tmp_path / "hosts.yml").write_text(
        "a_group: {hosts: {h1: }, vars: {x: a}}\nb_group: {hosts: {h1: }, vars: {x: b}}\n"
    )
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "a_group.yml").write_text("ansible_group_priority: 10\n")
    inv = load_inventory([str(tmp_path / "hosts.yml")])
    assert inv.host_vars("h1")["x"] == "b"
    assert inv.groups["a_group"].priority == 1
    assert inv.host_vars("h1")["ansible_group_priority"] == 10


def test_host_vars_leave_out_magic_vars_which_come_separately(inv: Inventory) -> None:
    assert "inventory_hostname" not in inv.host_vars("hmi01")
    magic = inv.magic_vars("hmi01")
    assert magic["inventory_hostname"] == "hmi01"
    assert magic["group_names"] == ["line_a", "site"]
    assert magic["groups"]["site"] == ["hmi01", "hmi02", "hmi03"]
    assert magic["groups"]["all"] == list(inv.hosts)
    assert magic["inventory_file"] == str(FIXTURES / "precedence" / "plant.yml")


def test_group_names_keeps_ungrouped_like_ansible(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text("lonely\n[g]\nh1\n")
    inv = load_inventory([str(tmp_path / "hosts")])
    assert inv.magic_vars("lonely")["group_names"] == ["ungrouped"]
    assert inv.magic_vars("h1")["group_names"] == ["g"]
    assert inv.magic_vars("h1")["inventory_hostname_short"] == "h1"


def test_merging_replaces_whole_values_it_does_not_deep_merge(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text(
        "all:\n  vars: {opts: {a: 1, b: 2}}\n  children:\n"
        "    g: {hosts: {h1: }, vars: {opts: {a: 9}}}\n"
    )
    inv = load_inventory([str(tmp_path / "hosts.yml")])
    assert inv.host_vars("h1")["opts"] == {"a": 9}


def test_extra_vars_cannot_lift_mission_critical(tmp_path: Path) -> None:
    # A deliberate difference from Ansible: a host the inventory marks mission-critical stays
    # log-only whatever -e says; -e can still mark another host mission-critical.
    source = tmp_path / "plant.yml"
    source.write_text(
        "all:\n  hosts:\n"
        "    hmi: {criticality: mission-critical}\n"
        "    gw: {criticality: standard}\n"
    )
    lifted = load_inventory([str(source)], extra_vars={"criticality": "standard"})
    assert lifted.host_vars("hmi")["criticality"] == "mission-critical"
    assert lifted.host_vars("gw")["criticality"] == "standard"
    marked = load_inventory([str(source)], extra_vars={"criticality": "mission-critical"})
    assert marked.host_vars("gw")["criticality"] == "mission-critical"
