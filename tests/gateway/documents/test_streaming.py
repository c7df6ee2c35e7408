"""A 256 MiB document through a real gateway process: exact round trip, flat memory."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from gateway.auth.principals import Principal
from gateway.auth.tokens import issue_token
from gateway.db.setup import close_database, open_database
from tests.nodes import peak_rss_mib, run_cli, running_node_process

SIZE = 256 * 1024 * 1024
CHUNK = 1024 * 1024


def chunk(n: int) -> bytes:
    """Deterministic, incompressible-enough 1 MiB chunks, each different."""
    seed = hashlib.sha256(n.to_bytes(8, "big")).digest()
    return (seed * (CHUNK // len(seed)))[:CHUNK]


async def personal_token(data_dir: Path, username: str) -> str:
    await open_database(f"sqlite://{data_dir / 'sekisho.sqlite3'}")
    try:
        return await issue_token(principal=await Principal.get(username=username))
    finally:
        await close_database()


@pytest.mark.slow
def test_256_mib_round_trip_with_flat_memory(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    assert run_cli(["init", "--demo"], data_dir).returncode == 0
    token = asyncio.run(personal_token(data_dir, "alice"))
    headers = {"Authorization": f"Bearer {token}"}
    expected = hashlib.sha256()
    for n in range(SIZE // CHUNK):
        expected.update(chunk(n))

    async def exercise(base: str) -> tuple[str, str]:
        async def body() -> AsyncIterator[bytes]:
            for n in range(SIZE // CHUNK):
                yield chunk(n)

        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            url = f"{base}/api/v1/documents?title=Footage&label=SECRET//LOGISTICS&filename=f.bin"
            async with session.post(url, data=body(), headers=headers) as response:
                assert response.status == 201, await response.text()
                created = await response.json()
            received = hashlib.sha256()
            content_url = f"{base}/api/v1/documents/{created['id']}/content"
            async with session.get(content_url, headers=headers) as response:
                assert response.status == 200
                assert response.content_length == SIZE
                async for piece in response.content.iter_chunked(CHUNK):
                    received.update(piece)
            return created["version"]["plaintext_sha256"], received.hexdigest()

    with running_node_process(data_dir) as (base, process):
        baseline = peak_rss_mib(process.pid)
        anchored, downloaded = asyncio.run(exercise(base))
        peak = peak_rss_mib(process.pid)
    assert anchored == expected.hexdigest()
    assert downloaded == expected.hexdigest()
    assert peak - baseline < 64, f"gateway peak RSS grew by {peak - baseline:.0f} MiB"
