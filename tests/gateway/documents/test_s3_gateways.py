"""Gateways that share nothing but PostgreSQL, the S3 store and the token's keys (real processes).

Upload through one gateway, download through the other; kill -9 one during an upload and the
other during a download: the survivor keeps serving, every acknowledged upload reads back
exactly, and after the sweep no object stays that no document version refers to.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.config import load_settings
from gateway.documents.blob_backends import open_blob_store, sweep_leftovers
from gateway.documents.models import DocumentVersion
from gateway.documents.s3_client import S3BlobStore
from hsm import find_softhsm_module
from tests.cluster import Process, make_gateway, stopped_at_exit
from tests.gateway.databases import opened
from tests.gateway.faults.client import person_token
from tests.nodes import http_get, run_cli
from tests.s3server import S3Server

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def upload_url(gateway: Process) -> str:
    return gateway.url + "/api/v1/documents?title=t&label=SECRET&filename=f.bin"


async def upload(session: aiohttp.ClientSession, gateway: Process, data: bytes) -> str:
    async with session.post(upload_url(gateway), data=data) as response:
        assert response.status == 201, await response.text()
        body: dict[str, Any] = await response.json()
        return str(body["id"])


async def download(session: aiohttp.ClientSession, gateway: Process, doc: str) -> bytes:
    async with session.get(f"{gateway.url}/api/v1/documents/{doc}/content") as response:
        assert response.status == 200, await response.text()
        return await response.read()


async def slow_body(data: bytes, started: asyncio.Event) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 256 * 1024):
        yield data[start : start + 256 * 1024]
        started.set()
        await asyncio.sleep(0.02)


async def objects(store: S3BlobStore) -> set[str]:
    return {key async for key in store.keys_before(datetime.now(UTC) + timedelta(days=1))}


async def test_two_gateways_on_s3_survive_kill_9(
    tmp_path: Path, s3_server: S3Server, pg_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"t-{uuid.uuid4().hex[:16]}"
    shared = {**s3_server.environ(bucket), "SEKISHO_DATABASE_URL": pg_database_url}
    gw1 = make_gateway(tmp_path, "gw1", shared)
    hsm_dir = tmp_path / "gw1" / "hsm"  # gw1's token plays the network HSM both reach
    module = find_softhsm_module()
    assert module is not None
    gw2 = Process(
        tmp_path / "gw2",
        ["serve"],
        {
            **gw1.extra,
            "SEKISHO_HSM_MODULE": str(module),
            "SOFTHSM2_CONF": str(hsm_dir / "softhsm2.conf"),
            "SEKISHO_HSM_PIN_FILE": str(hsm_dir / "user.pin"),
        },
    )
    gw1.cli("users", "add", "carol", "--level", "SECRET", "--roles", "reader,uploader,officer")
    token = person_token(gw1.data_dir, "carol", gw1.extra)
    headers = {"Authorization": f"Bearer {token}"}
    with stopped_at_exit(gw1, gw2):
        gw1.start()
        gw2.start()
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            small, large = os.urandom(5000), os.urandom(12 * 1024 * 1024)
            first = await upload(session, gw1, small)
            second = await upload(session, gw2, large)
            assert await download(session, gw2, first) == small
            assert hashlib.sha256(await download(session, gw1, second)).digest() == (
                hashlib.sha256(large).digest()
            )
            for gateway in (gw1, gw2):  # nothing of the documents on either gateway's disk
                assert not list((gateway.data_dir / "blobs").glob("??/??/*"))

            # kill -9 gw1 in the middle of a large upload: nothing is acknowledged for it
            started = asyncio.Event()
            doomed = asyncio.create_task(
                session.post(upload_url(gw1), data=slow_body(os.urandom(20 << 20), started))
            )
            await started.wait()
            gw1.kill()
            with pytest.raises((aiohttp.ClientError, asyncio.TimeoutError)):
                await doomed  # the connection dies with the process: no 201
            assert await download(session, gw2, first) == small  # the survivor serves

            # restart gw1, then kill -9 gw2 in the middle of a download
            gw1.start()
            async with session.get(f"{gw2.url}/api/v1/documents/{second}/content") as response:
                await response.content.readexactly(1024 * 1024)
                gw2.kill()
            third = await upload(session, gw1, b"after the kills")
            assert await download(session, gw1, third) == b"after the kills"
            assert hashlib.sha256(await download(session, gw1, second)).digest() == (
                hashlib.sha256(large).digest()
            )
            async with session.delete(f"{gw1.url}/api/v1/documents/{third}") as response:
                assert response.status == 200, await response.text()  # crypto-shredded

    # The sweep (run as the gateway would, later) leaves only referenced objects and no uploads.
    settings = load_settings(environ={**shared, "SEKISHO_DATA": str(gw1.data_dir)})
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, shared[name])
    async with opened(pg_database_url), open_blob_store(settings) as store:
        assert isinstance(store, S3BlobStore)
        later = datetime.now(UTC) + timedelta(hours=2)
        await sweep_leftovers(store, timedelta(hours=1), now=later)
        uploads = await store.client.list_multipart_uploads(Bucket=bucket)
        assert uploads.get("Uploads", []) == []
        remaining = await objects(store)
        live = DocumentVersion.filter(destroyed_at__isnull=True)
        referenced = {str(key) for key in await live.values_list("blob_key", flat=True)}
        assert remaining == referenced  # the shredded version's object went with its key
        assert len(remaining) == 2


async def test_a_missing_bucket_stops_start_up_in_one_line(
    tmp_path: Path, s3_server: S3Server
) -> None:
    env = s3_server.environ("no-such-bucket-here") | {"SEKISHO_BLOBS_S3_CREATE_BUCKET": "false"}
    done = run_cli(["init"], tmp_path / "var", env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"sekisho: error: the object store at {s3_server.endpoint}: "
        "the bucket no-such-bucket-here does not exist"
    ]


async def test_a_bucket_lost_while_serving_is_503(
    tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"t-{uuid.uuid4().hex[:16]}"
    env = s3_server.environ(bucket)
    gateway = make_gateway(tmp_path, "gw", env)  # init creates the bucket
    gateway.cli("users", "add", "dave", "--level", "SECRET", "--roles", "reader,uploader")
    token = person_token(gateway.data_dir, "dave", gateway.extra)
    admin = person_token(gateway.data_dir, "admin", gateway.extra)  # may watch the node
    gateway.extra["SEKISHO_BLOBS_S3_CREATE_BUCKET"] = "false"
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, env[name])
    with stopped_at_exit(gateway):
        gateway.start()
        assert http_get(gateway.url + "/readyz")[0] == 200
        settings = load_settings(environ={**env, "SEKISHO_DATA": str(gateway.data_dir)})
        async with open_blob_store(settings) as store:
            assert isinstance(store, S3BlobStore)
            await store.client.delete_bucket(Bucket=bucket)
        status, body = http_get(gateway.url + "/readyz")
        assert status == 503
        assert json.loads(body)["checks"]["blobs"] == {"ok": False}  # the reason: for watchers
        assert bucket.encode() not in body and s3_server.endpoint.encode() not in body
        status, body = http_get(
            gateway.url + "/readyz", headers={"Authorization": f"Bearer {admin}"}
        )
        assert status == 503
        assert f"{bucket} does not exist" in json.loads(body)["checks"]["blobs"]["error"]
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            aiohttp.ClientSession(headers=headers) as session,
            session.post(upload_url(gateway), data=b"x" * 100) as response,
        ):
            assert response.status == 503
            assert "does not exist" in (await response.json())["message"]
    log = gateway.log.read_text()
    assert "Traceback" not in log
    assert env["AWS_SECRET_ACCESS_KEY"] not in log
