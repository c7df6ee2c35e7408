"""Serving a version's plaintext: whole or a byte range, decrypted while streaming.

Before the first byte leaves, the data key is unwrapped and the first chunk is
decrypted, so a changed wrapped key or a relabelled row is refused cleanly.

Every version stored with a segment anchor (gateway/documents/segment_anchor.py)
has each piece of its ciphertext (header, sealed segments) checked against the
anchored Merkle leaves as it is read, before it is decrypted: no byte of a piece
the anchor does not vouch for is sent, in whole downloads and ranges alike.
Versions stored before segment anchors are checked the old way: the whole
ciphertext's SHA-256 against the anchor, with the last chunk held back until it
passes (so up to 1 MiB is fully verified first), and ranges by AEAD only.

On any failure the stream is aborted (the client sees a truncated response)
and an alert entry is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from gateway.auth.identity import Identity
from gateway.documents.blobstore import READ_CHUNK
from gateway.documents.context import DocumentContext
from gateway.documents.envelope import associated_data
from gateway.documents.models import Document, DocumentVersion, SegmentAnchor
from gateway.documents.piece_hashing import PieceHashHelpers
from gateway.documents.segment_anchor import (
    AnchorMismatch,
    PieceVerifier,
    root_hex,
    unpack_leaves,
)
from gateway.documents.stream_aead import (
    HEADER_SIZE,
    DecryptionError,
    RangeNotSatisfiable,
    SegmentDecryptor,
    StreamDecryptor,
    segment_count,
    segment_span,
)
from gateway.errors import SekishoError
from gateway.ttlcache import TtlCache
from hsm import HsmError

HELPED_RUN = 4 * READ_CHUNK
"""Runs of ciphertext at least this long are hashed with a helper when one is idle."""
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
_MAX_POSITION_DIGITS = 19
"""A longer position is past any document: it saturates instead of reaching ``int()``."""


class Gone(SekishoError):
    """The version was destroyed (its key shredded)."""

    status = 410
    code = "destroyed"


@dataclass
class Content:
    """A response body to stream: 200 for whole, 206 for a range."""

    version: DocumentVersion
    start: int
    end: int  # inclusive
    partial: bool
    body: AsyncIterator[bytes]

    @property
    def length(self) -> int:
        """Bytes in the body."""
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single ``bytes=`` range as (start, end inclusive), None for the whole document."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        raise RangeNotSatisfiable("only one range of the form bytes=START-END is supported")
    first, last = match.group(1), match.group(2)
    if not first:
        suffix = _position(last)
        if suffix == 0:
            raise RangeNotSatisfiable("an empty suffix range selects nothing")
        return max(0, size - suffix), size - 1
    start = _position(first)
    end = min(_position(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(f"range {header.strip()} is outside a {size}-byte document")
    return start, end


def _position(digits: str) -> int:
    """A byte position (ASCII digits); a very long one saturates to 2^63."""
    if len(digits) > _MAX_POSITION_DIGITS:
        return 2**63
    return int(digits)


class DocumentReader:
    """Opens content streams for people allowed to read them."""

    def __init__(self, context: DocumentContext) -> None:
        self._ctx = context
        # a version's leaves never change: keep those of recently read versions
        self._leaf_cache: TtlCache[int, list[bytes]] = TtlCache(3600, size=1024)

    async def open(
        self,
        identity: Identity,
        document: Document,
        row: DocumentVersion,
        range_header: str | None,
    ) -> Content:
        """Check, unwrap and prime the stream; raise before any byte on failure."""
        if row.wrapped_key is None or row.destroyed_at is not None:
            raise Gone("this document version was destroyed")
        wanted = parse_range(range_header, row.size)
        key = await self._unwrap(identity, document.id, row)
        label = self._ctx.pdp.parse(row.label)
        ad = associated_data(document.id, row.version, label)
        if wanted is None:
            stream = self._whole(row, key, ad)
            start, end = 0, row.size - 1
        else:
            start, end = wanted
            stream = self._range(row, key, ad, start, end)
        guarded = self._alerting(identity, document.id, row.version, stream)
        first = await anext(guarded)
        return Content(row, start, end, wanted is not None, _prepend(first, guarded))

    async def _alerting(
        self, identity: Identity, document_id: str, version: int, stream: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        """Pass chunks through; on an integrity failure write one alert and re-raise."""
        try:
            async for chunk in stream:
                yield chunk
        except DecryptionError as exc:
            detail = "ciphertext_anchor" if isinstance(exc, AnchorMismatch) else "aead"
            await self._ctx.recorder.alert(
                identity, alert="integrity", detail=detail, document_id=document_id, version=version
            )
            raise DecryptionError(
                "the stored document failed its integrity check; security officers are alerted"
            ) from None

    async def _unwrap(self, identity: Identity, document_id: str, row: DocumentVersion) -> bytes:
        assert row.wrapped_key is not None
        wrapped = bytes(row.wrapped_key)
        cached = self._ctx.data_keys.get((row.kek_label, wrapped))
        if cached is not None:
            return cached
        try:
            key = await self._ctx.token.unwrap_data_key(row.kek_label, wrapped)
        except HsmError as exc:
            if exc.code != "hsm_operation_failed":
                raise
        else:
            self._ctx.data_keys.put((row.kek_label, wrapped), key)
            return key
        # A KEK rotation may have rewrapped the key since the row was read: read it again.
        fresh = await DocumentVersion.get_or_none(id=row.id)
        if (
            fresh is not None
            and fresh.wrapped_key is not None
            and (fresh.kek_label != row.kek_label or fresh.wrapped_key != row.wrapped_key)
        ):
            row.wrapped_key, row.kek_label = fresh.wrapped_key, fresh.kek_label
            try:
                return await self._ctx.token.unwrap_data_key(
                    fresh.kek_label, bytes(fresh.wrapped_key)
                )
            except HsmError as exc:
                if exc.code != "hsm_operation_failed":
                    raise
        await self._ctx.recorder.alert(
            identity,
            alert="integrity",
            detail="wrapped_key",
            document_id=document_id,
            version=row.version,
        )
        raise DecryptionError(
            "the document's wrapped key does not unwrap; security officers are alerted"
        )

    async def _leaves(self, row: DocumentVersion) -> list[bytes] | None:
        """The version's anchored leaf hashes (cached: they never change), or None if older."""
        cached = self._leaf_cache.get(row.id)
        if cached is not None:
            return cached
        anchor = await SegmentAnchor.get_or_none(version_row=row.id)
        if anchor is None:
            return None
        leaves = unpack_leaves(bytes(anchor.leaves))
        if root_hex(leaves) != anchor.root:
            raise AnchorMismatch("the stored segment hashes do not produce the anchored root")
        self._leaf_cache.put(row.id, leaves)
        return leaves

    async def _whole(self, row: DocumentVersion, key: bytes, ad: bytes) -> AsyncIterator[bytes]:
        leaves = await self._leaves(row)
        if leaves is not None:
            async for chunk in self._whole_anchored(row, key, ad, leaves):
                yield chunk
            return
        decryptor = StreamDecryptor(key, ad)
        digest = hashlib.sha256()
        held = b""
        # the store hashes and decrypts each chunk on its reading thread (hashlib
        # and AES-GCM release the GIL) while this thread sends the one before
        blob = self._ctx.blobs.read(
            row.blob_key,
            on_chunk=digest.update,
            expected_size=row.ciphertext_size,
            transform=decryptor.update,
        )
        async for plain in blob:
            if held:
                yield held
            held = plain
        tail = decryptor.finalize()
        if digest.hexdigest() != row.ciphertext_sha256:
            raise AnchorMismatch("the stored ciphertext does not match its ledger anchor")
        if held or tail:
            yield held + tail

    async def _whole_anchored(
        self, row: DocumentVersion, key: bytes, ad: bytes, leaves: list[bytes]
    ) -> AsyncIterator[bytes]:
        """Every piece checked against its leaf, then decrypted, on the reading thread.

        The loop only sends: a chunk's pieces are verified before the decryptor
        sees the chunk, so no byte of a piece that fails reaches the loop.
        """
        verifier = PieceVerifier(
            leaves,
            row.segment_size,
            row.ciphertext_size,
            0,
            len(leaves) - 1,
            self._helpers_for(row.ciphertext_size),
        )
        decryptor = StreamDecryptor(key, ad)
        blob = self._ctx.blobs.read(
            row.blob_key,
            expected_size=row.ciphertext_size,
            transform=_checked(verifier, decryptor.update),
        )
        try:
            async with contextlib.aclosing(blob):  # stops the reading thread
                async for plain in blob:
                    yield plain
        finally:
            verifier.release()
        verifier.finish()
        tail = decryptor.finalize()
        if tail:
            yield tail

    def _helpers_for(self, size: int) -> PieceHashHelpers | None:
        """Where a run of ``size`` stored bytes may borrow a hashing helper (None if short)."""
        return self._ctx.piece_helpers if size >= HELPED_RUN else None

    async def _range(
        self,
        row: DocumentVersion,
        key: bytes,
        ad: bytes,
        start: int,
        end: int,
    ) -> AsyncIterator[bytes]:
        leaves = await self._leaves(row)
        header = b""
        check_header = None
        if leaves is not None:
            check_header = PieceVerifier(leaves, row.segment_size, row.ciphertext_size, 0, 0)
        async for chunk in self._ctx.blobs.read(
            row.blob_key,
            0,
            HEADER_SIZE,
            on_chunk=None if check_header is None else check_header.update,
        ):
            header += chunk
        if check_header is not None:
            check_header.finish()
        span = segment_span(start, end, row.size, row.segment_size)
        decryptor = SegmentDecryptor(
            key, ad, header, span.first_segment, segment_count(row.size, row.segment_size)
        )
        skip, remaining = span.skip, end - start + 1
        verifier = None
        if leaves is not None:  # pieces are numbered from 1 after the header
            verifier = PieceVerifier(
                leaves,
                row.segment_size,
                row.ciphertext_size,
                span.first_segment + 1,
                span.last_segment + 1,
                self._helpers_for(span.ciphertext_length),
            )
        blob = self._ctx.blobs.read(
            row.blob_key,
            span.ciphertext_offset,
            span.ciphertext_length,
            transform=_checked(verifier, decryptor.update),
        )
        try:
            async with contextlib.aclosing(blob):  # stops the reading thread
                async for plain in blob:
                    out, skip, remaining = _trim(plain, skip, remaining)
                    if out:
                        yield out
        finally:
            if verifier is not None:
                verifier.release()
        if verifier is not None:
            verifier.finish()
        out, _, remaining = _trim(decryptor.finalize(), skip, remaining)
        if out:
            yield out


def _checked(
    verifier: PieceVerifier | None, decrypt: Callable[[bytes], bytes]
) -> Callable[[bytes], bytes]:
    """Check a chunk's pieces against their leaves, then decrypt it (on the reading thread)."""
    if verifier is None:
        return decrypt

    def step(chunk: bytes) -> bytes:
        verifier.update(chunk)  # raises before the decryptor sees a piece that fails
        return decrypt(chunk)

    return step


def _trim(plain: bytes, skip: int, remaining: int) -> tuple[bytes, int, int]:
    if skip:
        dropped = min(skip, len(plain))
        plain, skip = plain[dropped:], skip - dropped
    out = plain[:remaining]
    return out, skip, remaining - len(out)


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk
