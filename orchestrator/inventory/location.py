"""Attach a file and line to inventory errors raised deeper down (model, ranges, addresses)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from orchestrator.errors import InventoryError


@contextmanager
def located(path: str, line: int | None) -> Iterator[None]:
    """Re-raise an InventoryError that has no location yet as one at ``path:line``.

    The model and helpers know nothing about files; the parsers know where they are.
    """
    try:
        yield
    except InventoryError as exc:
        if exc.path is not None:
            raise
        raise InventoryError(exc.message, path=path, line=line) from None
