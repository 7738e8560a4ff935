"""RFC 9162 hashing and proofs: the published test vectors, and an independent re-computation
straight from the RFC's recursive definitions for every tree size up to a few hundred."""

import hashlib
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import portal_verify as verifier
from portal.transparency import merkle

# The test vectors of RFC 6962's reference implementation, which RFC 9162 keeps unchanged
# (leaf and node hashing, roots, audit paths and consistency proofs of trees of up to 8 leaves).
LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#: (leaf index, tree size, audit path)
INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
#: (first, second, consistency proof)
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]


class Tree:
    """A tree kept the way the database keeps it (subtree hashes by the leaf that completed
    them, and the frontier), built with ``merkle.append``."""

    def __init__(self, leaves):
        self.rows, self.frontier = [], []
        for i, data in enumerate(leaves):
            self.frontier, completed = merkle.append(self.frontier, i, merkle.leaf_hash(data))
            self.rows.append(completed)

    def node(self, node):
        level, _position = node
        return self.rows[merkle.row_of(node)][level]

    def inclusion(self, index, size):
        return merkle.proof(merkle.inclusion_ranges(index, size), self.node)

    def consistency(self, first, second):
        return [] if first == second else merkle.proof(merkle.consistency_ranges(first, second), self.node)

    def root(self, size):
        return merkle.range_hash(0, size, self.node) if size else merkle.EMPTY_ROOT


def h(hexes):
    return [bytes.fromhex(x) for x in hexes]


# --- the reference: RFC 9162 §2.1.1, 2.1.3.1 and 2.1.4.1 as written, on lists of leaves ---------


def reference(leaves):
    leaves = tuple(leaves)

    @cache
    def mth(start, end):
        n = end - start
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return hashlib.sha256(b"\x00" + leaves[start]).digest()
        k = 1
        while k * 2 < n:
            k *= 2
        return hashlib.sha256(b"\x01" + mth(start, start + k) + mth(start + k, end)).digest()

    def path(m, start, end):
        n = end - start
        if n == 1:
            return []
        k = 1
        while k * 2 < n:
            k *= 2
        if m < k:
            return path(m, start, start + k) + [mth(start + k, end)]
        return path(m - k, start + k, end) + [mth(start, start + k)]

    def subproof(m, start, end, b):
        n = end - start
        if m == n:
            return [] if b else [mth(start, end)]
        k = 1
        while k * 2 < n:
            k *= 2
        if m <= k:
            return subproof(m, start, start + k, b) + [mth(start + k, end)]
        return subproof(m - k, start + k, end, False) + [mth(start, start + k)]

    return mth, path, subproof


def test_hashes_and_roots_match_the_rfc_vectors():
    tree = Tree(LEAVES)
    assert tree.root(0).hex() == EMPTY == merkle.EMPTY_ROOT.hex()
    for size in range(1, 9):
        assert tree.root(size).hex() == ROOTS[size - 1]
        frontier = [tree.node(n) for n in merkle.frontier_nodes(size)]
        assert merkle.root_of(frontier).hex() == ROOTS[size - 1]
    assert merkle.root_of(tree.frontier).hex() == ROOTS[7]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_audit_paths_match_the_rfc_vectors(index, size, path):
    tree = Tree(LEAVES)
    assert tree.inclusion(index, size) == h(path)
    root = bytes.fromhex(ROOTS[size - 1])
    assert verifier.verify_inclusion(merkle.leaf_hash(LEAVES[index]), index, size, h(path), root)


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_consistency_proofs_match_the_rfc_vectors(first, second, proof):
    tree = Tree(LEAVES)
    assert tree.consistency(first, second) == h(proof)
    assert verifier.verify_consistency(
        first, second, bytes.fromhex(ROOTS[first - 1]), bytes.fromhex(ROOTS[second - 1]), h(proof)
    )


