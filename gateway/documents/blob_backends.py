"""Choosing and running the blob store: the filesystem or S3, and the sweep of leftovers.

The sweep removes what a crashed gateway can leave behind: multipart uploads
that never completed (S3) and committed blobs that no document version refers
to (a crash between the upload and the database row, on either backend, or a
destroyed version whose delete failed). Only
blobs older than ``blobs.sweep_minutes`` are touched, so an upload in flight
on another gateway is never taken for a leftover.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from gateway.config import BlobSettings, Settings
from gateway.documents.blobstore import BlobStore, FilesystemBlobStore
from gateway.documents.models import DocumentVersion
from gateway.documents.s3_client import S3BlobStore, S3Location, open_s3_store
from gateway.errors import SekishoError

log = logging.getLogger("sekisho.blobs")
ORPHAN_BATCH = 500


def s3_location(blobs: BlobSettings) -> S3Location:
    """The S3 location of the ``[blobs]`` settings."""
    return S3Location(
        endpoint=blobs.s3_endpoint,
        bucket=blobs.s3_bucket,
        region=blobs.s3_region,
        path_style=blobs.s3_path_style,
        tls_ca=blobs.s3_tls_ca,
        prefix=blobs.s3_prefix,
        part_size=blobs.s3_part_mib * 1024 * 1024,
        connections=blobs.s3_connections,
    )


@contextlib.asynccontextmanager
async def open_blob_store(settings: Settings) -> AsyncIterator[BlobStore]:
    """The configured blob store for the context's lifetime."""
    if settings.blobs.backend == "s3":
        async with open_s3_store(s3_location(settings.blobs)) as store:
            yield store
        return
    filesystem = FilesystemBlobStore(settings.blob_dir)
    filesystem.clean_temporaries()
    yield filesystem


async def blob_store_problem(store: BlobStore) -> str | None:
    """Why the blob store cannot be used right now, or None (the S3 bucket answers)."""
    if isinstance(store, S3BlobStore):
        try:
            await store.check()
        except SekishoError as exc:
            return exc.message
    return None


async def check_blob_store(store: BlobStore) -> None:
    """At start-up: one line in the log if the object store cannot be used (requests get 503)."""
    problem = await blob_store_problem(store)
    if problem is not None:
        log.error("blob store: %s", problem)


async def sweep_leftovers(
    store: BlobStore, older_than: timedelta, *, now: datetime | None = None
) -> tuple[int, int]:
    """Abort stale uploads and delete unreferenced blobs; returns (uploads, orphans)."""
    cutoff = (now or datetime.now(UTC)) - older_than
    uploads = await store.sweep(older_than, now=now) if isinstance(store, S3BlobStore) else 0
    orphans = 0
    batch: list[str] = []
    async for key in store.keys_before(cutoff):
        batch.append(key)
        if len(batch) >= ORPHAN_BATCH:
            orphans += await _delete_unreferenced(store, batch)
            batch = []
    if batch:
        orphans += await _delete_unreferenced(store, batch)
    return uploads, orphans


async def _delete_unreferenced(store: BlobStore, keys: list[str]) -> int:
    live = DocumentVersion.filter(blob_key__in=keys, destroyed_at__isnull=True)
    rows = await live.values_list("blob_key", flat=True)
    referenced = {str(key) for key in rows}
    orphans = [key for key in keys if key not in referenced]
    for key in orphans:
        await store.delete(key)
    return len(orphans)


async def run_sweeper(store: BlobStore, every: timedelta) -> None:
    """Sweep now and then every ``every`` (leftovers older than ``every`` go); logs failures."""
    while True:
        try:
            uploads, orphans = await sweep_leftovers(store, every)
            if uploads or orphans:
                log.info(
                    "blob sweep: %d stale uploads aborted, %d orphans deleted", uploads, orphans
                )
        except (SekishoError, OSError) as exc:
            log.warning("blob sweep failed: %s", getattr(exc, "message", exc))
        await asyncio.sleep(every.total_seconds())
