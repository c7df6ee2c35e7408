"""The S3 client side of the blob store: ciphertext in an S3-compatible object store.

The same :class:`~gateway.documents.blobstore.BlobStore` contract as the
filesystem store, on aiobotocore (an asyncio S3 client built on aiohttp):

- Writes stream: bytes are buffered up to one part (``part_size``), then sent
  as a multipart-upload part with its Content-MD5, which the server checks; an
  object smaller than one part is a single PUT. Memory per upload is bounded by
  the part size, whatever the document's size.
- An object becomes visible only when the upload completes (``commit``); a
  failed upload is aborted, and :meth:`S3BlobStore.sweep` aborts multipart
  uploads that a crashed gateway left behind.
- Reads are ranged GETs streamed in chunks; a missing object is NotFound, an
  unreachable store, a missing bucket or refused credentials are Unavailable
  (503) with one line that names the cause.
- Retries with backoff on 5xx and throttling come from botocore's "standard"
  retry mode.

Credentials come the way every S3 tool takes them (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` or a shared credentials file) and are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from gateway.documents.blobstore import READ_CHUNK, check_blob_key
from gateway.errors import ConfigError, NotFound, Unavailable

log = logging.getLogger("sekisho.blobs")

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest part (all but the last)
WINDOW = 4 * 1024 * 1024  # bytes per ranged GET of a large read
READ_AHEAD_WINDOWS = 3  # GETs in flight ahead of the window being processed
_MISSING_KEY_CODES = {"NoSuchKey", "404", "NotFound"}
_CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "InvalidToken",
    "ExpiredToken",
    "403",
}


@dataclass(frozen=True)
class S3Location:
    """Where the objects live and how to reach the store."""

    endpoint: str
    bucket: str
    region: str = "us-east-1"
    path_style: bool = False
    tls_ca: str = ""
    prefix: str = "blobs/"
    part_size: int = 8 * 1024 * 1024
    max_attempts: int = 5
    connections: int = 64


def _md5_b64(data: bytes) -> str:
    # Content-MD5 is S3's integrity check on upload, not a security primitive here
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def _error_code(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))


def store_error(location: S3Location, exc: BaseException) -> Exception:
    """The gateway error for a failed S3 call: one line naming the cause, never credentials."""
    where = f"the object store at {location.endpoint or 'AWS'} (bucket {location.bucket})"
    if isinstance(exc, NoCredentialsError):
        return ConfigError(
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or a shared "
            "credentials file"
        )
    if isinstance(exc, ClientError):
        code = _error_code(exc)
        if code in _MISSING_KEY_CODES:
            return NotFound("the document's stored content is missing")
        if code == "NoSuchBucket":
            return Unavailable(f"{where}: the bucket {location.bucket} does not exist")
        if code in _CREDENTIAL_CODES:
            return Unavailable(f"{where} refused our credentials ({code})")
        return Unavailable(f"{where} answered {code}")
    return Unavailable(f"{where} is unreachable ({type(exc).__name__})")


_FAILURES = (ClientError, BotoCoreError, aiohttp.ClientError, OSError, TimeoutError)


class _S3Writer:
    """One upload in progress: a single PUT if it stays under a part, else a multipart upload."""

    def __init__(self, store: S3BlobStore, key: str) -> None:
        self._store = store
        self._key = key
        self._name = store.object_name(key)
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    async def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= self._store.location.part_size:
            size = self._store.location.part_size
            part, self._buffer = bytes(self._buffer[:size]), self._buffer[size:]
            await self._send_part(part)

    async def _send_part(self, part: bytes) -> None:
        client, bucket = self._store.client, self._store.location.bucket
        try:
            if self._upload_id is None:
                started = await client.create_multipart_upload(Bucket=bucket, Key=self._name)
                self._upload_id = str(started["UploadId"])
            number = len(self._parts) + 1
            sent = await client.upload_part(
                Bucket=bucket,
                Key=self._name,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=part,
                ContentMD5=_md5_b64(part),
            )
        except _FAILURES as exc:
            await self.abort()
            raise store_error(self._store.location, exc) from None
        self._parts.append({"ETag": sent["ETag"], "PartNumber": number})

    async def commit(self) -> str:
        client, bucket = self._store.client, self._store.location.bucket
        rest, self._buffer = bytes(self._buffer), bytearray()
        try:
            if self._upload_id is None:
                await client.put_object(
                    Bucket=bucket, Key=self._name, Body=rest, ContentMD5=_md5_b64(rest)
                )
                return self._key
            if rest:
                await self._send_part(rest)
            await client.complete_multipart_upload(
                Bucket=bucket,
                Key=self._name,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        except _FAILURES as exc:
            await self.abort()
            raise store_error(self._store.location, exc) from None
        self._upload_id = None
        return self._key

    async def abort(self) -> None:
        self._buffer = bytearray()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is None:
            return
        try:
            await self._store.client.abort_multipart_upload(
                Bucket=self._store.location.bucket, Key=self._name, UploadId=upload_id
            )
        except _FAILURES as exc:  # the sweep removes it later
            log.warning("multipart upload not aborted (the sweep will): %s", type(exc).__name__)


class S3BlobStore:
    """Blobs as objects ``<prefix><k0k1>/<key>`` in one bucket; keys are random hex."""

    def __init__(self, location: S3Location, client: Any) -> None:
        self.location = location
        self.client = client

    def object_name(self, key: str) -> str:
        """The object name of a blob key (keys are chosen by the store, never by callers)."""
        check_blob_key(key)
        return f"{self.location.prefix}{key[:2]}/{key}"

    async def create(self) -> _S3Writer:
        """A writer for a new object under a fresh random key."""
        return _S3Writer(self, secrets.token_hex(16))

    async def read(
        self,
        key: str,
        offset: int = 0,
        length: int | None = None,
        *,
        on_chunk: Callable[[bytes], object] | None = None,
        expected_size: int | None = None,
        transform: Callable[[bytes], bytes] | None = None,
    ) -> AsyncIterator[bytes]:
        """Stream a byte range: one GET for a small read, else ranged GETs read ahead.

        A read of more than one window (whose end is known from ``length`` or
        ``expected_size``) keeps up to ``READ_AHEAD_WINDOWS`` ranged GETs of
        ``WINDOW`` bytes in flight, and runs ``on_chunk`` and ``transform`` on a
        worker thread, a window at a time in order, so the event loop only
        receives and sends. The last window's GET is open-ended when no length
        was asked for, so bytes past the expected size are still read.
        """
        if length == 0:
            return
        size = length if length is not None else expected_size
        if size is None or size <= WINDOW:
            async for chunk in self._read_one(key, offset, length, on_chunk, transform):
                yield chunk
            return
        async for chunk in self._read_ahead(key, offset, size, length is None, on_chunk, transform):
            yield chunk

    async def _get(self, name: str, span: str) -> Any:
        """The response of one ranged GET, or None when the range starts past the end."""
        try:
            return await self.client.get_object(Bucket=self.location.bucket, Key=name, Range=span)
        except ClientError as exc:
            if _error_code(exc) in {"InvalidRange", "416"}:
                return None  # the range starts at or past the end: nothing to read
            raise store_error(self.location, exc) from None
        except _FAILURES as exc:
            raise store_error(self.location, exc) from None

    async def _read_one(
        self,
        key: str,
        offset: int,
        length: int | None,
        on_chunk: Callable[[bytes], object] | None,
        transform: Callable[[bytes], bytes] | None,
    ) -> AsyncIterator[bytes]:
        """One ranged GET streamed in chunks of at most 1 MiB, processed on the loop."""
        name = self.object_name(key)
        span = f"bytes={offset}-" if length is None else f"bytes={offset}-{offset + length - 1}"
        response = await self._get(name, span)
        if response is None:
            return
        body = response["Body"]
        try:
            while True:
                chunk = await body.read(READ_CHUNK)
                if not chunk:
                    return
                if on_chunk is not None:
                    on_chunk(chunk)
                if transform is not None:
                    chunk = transform(chunk)
                if chunk:
                    yield chunk
        except _FAILURES as exc:
            raise store_error(self.location, exc) from None
        finally:
            body.close()

    async def _window(self, name: str, start: int, end: int | None) -> bytes:
        """The bytes of one window (``end`` inclusive, None: to the end of the object)."""
        response = await self._get(
            name, f"bytes={start}-" if end is None else f"bytes={start}-{end}"
        )
        if response is None:
            return b""
        body = response["Body"]
        try:
            return bytes(await body.read())
        except _FAILURES as exc:
            raise store_error(self.location, exc) from None
        finally:
            body.close()

    async def _read_ahead(
        self,
        key: str,
        offset: int,
        size: int,
        open_ended: bool,
        on_chunk: Callable[[bytes], object] | None,
        transform: Callable[[bytes], bytes] | None,
    ) -> AsyncIterator[bytes]:
        """Windows fetched ahead, processed on a thread in order, handed over in 1 MiB chunks."""
        name = self.object_name(key)
        starts = list(range(offset, offset + size, WINDOW))

        def fetch(n: int) -> asyncio.Task[bytes]:
            first = starts[n]
            last = (
                None
                if open_ended and n == len(starts) - 1
                else min(first + WINDOW, offset + size) - 1
            )
            return asyncio.ensure_future(self._window(name, first, last))

        def process(window: bytes) -> list[bytes]:
            out = []
            view = memoryview(window)
            for at in range(0, len(window), READ_CHUNK):
                chunk = view[at : at + READ_CHUNK].tobytes() if len(window) > READ_CHUNK else window
                if on_chunk is not None:
                    on_chunk(chunk)
                if transform is not None:
                    chunk = transform(chunk)
                if chunk:
                    out.append(chunk)
            return out

        pending = [fetch(n) for n in range(min(READ_AHEAD_WINDOWS, len(starts)))]
        fetched = len(pending)

        async def fetch_and_process(task: asyncio.Task[bytes]) -> list[bytes]:
            return await asyncio.to_thread(process, await task)

        def start_next() -> asyncio.Task[list[bytes]] | None:
            nonlocal fetched
            if not pending:
                return None
            task = pending.pop(0)
            if fetched < len(starts):
                pending.append(fetch(fetched))
                fetched += 1
            return asyncio.ensure_future(fetch_and_process(task))

        current = start_next()
        try:
            while current is not None:
                chunks = await current
                current = start_next()  # the next window is processed while this one is sent
                for chunk in chunks:
                    yield chunk
        finally:
            waiting: list[asyncio.Future[Any]] = [*pending]
            if current is not None:
                waiting.append(current)
            for task in waiting:
                task.cancel()
            # a thread already processing a window finishes it on its own
            await asyncio.gather(*waiting, return_exceptions=True)

    async def delete(self, key: str) -> None:
        """Delete an object (a missing one is fine)."""
        try:
            await self.client.delete_object(Bucket=self.location.bucket, Key=self.object_name(key))
        except _FAILURES as exc:
            raise store_error(self.location, exc) from None

    async def exists(self, key: str) -> bool:
        """True when the object is present."""
        try:
            await self.client.head_object(Bucket=self.location.bucket, Key=self.object_name(key))
        except ClientError as exc:
            if _error_code(exc) in _MISSING_KEY_CODES:
                return False
            raise store_error(self.location, exc) from None
        except _FAILURES as exc:
            raise store_error(self.location, exc) from None
        return True

    async def check(self, *, create: bool = False) -> bool:
        """Make sure the bucket is there and ours; create it when missing and asked to.

        Returns True when this call created the bucket.
        """
        bucket = self.location.bucket
        try:
            await self.client.head_bucket(Bucket=bucket)
            return False
        except ClientError as exc:
            if _error_code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
                raise store_error(self.location, exc) from None
            if not create:
                where = f"the object store at {self.location.endpoint or 'AWS'}"
                raise Unavailable(f"{where}: the bucket {bucket} does not exist") from None
        except _FAILURES as exc:
            raise store_error(self.location, exc) from None
        try:
            await self.client.create_bucket(Bucket=bucket)
        except _FAILURES as exc:
            raise store_error(self.location, exc) from None
        return True

    async def keys_before(self, cutoff: datetime) -> AsyncIterator[str]:
        """Keys of objects under our prefix last modified before ``cutoff``."""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            async for page in paginator.paginate(
                Bucket=self.location.bucket, Prefix=self.location.prefix
            ):
                for item in page.get("Contents", []):
                    key = str(item["Key"]).rsplit("/", 1)[-1]
                    if item["LastModified"] < cutoff and len(key) == 32:
                        yield key
        except _FAILURES as exc:
            raise store_error(self.location, exc) from None

    async def sweep(self, older_than: timedelta, *, now: datetime | None = None) -> int:
        """Abort multipart uploads under our prefix started before ``now - older_than``."""
        cutoff = (now or datetime.now(UTC)) - older_than
        aborted = 0
        paginator = self.client.get_paginator("list_multipart_uploads")
        try:
            async for page in paginator.paginate(
                Bucket=self.location.bucket, Prefix=self.location.prefix
            ):
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] >= cutoff:
                        continue
                    with contextlib.suppress(ClientError):  # gone meanwhile
                        await self.client.abort_multipart_upload(
                            Bucket=self.location.bucket,
                            Key=upload["Key"],
                            UploadId=upload["UploadId"],
                        )
                        aborted += 1
        except _FAILURES as exc:
            raise store_error(self.location, exc) from None
        return aborted


@contextlib.asynccontextmanager
async def open_s3_store(location: S3Location) -> AsyncIterator[S3BlobStore]:
    """An S3 store with one pooled client for the context's lifetime."""
    if location.part_size < MIN_PART_SIZE:
        raise ConfigError(f"blobs.s3_part_mib must be at least {MIN_PART_SIZE >> 20}")
    config = AioConfig(
        region_name=location.region,
        s3={"addressing_style": "path" if location.path_style else "auto"},
        retries={"mode": "standard", "max_attempts": location.max_attempts},
        max_pool_connections=location.connections,
        connect_timeout=5,
        read_timeout=30,
        # Content-MD5 on every upload; trailing CRC checksums are not understood by every store
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    verify: str | bool = location.tls_ca or True
    session = get_session()
    async with session.create_client(
        "s3", endpoint_url=location.endpoint or None, config=config, verify=verify
    ) as client:
        yield S3BlobStore(location, client)
