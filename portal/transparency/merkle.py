"""RFC 9162 Merkle tree hashing and proofs, over hashes kept by position.

Hashes: a leaf is SHA-256(0x00 ‖ data), an inner node SHA-256(0x01 ‖ left ‖ right), the empty
tree SHA-256 of nothing. The tree over n leaves splits at the largest power of two below n.

Storage model (what makes a proof cost O(log n) reads): a **perfect subtree** of 2^level leaves
starting at leaf ``position × 2^level`` is complete from the moment its last leaf is appended,
and its hash never changes after. Appending leaf i completes one perfect subtree per trailing
one bit of i (level 0, the leaf itself, and up); their hashes are kept with the leaf. The
**frontier** of a tree of size n is the list of perfect subtrees of n's binary decomposition,
largest first: it is all an append needs, and folding it gives the root.

Every hash a proof needs is the hash of a leaf range ``[start, end)`` that is either a perfect
subtree or ends at the tree's right edge; such a range is the fold of at most log n perfect
subtrees (``pieces``). Plans (``inclusion_ranges``, ``consistency_ranges``) follow RFC 9162's
PATH and SUBPROOF definitions exactly, and depend on sizes alone.
"""

import hashlib
from collections.abc import Callable, Iterable

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Node = tuple[int, int]  #: (level, position): leaves position·2^level … (position+1)·2^level − 1


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def append(frontier: list[bytes], size: int, leaf: bytes) -> tuple[list[bytes], list[bytes]]:
    """Append the leaf hash ``leaf`` to a tree of ``size`` leaves with ``frontier``: the new
    frontier, and the hashes of the perfect subtrees the new leaf completes (level 0 first)."""
    frontier = list(frontier)
    completed = [leaf]
    node = leaf
    level = 0
    while size >> level & 1:
        node = node_hash(frontier.pop(), node)
        completed.append(node)
        level += 1
    frontier.append(node)
    return frontier, completed


def root_of(frontier: Iterable[bytes]) -> bytes:
    """The root hash of the tree whose frontier this is (the empty tree's for none)."""
    hashes = list(frontier)
    if not hashes:
        return EMPTY_ROOT
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = node_hash(left, root)
    return root


def frontier_nodes(size: int) -> list[Node]:
    """The perfect subtrees of a tree of ``size`` leaves' frontier, largest first."""
    return pieces(0, size)


def row_of(node: Node) -> int:
    """The leaf whose append completed ``node``: its hash is kept with that leaf, at ``level``."""
    level, position = node
    return ((position + 1) << level) - 1


def split_at(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1): where RFC 9162 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def pieces(start: int, end: int) -> list[Node]:
    """The perfect subtrees whose hashes, folded from the right, give MTH(D[start:end]), for a
    range as proofs use them (``start`` a multiple of the largest power of two ≤ its width)."""
    found = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start % (1 << level):
            raise ValueError(f"range [{start}, {end}) is not aligned as RFC 9162 ranges are")
        found.append((level, start >> level))
        start += 1 << level
    return found


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes make the audit path of leaf ``index`` in a tree of ``size``
    (RFC 9162 §2.1.3.1, PATH), deepest first."""
    if not 0 <= index < size:
        raise ValueError("leaf index outside the tree")
    ranges = []
    start, end = 0, size
    while end - start > 1:
        k = split_at(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes make the consistency proof from the tree of ``first`` leaves
    to the tree of ``second`` (RFC 9162 §2.1.4.1, PROOF and SUBPROOF); none when they are equal."""
    if not 0 < first <= second:
        raise ValueError("sizes out of order")
    ranges = []
    start, end, m, whole = 0, second, first, True
    while True:
        if m == end - start:
            if not whole:
                ranges.append((start, end))
            break
        k = split_at(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            whole = False
    ranges.reverse()
    return ranges


def nodes_for(ranges: Iterable[tuple[int, int]]) -> set[Node]:
    return {node for start, end in ranges for node in pieces(start, end)}


def range_hash(start: int, end: int, node: Callable[[Node], bytes]) -> bytes:
    """MTH(D[start:end]) from the perfect subtrees' hashes (``node`` looks one up)."""
    found = pieces(start, end)
    value = node(found[-1])
    for piece in reversed(found[:-1]):
        value = node_hash(node(piece), value)
    return value


def proof(ranges: list[tuple[int, int]], node: Callable[[Node], bytes]) -> list[bytes]:
    return [range_hash(start, end, node) for start, end in ranges]
