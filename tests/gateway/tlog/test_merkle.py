"""Tests for gateway.tlog.merkle: RFC 9162 hashing, proofs, stored-hash addressing."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.http.errors import format_status
from gateway.tlog.errors import FormatError
from gateway.tlog.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    Coord,
    Frontier,
    MissingHashError,
    ProofError,
    TreeRangeError,
    assemble_proof,
    consistency_proof_coords,
    consistency_proof_from_leaves,
    inclusion_proof_coords,
    inclusion_proof_from_leaves,
    leaf_hash,
    node_hash,
    range_coords,
    root_coords,
    root_from_hashes,
    root_from_inclusion_proof,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)

# --- RFC 6962 reference vectors ------------------------------------------------
# The eight entries, roots and proofs shared by the Certificate Transparency
# implementations (transparency-dev/merkle proof/verify_test.go, which indexes
# leaves from 1; the indices below are 0-based).

RFC_ENTRIES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
RFC_LEAVES = [leaf_hash(e) for e in RFC_ENTRIES]
RFC_ROOTS = {
    0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
RFC_INCLUSION = [
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
RFC_CONSISTENCY = [
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

# --- a larger tree shared by the exhaustive and property tests ----------------

MAX_SIZE = 300
EXHAUSTIVE_SIZE = 130
LEAVES = [leaf_hash(i.to_bytes(2, "big")) for i in range(MAX_SIZE)]


def _build_store() -> dict[Coord, bytes]:
    frontier = Frontier()
    return dict(frontier.extend(LEAVES))


STORE = _build_store()
ROOTS = [root_from_leaves(LEAVES[:n]) for n in range(MAX_SIZE + 1)]
OTHER_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _hex(hashes: Sequence[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


def _stored_inclusion(index: int, size: int) -> list[bytes]:
    return assemble_proof(inclusion_proof_coords(index, size), STORE)


def _stored_consistency(old_size: int, new_size: int) -> list[bytes]:
    return assemble_proof(consistency_proof_coords(old_size, new_size), STORE)


def _inclusion_fails(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    try:
        verify_inclusion(leaf, index, size, proof, root)
    except ProofError:
        return True
    return False


def _consistency_fails(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> bool:
    try:
        verify_consistency(old_size, new_size, proof, old_root, new_root)
    except ProofError:
        return True
    return False


# --- hashing and roots -----------------------------------------------------------


def test_hash_primitives() -> None:
    assert HASH_SIZE == 32
    assert EMPTY_ROOT.hex() == RFC_ROOTS[0]
    assert leaf_hash(b"").hex() == RFC_ROOTS[1]
    assert node_hash(RFC_LEAVES[0], RFC_LEAVES[1]).hex() == RFC_ROOTS[2]


@pytest.mark.parametrize("size", range(9))
def test_rfc_roots(size: int) -> None:
    assert root_from_leaves(RFC_LEAVES[:size]).hex() == RFC_ROOTS[size]
    frontier = Frontier()
    frontier.extend(RFC_LEAVES[:size])
    assert frontier.root().hex() == RFC_ROOTS[size]


def test_roots_from_stored_hashes_match_reference() -> None:
    for size in range(MAX_SIZE + 1):
        assert root_from_hashes(size, STORE) == ROOTS[size]


# --- RFC 6962 proof vectors --------------------------------------------------------


@pytest.mark.parametrize(("index", "size", "expected"), RFC_INCLUSION)
def test_rfc_inclusion_vectors(index: int, size: int, expected: list[str]) -> None:
    leaves = RFC_LEAVES[:size]
    assert _hex(inclusion_proof_from_leaves(index, leaves)) == expected
    store = dict(Frontier().extend(leaves))
    assert _hex(assemble_proof(inclusion_proof_coords(index, size), store)) == expected
    proof = [bytes.fromhex(h) for h in expected]
    root = bytes.fromhex(RFC_ROOTS[size])
    verify_inclusion(RFC_LEAVES[index], index, size, proof, root)
    assert root_from_inclusion_proof(RFC_LEAVES[index], index, size, proof) == root


@pytest.mark.parametrize(("old_size", "new_size", "expected"), RFC_CONSISTENCY)
def test_rfc_consistency_vectors(old_size: int, new_size: int, expected: list[str]) -> None:
    leaves = RFC_LEAVES[:new_size]
    assert _hex(consistency_proof_from_leaves(old_size, leaves)) == expected
    store = dict(Frontier().extend(leaves))
    assert _hex(assemble_proof(consistency_proof_coords(old_size, new_size), store)) == expected
    proof = [bytes.fromhex(h) for h in expected]
    old_root = bytes.fromhex(RFC_ROOTS[old_size])
    new_root = bytes.fromhex(RFC_ROOTS[new_size])
    verify_consistency(old_size, new_size, proof, old_root, new_root)


# --- C2SP merkle-tree.md worked example (seven entries) ----------------------------


def test_c2sp_seven_entry_example() -> None:
    a, b, c, d, e, f, g = (leaf_hash(bytes([i])) for i in range(7))
    h, i, j = node_hash(a, b), node_hash(c, d), node_hash(e, f)
    k, l_ = node_hash(h, i), node_hash(j, g)
    root = node_hash(k, l_)
    leaves = [a, b, c, d, e, f, g]
    store = dict(Frontier().extend(leaves))
    assert root_from_leaves(leaves) == root
    assert root_from_hashes(7, store) == root
    for index, proof in [(0, [b, i, l_]), (3, [c, h, l_]), (4, [f, g, k]), (6, [j, k])]:
        assert inclusion_proof_from_leaves(index, leaves) == proof
        assert assemble_proof(inclusion_proof_coords(index, 7), store) == proof
        verify_inclusion(leaves[index], index, 7, proof, root)
    for old_size, proof in [(3, [c, d, h, l_]), (4, [l_]), (6, [j, g, k])]:
        assert consistency_proof_from_leaves(old_size, leaves) == proof
        assert assemble_proof(consistency_proof_coords(old_size, 7), store) == proof
        verify_consistency(old_size, 7, proof, root_from_leaves(leaves[:old_size]), root)


# --- stored-hash proofs equal the reference, and verify ----------------------------


def test_inclusion_proofs_exhaustively() -> None:
    for size in range(1, EXHAUSTIVE_SIZE + 1):
        leaves = LEAVES[:size]
        for index in range(size):
            proof = _stored_inclusion(index, size)
            assert proof == inclusion_proof_from_leaves(index, leaves), (index, size)
            verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size])


def test_consistency_proofs_exhaustively() -> None:
    for new_size in range(EXHAUSTIVE_SIZE + 1):
        leaves = LEAVES[:new_size]
        for old_size in range(new_size + 1):
            proof = _stored_consistency(old_size, new_size)
            assert proof == consistency_proof_from_leaves(old_size, leaves), (old_size, new_size)
            verify_consistency(old_size, new_size, proof, ROOTS[old_size], ROOTS[new_size])


@pytest.mark.parametrize("size", [255, 256, 257, 299, 300])
def test_every_proof_verifies_in_larger_trees(size: int) -> None:
    for index in range(size):
        verify_inclusion(LEAVES[index], index, size, _stored_inclusion(index, size), ROOTS[size])
    for old_size in range(size + 1):
        proof = _stored_consistency(old_size, size)
        verify_consistency(old_size, size, proof, ROOTS[old_size], ROOTS[size])
        verify_consistency(0, old_size, [], EMPTY_ROOT, ROOTS[old_size])


@st.composite
def _index_and_size(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX_SIZE))
    return draw(st.integers(0, size - 1)), size


@st.composite
def _two_sizes(draw: st.DrawFn, *, least: int = 0) -> tuple[int, int]:
    new_size = draw(st.integers(least, MAX_SIZE))
    return draw(st.integers(least, new_size)), new_size


@settings(deadline=None)
@given(_index_and_size())
def test_inclusion_coords_match_reference(case: tuple[int, int]) -> None:
    index, size = case
    proof = _stored_inclusion(index, size)
    assert proof == inclusion_proof_from_leaves(index, LEAVES[:size])
    assert root_from_inclusion_proof(LEAVES[index], index, size, proof) == ROOTS[size]
    verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size])


@settings(deadline=None)
@given(_two_sizes())
def test_consistency_coords_match_reference(case: tuple[int, int]) -> None:
    old_size, new_size = case
    proof = _stored_consistency(old_size, new_size)
    assert proof == consistency_proof_from_leaves(old_size, LEAVES[:new_size])
    verify_consistency(old_size, new_size, proof, ROOTS[old_size], ROOTS[new_size])


# --- tampering ------------------------------------------------------------------


def _proof_variants(proof: list[bytes], extra: bytes) -> list[list[bytes]]:
    """Every way of damaging a proof: flipped bits, dropped, added or moved hashes."""
    variants: list[list[bytes]] = []
    for position in range(len(proof)):
        damaged = list(proof)
        damaged[position] = bytes([proof[position][0] ^ 0x10]) + proof[position][1:]
        variants.append(damaged)
        variants.append(proof[:position] + proof[position + 1 :])
        variants.append([*proof[:position], extra, *proof[position:]])
    variants.append([*proof, extra])
    variants.append([*proof, b""])
    variants.append([b"", *proof])
    if len(proof) > 1:
        variants.append(proof[::-1])
    return [v for v in variants if v != proof]


def _inclusion_tampering_is_caught(index: int, size: int) -> None:
    proof, root, leaf = _stored_inclusion(index, size), ROOTS[size], LEAVES[index]
    for damaged in _proof_variants(proof, OTHER_HASH):
        assert _inclusion_fails(leaf, index, size, damaged, root)
    for wrong_index in {index - 1, index + 1, index ^ 2, size, -1} - {index}:
        assert _inclusion_fails(leaf, wrong_index, size, proof, root)
    for wrong_size in {size - 1, size + 1, size * 2, size // 2} - {size}:
        wrong_root = ROOTS[wrong_size] if 0 <= wrong_size <= MAX_SIZE else OTHER_HASH
        assert _inclusion_fails(leaf, index, wrong_size, proof, wrong_root)
    assert _inclusion_fails(OTHER_HASH, index, size, proof, root)
    assert _inclusion_fails(leaf, index, size, proof, OTHER_HASH)
    assert _inclusion_fails(leaf, index, size, proof, EMPTY_ROOT)


def _consistency_tampering_is_caught(old_size: int, new_size: int) -> None:
    proof = _stored_consistency(old_size, new_size)
    old_root, new_root = ROOTS[old_size], ROOTS[new_size]
    for damaged in [*_proof_variants(proof, OTHER_HASH), [old_root, *proof], [new_root, *proof]]:
        assert _consistency_fails(old_size, new_size, damaged, old_root, new_root)
    for wrong_old in {old_size - 1, old_size + 1, old_size ^ 2} - {old_size}:
        root = ROOTS[wrong_old] if 0 < wrong_old <= MAX_SIZE else OTHER_HASH
        assert _consistency_fails(wrong_old, new_size, proof, root, new_root)
        assert _consistency_fails(wrong_old, new_size, proof, old_root, new_root)
    for wrong_new in {new_size - 1, new_size + 1, new_size * 2, new_size // 2} - {new_size}:
        root = ROOTS[wrong_new] if 0 <= wrong_new <= MAX_SIZE else OTHER_HASH
        assert _consistency_fails(old_size, wrong_new, proof, old_root, root)
    assert _consistency_fails(old_size, new_size, proof, OTHER_HASH, new_root)
    assert _consistency_fails(old_size, new_size, proof, old_root, OTHER_HASH)
    assert _consistency_fails(old_size, new_size, proof, new_root, old_root)
    assert _consistency_fails(old_size, new_size, [], old_root, new_root)


def test_tampered_inclusion_proofs_fail_for_small_trees() -> None:
    for size in range(1, 33):
        for index in range(size):
            _inclusion_tampering_is_caught(index, size)


def test_tampered_consistency_proofs_fail_for_small_trees() -> None:
    for new_size in range(2, 33):
        for old_size in range(1, new_size):
            _consistency_tampering_is_caught(old_size, new_size)


@settings(max_examples=60, deadline=None)
@given(_index_and_size())
def test_tampered_inclusion_proofs_fail(case: tuple[int, int]) -> None:
    _inclusion_tampering_is_caught(*case)


@settings(max_examples=60, deadline=None)
@given(_two_sizes(least=1).filter(lambda sizes: sizes[0] < sizes[1]))
def test_tampered_consistency_proofs_fail(case: tuple[int, int]) -> None:
    _consistency_tampering_is_caught(*case)


# --- verification edge cases -------------------------------------------------------


def test_proof_error_is_a_bad_request() -> None:
    with pytest.raises(ProofError) as caught:
        verify_inclusion(LEAVES[0], 0, 1, [], OTHER_HASH)
    assert isinstance(caught.value, FormatError)
    assert format_status(caught.value) == 400
    assert caught.value.code == "invalid_proof"
    assert "entry 0" in caught.value.message


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (1, 1), (2, 1), (-1, 4), (8, 8)])
def test_inclusion_rejects_impossible_positions(index: int, size: int) -> None:
    with pytest.raises(ProofError, match="cannot be in a tree"):
        verify_inclusion(LEAVES[0], index, size, [], ROOTS[1])


def test_single_entry_tree() -> None:
    verify_inclusion(LEAVES[0], 0, 1, [], LEAVES[0])
    with pytest.raises(ProofError, match="too many"):
        verify_inclusion(LEAVES[0], 0, 1, [LEAVES[1]], ROOTS[2])


def test_inclusion_length_errors_are_named() -> None:
    proof = _stored_inclusion(3, 8)
    with pytest.raises(ProofError, match="too few"):
        verify_inclusion(LEAVES[3], 3, 8, proof[:-1], ROOTS[8])
    with pytest.raises(ProofError, match="too many"):
        verify_inclusion(LEAVES[3], 3, 8, [*proof, OTHER_HASH], ROOTS[8])
    with pytest.raises(ProofError, match="does not lead to the root"):
        verify_inclusion(LEAVES[4], 3, 8, proof, ROOTS[8])


def test_inclusion_rejects_wrong_hash_lengths() -> None:
    proof = _stored_inclusion(1, 4)
    with pytest.raises(ProofError, match="32 bytes"):
        verify_inclusion(LEAVES[1][:31], 1, 4, proof, ROOTS[4])
    with pytest.raises(ProofError, match="hash #1"):
        verify_inclusion(LEAVES[1], 1, 4, [proof[0], proof[1] + b"\x00"], ROOTS[4])


def test_consistency_trivial_cases() -> None:
    verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    verify_consistency(0, 5, [], EMPTY_ROOT, ROOTS[5])
    verify_consistency(5, 5, [], ROOTS[5], ROOTS[5])


@pytest.mark.parametrize(
    ("old_size", "new_size", "proof", "old_root", "new_root", "message"),
    [
        (1, 0, [], ROOTS[1], EMPTY_ROOT, "prefix"),
        (-1, 3, [], EMPTY_ROOT, ROOTS[3], "prefix"),
        (5, 5, [ROOTS[5]], ROOTS[5], ROOTS[5], "must be empty"),
        (5, 5, [], ROOTS[5], ROOTS[4], "two different roots"),
        (0, 0, [EMPTY_ROOT], EMPTY_ROOT, EMPTY_ROOT, "must be empty"),
        (0, 3, [ROOTS[3]], EMPTY_ROOT, ROOTS[3], "empty tree"),
        (2, 3, [], ROOTS[2], ROOTS[3], "cannot be empty"),
        (2, 3, [LEAVES[2][:16]], ROOTS[2], ROOTS[3], "32 bytes"),
    ],
)
def test_consistency_rejects(
    old_size: int,
    new_size: int,
    proof: list[bytes],
    old_root: bytes,
    new_root: bytes,
    message: str,
) -> None:
    with pytest.raises(ProofError, match=message):
        verify_consistency(old_size, new_size, proof, old_root, new_root)


def test_consistency_length_errors_are_named() -> None:
    proof = _stored_consistency(3, 7)
    with pytest.raises(ProofError, match="too few"):
        verify_consistency(3, 7, proof[:-1], ROOTS[3], ROOTS[7])
    with pytest.raises(ProofError, match="too many"):
        verify_consistency(3, 7, [*proof, OTHER_HASH], ROOTS[3], ROOTS[7])
    with pytest.raises(ProofError, match="old tree"):
        verify_consistency(3, 7, proof, ROOTS[2], ROOTS[7])
    with pytest.raises(ProofError, match="new tree"):
        verify_consistency(3, 7, proof, ROOTS[3], ROOTS[8])


# --- proof generation arguments ---------------------------------------------------


@pytest.mark.parametrize(("index", "size"), [(0, 0), (3, 3), (-1, 3), (0, -1)])
def test_inclusion_generation_rejects_bad_positions(index: int, size: int) -> None:
    with pytest.raises(TreeRangeError):
        inclusion_proof_coords(index, size)
    if size >= 0:
        with pytest.raises(TreeRangeError):
            inclusion_proof_from_leaves(index, LEAVES[:size])


@pytest.mark.parametrize(("old_size", "new_size"), [(4, 3), (-1, 3), (1, 0)])
def test_consistency_generation_rejects_bad_sizes(old_size: int, new_size: int) -> None:
    with pytest.raises(TreeRangeError):
        consistency_proof_coords(old_size, new_size)
    with pytest.raises(TreeRangeError):
        consistency_proof_from_leaves(old_size, LEAVES[: max(new_size, 0)])


def test_range_errors_are_bad_requests() -> None:
    with pytest.raises(FormatError) as caught:
        inclusion_proof_coords(9, 9)
    assert format_status(caught.value) == 400
    assert caught.value.code == "out_of_range"
    assert "entry 9" in caught.value.message


def test_missing_stored_hash_is_named() -> None:
    store = dict(STORE)
    del store[(2, 1)]
    with pytest.raises(MissingHashError, match="level 2, index 1") as caught:
        assemble_proof(inclusion_proof_coords(0, 16), store)
    assert format_status(caught.value) == 500  # our storage's fault, not the caller's
    del store[(0, 12)]
    with pytest.raises(MissingHashError, match="level 0, index 12"):
        root_from_hashes(13, store)


# --- coordinates ------------------------------------------------------------------


def test_range_coords_examples() -> None:
    assert range_coords(0, 0) == []
    assert range_coords(5, 5) == []
    assert range_coords(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert range_coords(3, 9) == [(0, 3), (2, 1), (0, 8)]
    assert range_coords(8, 16) == [(3, 1)]
    assert root_coords(0) == []
    assert root_coords(256) == [(8, 0)]
    assert root_coords(7) == [(2, 0), (1, 2), (0, 6)]


@pytest.mark.parametrize(("begin", "end"), [(-1, 3), (4, 3)])
def test_range_coords_rejects_bad_ranges(begin: int, end: int) -> None:
    with pytest.raises(TreeRangeError):
        range_coords(begin, end)


@given(st.integers(0, 1 << 40), st.integers(0, 1 << 40))
def test_range_coords_tile_the_range_maximally(begin: int, length: int) -> None:
    end = begin + length
    position = begin
    for level, index in range_coords(begin, end):
        assert index << level == position
        position += 1 << level
        parent_start = (index >> 1) << (level + 1)
        parent_end = parent_start + (2 << level)
        assert parent_start < begin or parent_end > end
    assert position == end


def test_proof_groups_line_up_with_proof_elements() -> None:
    for size in range(1, 70):
        for index in range(size):
            groups = inclusion_proof_coords(index, size)
            assert len(groups) == len(inclusion_proof_from_leaves(index, LEAVES[:size]))
            assert all(groups)


# --- frontier ---------------------------------------------------------------------


def test_frontier_roots_match_reference_for_every_size() -> None:
    frontier = Frontier()
    assert frontier.size == 0
    assert frontier.root() == EMPTY_ROOT
    for size, leaf in enumerate(LEAVES, start=1):
        created = frontier.append(leaf)
        assert frontier.size == size
        assert frontier.root() == ROOTS[size]
        assert frontier.coords == tuple(root_coords(size))
        assert frontier.hashes == tuple(STORE[c] for c in root_coords(size))
        expected = [
            (lv, (size >> lv) - 1) for lv in range(size.bit_length()) if size % (1 << lv) == 0
        ]
        assert [c for c, _ in created] == expected
        assert all(STORE[c] == h for c, h in created)


def test_frontier_reports_every_stored_hash_once() -> None:
    created = Frontier().extend(LEAVES)
    coords = [c for c, _ in created]
    assert len(coords) == len(set(coords))
    expected = {(lv, i) for lv in range(9) for i in range(MAX_SIZE >> lv)}
    assert set(coords) == expected
    assert created[0] == ((0, 0), LEAVES[0])


@given(st.integers(0, MAX_SIZE), st.integers(0, 40))
def test_frontier_resumes_from_storage(size: int, more: int) -> None:
    more = min(more, MAX_SIZE - size)
    resumed = Frontier.from_hashes(size, STORE)
    assert resumed.root() == ROOTS[size]
    again = Frontier(resumed.size, resumed.hashes)
    created = again.extend(LEAVES[size : size + more])
    assert again.root() == ROOTS[size + more]
    assert all(STORE[c] == h for c, h in created)
    assert resumed.size == size


def test_frontier_copy_is_independent() -> None:
    frontier = Frontier.from_hashes(5, STORE)
    clone = frontier.copy()
    clone.append(LEAVES[5])
    assert frontier.size == 5
    assert clone.root() == ROOTS[6]
    assert "size=5" in repr(frontier)


def test_frontier_rejects_bad_state() -> None:
    with pytest.raises(ValueError, match="3 frontier hashes"):
        Frontier(7, [LEAVES[0]])
    with pytest.raises(ValueError, match="32 bytes"):
        Frontier(1, [b"short"])
    with pytest.raises(ValueError, match="32 bytes"):
        Frontier().append(b"short")
    with pytest.raises(TreeRangeError):
        Frontier(-1)
    with pytest.raises(MissingHashError):
        Frontier.from_hashes(MAX_SIZE + 1, STORE)
