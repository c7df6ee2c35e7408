"""RFC 9162 / C2SP Merkle tree maths: hashing, proofs, stored-hash addressing, appends.

Everything here is pure computation over SHA-256 hashes. Two families of
functions exist side by side:

* reference functions (``*_from_leaves``) that follow the RFC definitions over
  a full list of leaf hashes; simple, slow, used by tests and tiny trees;
* stored-hash functions (``*_coords`` plus ``assemble_proof``) that name the
  complete aligned subtrees whose hashes the log keeps, so storage can fetch
  them in one batch and the proof is then folded together here.

A coordinate ``(level, index)`` names the complete subtree over the leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 holds leaf hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

from gateway.tlog.errors import FormatError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

Coord = tuple[int, int]
"""A stored subtree hash address: (level, index)."""

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Coord",
    "Frontier",
    "MissingHashError",
    "ProofError",
    "TreeRangeError",
    "assemble_proof",
    "consistency_proof_coords",
    "consistency_proof_from_leaves",
    "inclusion_proof_coords",
    "inclusion_proof_from_leaves",
    "leaf_hash",
    "node_hash",
    "range_coords",
    "root_coords",
    "root_from_hashes",
    "root_from_inclusion_proof",
    "root_from_leaves",
    "verify_consistency",
    "verify_inclusion",
]


class ProofError(FormatError):
    """An inclusion or consistency proof does not check out."""

    code = "invalid_proof"


class TreeRangeError(FormatError):
    """A leaf index or tree size is outside what the tree can answer for."""

    code = "out_of_range"


class MissingHashError(FormatError):
    """Storage did not supply a subtree hash the computation needs."""

    code = "ledger_missing_hash"


# --- hashing -----------------------------------------------------------------


def leaf_hash(data: bytes | bytearray | memoryview) -> bytes:
    """Return the RFC 9162 leaf hash SHA-256(0x00 || data) (``data`` is not copied)."""
    digest = hashlib.sha256(_LEAF_PREFIX)
    digest.update(data)
    return digest.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 interior hash SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split_point(n: int) -> int:
    """Return the largest power of two strictly smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _fold_right(hashes: Sequence[bytes]) -> bytes:
    """Combine subtree hashes left to right into one, hashing from the right."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


# --- argument checks -----------------------------------------------------------


def _check_size(size: int) -> None:
    if size < 0:
        raise TreeRangeError(f"a tree size cannot be negative (got {size})")


def _check_index(index: int, size: int) -> None:
    _check_size(size)
    if not 0 <= index < size:
        raise TreeRangeError(f"entry {index} does not exist in a tree of {size} entries")


def _check_sizes(old_size: int, new_size: int) -> None:
    _check_size(old_size)
    if old_size > new_size:
        raise TreeRangeError(
            f"cannot prove consistency from size {old_size} to the smaller size {new_size}"
        )


# --- reference functions over all leaf hashes ------------------------------------


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle Tree Hash (MTH) of a full list of leaf hashes."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split_point(n)
    return node_hash(root_from_leaves(leaf_hashes[:k]), root_from_leaves(leaf_hashes[k:]))


def inclusion_proof_from_leaves(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Return PATH(index, D[n]) as defined in RFC 9162 section 2.1.3.1."""
    _check_index(index, len(leaf_hashes))
    return _path(index, leaf_hashes)


def _path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = _split_point(n)
    if index < k:
        return [*_path(index, leaves[:k]), root_from_leaves(leaves[k:])]
    return [*_path(index - k, leaves[k:]), root_from_leaves(leaves[:k])]


