"""One conformance suite for every BlobStore: the filesystem and S3 (a real Ceph RADOS Gateway).

Atomic commit, ranged reads at every edge, concurrent writers, delete, a missing object, the
leftover sweep, and a store that becomes unavailable (S3: the gateway stops mid-stream).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.documents.blob_backends import s3_location, sweep_leftovers
from gateway.documents.blobstore import READ_CHUNK, BlobStore, FilesystemBlobStore
from gateway.documents.models import Document, DocumentVersion
from gateway.documents.s3_client import S3BlobStore, S3Location, open_s3_store
from gateway.errors import NotFound, Unavailable
from tests.gateway.databases import opened
from tests.s3server import S3Server

PART = 5 * 1024 * 1024  # the smallest S3 part, so multipart paths run on small data


def s3_settings_location(server: S3Server, bucket: str) -> S3Location:
    from gateway.config import load_settings

    env = server.environ(bucket) | {"SEKISHO_BLOBS_S3_PART_MIB": "5"}
    return s3_location(load_settings(environ=env).blobs)


@pytest.fixture(params=["filesystem", "s3"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[BlobStore]:
    if request.param == "filesystem":
        yield FilesystemBlobStore(tmp_path / "blobs")
        return
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = f"t-{uuid.uuid4().hex[:16]}"
    for name, value in server.environ(bucket).items():
        monkeypatch.setenv(name, value)
    async with open_s3_store(s3_settings_location(server, bucket)) as s3:
        assert await s3.check(create=True) is True
        yield s3


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The session's S3 server, with its credentials in this test's environment."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, s3_server.environ("")[name])
    return s3_server


async def put(store: BlobStore, data: bytes, *, pieces: int = 1) -> str:
    writer = await store.create()
    step = max(1, len(data) // pieces)
    for start in range(0, len(data), step):
        await writer.write(data[start : start + step])
    return await writer.commit()


async def read(
    store: BlobStore,
    key: str,
    offset: int = 0,
    length: int | None = None,
    on_chunk: Callable[[bytes], object] | None = None,
) -> bytes:
    return b"".join([c async for c in store.read(key, offset, length, on_chunk=on_chunk)])


@pytest.mark.parametrize("size", [1, 4096, READ_CHUNK + 7, PART, PART + 1, 2 * PART + 3])
async def test_whole_object_round_trips_and_feeds_the_hash(store: BlobStore, size: int) -> None:
    data = os.urandom(size)
    key = await put(store, data, pieces=7)
    digest = hashlib.sha256()
    assert await read(store, key, on_chunk=digest.update) == data
    assert digest.digest() == hashlib.sha256(data).digest()
    assert await store.exists(key)


async def test_a_large_read_is_transformed_in_order_off_the_event_loop(store: BlobStore) -> None:
    """Check-and-decrypt runs on the reading thread, in order, so the loop only sends."""
    data = os.urandom(3 * READ_CHUNK + 5)
    key = await put(store, data, pieces=5)
    loop_thread = threading.get_ident()
    threads: set[int] = set()
    seen = hashlib.sha256()

    def transform(chunk: bytes) -> bytes:
        threads.add(threading.get_ident())
        return chunk[::-1]  # what comes out is the transform's, chunk by chunk

    out = [
        c
        async for c in store.read(
            key, on_chunk=seen.update, expected_size=len(data), transform=transform
        )
    ]
    assert b"".join(chunk[::-1] for chunk in out) == data
    assert seen.digest() == hashlib.sha256(data).digest()
    assert threads and loop_thread not in threads


async def test_empty_object(store: BlobStore) -> None:
    key = await put(store, b"")
    assert await read(store, key) == b""


async def test_ranges_at_every_edge(store: BlobStore) -> None:
    size = PART + READ_CHUNK + 11
    data = os.urandom(size)
    key = await put(store, data, pieces=3)
    edges = [0, 1, READ_CHUNK - 1, READ_CHUNK, PART - 1, PART, size - 2, size - 1]
    for offset in edges:
        for length in [1, 2, READ_CHUNK + 1]:
            assert await read(store, key, offset, length) == data[offset : offset + length]
        assert await read(store, key, offset) == data[offset:]
    assert await read(store, key, 5, 0) == b""
    assert await read(store, key, size, 10) == b""  # past the end: nothing


async def test_nothing_is_visible_before_commit_and_abort_leaves_nothing(store: BlobStore) -> None:
    writer = await store.create()
    await writer.write(os.urandom(PART + 10))  # a multipart upload on S3
    await writer.abort()
    found = [key async for key in store.keys_before(datetime.now(UTC) + timedelta(days=1))]
    assert found == []
    if isinstance(store, S3BlobStore):
        uploads = await store.client.list_multipart_uploads(Bucket=store.location.bucket)
        assert uploads.get("Uploads", []) == []


async def test_concurrent_writers_get_their_own_objects(store: BlobStore) -> None:
    payloads = [os.urandom(PART + n) if n % 3 == 0 else os.urandom(1000 + n) for n in range(8)]
    keys = await asyncio.gather(*(put(store, data, pieces=4) for data in payloads))
    assert len(set(keys)) == len(keys)
    for key, data in zip(keys, payloads, strict=True):
        assert await read(store, key) == data


async def test_delete_and_missing_objects(store: BlobStore) -> None:
    key = await put(store, b"secret ciphertext")
    await store.delete(key)
    await store.delete(key)  # deleting twice is fine
    assert not await store.exists(key)
    with pytest.raises(NotFound):
        await read(store, key)
    with pytest.raises(NotFound):
        await read(store, "0" * 32, 10, 10)
    with pytest.raises(NotFound):  # keys are the store's own: anything else is not found
        await read(store, "../../etc/passwd")


async def test_sweep_removes_only_old_unreferenced_blobs(store: BlobStore, tmp_path: Path) -> None:
    orphan = await put(store, b"an orphan: its upload finished, its row never came")
    later = datetime.now(UTC) + timedelta(hours=2)
    async with opened(f"sqlite://{tmp_path / 'sweep.sqlite3'}"):
        kept = await put(store, b"a blob a document version refers to")
        await refer_to(kept)
        assert await sweep_leftovers(store, timedelta(hours=1)) == (0, 0)  # too young to touch
        _, orphans = await sweep_leftovers(store, timedelta(hours=1), now=later)
    assert orphans == 1
    assert not await store.exists(orphan)
    assert await read(store, kept) == b"a blob a document version refers to"


async def refer_to(blob_key: str) -> None:
    """A document version row whose blob is ``blob_key``."""
    document = await Document.create(
        id=str(uuid.uuid4()), title="t", level_rank=0, label="UNCLASSIFIED", created_by="x"
    )
    await DocumentVersion.create(
        document=document,
        version=1,
        label="UNCLASSIFIED",
        size=1,
        ciphertext_size=1,
        segment_size=65536,
        plaintext_sha256="0" * 64,
        ciphertext_sha256="0" * 64,
        kek_label="sekisho-kek",
        blob_key=blob_key,
        ledger_queue_id=1,
        created_by="x",
    )


async def test_sweep_aborts_stale_multipart_uploads(s3: S3Server) -> None:
    bucket = f"t-{uuid.uuid4().hex[:16]}"
    async with open_s3_store(s3_settings_location(s3, bucket)) as store:
        await store.check(create=True)
        writer = await store.create()
        await writer.write(os.urandom(PART + 1))  # one part sent, then the gateway "dies"
        later = datetime.now(UTC) + timedelta(hours=2)
        assert await store.sweep(timedelta(hours=1)) == 0
        assert await store.sweep(timedelta(hours=1), now=later) == 1
        uploads = await store.client.list_multipart_uploads(Bucket=bucket)
        assert uploads.get("Uploads", []) == []


async def test_a_missing_bucket_is_unavailable(s3: S3Server) -> None:
    location = s3_settings_location(s3, f"t-{uuid.uuid4().hex[:16]}")
    async with open_s3_store(location) as store:
        with pytest.raises(Unavailable, match=r"bucket .* does not exist"):
            await store.check()
        with pytest.raises(Unavailable, match=r"bucket .* does not exist"):
            await put(store, b"x")


async def test_refused_credentials_name_the_cause(
    s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nobody")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-that-must-not-be-shown")
    async with open_s3_store(s3_settings_location(s3, "sekisho")) as store:
        with pytest.raises(Unavailable, match="refused our credentials") as caught:
            await store.check()
    assert "wrong-secret" not in caught.value.message


async def test_unreachable_endpoint_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "b")
    location = S3Location(
        endpoint="http://127.0.0.1:9", bucket="sekisho", path_style=True, max_attempts=1
    )
    async with open_s3_store(location) as store:
        with pytest.raises(Unavailable, match="unreachable"):
            await store.check()
        with pytest.raises(Unavailable, match="unreachable"):
            await read(store, "0" * 32)


class CuttableProxy:
    """A TCP relay to the S3 gateway whose connections can be cut, as a failing network would."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        self._writers += [writer, up_writer]

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def cut(self) -> None:
        for writer in self._writers:
            writer.transport.abort()

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()


async def test_a_store_lost_mid_stream_is_unavailable(s3: S3Server) -> None:
    bucket = f"t-{uuid.uuid4().hex[:16]}"
    direct = s3_settings_location(s3, bucket)
    data = os.urandom(8 * READ_CHUNK)
    async with open_s3_store(direct) as store:
        await store.check(create=True)
        key = await put(store, data)
    proxy = CuttableProxy(int(s3.endpoint.rsplit(":", 1)[1]))
    await proxy.start()
    try:
        relayed = S3Location(
            endpoint=f"http://127.0.0.1:{proxy.port}",
            bucket=bucket,
            path_style=True,
            part_size=PART,
            max_attempts=1,
        )
        async with open_s3_store(relayed) as store:
            stream = store.read(key)
            first = await anext(stream)
            assert first == data[: len(first)]
            proxy.cut()
            with pytest.raises(Unavailable):
                async for _ in stream:
                    pass
    finally:
        await proxy.stop()
