"""Blob storage behind an interface; the filesystem store is the default.

Writes are atomic: bytes go to a temporary file in the store, which is fsynced
and renamed into place, and the directory is fsynced. Blob keys are random hex
chosen by the store, never derived from user input, so no path can escape it.
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from gateway.documents.readahead import read_ahead
from gateway.errors import NotFound, SekishoError

READ_CHUNK = 1024 * 1024
INLINE_READ_MAX = 64 * 1024  # reads up to this size skip the worker thread
READ_AHEAD = 3  # chunks a large read may have waiting ahead of the sender


class StorageFull(SekishoError):
    """The blob store has no room left."""

    status = 507
    code = "storage_full"


class BlobWriter(Protocol):
    """An in-progress blob; invisible until committed."""

    async def write(self, data: bytes) -> None:
        """Append bytes."""
        ...

    async def commit(self) -> str:
        """Make the blob durable and visible; returns its key."""
        ...

    async def abort(self) -> None:
        """Discard everything written."""
        ...


class BlobStore(Protocol):
    """Where ciphertext lives."""

    async def create(self) -> BlobWriter:
        """Start a new blob."""
        ...

    def read(
        self,
        key: str,
        offset: int = 0,
        length: int | None = None,
        *,
        on_chunk: Callable[[bytes], object] | None = None,
        expected_size: int | None = None,
        transform: Callable[[bytes], bytes] | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """Stream ``length`` bytes (or to the end) starting at ``offset``.

        ``on_chunk`` (e.g. a hash's ``update``) sees each chunk, in order, on the
        reading thread, before the chunk is yielded. ``transform`` (e.g. check and
        decrypt) then runs on the same thread, in order, and what it returns is
        yielded instead of the chunk (empty results are skipped), so the event
        loop only sends. ``expected_size`` (the blob's size when known) lets a
        store pick how to read; it never limits the read.
        """
        ...

    async def delete(self, key: str) -> None:
        """Remove a blob (missing is fine)."""
        ...

    async def exists(self, key: str) -> bool:
        """True when the blob is present."""
        ...

    def keys_before(self, cutoff: datetime) -> AsyncIterator[str]:
        """Keys of committed blobs last written before ``cutoff`` (for the orphan sweep)."""
        ...


def check_blob_key(key: str) -> None:
    """Blob keys are the store's own 32 hex digits; anything else is a blob that does not exist."""
    if len(key) != 32 or any(c not in "0123456789abcdef" for c in key):
        raise NotFound("no such blob")


class _FileWriter:
    def __init__(self, store: FilesystemBlobStore, temp: Path) -> None:
        self._store = store
        self._temp = temp
        self._handle = open(temp, "wb", buffering=0)  # noqa: SIM115 - closed in commit/abort
        self._pending = bytearray()

    async def write(self, data: bytes) -> None:
        self._pending += data
        if len(self._pending) >= READ_CHUNK:
            await self._flush()

    async def _flush(self) -> None:
        if not self._pending:
            return
        chunk, self._pending = bytes(self._pending), bytearray()
        try:
            await asyncio.to_thread(self._handle.write, chunk)
        except OSError as exc:
            await self.abort()
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFull("the document store is full; nothing was stored") from None
            raise

    async def commit(self) -> str:
        await self._flush()
        key = secrets.token_hex(16)
        final = self._store.path_for(key)
        try:
            await asyncio.to_thread(self._finish, final)
        except OSError as exc:
            await self.abort()
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFull("the document store is full; nothing was stored") from None
            raise
        return key

    def _finish(self, final: Path) -> None:
        os.fsync(self._handle.fileno())
        self._handle.close()
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._temp, final)
        _fsync_dir(final.parent)

    async def abort(self) -> None:
        if not self._handle.closed:
            self._handle.close()
        self._temp.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _RangeReader:
    """Blocking reads of one byte range, for a worker thread (one call at a time)."""

    def __init__(
        self,
        path: Path,
        offset: int,
        length: int | None,
        on_chunk: Callable[[bytes], object] | None,
        transform: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self._path, self._offset, self._remaining = path, offset, length
        self._on_chunk = on_chunk
        self._transform = transform
        self._handle: BinaryIO | None = None
        self.done = False

    def next_chunk(self) -> bytes:
        """The next chunk (opening the file first); sets ``done`` at the end of the range."""
        if self._handle is None:
            self._handle = open(self._path, "rb")  # noqa: SIM115 - closed by close()
            self._handle.seek(self._offset)
        size = READ_CHUNK if self._remaining is None else min(READ_CHUNK, self._remaining)
        chunk = self._handle.read(size) if size > 0 else b""
        if self._remaining is not None:
            self._remaining -= len(chunk)
        self.done = len(chunk) < READ_CHUNK or self._remaining == 0
        if chunk and self._on_chunk is not None:
            self._on_chunk(chunk)  # hashlib releases the GIL: this overlaps sending
        if chunk and self._transform is not None:
            return self._transform(chunk)
        return chunk

    def close(self) -> None:
        """Close the file if it was opened."""
        if self._handle is not None:
            self._handle.close()


class FilesystemBlobStore:
    """Blobs as files under a root directory, two levels of fan-out."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path_for(self, key: str) -> Path:
        """Where a blob key lives."""
        check_blob_key(key)
        return self.root / key[:2] / key[2:4] / key

    async def create(self) -> BlobWriter:
        """A writer on a fresh temporary file."""
        temp = self._tmp / f"{secrets.token_hex(16)}.part"
        return _FileWriter(self, temp)

    async def read(
        self,
        key: str,
        offset: int = 0,
        length: int | None = None,
        *,
        on_chunk: Callable[[bytes], object] | None = None,
        expected_size: int | None = None,
        transform: Callable[[bytes], bytes] | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """Stream a byte range in 1 MiB chunks, read ahead of their use.

        A thread of the stream's own reads (and runs ``on_chunk``) up to
        ``READ_AHEAD`` chunks ahead of the consumer; opening the file is part of
        the first read, and a short read ends the stream. A read known to be at
        most ``INLINE_READ_MAX`` bytes is done on the event loop instead: a
        page-cache read of a few KiB costs less than a hand-off to a thread.
        """
        path = self.path_for(key)
        reader = _RangeReader(path, offset, length, on_chunk, transform)
        size = length if length is not None else expected_size
        try:
            if size is not None and size <= INLINE_READ_MAX:
                chunk = reader.next_chunk()
                if chunk:
                    yield chunk
                return
            async for chunk in read_ahead(reader.next_chunk, lambda: reader.done, READ_AHEAD):
                if chunk:
                    yield chunk
        except FileNotFoundError:
            raise NotFound("the document's stored content is missing") from None
        finally:
            reader.close()

    async def delete(self, key: str) -> None:
        """Remove a blob file."""
        await asyncio.to_thread(self.path_for(key).unlink, missing_ok=True)

    async def exists(self, key: str) -> bool:
        """True when the blob file exists."""
        return await asyncio.to_thread(self.path_for(key).exists)

    async def keys_before(self, cutoff: datetime) -> AsyncIterator[str]:
        """Blob files whose modification time is before ``cutoff``."""
        limit = cutoff.timestamp()

        def scan() -> list[str]:
            found = []
            for path in self.root.glob("??/??/*"):
                if len(path.name) == 32 and path.stat().st_mtime < limit:
                    found.append(path.name)
            return found

        for key in await asyncio.to_thread(scan):
            yield key

    def clean_temporaries(self) -> int:
        """Remove half-written blobs left by a crash; returns how many."""
        removed = 0
        for leftover in self._tmp.glob("*.part"):
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed
