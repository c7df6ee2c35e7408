"""Tests for the chunked AES-256-GCM document stream."""

from __future__ import annotations

import itertools
import os
import tracemalloc
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.documents.stream_aead import (
    DEFAULT_SEGMENT_SIZE,
    HEADER_SIZE,
    MAGIC,
    TAG_SIZE,
    DecryptionError,
    RangeNotSatisfiable,
    SegmentDecryptor,
    StreamDecryptor,
    StreamEncryptor,
    StreamHeader,
    ciphertext_size,
    decrypt_bytes,
    decrypt_segments,
    encrypt_bytes,
    parse_header,
    plaintext_size,
    segment_count,
    segment_span,
)
from gateway.errors import SekishoError

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
AD = b"doc-1\x00v1\x00SECRET"
S = 16
SEALED = S + TAG_SIZE


def sizes_around_boundaries(seg: int) -> list[int]:
    """Plaintext sizes at and around segment boundaries."""
    return sorted(
        {0, 1, seg - 1, seg, seg + 1, 2 * seg - 1, 2 * seg, 2 * seg + 1, 3 * seg, 5 * seg + 3}
    )


def pieces(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    """Split ``data`` at the given (unsorted, possibly repeated) positions."""
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    for a, b in itertools.pairwise(bounds):
        yield data[a:b]


def encrypt_chunked(plaintext: bytes, cuts: list[int], seg: int = S) -> bytes:
    enc = StreamEncryptor(KEY, AD, seg)
    out = [enc.header()]
    out += [enc.update(p) for p in pieces(plaintext, cuts)]
    return b"".join([*out, enc.finalize()])


def decrypt_chunked(ciphertext: bytes, cuts: list[int], ad: bytes = AD, key: bytes = KEY) -> bytes:
    dec = StreamDecryptor(key, ad)
    out = [dec.update(p) for p in pieces(ciphertext, cuts)]
    return b"".join([*out, dec.finalize()])


def segments_of(ciphertext: bytes) -> tuple[bytes, list[bytes]]:
    """Header and sealed segments of a stream with segment size S."""
    body = ciphertext[HEADER_SIZE:]
    return ciphertext[:HEADER_SIZE], [body[i : i + SEALED] for i in range(0, len(body), SEALED)]


# --- round trips -----------------------------------------------------------


@pytest.mark.parametrize("seg", [16, 17, 64])
def test_round_trip_around_segment_boundaries(seg: int) -> None:
    for size in sizes_around_boundaries(seg):
        plaintext = os.urandom(size)
        ct = encrypt_bytes(KEY, AD, plaintext, seg)
        assert len(ct) == ciphertext_size(size, seg)
        assert plaintext_size(len(ct), seg) == size
        assert len(ct) == HEADER_SIZE + size + TAG_SIZE * segment_count(size, seg)
        assert decrypt_bytes(KEY, AD, ct) == plaintext


def test_empty_plaintext_is_one_empty_last_segment() -> None:
    ct = encrypt_bytes(KEY, AD, b"", S)
    assert len(ct) == HEADER_SIZE + TAG_SIZE
    assert decrypt_bytes(KEY, AD, ct) == b""


def test_default_segment_size_round_trip() -> None:
    plaintext = os.urandom(3 * DEFAULT_SEGMENT_SIZE + 5)
    ct = encrypt_bytes(KEY, AD, plaintext)
    assert parse_header(ct).segment_size == DEFAULT_SEGMENT_SIZE
    assert decrypt_bytes(KEY, AD, ct) == plaintext


@settings(max_examples=150, deadline=None)
@given(
    plaintext=st.binary(max_size=6 * S + 3),
    enc_cuts=st.lists(st.integers(min_value=0), max_size=8),
    dec_cuts=st.lists(st.integers(min_value=0), max_size=8),
    seg=st.sampled_from([16, 17, 31, 32]),
)
def test_round_trip_with_arbitrary_chunking(
    plaintext: bytes, enc_cuts: list[int], dec_cuts: list[int], seg: int
) -> None:
    ct = encrypt_chunked(plaintext, enc_cuts, seg)
    assert ct == encrypt_bytes_with_prefix(plaintext, seg, parse_header(ct).nonce_prefix)
    assert decrypt_chunked(ct, dec_cuts) == plaintext


def encrypt_bytes_with_prefix(plaintext: bytes, seg: int, prefix: bytes) -> bytes:
    enc = StreamEncryptor(KEY, AD, seg, nonce_prefix=prefix)
    return enc.header() + enc.update(plaintext) + enc.finalize()


def test_header_layout() -> None:
    enc = StreamEncryptor(KEY, AD, 4096, nonce_prefix=b"ABCDEFG")
    header = enc.header()
    assert header == MAGIC + b"\x01" + (4096).to_bytes(4, "big") + b"ABCDEFG"
    assert parse_header(header) == StreamHeader(4096, b"ABCDEFG")


def test_different_documents_get_different_nonce_prefixes() -> None:
    prefixes = {StreamEncryptor(KEY, AD).header()[9:] for _ in range(200)}
    assert len(prefixes) == 200


# --- random access ---------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(), size=st.integers(min_value=1, max_value=7 * S), seg=st.sampled_from([16, 23])
)
def test_range_decrypt_returns_exact_bytes(data: st.DataObject, size: int, seg: int) -> None:
    plaintext = bytes(i % 251 for i in range(size))
    ct = encrypt_bytes(KEY, AD, plaintext, seg)
    start = data.draw(st.integers(min_value=0, max_value=size - 1))
    end = data.draw(st.integers(min_value=start, max_value=size - 1))
    span = segment_span(start, end, plaintext_size(len(ct), seg), seg)
    run = ct[span.ciphertext_offset : span.ciphertext_offset + span.ciphertext_length]
    total = segment_count(size, seg)
    out = decrypt_segments(KEY, AD, ct[:HEADER_SIZE], span.first_segment, run, total)
    assert out[span.skip : span.skip + end - start + 1] == plaintext[start : end + 1]
    assert len(out) - span.skip >= end - start + 1
    assert span.last_segment == end // seg


@settings(max_examples=50, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0), max_size=6), first=st.integers(0, 4))
def test_segment_decryptor_accepts_any_chunking(cuts: list[int], first: int) -> None:
    plaintext = os.urandom(4 * S + 7)
    ct = encrypt_bytes(KEY, AD, plaintext, S)
    header = parse_header(ct)
    dec = SegmentDecryptor(KEY, AD, header, first, 5)
    run = ct[HEADER_SIZE + first * SEALED :]
    out = b"".join([*(dec.update(p) for p in pieces(run, cuts)), dec.finalize()])
    assert out == plaintext[first * S :]


def test_segment_span_rejects_out_of_range() -> None:
    for start, end, size in [(0, 0, 0), (5, 4, 10), (-1, 3, 10), (0, 10, 10)]:
        with pytest.raises(RangeNotSatisfiable):
            segment_span(start, end, size, S)


def test_range_decrypt_with_wrong_index_or_last_flag_fails() -> None:
    ct = encrypt_bytes(KEY, AD, os.urandom(3 * S), S)
    header, segs = segments_of(ct)
    with pytest.raises(DecryptionError):
        decrypt_segments(KEY, AD, header, 0, segs[1], 3)
    with pytest.raises(DecryptionError):
        decrypt_segments(KEY, AD, header, 1, segs[1], 2)
    with pytest.raises(DecryptionError):
        decrypt_segments(KEY, AD, header, 2, segs[2][:-1], 3)
    with pytest.raises(DecryptionError):
        decrypt_segments(KEY, AD, header, 1, segs[1][:-1], 3)
    with pytest.raises(DecryptionError):
        decrypt_segments(KEY, AD, header, 2, segs[2] + b"x", 3)
    with pytest.raises(DecryptionError):
        decrypt_segments(KEY, AD, header, 1, b"", 3)
    assert decrypt_segments(KEY, AD, header, 1, segs[1], 3) == decrypt_bytes(KEY, AD, ct)[S : 2 * S]


def test_plaintext_size_rejects_impossible_sizes() -> None:
    for bad in [0, HEADER_SIZE, HEADER_SIZE + TAG_SIZE - 1, HEADER_SIZE + SEALED + TAG_SIZE]:
        with pytest.raises(DecryptionError):
            plaintext_size(bad, S)


# --- tampering ---------------------------------------------------------------


def three_segment_stream() -> bytes:
    return encrypt_bytes(KEY, AD, os.urandom(2 * S + 5), S)


def assert_rejected(ciphertext: bytes, ad: bytes = AD, key: bytes = KEY) -> None:
    with pytest.raises(DecryptionError) as info:
        decrypt_bytes(key, ad, ciphertext)
    assert info.value.code == "integrity_failure"
    with pytest.raises(DecryptionError):
        decrypt_chunked(ciphertext, [1, 7, 40], ad, key)


