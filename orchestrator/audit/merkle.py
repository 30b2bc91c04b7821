"""RFC 6962 Merkle tree hash (MTH) over the audit trail's leaf hashes.

    leaf  = SHA-256(0x00 || entry)          (trail.leaf_hash)
    node  = SHA-256(0x01 || left || right)
    MTH(D[0:n]) splits at the largest power of two k < n: node(MTH(D[0:k]), MTH(D[k:n]))
    MTH of the empty list = SHA-256("")

`MerkleBuilder` adds leaves one at a time and keeps only the "frontier": the roots of the
complete subtrees so far (at most log2(n) of them), so the root for the first n leaves comes out
in O(n) time and O(log n) memory, and roots at several sizes come out of one pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

EMPTY_ROOT = hashlib.sha256(b"").digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _as_bytes(leaf: bytes | str) -> bytes:
    return bytes.fromhex(leaf) if isinstance(leaf, str) else leaf


class MerkleBuilder:
    """Incremental MTH: `add(leaf)` for leaves in order, `root()` at any time."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (leaves under it, hash), sizes decreasing

    def add(self, leaf: bytes | str) -> None:
        width, value = 1, _as_bytes(leaf)
        while self._stack and self._stack[-1][0] == width:
            left_width, left = self._stack.pop()
            width, value = left_width + width, node_hash(left, value)
        self._stack.append((width, value))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        value = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            value = node_hash(left, value)
        return value

    def state(self) -> dict[str, Any]:
        """The frontier as JSON (saved so the next checkpoint does not start from leaf 1)."""
        return {"size": self.size, "stack": [[w, h.hex()] for w, h in self._stack]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MerkleBuilder:
        builder = cls()
        stack = [(int(w), bytes.fromhex(h)) for w, h in state["stack"]]
        widths = [w for w, _ in stack]
        if sum(widths) != int(state["size"]) or any(
            w & (w - 1) or (i and w >= widths[i - 1]) for i, w in enumerate(widths)
        ):
            raise ValueError("not a Merkle frontier")
        builder._stack = stack
        builder.size = int(state["size"])
        return builder


def merkle_root(leaves: Iterable[bytes | str]) -> bytes:
    """MTH over all of `leaves` (raw 32-byte digests or their hex)."""
    builder = MerkleBuilder()
    for leaf in leaves:
        builder.add(leaf)
    return builder.root()


def reference_root(leaves: list[bytes]) -> bytes:
    """The recursive definition of RFC 6962 §2.1, for tests."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))
