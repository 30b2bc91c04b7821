"""Expand host ranges in inventory host names: ``hmi[01:12]``, ``www[01:50:2]``, ``db-[a:f]``.

Same rules as Ansible's inventory: ranges are inclusive, a begin with a leading zero keeps
the zero padding (and then begin and end must have the same width), an optional third part is
the stride, single letters give an alphabetic range, and a name may hold several ranges
(expanded left to right, so ``r[1:2]-h[a:b]`` gives r1-ha, r1-hb, r2-ha, r2-hb).
"""

from __future__ import annotations

import string

from orchestrator.errors import InventoryError

from .addresses import split_host_port

# Ansible walks ascii_letters ("a..zA..Z") for alphabetic ranges, so [x:B] is legal there too.
_LETTERS = string.ascii_letters


def has_range(name: str) -> bool:
    """True if the name holds a ``[...]`` range (Ansible's test is just ``'[' in name``)."""
    return "[" in name


def expand_host_ranges(name: str) -> list[str]:
    """Return every host name the (possibly ranged) name stands for, in range order."""
    if not has_range(name):
        return [name]
    start = name.index("[")
    stop = name.find("]", start)
    if stop < 0:
        raise InventoryError(f"host range in '{name}' has no closing ']'")
    head, spec, tail = name[:start], name[start + 1 : stop], name[stop + 1 :]
    names: list[str] = []
    for item in _range_items(spec, name):
        # Recurse on the whole result: the tail may hold further ranges.
        names.extend(expand_host_ranges(f"{head}{item}{tail}"))
    return names


def _range_items(spec: str, name: str) -> list[str]:
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise InventoryError(f"host range [{spec}] in '{name}' must be begin:end or begin:end:step")
    begin, end = parts[0] or "0", parts[1]
    if not end:
        raise InventoryError(f"host range [{spec}] in '{name}' must specify an end value")
    step = _int(parts[2], spec, name) if len(parts) == 3 else 1
    if step < 1:
        raise InventoryError(f"host range [{spec}] in '{name}' must have a step of 1 or more")

    if begin in _LETTERS and end in _LETTERS and len(begin) == len(end) == 1:
        first, last = _LETTERS.index(begin), _LETTERS.index(end)
        if first > last:
            raise InventoryError(f"host range [{spec}] in '{name}' must have begin <= end")
        return list(_LETTERS[first : last + 1 : step])

    first, last = _int(begin, spec, name), _int(end, spec, name)
    # Deliberate difference: Ansible silently expands [12:01] to no hosts at all; a maintenance
    # engineer would rather be told that the range is backwards.
    if first > last:
        raise InventoryError(f"host range [{spec}] in '{name}' must have begin <= end")
    if begin.startswith("0") and len(begin) > 1:
        # A leading zero is the padding hint: hmi[01:12] -> hmi01 .. hmi12.
        if len(begin) != len(end):
            raise InventoryError(
                f"host range [{spec}] in '{name}' must specify equal-length begin and end formats"
            )
        return [str(i).zfill(len(begin)) for i in range(first, last + 1, step)]
    return [str(i) for i in range(first, last + 1, step)]


def _int(text: str, spec: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InventoryError(
            f"host range [{spec}] in '{name}' is neither numeric nor a single-letter range"
        ) from None


def expand_host_entry(entry: str) -> tuple[list[str], int | None]:
    """An inventory host entry to host names and port: ``'hmi[01:02]:5986'`` ->
    ``(['hmi01', 'hmi02'], 5986)``."""
    name, port = split_host_port(entry)
    return expand_host_ranges(name), port