def test_every_truncation_is_rejected() -> None:
    ct = three_segment_stream()
    for cut in range(len(ct)):
        assert_rejected(ct[:cut])


def test_dropping_the_last_segment_is_rejected() -> None:
    for size in (2 * S, 2 * S + 1):
        header, segs = segments_of(encrypt_bytes(KEY, AD, os.urandom(size), S))
        assert_rejected(header + b"".join(segs[:-1]))


def test_reordered_segments_are_rejected() -> None:
    header, segs = segments_of(encrypt_bytes(KEY, AD, os.urandom(3 * S), S))
    assert_rejected(header + segs[1] + segs[0] + segs[2])
    assert_rejected(header + segs[0] + segs[2] + segs[1])


def test_spliced_segments_and_headers_are_rejected() -> None:
    header_a, segs_a = segments_of(three_segment_stream())
    header_b, segs_b = segments_of(three_segment_stream())
    assert_rejected(header_a + segs_a[0] + segs_b[1] + segs_a[2])
    assert_rejected(header_b + b"".join(segs_a))
    assert_rejected(header_a + segs_a[0] + segs_a[1] + segs_b[2])


def test_changed_associated_data_or_key_is_rejected() -> None:
    ct = three_segment_stream()
    assert_rejected(ct, ad=b"doc-1\x00v1\x00TOP SECRET")
    assert_rejected(ct, ad=b"doc-2\x00v1\x00SECRET")
    assert_rejected(ct, ad=b"")
    assert_rejected(ct, key=OTHER_KEY)


def test_every_flipped_byte_is_rejected() -> None:
    ct = three_segment_stream()
    for i in range(len(ct)):
        for mask in (0x01, 0x80):
            tampered = bytearray(ct)
            tampered[i] ^= mask
            assert_rejected(bytes(tampered))


def test_trailing_data_is_rejected() -> None:
    for size in (0, S, 2 * S + 5):
        ct = encrypt_bytes(KEY, AD, os.urandom(size), S)
        _, segs = segments_of(ct)
        assert_rejected(ct + b"\x00")
        assert_rejected(ct + segs[-1])
        assert_rejected(ct + os.urandom(SEALED * 3))
        assert_rejected(ct + encrypt_bytes(KEY, AD, b"more", S)[HEADER_SIZE:])


def test_malformed_headers_are_rejected() -> None:
    ct = three_segment_stream()
    for bad in (b"SKS2" + ct[4:], ct[:4] + b"\x02" + ct[5:], ct[:5] + b"\x00\x00\x00\x01" + ct[9:]):
        assert_rejected(bad)
    with pytest.raises(DecryptionError):
        parse_header(ct[: HEADER_SIZE - 1])


def test_decryption_error_is_a_sekisho_error() -> None:
    assert issubclass(DecryptionError, SekishoError)
    assert DecryptionError("x").code == "integrity_failure"


def test_misuse_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        StreamEncryptor(KEY[:16], AD)
    with pytest.raises(ValueError, match="segment size"):
        StreamEncryptor(KEY, AD, 8)
    with pytest.raises(ValueError, match="nonce prefix"):
        StreamEncryptor(KEY, AD, S, nonce_prefix=b"short")
    enc = StreamEncryptor(KEY, AD, S)
    enc.finalize()
    with pytest.raises(RuntimeError):
        enc.update(b"x")
    dec = StreamDecryptor(KEY, AD)
    with pytest.raises(DecryptionError):
        dec.finalize()
    with pytest.raises(RuntimeError):
        dec.update(b"x")


# --- memory --------------------------------------------------------------------


def test_streaming_64_mib_keeps_memory_flat() -> None:
    piece = os.urandom(1024 * 1024)
    seg = DEFAULT_SEGMENT_SIZE
    bound = len(piece) + seg + TAG_SIZE * (len(piece) // seg + 1)
    enc = StreamEncryptor(KEY, AD)
    dec = StreamDecryptor(KEY, AD)
    total_plain = 0
    tracemalloc.start()
    try:
        dec.update(enc.header())
        for _ in range(64):
            sealed = enc.update(piece)
            assert len(sealed) <= bound
            opened = dec.update(sealed)
            assert len(opened) <= bound
            total_plain += len(opened)
        opened = dec.update(enc.finalize()) + dec.finalize()
        total_plain += len(opened)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total_plain == 64 * len(piece)
    assert peak < 16 * len(piece)