def consistency_proof_from_leaves(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Return PROOF(old_size, D[n]) as defined in RFC 9162 section 2.1.4.1.

    The proof is empty when ``old_size`` is 0 or equals the tree size.
    """
    _check_sizes(old_size, len(leaf_hashes))
    if old_size in (0, len(leaf_hashes)):
        return []
    return _subproof(old_size, leaf_hashes, complete=True)


def _subproof(m: int, leaves: Sequence[bytes], *, complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root_from_leaves(leaves)]
    k = _split_point(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete=complete), root_from_leaves(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], complete=False), root_from_leaves(leaves[:k])]


# --- verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2) ----------------------


def _check_proof_hashes(kind: str, proof: Sequence[bytes]) -> None:
    for position, h in enumerate(proof):
        if len(h) != HASH_SIZE:
            raise ProofError(
                f"{kind} proof hash #{position} is {len(h)} bytes long; "
                f"every hash must be {HASH_SIZE} bytes"
            )


def _shift_to_odd(fn: int, sn: int) -> tuple[int, int]:
    """Right-shift both until fn's lowest bit is set or fn is 0."""
    while fn & 1 == 0 and fn != 0:
        fn >>= 1
        sn >>= 1
    return fn, sn


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """Return the root an inclusion proof leads to, or raise ProofError if malformed."""
    if not 0 <= index < size:
        raise ProofError(f"entry {index} cannot be in a tree of {size} entries")
    if len(leaf_hash) != HASH_SIZE:
        raise ProofError(f"the leaf hash must be {HASH_SIZE} bytes, not {len(leaf_hash)}")
    _check_proof_hashes("inclusion", proof)
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError(_inclusion_length_message("too many", index, size))
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _shift_to_odd(fn, sn)
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(_inclusion_length_message("too few", index, size))
    return r


def _inclusion_length_message(amount: str, index: int, size: int) -> str:
    return f"the inclusion proof has {amount} hashes for entry {index} in a tree of {size} entries"


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is entry ``index`` of the tree of ``size`` with ``root``."""
    if root_from_inclusion_proof(leaf_hash, index, size, proof) != root:
        raise ProofError(
            f"the inclusion proof for entry {index} does not lead to the root of the "
            f"tree of {size} entries: the entry is not there or the proof is corrupt"
        )


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Check that the tree of ``old_size`` is a prefix of the tree of ``new_size``."""
    if old_size < 0 or old_size > new_size:
        raise ProofError(f"no tree of size {old_size} can be a prefix of a tree of size {new_size}")
    if old_size == new_size:
        _verify_same_tree(old_size, proof, old_root, new_root)
        return
    if old_size == 0:
        if proof:
            raise ProofError("a consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError(
            f"a consistency proof from size {old_size} to size {new_size} cannot be empty"
        )
    _check_proof_hashes("consistency", proof)
    old_found, new_found = _consistency_roots(old_size, new_size, proof, old_root)
    if old_found != old_root:
        raise ProofError(
            f"the consistency proof does not lead to the root of the old tree of {old_size} "
            "entries: the log may have rewritten history, or the proof is corrupt"
        )
    if new_found != new_root:
        raise ProofError(
            f"the consistency proof does not lead to the root of the new tree of {new_size} "
            "entries: the log may have rewritten history, or the proof is corrupt"
        )


def _verify_same_tree(size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes) -> None:
    if proof:
        raise ProofError(f"a consistency proof between two trees of size {size} must be empty")
    if old_root != new_root:
        raise ProofError(f"two different roots were given for the same tree size {size}")


def _consistency_roots(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes
) -> tuple[bytes, bytes]:
    """Run the RFC 9162 2.1.4.2 loop; return the recomputed (old, new) roots."""
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(_consistency_length_message("too many", old_size, new_size))
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            fn, sn = _shift_to_odd(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(_consistency_length_message("too few", old_size, new_size))
    return fr, sr


def _consistency_length_message(amount: str, old_size: int, new_size: int) -> str:
    return f"the consistency proof from size {old_size} to size {new_size} has {amount} hashes"


# --- stored-hash addressing --------------------------------------------------------


def range_coords(begin: int, end: int) -> list[Coord]:
    """Split leaves [begin, end) into maximal aligned complete subtrees, left to right."""
    if not 0 <= begin <= end:
        raise TreeRangeError(f"[{begin}, {end}) is not a valid range of entries")
    coords: list[Coord] = []
    while begin < end:
        level = (end - begin).bit_length() - 1
        if begin:
            level = min(level, (begin & -begin).bit_length() - 1)
        coords.append((level, begin >> level))
        begin += 1 << level
    return coords


def root_coords(size: int) -> list[Coord]:
    """Return the subtrees whose hashes fold (right to left) into the root of ``size``."""
    _check_size(size)
    return range_coords(0, size)


def _lookup(hashes: Mapping[Coord, bytes], coord: Coord) -> bytes:
    try:
        return hashes[coord]
    except KeyError:
        level, index = coord
        raise MissingHashError(
            f"the ledger has no stored hash for subtree level {level}, index {index}"
        ) from None


def _fold_coords(coords: Sequence[Coord], hashes: Mapping[Coord, bytes]) -> bytes:
    return _fold_right([_lookup(hashes, c) for c in coords])


def root_from_hashes(size: int, hashes: Mapping[Coord, bytes]) -> bytes:
    """Return the root of the tree of ``size`` from stored subtree hashes."""
    coords = root_coords(size)
    if not coords:
        return EMPTY_ROOT
    return _fold_coords(coords, hashes)


def inclusion_proof_coords(index: int, size: int) -> list[list[Coord]]:
    """Return, per proof element, the stored subtrees that fold into it."""
    _check_index(index, size)
    ranges: list[tuple[int, int]] = []
    begin, end = 0, size
    while end - begin > 1:
        mid = begin + _split_point(end - begin)
        if index < mid:
            ranges.append((mid, end))
            end = mid
        else:
            ranges.append((begin, mid))
            begin = mid
    return [range_coords(b, e) for b, e in reversed(ranges)]


def consistency_proof_coords(old_size: int, new_size: int) -> list[list[Coord]]:
    """Return, per consistency proof element, the stored subtrees that fold into it."""
    _check_sizes(old_size, new_size)
    if old_size in (0, new_size):
        return []
    ranges: list[tuple[int, int]] = []
    begin, end, complete = 0, new_size, True
    while end != old_size:
        mid = begin + _split_point(end - begin)
        if old_size <= mid:
            ranges.append((mid, end))
            end = mid
        else:
            ranges.append((begin, mid))
            begin, complete = mid, False
    if not complete:
        ranges.append((begin, end))
    return [range_coords(b, e) for b, e in reversed(ranges)]


def assemble_proof(groups: Sequence[Sequence[Coord]], hashes: Mapping[Coord, bytes]) -> list[bytes]:
    """Fold each group of stored subtree hashes (right to left) into one proof hash."""
    return [_fold_coords(group, hashes) for group in groups]


# --- appends -------------------------------------------------------------------


class Frontier:
    """The hashes of the maximal complete subtrees of [0, size): enough to append."""

    __slots__ = ("_nodes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        """Start from a tree of ``size`` whose ``root_coords(size)`` hold ``hashes``."""
        coords = root_coords(size)
        if len(hashes) != len(coords):
            raise ValueError(
                f"a tree of {size} entries has {len(coords)} frontier hashes, not {len(hashes)}"
            )
        for h in hashes:
            _require_hash(h)
        self._size = size
        self._nodes: list[tuple[Coord, bytes]] = list(zip(coords, hashes, strict=True))

    @classmethod
    def from_hashes(cls, size: int, hashes: Mapping[Coord, bytes]) -> Frontier:
        """Build the frontier of ``size`` from stored subtree hashes."""
        return cls(size, [_lookup(hashes, c) for c in root_coords(size)])

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The frontier hashes, in ``root_coords(size)`` order, for persistence."""
        return tuple(h for _, h in self._nodes)

    @property
    def coords(self) -> tuple[Coord, ...]:
        """The coordinates of the frontier hashes (equal to ``root_coords(size)``)."""
        return tuple(c for c, _ in self._nodes)

    def root(self) -> bytes:
        """Return the root hash of the current tree."""
        if not self._nodes:
            return EMPTY_ROOT
        return _fold_right([h for _, h in self._nodes])

    def append(self, leaf_hash: bytes) -> list[tuple[Coord, bytes]]:
        """Add one leaf; return every newly completed subtree, the leaf itself first."""
        _require_hash(leaf_hash)
        coord: Coord = (0, self._size)
        h = leaf_hash
        created = [(coord, h)]
        while self._nodes and self._nodes[-1][0][0] == coord[0]:
            (level, index), left = self._nodes.pop()
            coord, h = (level + 1, index >> 1), node_hash(left, h)
            created.append((coord, h))
        self._nodes.append((coord, h))
        self._size += 1
        return created

    def extend(self, leaf_hashes: Iterable[bytes]) -> list[tuple[Coord, bytes]]:
        """Append several leaves; return all subtrees they complete, in order."""
        created: list[tuple[Coord, bytes]] = []
        for h in leaf_hashes:
            created.extend(self.append(h))
        return created

    def copy(self) -> Frontier:
        """Return an independent frontier with the same state."""
        return Frontier(self._size, self.hashes)

    def __repr__(self) -> str:
        return f"Frontier(size={self._size}, root={self.root().hex()})"


def _require_hash(h: bytes) -> None:
    if len(h) != HASH_SIZE:
        raise ValueError(f"a Merkle hash is {HASH_SIZE} bytes, not {len(h)}")
