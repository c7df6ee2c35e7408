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

import hashlib
from collections.abc import Sequence

from gateway.documents.stream_aead import HEADER_SIZE, TAG_SIZE, DecryptionError
from gateway.tlog.merkle import HASH_SIZE, leaf_hash, root_from_leaves

_LEAF_PREFIX = b"\x00"  # RFC 6962 leaf hashes: SHA-256(0x00 || piece)


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

    ``update`` raises AnchorMismatch as soon as a completed piece differs; the
    caller (the blob store's ``on_chunk``) raises it before the chunk holding the
    rest of that piece is handed on, so the piece is never decrypted.
    """

    def __init__(
        self,
        leaves: Sequence[bytes],
        segment_size: int,
        stream_size: int,
        first: int,
        last: int,
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

    def update(self, data: bytes) -> None:
        """Feed the next bytes of the run.

        A piece that lies whole inside ``data`` is hashed in place (no copy);
        only a piece split across calls is gathered in a buffer.
        """
        view = memoryview(data)
        while view:
            if self._index > self._last:
                raise AnchorMismatch("the stored ciphertext runs past its anchored end")
            need = self._need
            if not self._buffer and len(view) >= need:
                self._check(view[:need])
                view = view[need:]
                continue
            take = min(self._need - len(self._buffer), len(view))
            self._buffer += view[:take]
            view = view[take:]
            if len(self._buffer) == self._need:
                self._check(self._buffer)
                self._buffer.clear()

    def _check(self, piece: bytes | bytearray | memoryview) -> None:
        digest = hashlib.sha256(_LEAF_PREFIX)
        digest.update(piece)  # releases the GIL for pieces of 2 KiB and more
        if digest.digest() != self._leaves[self._index]:
            what = "header" if self._index == 0 else f"segment {self._index - 1}"
            raise AnchorMismatch(f"the stored ciphertext's {what} does not match its anchor")
        self._index += 1
        if self._index <= self._last:
            self._need = piece_bounds(self._index, self._segment_size, self._stream_size)[1]

    def finish(self) -> None:
        """Every piece of the run arrived whole."""
        if self._index <= self._last:
            raise AnchorMismatch("the stored ciphertext ends before its anchored end")
