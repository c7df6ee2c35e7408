"""The anchor of a version's ciphertext: an RFC 6962 Merkle tree over its stream pieces.

A stored stream is a 16-byte header and sealed segments (gateway.documents.
stream_aead). The pieces, in order, are the header and each sealed segment
(ciphertext and tag); leaf ``i`` is ``SHA-256(0x00 || piece_i)`` and the root is
RFC 6962's Merkle tree hash over the leaves. The ledger anchors the root
(``ciphertext_root`` of ``document.registered``); the leaf hashes are stored
with the version.

Serving checks every piece against its leaf hash as it is read, before the
piece is decrypted, so not one byte of a piece the anchor does not vouch for is
sent, in whole downloads and in ranges alike: a range checks the header and the
segments it covers against the same leaves, whose root is the anchored one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from gateway.documents.piece_hashing import (
    HelperFailed,
    PieceHashHelper,
    PieceHashHelpers,
)
from gateway.documents.stream_aead import HEADER_SIZE, TAG_SIZE, DecryptionError
from gateway.tlog.merkle import HASH_SIZE, leaf_hash, root_from_leaves

HELPER_MIN_PIECES = 4
"""A chunk with fewer whole pieces is hashed here alone: a request costs more than it saves."""


class AnchorMismatch(DecryptionError):
    """Stored ciphertext does not match what the ledger anchored for it."""


def piece_bounds(index: int, segment_size: int, stream_size: int) -> tuple[int, int]:
    """(offset, length) of piece ``index`` (0: the header, 1..: the sealed segments)."""
    if index == 0:
        return 0, HEADER_SIZE
    sealed = segment_size + TAG_SIZE
    offset = HEADER_SIZE + (index - 1) * sealed
    return offset, min(sealed, stream_size - offset)


class PieceHasher:
    """Leaf hashes of a stream written in order (the writer's side)."""

    def __init__(self, segment_size: int) -> None:
        self._sealed = segment_size + TAG_SIZE
        self._buffer = bytearray()
        self._header_seen = False
        self.leaves: list[bytes] = []

    def update(self, data: bytes) -> None:
        """Feed the next stream bytes."""
        self._buffer += data
        if not self._header_seen and len(self._buffer) >= HEADER_SIZE:
            self.leaves.append(leaf_hash(bytes(self._buffer[:HEADER_SIZE])))
            del self._buffer[:HEADER_SIZE]
            self._header_seen = True
        if self._header_seen:
            whole = len(self._buffer) // self._sealed
            for n in range(whole):
                piece = self._buffer[n * self._sealed : (n + 1) * self._sealed]
                self.leaves.append(leaf_hash(bytes(piece)))
            del self._buffer[: whole * self._sealed]

    def finish(self) -> list[bytes]:
        """The leaves, the last (short) segment included."""
        if self._buffer:
            self.leaves.append(leaf_hash(bytes(self._buffer)))
            self._buffer.clear()
        return self.leaves


def pack_leaves(leaves: Sequence[bytes]) -> bytes:
    """The stored form: the leaf hashes concatenated."""
    return b"".join(leaves)


def unpack_leaves(stored: bytes) -> list[bytes]:
    """The leaf hashes of the stored form."""
    if len(stored) % HASH_SIZE:
        raise AnchorMismatch("the stored segment hashes are damaged")
    return [stored[i : i + HASH_SIZE] for i in range(0, len(stored), HASH_SIZE)]


def root_hex(leaves: Sequence[bytes]) -> str:
    """The anchored root of the leaves, in hex."""
    return root_from_leaves(leaves).hex()


class PieceVerifier:
    """Checks a contiguous run of pieces, as their bytes arrive, against the leaf hashes.

    ``update`` raises AnchorMismatch if any piece completed by its bytes differs;
    the caller (the reading thread's ``transform``) raises it before the chunk is
    decrypted, so no byte of a piece that fails is decrypted or sent. A
    helper process borrowed from ``helpers`` (gateway.documents.piece_hashing),
    once one is idle, hashes part of each chunk's whole pieces; the comparison is
    always made here. ``release`` gives the helper back.
    """

    def __init__(
        self,
        leaves: Sequence[bytes],
        segment_size: int,
        stream_size: int,
        first: int,
        last: int,
        helpers: PieceHashHelpers | None = None,
    ) -> None:
        if not 0 <= first <= last < len(leaves):
            raise AnchorMismatch("the stored segment hashes do not cover this stream")
        self._leaves = leaves
        self._segment_size = segment_size
        self._stream_size = stream_size
        self._index = first
        self._last = last
        self._need = piece_bounds(first, segment_size, stream_size)[1]
        self._buffer = bytearray()
        self._helpers = helpers
        self._helper: PieceHashHelper | None = None
        self._lending = threading.Lock()
        self._released = False

    def update(self, data: bytes) -> None:
        """Feed the next bytes of the run.

        A piece that lies whole inside ``data`` is hashed in place (no copy);
        only a piece split across calls is gathered in a buffer. With a helper,
        part of the whole pieces is hashed by it while this thread hashes the rest.
        """
        view = memoryview(data)
        if self._buffer:
            take = min(self._need - len(self._buffer), len(view))
            self._buffer += view[:take]
            view = view[take:]
            if len(self._buffer) < self._need:
                return
            self._compare(leaf_hash(self._buffer))
            self._buffer.clear()
        whole: list[memoryview] = []
        index = self._index
        while view and index <= self._last:
            need = piece_bounds(index, self._segment_size, self._stream_size)[1]
            if len(view) < need:
                break
            whole.append(view[:need])
            view = view[need:]
            index += 1
        self._check_all(whole)
        if view:
            if self._index > self._last:
                raise AnchorMismatch("the stored ciphertext runs past its anchored end")
            self._buffer += view

    def _check_all(self, pieces: list[memoryview]) -> None:
        """Check whole pieces in order; a helper hashes the first ones meanwhile."""
        with self._lending:  # release() waits for a request in flight
            self._check_with_helper(pieces)

    def _check_with_helper(self, pieces: list[memoryview]) -> None:
        theirs = self._helper_share(pieces)
        if theirs:
            assert self._helper is not None
            try:
                self._helper.send(pieces[:theirs])
            except HelperFailed:
                theirs = 0
        my_leaves = [leaf_hash(piece) for piece in pieces[theirs:]]
        if theirs:
            assert self._helper is not None
            try:
                their_leaves = self._helper.receive()
            except HelperFailed:  # hash them here: a download never fails for a helper
                their_leaves = [leaf_hash(piece) for piece in pieces[:theirs]]
            for piece, digest in zip(pieces[:theirs], their_leaves, strict=True):
                if digest != self._leaves[self._index]:
                    digest = leaf_hash(piece)  # a refusal always rests on a hash made here
                self._compare(digest)
        for digest in my_leaves:
            self._compare(digest)

    def _helper_share(self, pieces: list[memoryview]) -> int:
        """How many of ``pieces`` (from the first) a helper hashes: 0 without one."""
        if self._helpers is None or self._released or len(pieces) < HELPER_MIN_PIECES:
            return 0
        if self._helper is None:
            self._helper = self._helpers.lend()
        helper = self._helper
        if helper is None or helper.broken:
            return 0
        count, size = 0, 0
        for piece in pieces[: len(pieces) // 2]:
            if size + len(piece) > helper.capacity:
                break
            count, size = count + 1, size + len(piece)
        return count

    def release(self) -> None:
        """Give the helper back; from now on this verifier hashes alone.

        Safe while the reading thread still runs (a cancelled download): it waits
        for a request in flight, and the thread borrows no helper after it.
        """
        with self._lending:
            self._released = True
            helper, self._helper = self._helper, None
        if helper is not None and self._helpers is not None:
            self._helpers.give_back(helper)

    def _compare(self, digest: bytes) -> None:
        if digest != self._leaves[self._index]:
            what = "header" if self._index == 0 else f"segment {self._index - 1}"
            raise AnchorMismatch(f"the stored ciphertext's {what} does not match its anchor")
        self._index += 1
        if self._index <= self._last:
            self._need = piece_bounds(self._index, self._segment_size, self._stream_size)[1]

    def finish(self) -> None:
        """Every piece of the run arrived whole."""
        if self._index <= self._last:
            raise AnchorMismatch("the stored ciphertext ends before its anchored end")
