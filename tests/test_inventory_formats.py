"""YAML and INI inventory formats, format detection, directories and host lists."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.inventory import Inventory, load_inventory

FIXTURES = Path(__file__).parent / "inventory" / "fixtures"


def load_text(tmp_path: Path, name: str, text: str) -> Inventory:
    path = tmp_path / name
    path.write_text(text)
    return load_inventory([str(path)])


# -- YAML -------------------------------------------------------------------------------------


def test_yaml_any_top_level_group_and_nesting_at_any_depth(tmp_path: Path) -> None:
    inv = load_text(
        tmp_path,
        "plant.yml",
        "site:\n  children:\n    area:\n      children:\n        line:\n"
        "          children:\n            cell:\n              hosts: {hmi01: }\n",
    )
    assert inv.groups["site"].children == ["area"]
    assert inv.groups["cell"].hosts == ["hmi01"]
    assert inv.groups["cell"].depth == 4
    assert inv.hosts["hmi01"].groups == ["all", "site", "area", "line", "cell"]
    assert inv.groups["all"].children == ["ungrouped", "site"]


def test_yaml_host_in_many_groups_is_one_host_with_merged_vars(tmp_path: Path) -> None:
    inv = load_text(
        tmp_path,
        "hosts.yml",
        "g1:\n  hosts:\n    h1: {a: 1, shared: g1}\ng2:\n  hosts:\n    h1: {b: 2, shared: g2}\n",
    )
    assert list(inv.hosts) == ["h1"]
    assert inv.host_vars("h1") == {"a": 1, "b": 2, "shared": "g2"}
    assert inv.groups["g1"].hosts == inv.groups["g2"].hosts == ["h1"]


def test_yaml_empty_values_and_string_shorthand(tmp_path: Path) -> None:
    inv = load_text(
        tmp_path,
        "hosts.yml",
        "web:\n  hosts: {h1: , h2: }\n  children: {empty: }\n  vars:\ndb:\n  hosts: db1\nlonely:\n",
    )
    assert inv.groups["web"].hosts == ["h1", "h2"]
    assert inv.groups["web"].children == ["empty"]
    assert inv.groups["db"].hosts == ["db1"]
    assert "lonely" in inv.groups and inv.groups["lonely"].hosts == []


def test_yaml_host_port_shorthand_and_ranges(tmp_path: Path) -> None:
    inv = load_text(tmp_path, "hosts.yml", "hmi:\n  hosts:\n    hmi[01:03]:5986: {x: 1}\n")
    assert list(inv.hosts) == ["hmi01", "hmi02", "hmi03"]
    assert inv.host_vars("hmi02") == {"ansible_port": 5986, "x": 1}


def test_yaml_keeps_types_and_supports_merge_keys_and_unsafe(tmp_path: Path) -> None:
    inv = load_text(
        tmp_path,
        "hosts.yml",
        "all:\n  vars:\n    base: &base {port: 22, tags: [a, b]}\n"
        "    merged: {<<: *base, user: maint}\n    raw: !unsafe '{{ not templated }}'\n"
        "  hosts: {h1: }\n",
    )
    hv = inv.host_vars("h1")
    assert hv["merged"] == {"port": 22, "tags": ["a", "b"], "user": "maint"}
    assert hv["raw"] == "{{ not templated }}"


def test_yaml_jinja_values_stay_plain_strings(tmp_path: Path) -> None:
    inv = load_text(tmp_path, "hosts.yml", "g:\n  hosts:\n    h1: {x: '{{ 1 + 1 }}'}\n")
    assert inv.host_vars("h1")["x"] == "{{ 1 + 1 }}"


def test_json_inventory(tmp_path: Path) -> None:
    data = {"all": {"children": {"g": {"hosts": {"h1": {"x": 1}}}}}}
    inv = load_text(tmp_path, "hosts.json", "{\n\t" + json.dumps(data)[1:])  # tab: not YAML
    assert inv.host_vars("h1") == {"x": 1}


def test_ungrouped_holds_hosts_in_no_group_but_all(tmp_path: Path) -> None:
    inv = load_text(
        tmp_path,
        "hosts.yml",
        "all:\n  hosts: {lonely: , h1: }\n  children:\n    g: {hosts: {h1: }}\n"
        "    ungrouped: {hosts: {h2: }}\n    g2: {hosts: {h2: }}\n",
    )
    assert inv.groups["ungrouped"].hosts == ["lonely"]
    assert inv.groups["all"].hosts == ["lonely", "h1"]
    assert inv.hosts["h2"].groups == ["all", "g2"]


# -- INI --------------------------------------------------------------------------------------


def test_ini_inline_host_vars_are_python_literals(tmp_path: Path) -> None:
    inv = load_text(
        tmp_path,
        "hosts",
        "[web]\nhost1 http_port=80 x=\"a b\" on=True lst='[1, 2]' zero=01 "
        "q=\"'08'\" c=1+2j n=None # comment\n",
    )
    assert inv.host_vars("host1") == {
        "http_port": 80,
        "x": "a b",
        "on": True,
        "lst": [1, 2],
        "zero": "01",  # not a valid literal: stays a string
        "q": "08",
        "c": "(1+2j)",  # complex numbers are not inventory values: text, like Ansible
        "n": None,
    }


def test_ini_vars_sections_read_values_like_ansible_core(tmp_path: Path) -> None:
    # ansible-core reads [g:vars] values as literals too (myvar=23 -> 23) and keeps anything
    # after '=' (comments included) in the value.
    inv = load_text(
        tmp_path,
        "hosts",
        "[web]\nh1\n[web:vars]\nmyvar=23\nflag = False\nname=hello world # not a comment\n",
    )
    assert inv.host_vars("h1") == {
        "myvar": 23,
        "flag": False,
        "name": "hello world # not a comment",
    }


def test_ini_comments_ungrouped_hosts_ports_and_ranges(tmp_path: Path) -> None:
    inv = load_text(
        tmp_path,
        "hosts",
        "# comment\n; other comment\nmail.example.com\nbadwolf.example.com:5309\n\n"
        "[web]\nwww[01:03].example.com\n[db] # trailing comment\ndb-[a:b]\n",
    )
    assert inv.groups["ungrouped"].hosts == ["mail.example.com", "badwolf.example.com"]
    assert inv.host_vars("badwolf.example.com") == {"ansible_port": 5309}
    assert inv.groups["web"].hosts == [
        "www01.example.com",
        "www02.example.com",
        "www03.example.com",
    ]
    assert inv.groups["db"].hosts == ["db-a", "db-b"]


def test_ini_children_may_be_declared_later(tmp_path: Path) -> None:
    inv = load_text(tmp_path, "hosts", "[usa:children]\nsoutheast\n[southeast]\nhost1\n")
    assert inv.groups["usa"].children == ["southeast"]
    assert inv.hosts["host1"].groups == ["all", "usa", "southeast"]


def test_ini_port_shorthand_only_counts_where_the_host_is_first_defined(tmp_path: Path) -> None:
    inv = load_text(tmp_path, "hosts", "[a]\nh1\n[b]\nh1:2222\nh2:2200\n")
    assert inv.host_vars("h1") == {}
    assert inv.host_vars("h2") == {"ansible_port": 2200}


# -- detection, directories, host lists --------------------------------------------------------


def test_file_without_extension_is_yaml_when_it_is_a_group_mapping(tmp_path: Path) -> None:
    inv = load_text(tmp_path, "hosts", "web:\n  hosts:\n    h1:\n")
    assert inv.groups["web"].hosts == ["h1"]


def test_host_port_line_is_ini_even_though_it_parses_as_yaml(tmp_path: Path) -> None:
    # "badwolf.example.com:5309" is also the YAML mapping {badwolf.example.com: 5309}.
    inv = load_text(tmp_path, "hosts", "badwolf.example.com:5309\n")
    assert inv.host_vars("badwolf.example.com") == {"ansible_port": 5309}


def test_yml_file_with_ini_content_falls_back_to_ini(tmp_path: Path) -> None:
    inv = load_text(tmp_path, "hosts.yml", "[web]\nh1 x=1\n")
    assert inv.host_vars("h1") == {"x": 1}


def test_empty_file_is_an_empty_inventory(tmp_path: Path) -> None:
    inv = load_text(tmp_path, "hosts.yml", "# nothing yet\n")
    assert inv.hosts == {} and inv.select("all") == []


def test_directory_reads_files_in_order_and_skips_ignored_ones() -> None:
    inv = load_inventory([str(FIXTURES / "inventory_dir")])
    assert list(inv.hosts) == [
        "gw-1",  # 01-plant.yaml
        "extra01",  # 02-more/extra.ini (subdirectories are read too)
        "db01.test.example.com",  # 03-on-prem
        "db02.test.example.com",
        "app01.test.example.com",
        "app02.test.example.com",
    ]
    assert "ignored-host" not in inv.hosts  # README.md, *.retry, *.txt, *.cfg, .hidden
    assert inv.groups["test_env"].children == ["dbservers", "appservers"]


def test_host_list_source(tmp_path: Path) -> None:
    inv = load_inventory(["hmi01,hmi02:5986,"])
    assert list(inv.hosts) == ["hmi01", "hmi02"]
    assert inv.groups["ungrouped"].hosts == ["hmi01", "hmi02"]
    assert inv.host_vars("hmi02") == {"ansible_port": 5986}


def test_a_single_path_string_is_accepted() -> None:
    inv = load_inventory(str(FIXTURES / "files" / "basic.ini"))
    assert "mail.example.com" in inv.hosts


def test_group_vars_file_naming_no_group_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text("[web]\nh1\n")
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "wbe.yml").write_text("x: 1\n")
    inv = load_inventory([str(tmp_path / "hosts")])
    assert any("wbe.yml does not match any group" in w for w in inv.warnings)
