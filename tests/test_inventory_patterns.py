"""Host patterns (Ansible's intro_patterns) and --limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import HostPatternError
from orchestrator.inventory import Inventory, load_inventory, split_host_pattern

FIXTURES = Path(__file__).parent / "inventory" / "fixtures" / "patterns"

WEB = ["web1.plant.local", "web2.plant.local", "web3.plant.local"]
DB1 = "db1.plant.local"
HMI = ["hmi01", "hmi02", "hmi03"]
ALL_HOSTS = [*WEB, DB1, *HMI, "spare1"]


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return load_inventory([str(FIXTURES / "plant.yml")])


def names(inv: Inventory, pattern: str, limit: str | None = None) -> list[str]:
    return [h.name for h in inv.select(pattern, limit=limit)]


@pytest.mark.parametrize("pattern", ["all", "*"])
def test_all_and_star_select_every_host_in_inventory_order(inv: Inventory, pattern: str) -> None:
    assert names(inv, pattern) == ALL_HOSTS


def test_default_pattern_is_all(inv: Inventory) -> None:
    assert [h.name for h in inv.select()] == ALL_HOSTS


@pytest.mark.parametrize("pattern", ["webservers:dbservers", "webservers,dbservers"])
def test_union(inv: Inventory, pattern: str) -> None:
    assert names(inv, pattern) == [*WEB, DB1]


def test_union_comes_back_in_inventory_order_not_pattern_order(inv: Inventory) -> None:
    assert names(inv, "hmi,dbservers") == [WEB[1], DB1, *HMI]


def test_intersection(inv: Inventory) -> None:
    assert names(inv, "webservers:&dbservers") == ["web2.plant.local"]


def test_exclusion(inv: Inventory) -> None:
    assert names(inv, "webservers:!staging") == WEB[:2]


def test_unions_then_intersections_then_exclusions(inv: Inventory) -> None:
    # Left to right this would be (staging - hmi) + hmi = web3 + all HMIs. Ansible applies
    # every union first, then '&', then '!': (staging + hmi) - hmi = web3 only.
    assert names(inv, "staging:!hmi:hmi") == ["web3.plant.local"]
    assert names(inv, "&staging:webservers") == ["web3.plant.local"]


def test_only_intersections_or_exclusions_start_from_all(inv: Inventory) -> None:
    assert names(inv, "&staging") == ["web3.plant.local", "hmi03"]
    assert names(inv, "!staging") == [WEB[0], WEB[1], DB1, "hmi01", "hmi02", "spare1"]


def test_wildcard_matches_host_names(inv: Inventory) -> None:
    assert names(inv, "*.plant.local") == [*WEB, DB1]
    assert names(inv, "web?.plant.local") == WEB


def test_wildcard_matches_group_names_and_host_names(inv: Inventory) -> None:
    # 'hmi0*' names hosts hmi01..03 and the group hmi0_spares (whose host is spare1).
    assert names(inv, "hmi0*") == [*HMI, "spare1"]


def test_regex(inv: Inventory) -> None:
    assert names(inv, "~(web|db)1") == ["web1.plant.local", DB1]


def test_regex_is_anchored_at_the_start_only_and_matches_groups_too(inv: Inventory) -> None:
    # re.match like Ansible: '~hmi' matches groups 'hmi' and 'hmi0_spares' and hosts hmi0N.
    assert names(inv, "~hmi") == [*HMI, "spare1"]
    assert names(inv, r"~.*\.local$") == [*WEB, DB1]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("webservers[0]", WEB[:1]),
        ("webservers[-1]", WEB[2:]),
        ("webservers[1:]", WEB[1:]),
        ("webservers[0:1]", WEB[:2]),  # inclusive end, like Ansible
        ("webservers[0:2]", WEB),
        ("hmi[1]:webservers[0]", [WEB[0], "hmi02"]),
    ],
)
def test_group_slices(inv: Inventory, pattern: str, expected: list[str]) -> None:
    assert names(inv, pattern) == expected


def test_slice_past_the_end_is_an_error(inv: Inventory) -> None:
    with pytest.raises(HostPatternError, match=r"No hosts matched the subscripted pattern"):
        inv.select("webservers[5]")


def test_plain_host_name(inv: Inventory) -> None:
    assert names(inv, "hmi02") == ["hmi02"]


def test_limit_restricts_the_selection(inv: Inventory) -> None:
    assert names(inv, "webservers", limit="web2*") == ["web2.plant.local"]
    assert names(inv, "all", limit="all:!hmi03") == [h for h in ALL_HOSTS if h != "hmi03"]


def test_limit_from_file_one_pattern_per_line(inv: Inventory) -> None:
    limit = f"@{FIXTURES / 'retry_hosts.txt'}"
    assert names(inv, "all", limit=limit) == ["web1.plant.local", *HMI, "spare1"]


def test_limit_file_combines_with_other_limit_parts(inv: Inventory) -> None:
    limit = f"@{FIXTURES / 'retry_hosts.txt'},!hmi02"
    assert names(inv, "all", limit=limit) == ["web1.plant.local", "hmi01", "hmi03", "spare1"]


def test_missing_limit_file_is_an_error(inv: Inventory, tmp_path: Path) -> None:
    with pytest.raises(HostPatternError, match="Unable to find limit file"):
        inv.select("all", limit=f"@{tmp_path / 'nope.txt'}")


@pytest.mark.parametrize("pattern", ["nosuch", "webservers:nosuch", "webservers:&nosuch*"])
def test_pattern_matching_nothing_is_an_error(inv: Inventory, pattern: str) -> None:
    with pytest.raises(HostPatternError, match=r"Could not match supplied host pattern: nosuch"):
        inv.select(pattern)


def test_limit_matching_nothing_is_an_error(inv: Inventory) -> None:
    with pytest.raises(HostPatternError, match="Could not match supplied host pattern: hmi99"):
        inv.select("all", limit="hmi99")


def test_existing_empty_group_selects_nothing_without_error(inv: Inventory) -> None:
    assert inv.select("decommissioned") == []
    assert inv.select("ungrouped") == []


def test_invalid_regex_is_an_error(inv: Inventory) -> None:
    with pytest.raises(HostPatternError, match="Invalid host list pattern"):
        inv.select("~(hmi")


@pytest.mark.parametrize("pattern", ["", " , "])
def test_empty_pattern_is_an_error_not_all_hosts(inv: Inventory, pattern: str) -> None:
    with pytest.raises(HostPatternError, match="Empty host pattern"):
        inv.select(pattern)


def test_selected_hosts_carry_merged_vars_and_groups(inv: Inventory) -> None:
    (web2,) = inv.select("web2.plant.local")
    assert web2.name == "web2.plant.local"
    assert web2.groups == ["all", "webservers", "dbservers"]
    assert web2.vars == {}


@pytest.mark.parametrize(
    ("pattern", "parts"),
    [
        ("a,b[1], c[2:3] , d", ["a", "b[1]", "c[2:3]", "d"]),
        ("web:&db:!x", ["web", "&db", "!x"]),
        ("web[1:]:db", ["web[1:]", "db"]),
        ("hmi[01:03]", ["hmi[01:03]"]),
        ("fe80::1", ["fe80::1"]),
        ("10.0.0.1:22", ["10.0.0.1:22"]),
    ],
)
def test_split_host_pattern(pattern: str, parts: list[str]) -> None:
    assert split_host_pattern(pattern) == parts
