"""The filesystem blob store: whole and ranged reads, small (on the event loop) and large."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.documents.blobstore import INLINE_READ_MAX, READ_CHUNK, FilesystemBlobStore
from gateway.errors import NotFound

SIZES = [0, 1, 4096, INLINE_READ_MAX, INLINE_READ_MAX + 1, 2 * READ_CHUNK + 5]


async def stored(store: FilesystemBlobStore, data: bytes) -> str:
    writer = await store.create()
    await writer.write(data)
    return await writer.commit()


async def read_all(
    store: FilesystemBlobStore,
    key: str,
    offset: int = 0,
    length: int | None = None,
    *,
    on_chunk: Callable[[bytes], object] | None = None,
    expected_size: int | None = None,
) -> bytes:
    blob = store.read(key, offset, length, on_chunk=on_chunk, expected_size=expected_size)
    return b"".join([chunk async for chunk in blob])


@pytest.mark.parametrize("size", SIZES)
async def test_whole_reads_return_every_byte_and_feed_the_hash(tmp_path: Path, size: int) -> None:
    store = FilesystemBlobStore(tmp_path)
    data = os.urandom(size)
    key = await stored(store, data)
    digest = hashlib.sha256()
    assert await read_all(store, key, on_chunk=digest.update, expected_size=size) == data
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert await read_all(store, key) == data


@pytest.mark.parametrize("size", [100, INLINE_READ_MAX + 100, READ_CHUNK + 100])
async def test_ranges(tmp_path: Path, size: int) -> None:
    store = FilesystemBlobStore(tmp_path)
    data = os.urandom(size)
    key = await stored(store, data)
    assert await read_all(store, key, offset=10, length=50) == data[10:60]
    assert await read_all(store, key, offset=size - 90, length=90) == data[-90:]


async def test_a_wrong_size_hint_never_shortens_the_read(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    data = os.urandom(3 * INLINE_READ_MAX)
    key = await stored(store, data)
    assert await read_all(store, key, expected_size=16) == data


@pytest.mark.parametrize("expected_size", [4096, 4 * READ_CHUNK])
async def test_a_missing_blob_is_not_found(tmp_path: Path, expected_size: int) -> None:
    store = FilesystemBlobStore(tmp_path)
    key = await stored(store, b"x" * 10)
    store.path_for(key).unlink()
    with pytest.raises(NotFound):
        await read_all(store, key, expected_size=expected_size)
