"""Chunked AES-256-GCM for document payloads (a STREAM construction).

A stream is a 16-byte header followed by one or more sealed segments.

Header (all integers big-endian)::

    offset  size  field
    0       4     magic b"SKS1"
    4       1     version, 1
    5       4     segment size S: plaintext bytes per full segment,
                  MIN_SEGMENT_SIZE (16) .. MAX_SEGMENT_SIZE (16 MiB)
    9       7     nonce prefix, random per stream

Segment ``i`` (counting from 0) is ``AES-256-GCM(key, nonce_i, plaintext_i, ad)``,
that is its ciphertext followed by the 16-byte tag, where::

    nonce_i = nonce_prefix (7) || uint32_be(i) (4) || last (1: 0x01 on the final segment, else 0x00)
    ad      = header (16 bytes, exactly as stored) || caller associated data

Every segment but the last holds exactly S plaintext bytes; the last holds 1..S,
or 0 only when the whole plaintext is empty (a stream always has a segment). So
P plaintext bytes give ``max(1, ceil(P / S))`` segments and a stream of
``16 + P + 16 * segments`` bytes, and a stream holds at most 2**32 segments.

What this detects: a different key or associated data (relabelling), any change
to the header or a segment, a dropped final segment or a cut anywhere
(truncation), swapped segments (reordering), a segment or header taken from
another stream (splicing: its nonce prefix differs), and anything after the
final segment (appending).

Nonce prefixes are 56 random bits, so under one key the chance of two streams
sharing a prefix is about ``q**2 / 2**57`` for ``q`` streams: use a fresh data
key per document version and the question does not arise.

Decryption releases a segment's plaintext only after its tag has verified, but
a stream is only known to be complete when ``finalize()`` returns: a caller
streaming plaintext out must abort (not end cleanly) when it raises.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import BrokenStream, SekishoError

MAGIC = b"SKS1"
VERSION = 1
HEADER_SIZE = 16
NONCE_PREFIX_SIZE = 7
TAG_SIZE = 16
KEY_SIZE = 32
DEFAULT_SEGMENT_SIZE = 64 * 1024
MIN_SEGMENT_SIZE = 16
MAX_SEGMENT_SIZE = 16 * 1024 * 1024
MAX_SEGMENTS = 2**32

_HEADER = struct.Struct(">4sBI7s")
_NOT_LAST = b"\x00"
_LAST = b"\x01"


class DecryptionError(BrokenStream):
    """A stream failed authentication, was cut short, or has trailing data.

    Stored ciphertext that does not verify is a server-side integrity failure,
    not a client mistake: the gateway refuses to serve it (503) and raises an alert.
    """

    status = 503
    code = "integrity_failure"


class RangeNotSatisfiable(SekishoError):
    """The requested plaintext byte range lies outside the document."""

    status = 416
    code = "range_not_satisfiable"


def _check_segment_size(segment_size: int) -> None:
    """Raise ValueError unless the segment size is within the supported bounds."""
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise ValueError(
            f"segment size must be {MIN_SEGMENT_SIZE}..{MAX_SEGMENT_SIZE}, not {segment_size}"
        )


def _check_key(key: bytes) -> None:
    """Raise ValueError unless the key is a 256-bit AES key."""
    if len(key) != KEY_SIZE:
        raise ValueError(f"data key must be {KEY_SIZE} bytes, not {len(key)}")


@dataclass(frozen=True)
class StreamHeader:
    """The parsed 16-byte stream header."""

    segment_size: int
    nonce_prefix: bytes
    version: int = VERSION

    def __post_init__(self) -> None:
        _check_segment_size(self.segment_size)
        if len(self.nonce_prefix) != NONCE_PREFIX_SIZE:
            raise ValueError(f"nonce prefix must be {NONCE_PREFIX_SIZE} bytes")
        if self.version != VERSION:
            raise ValueError(f"unsupported stream version {self.version}")

    def to_bytes(self) -> bytes:
        """Serialize to the on-disk header."""
        return _HEADER.pack(MAGIC, self.version, self.segment_size, self.nonce_prefix)


def parse_header(data: bytes) -> StreamHeader:
    """Parse the header from the first HEADER_SIZE bytes of ``data``."""
    if len(data) < HEADER_SIZE:
        raise DecryptionError("encrypted document is truncated: incomplete header")
    magic, version, segment_size, prefix = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise DecryptionError("encrypted document has an unknown format")
    try:
        return StreamHeader(segment_size, prefix, version)
    except ValueError as exc:
        raise DecryptionError(f"encrypted document has an invalid header: {exc}") from None


def _as_header(header: StreamHeader | bytes) -> StreamHeader:
    """Accept a parsed header or its serialized form."""
    if isinstance(header, StreamHeader):
        return header
    if len(header) != HEADER_SIZE:
        raise DecryptionError("encrypted document header has the wrong length")
    return parse_header(header)


class _SegmentCipher:
    """Seals and opens single segments of one stream."""

    def __init__(self, key: bytes, associated_data: bytes, header: StreamHeader) -> None:
        _check_key(key)
        self._aead = AESGCM(key)
        self._ad = header.to_bytes() + bytes(associated_data)
        self._prefix = header.nonce_prefix

    def _nonce(self, index: int, last: bool) -> bytes:
        return self._prefix + index.to_bytes(4, "big") + (_LAST if last else _NOT_LAST)

    def seal(self, index: int, plaintext: bytes | bytearray, last: bool) -> bytes:
        """Encrypt segment ``index``."""
        if index >= MAX_SEGMENTS:
            raise ValueError("stream exceeds the maximum number of segments")
        return self._aead.encrypt(self._nonce(index, last), plaintext, self._ad)

    def open(self, index: int, ciphertext: bytes | bytearray | memoryview, last: bool) -> bytes:
        """Decrypt and authenticate segment ``index``."""
        if index >= MAX_SEGMENTS or len(ciphertext) < TAG_SIZE:
            raise DecryptionError("encrypted document is malformed")
        try:
            return self._aead.decrypt(self._nonce(index, last), ciphertext, self._ad)
        except InvalidTag:
            raise DecryptionError(
                "encrypted document failed its integrity check "
                "(tampered, truncated, reordered or bound to a different label)"
            ) from None


class StreamEncryptor:
    """Encrypts a plaintext stream; write ``header()`` first, then every output."""

    def __init__(
        self,
        key: bytes,
        associated_data: bytes,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        nonce_prefix: bytes | None = None,
    ) -> None:
        """``nonce_prefix`` is for tests only: never reuse one under the same key."""
        prefix = os.urandom(NONCE_PREFIX_SIZE) if nonce_prefix is None else nonce_prefix
        self._header = StreamHeader(segment_size, prefix)
        self._cipher = _SegmentCipher(key, associated_data, self._header)
        self._buffer = bytearray()
        self._index = 0
        self._finished = False

    def header(self) -> bytes:
        """The stream header, which precedes the first segment."""
        return self._header.to_bytes()

    def update(self, data: bytes) -> bytes:
        """Buffer ``data``; return the segments now known not to be the last."""
        self._check_open()
        self._buffer += data
        size = self._header.segment_size
        ready = max(0, (len(self._buffer) - 1) // size)
        buf = self._buffer
        out = [self._seal(buf[i * size : (i + 1) * size], last=False) for i in range(ready)]
        del buf[: ready * size]
        return b"".join(out)

    def finalize(self) -> bytes:
        """Seal and return the final segment; the encryptor is then spent."""
        self._check_open()
        self._finished = True
        out = self._seal(bytes(self._buffer), last=True)
        self._buffer.clear()
        return out

    def _seal(self, plaintext: bytes | bytearray, last: bool) -> bytes:
        out = self._cipher.seal(self._index, plaintext, last)
        self._index += 1
        return out

    def _check_open(self) -> None:
        if self._finished:
            raise RuntimeError("StreamEncryptor used after finalize()")


class SegmentDecryptor:
    """Decrypts a contiguous run of segments starting at any index (for Range reads).

    ``total_segments`` is the number of segments in the whole stream, so the
    final one is opened with the last flag. Feed the run's ciphertext in any
    chunking; ``finalize()`` checks the run ended on a segment boundary.
    """

    def __init__(
        self,
        key: bytes,
        associated_data: bytes,
        header: StreamHeader | bytes,
        first_segment_index: int,
        total_segments: int,
    ) -> None:
        parsed = _as_header(header)
        if not 0 <= first_segment_index < total_segments <= MAX_SEGMENTS:
            raise ValueError("segment index out of range")
        self._cipher = _SegmentCipher(key, associated_data, parsed)
        self._sealed_size = parsed.segment_size + TAG_SIZE
        self._index = first_segment_index
        self._first = first_segment_index
        self._total = total_segments
        self._buffer = bytearray()
        self._finished = False

    def update(self, data: bytes) -> bytes:
        """Buffer ``data``; return plaintext of the segments now complete."""
        _check_open(self._finished)
        self._buffer += data
        out: list[bytes] = []
        consumed = 0
        buf = self._buffer
        while len(buf) - consumed >= self._sealed_size and self._index < self._total - 1:
            chunk = buf[consumed : consumed + self._sealed_size]
            out.append(self._cipher.open(self._index, chunk, last=False))
            consumed += self._sealed_size
            self._index += 1
        del self._buffer[:consumed]
        if len(self._buffer) > self._sealed_size:
            raise DecryptionError("encrypted document has data after its final segment")
        return b"".join(out)

    def finalize(self) -> bytes:
        """Open the final segment if the run includes it; check nothing is left over."""
        _check_open(self._finished)
        self._finished = True
        if not self._buffer:
            if self._index == self._first:
                raise DecryptionError("encrypted document range is empty")
            return b""
        if self._index != self._total - 1:
            raise DecryptionError("encrypted document is truncated mid-segment")
        out = self._cipher.open(self._index, bytes(self._buffer), last=True)
        self._buffer.clear()
        return out


class StreamDecryptor:
    """Decrypts a whole stream (header included) fed in any chunking."""

    def __init__(self, key: bytes, associated_data: bytes) -> None:
        _check_key(key)
        self._key = key
        self._ad = bytes(associated_data)
        self._cipher: _SegmentCipher | None = None
        self._sealed_size = 0
        self._buffer = bytearray()
        self._index = 0
        self._finished = False

    def update(self, data: bytes) -> bytes:
        """Return plaintext of the segments known not to be the last; keep the rest.

        Whole segments are opened straight from ``data`` (no copy); only a
        segment split across calls, and the possibly-final one, are buffered.
        """
        _check_open(self._finished)
        if self._cipher is None:
            self._buffer += data
            if self._start() is None:
                return b""
            data, self._buffer = bytes(self._buffer), bytearray()
        cipher, sealed = self._cipher, self._sealed_size
        assert cipher is not None
        view = memoryview(data)
        out: list[bytes] = []
        if self._buffer:
            need = sealed - len(self._buffer)
            if len(view) <= need:  # the buffered segment may still be the last one
                self._buffer += view
                return b""
            self._buffer += view[:need]
            view = view[need:]
            out.append(cipher.open(self._index, self._buffer, last=False))
            self._index += 1
            self._buffer = bytearray()
        position = 0
        while len(view) - position > sealed:
            out.append(cipher.open(self._index, view[position : position + sealed], last=False))
            position += sealed
            self._index += 1
        self._buffer += view[position:]
        return out[0] if len(out) == 1 else b"".join(out)

    def finalize(self) -> bytes:
        """Open the final segment; raise DecryptionError if the stream is incomplete."""
        _check_open(self._finished)
        self._finished = True
        cipher = self._start()
        if cipher is None:
            raise DecryptionError("encrypted document is truncated: incomplete header")
        if self._index > 0 and len(self._buffer) <= TAG_SIZE:
            raise DecryptionError("encrypted document is truncated: final segment missing")
        out = cipher.open(self._index, bytes(self._buffer), last=True)
        self._buffer.clear()
        return out

    def _start(self) -> _SegmentCipher | None:
        """Parse the header once enough bytes have arrived."""
        if self._cipher is None and len(self._buffer) >= HEADER_SIZE:
            header = parse_header(bytes(self._buffer[:HEADER_SIZE]))
            del self._buffer[:HEADER_SIZE]
            self._cipher = _SegmentCipher(self._key, self._ad, header)
            self._sealed_size = header.segment_size + TAG_SIZE
        return self._cipher


def _check_open(finished: bool) -> None:
    if finished:
        raise RuntimeError("decryptor used after finalize()")


def segment_count(plaintext_size: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    """Number of segments a plaintext of this size is sealed into."""
    if plaintext_size < 0:
        raise ValueError("plaintext size must not be negative")
    _check_segment_size(segment_size)
    return max(1, -(-plaintext_size // segment_size))


def ciphertext_size(plaintext_size: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    """Total stream size (header included) for a plaintext of this size."""
    segments = segment_count(plaintext_size, segment_size)
    return HEADER_SIZE + plaintext_size + segments * TAG_SIZE


def plaintext_size(ciphertext_size: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    """Plaintext size of a stream of this total size; DecryptionError if none fits."""
    _check_segment_size(segment_size)
    body = ciphertext_size - HEADER_SIZE
    if body < TAG_SIZE:
        raise DecryptionError("encrypted document is truncated")
    sealed = segment_size + TAG_SIZE
    segments = -(-body // sealed)
    last = body - (segments - 1) * sealed
    if segments > MAX_SEGMENTS or (segments > 1 and last <= TAG_SIZE):
        raise DecryptionError("encrypted document has an impossible size")
    return body - segments * TAG_SIZE


class SegmentSpan(NamedTuple):
    """Where a plaintext byte range lives in the stream.

    ``ciphertext_offset`` is absolute (the header counts), and ``skip`` is the
    number of plaintext bytes to drop from the start of the first segment.
    """

    first_segment: int
    last_segment: int
    ciphertext_offset: int
    ciphertext_length: int
    skip: int


def segment_span(
    start: int,
    end_inclusive: int,
    plaintext_size: int,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> SegmentSpan:
    """Locate the segments holding plaintext bytes ``start..end_inclusive``."""
    _check_segment_size(segment_size)
    if not 0 <= start <= end_inclusive < plaintext_size:
        raise RangeNotSatisfiable(
            f"range {start}-{end_inclusive} is outside a document of {plaintext_size} bytes"
        )
    sealed = segment_size + TAG_SIZE
    first, last = start // segment_size, end_inclusive // segment_size
    last_plain = min(segment_size, plaintext_size - last * segment_size)
    offset = HEADER_SIZE + first * sealed
    length = (last - first) * sealed + last_plain + TAG_SIZE
    return SegmentSpan(first, last, offset, length, start - first * segment_size)


def decrypt_segments(
    key: bytes,
    associated_data: bytes,
    header: StreamHeader | bytes,
    first_segment_index: int,
    ciphertext: bytes,
    total_segments: int,
) -> bytes:
    """Decrypt a contiguous run of whole segments starting at ``first_segment_index``."""
    decryptor = SegmentDecryptor(key, associated_data, header, first_segment_index, total_segments)
    return decryptor.update(ciphertext) + decryptor.finalize()


def encrypt_bytes(
    key: bytes,
    associated_data: bytes,
    plaintext: bytes,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> bytes:
    """Encrypt a whole plaintext into a stream (header included)."""
    encryptor = StreamEncryptor(key, associated_data, segment_size)
    return encryptor.header() + encryptor.update(plaintext) + encryptor.finalize()


def decrypt_bytes(key: bytes, associated_data: bytes, ciphertext: bytes) -> bytes:
    """Decrypt a whole stream (header included)."""
    decryptor = StreamDecryptor(key, associated_data)
    return decryptor.update(ciphertext) + decryptor.finalize()
