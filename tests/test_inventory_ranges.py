"""Host ranges and host:port entries."""

from __future__ import annotations

import pytest

from orchestrator.errors import InventoryError
from orchestrator.inventory.addresses import parse_address, split_host_port
from orchestrator.inventory.ranges import expand_host_entry, expand_host_ranges


@pytest.mark.parametrize(
    ("name", "hosts"),
    [
        ("hmi[01:03]", ["hmi01", "hmi02", "hmi03"]),  # zero padding kept
        ("hmi[1:3]", ["hmi1", "hmi2", "hmi3"]),
        ("hmi[8:11].plant", ["hmi8.plant", "hmi9.plant", "hmi10.plant", "hmi11.plant"]),
        ("www[01:09:4]", ["www01", "www05", "www09"]),  # stride
        ("db-[a:c]", ["db-a", "db-b", "db-c"]),  # alphabetic
        ("db-[a:e:2]", ["db-a", "db-c", "db-e"]),
        ("r[1:2]-n[a:b]", ["r1-na", "r1-nb", "r2-na", "r2-nb"]),  # several ranges
        ("h[:2]", ["h0", "h1", "h2"]),  # empty begin means 0
        ("plain.example.com", ["plain.example.com"]),
    ],
)
def test_expand_host_ranges(name: str, hosts: list[str]) -> None:
    assert expand_host_ranges(name) == hosts


def test_stride_example_from_the_docs() -> None:
    hosts = expand_host_ranges("www[01:50:2].example.com")
    assert hosts[:3] == ["www01.example.com", "www03.example.com", "www05.example.com"]
    assert hosts[-1] == "www49.example.com" and len(hosts) == 25


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("h[1]", "must be begin:end or begin:end:step"),
        ("h[1:2:3:4]", "must be begin:end or begin:end:step"),
        ("h[1:]", "must specify an end value"),
        ("h[01:100]", "equal-length"),
        ("h[5:1]", "begin <= end"),
        ("h[c:a]", "begin <= end"),
        ("h[1:x]", "neither numeric nor a single-letter range"),
        ("h[1:3:0]", "step of 1 or more"),
        ("h[1:3", "no closing"),
    ],
)
def test_bad_ranges(name: str, message: str) -> None:
    with pytest.raises(InventoryError, match=message):
        expand_host_ranges(name)


@pytest.mark.parametrize(
    ("entry", "result"),
    [
        ("badwolf.example.com:5309", ("badwolf.example.com", 5309)),
        ("10.0.0.5:2222", ("10.0.0.5", 2222)),
        ("[fe80::1]:2222", ("fe80::1", 2222)),
        ("fe80::1", ("fe80::1", None)),
        ("hmi01", ("hmi01", None)),
        ("hmi[01:12].plant.local:5986", ("hmi[01:12].plant.local", 5986)),
        ("bad_:22", ("bad_:22", None)),  # not a host name: kept whole, like Ansible
    ],
)
def test_split_host_port(entry: str, result: tuple[str, int | None]) -> None:
    assert split_host_port(entry) == result


def test_parse_address_rejects_what_is_no_address() -> None:
    assert parse_address("web:&db") is None
    assert parse_address("*.plant.local") is None
    assert parse_address("192.168.1.[1:3]") == ("192.168.1.[1:3]", None)


def test_expand_host_entry() -> None:
    assert expand_host_entry("hmi[01:02]:5986") == (["hmi01", "hmi02"], 5986)
