"""Ansible host patterns (``hosts:`` of a play, ``--limit``) evaluated against an inventory.

Supported, as in Ansible's intro_patterns: ``all`` / ``*``; ``a:b`` and ``a,b`` (union);
``a:&b`` (intersection); ``a:!b`` (exclusion); shell wildcards matched against group *and*
host names (``*.plant.local``, ``hmi0*``); ``~regex`` (``re.match``, so anchored at the start
only); group subscripts ``web[0]``, ``web[-1]``, ``web[1:]``, ``web[0:2]`` (inclusive end);
and for ``--limit`` only, ``@file`` with one pattern per line.

Whatever order the parts are written in, unions apply first, then intersections, then
exclusions. Results come back in inventory order (the order hosts were first defined).
"""

from __future__ import annotations

import fnmatch
import os
import re
from typing import TYPE_CHECKING

from orchestrator.errors import HostPatternError

from .addresses import parse_address

if TYPE_CHECKING:
    from .model import Inventory

# "expr[3]", "expr[-1]", "expr[1:]", "expr[0:2]" (and Ansible's old "expr[0-2]").
_SUBSCRIPT_RE = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$")
# ':'-separated pattern list; a [...] bracket (range or subscript) is never split.
_COLON_PARTS_RE = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
_GLOB_CHARS = (".", "?", "*", "[")


def split_host_pattern(pattern: str) -> list[str]:
    """``'a,b[1], c'`` -> ``['a', 'b[1]', 'c']``; ``'web:&db:!x'`` -> ``['web', '&db', '!x']``.

    Commas win if present. Otherwise a pattern that is a valid host[:port] or IP address stays
    whole (so IPv6 addresses and ``host[1:3]`` survive), else it is split on ':'.
    """
    if "," in pattern:
        parts = pattern.split(",")
    elif parse_address(pattern) is not None:
        parts = [pattern]
    else:
        parts = _COLON_PARTS_RE.findall(pattern)
    return [p.strip() for p in parts if p.strip()]


def order_patterns(patterns: list[str]) -> list[str]:
    """Unions first, then '&' intersections, then '!' exclusions; only '&'/'!' means all."""
    unions = [p for p in patterns if p and p[0] not in "&!"]
    intersections = [p for p in patterns if p and p[0] == "&"]
    exclusions = [p for p in patterns if p and p[0] == "!"]
    return (unions or ["all"]) + intersections + exclusions


def select_host_names(
    inventory: Inventory, pattern: str = "all", limit: str | None = None
) -> list[str]:
    """Host names matching ``pattern`` and, if given, ``limit``; in inventory order."""
    patterns = split_host_pattern(pattern)
    if not patterns:
        # Ansible would read an empty pattern as 'all'; scanning every host by accident is
        # worse than asking the user to say 'all'.
        raise HostPatternError("Empty host pattern: use 'all' to select every host")
    selected = evaluate(inventory, patterns)
    if limit is not None:
        limits = limit_patterns(limit)
        if not limits:
            raise HostPatternError("Empty --limit: give a host pattern or leave the limit out")
        allowed = set(evaluate(inventory, limits))
        selected = [name for name in selected if name in allowed]
    return selected


def limit_patterns(limit: str) -> list[str]:
    """Split a ``--limit`` value, reading ``@file`` parts (one pattern per line)."""
    patterns: list[str] = []
    for part in split_host_pattern(limit):
        if not part.startswith("@"):
            patterns.append(part)
            continue
        path = part[1:]
        if not os.path.exists(path):
            raise HostPatternError(f"Unable to find limit file {path}")
        if not os.path.isfile(path):
            raise HostPatternError(
                f'Limit starting with "@" must be a file, not a directory: {path}'
            )
        with open(path, encoding="utf-8") as handle:
            patterns.extend(line.strip() for line in handle if line.strip())
    return patterns


def evaluate(inventory: Inventory, patterns: list[str]) -> list[str]:
    selected: set[str] = set()
    for pattern in order_patterns(patterns):
        if pattern in inventory.hosts:
            selected.add(pattern)  # a plain host name needs no matching
            continue
        matched = set(match_one(inventory, pattern[1:] if pattern[0] in "&!" else pattern))
        if pattern[0] == "!":
            selected -= matched
        elif pattern[0] == "&":
            selected &= matched
        else:
            selected |= matched
    return sorted(selected, key=inventory.host_order)


def match_one(inventory: Inventory, pattern: str) -> list[str]:
    """Hosts for one pattern without its '&'/'!' prefix, subscript applied; inventory order."""
    expr, subscript = _split_subscript(pattern)
    hosts = _enumerate(inventory, expr)
    if subscript is None or not hosts:
        return hosts
    start, end = subscript
    try:
        if end is None:
            return [hosts[start]]
        return hosts[start : (len(hosts) - 1 if end == -1 else end) + 1]
    except IndexError:
        raise HostPatternError(f"No hosts matched the subscripted pattern '{pattern}'") from None


def _split_subscript(pattern: str) -> tuple[str, tuple[int, int | None] | None]:
    if pattern.startswith("~"):
        return pattern, None  # '[...]' in a regex is part of the regex
    m = _SUBSCRIPT_RE.match(pattern)
    if not m:
        return pattern, None
    expr, index, start, _sep, end = m.groups()
    if index is not None:
        return expr, (int(index), None)
    # "web[1:]" runs to the end; Ansible encodes that as end -1.
    return expr, (int(start), int(end) if end else -1)


def _enumerate(inventory: Inventory, expr: str) -> list[str]:
    regex = _compile(expr)
    found: set[str] = set()
    groups = [name for name in inventory.groups if regex.match(name)]
    for name in groups:
        found.update(inventory.group_members(name))
    # Host names are tried when no group matched, or when the pattern is a glob or a regex
    # (so 'hmi0*' can match both a group 'hmi0x' and hosts 'hmi01', 'hmi02', ...).
    if not groups or expr.startswith("~") or any(c in expr for c in _GLOB_CHARS):
        found.update(name for name in inventory.hosts if regex.match(name))
    if not found and not groups and expr != "all":
        # Ansible only warns and goes on; for us a pattern that matches nothing is a user
        # error (a typo in --limit must not silently scan fewer, or no, hosts).
        raise HostPatternError(f"Could not match supplied host pattern: {expr}")
    return sorted(found, key=inventory.host_order)


def _compile(expr: str) -> re.Pattern[str]:
    try:
        if expr.startswith("~"):
            return re.compile(expr[1:])
        return re.compile(fnmatch.translate(expr))
    except re.error as exc:
        raise HostPatternError(f"Invalid host list pattern: {expr} ({exc})") from None