def test_every_proof_of_every_tree_up_to_200_leaves_matches_the_reference():
    leaves = [f"leaf {i}".encode() for i in range(200)]
    tree = Tree(leaves)
    mth, path, subproof = reference(leaves)
    for n in range(1, 201):
        root = mth(0, n)
        assert tree.root(n) == root
        for m in range(n):
            proof = tree.inclusion(m, n)
            assert proof == path(m, 0, n)
            assert verifier.verify_inclusion(merkle.leaf_hash(leaves[m]), m, n, proof, root)
        for m in range(1, n + 1):
            proof = tree.consistency(m, n)
            assert proof == (subproof(m, 0, n, True))
            assert verifier.verify_consistency(m, n, mth(0, m), root, proof)


def test_trees_up_to_300_leaves_by_their_last_and_middle_leaves():
    leaves = [bytes([i % 256, i // 256]) for i in range(300)]
    tree = Tree(leaves)
    mth, path, subproof = reference(leaves)
    for n in range(201, 301):
        for m in {0, n // 2, n - 1}:
            assert tree.inclusion(m, n) == path(m, 0, n)
        for m in {1, n // 3, n - 1, n}:
            assert tree.consistency(m, n) == subproof(m, 0, n, True)


def flip(proof, i):
    changed = list(proof)
    changed[i] = bytes([changed[i][0] ^ 8]) + changed[i][1:]
    return changed


def test_a_changed_proof_index_size_or_root_does_not_verify():
    tree = Tree(LEAVES)
    root = bytes.fromhex(ROOTS[7])
    leaf = merkle.leaf_hash(LEAVES[5])
    proof = tree.inclusion(5, 8)
    assert verifier.verify_inclusion(leaf, 5, 8, proof, root)
    for wrong in (
        (leaf, 4, 8, proof, root),
        (leaf, 6, 8, proof, root),
        (leaf, 5, 4, proof, root),
        (leaf, 5, 16, proof, root),
        (leaf, 5, 8, proof[:-1], root),
        (leaf, 5, 8, [*proof, root], root),
        (leaf, 5, 8, [root, *proof], root),
        (leaf, 5, 8, flip(proof, 1), root),
        (merkle.leaf_hash(b"x"), 5, 8, proof, root),
        (leaf, 5, 8, proof, merkle.EMPTY_ROOT),
        (leaf, 8, 8, proof, root),
    ):
        assert not verifier.verify_inclusion(*wrong)
    first, second = bytes.fromhex(ROOTS[5]), root
    proof = tree.consistency(6, 8)
    assert verifier.verify_consistency(6, 8, first, second, proof)
    for wrong in (
        (5, 8, first, second, proof),
        (7, 8, first, second, proof),
        (6 ^ 2, 8, first, second, proof),
        (6, 16, first, second, proof),
        (6, 4, first, second, proof),
        (6, 8, second, first, proof),
        (6, 8, first, second, []),
        (6, 8, first, second, proof[:-1]),
        (6, 8, first, second, [*proof, first]),
        (6, 8, first, second, [first, *proof]),
        (6, 8, first, second, flip(proof, 0)),
        (8, 6, second, first, proof),
    ):
        assert not verifier.verify_consistency(*wrong)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=90), st.data())
def test_any_proof_of_any_tree_verifies_and_matches_the_reference(leaves, data):
    tree = Tree(leaves)
    mth, path, subproof = reference(leaves)
    n = data.draw(st.integers(1, len(leaves)))
    m = data.draw(st.integers(0, n - 1))
    first = data.draw(st.integers(1, n))
    assert tree.inclusion(m, n) == path(m, 0, n)
    assert verifier.verify_inclusion(merkle.leaf_hash(leaves[m]), m, n, tree.inclusion(m, n), mth(0, n))
    assert tree.consistency(first, n) == subproof(first, 0, n, True)
    assert verifier.verify_consistency(first, n, mth(0, first), mth(0, n), tree.consistency(first, n))
    # The monitor's incremental root (leaf by leaf) is the tree's root.
    monitor = verifier.Frontier()
    for data_ in leaves[:n]:
        monitor.add(verifier.leaf_hash(data_))
    assert monitor.root() == mth(0, n)
