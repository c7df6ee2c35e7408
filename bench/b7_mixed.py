"""B7: mixed load. Uploads, downloads, signatures and anchors at once from 8+ clients; the
p50/p99 of each kind next to the same kind alone, in the same run, on SQLite and PostgreSQL.

Target: no kind's p99 under the mix above 3x its p99 alone.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import multiprocessing
import os
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from bench.b1_http import client_token
from bench.b5_small_docs import init_node, person_token, upload_many
from bench.common import Result, percentile
from bench.node import server_process

KINDS = ("upload", "download", "sign", "anchor")
CLIENTS_PER_KIND = 2
Latencies = dict[str, list[float]]


async def _drive(
    base: str,
    person: str,
    client: str,
    key: str,
    docs: list[str],
    kinds: tuple[str, ...],
    seconds: float,
) -> Latencies:
    latencies: Latencies = {kind: [] for kind in kinds}
    people = {"Authorization": f"Bearer {person}"}
    system = {"Authorization": f"Bearer {client}"}
    deadline = time.perf_counter() + seconds
    digest = base64.b64encode(hashlib.sha256(b"b7").digest()).decode()

    async def upload(session: aiohttp.ClientSession, n: int) -> int:
        body = os.urandom(random.randint(1_000, 300_000))
        url = f"{base}/api/v1/documents?title=b7-{n}&label=SECRET"
        async with session.post(url, data=body, headers=people) as r:
            await r.read()
            return r.status

    async def download(session: aiohttp.ClientSession, n: int) -> int:
        url = f"{base}/api/v1/documents/{docs[n % len(docs)]}/content"
        async with session.get(url, headers=people) as r:
            await r.read()
            return r.status

    async def sign(session: aiohttp.ClientSession, n: int) -> int:
        url = f"{base}/api/v1/sign/{key}"
        async with session.post(url, json={"digest": digest}, headers=system) as r:
            await r.read()
            return r.status

    async def anchor(session: aiohttp.ClientSession, n: int) -> int:
        body = {"subject": f"b7-{n % 50}", "kind": "b7.item", "digest": digest}
        async with session.post(f"{base}/api/v1/anchors", json=body, headers=system) as r:
            await r.read()
            return r.status

    actions: dict[str, Callable[[aiohttp.ClientSession, int], Awaitable[int]]] = {  # by kind
        "upload": upload,
        "download": download,
        "sign": sign,
        "anchor": anchor,
    }

    async def one_client(session: aiohttp.ClientSession, kind: str) -> None:
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            start = time.perf_counter()
            status = await actions[kind](session, n)
            if status < 300:
                latencies[kind].append((time.perf_counter() - start) * 1000)

    timeout = aiohttp.ClientTimeout(total=seconds + 60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(
            *(one_client(session, k) for k in kinds for _ in range(CLIENTS_PER_KIND))
        )
    return latencies


def _child(args: tuple[object, ...], queue: multiprocessing.Queue[Latencies]) -> None:
    queue.put(asyncio.run(_drive(*args)))  # type: ignore[arg-type]


def drive(*args: object) -> Latencies:
    """Run the clients in a process of their own (the server keeps its loop to itself)."""
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[Latencies] = context.Queue()
    process = context.Process(target=_child, args=(args, queue))
    process.start()
    result = queue.get(timeout=600)
    process.join(timeout=30)
    return result


def measure(database: str, database_url: str | None, quick: bool, workers: int = 1) -> list[Result]:
    """Each kind alone, then all at once, against one node with ``workers`` processes."""
    seconds = 3.0 if quick else 30.0
    alone_seconds = 2.0 if quick else 10.0
    with tempfile.TemporaryDirectory(prefix="sekisho-b7-") as tmp:
        data_dir = Path(tmp) / "var"
        env = {"SEKISHO_DATABASE_URL": database_url} if database_url else {}
        init_node(data_dir, env)
        serving = {**env, "SEKISHO_HTTP_WORKERS": str(workers)}
        person = asyncio.run(person_token(data_dir)) if not database_url else None
        with server_process(data_dir, serving) as (base, _pid):
            if person is None:
                person = asyncio.run(_person_token_on(database_url or ""))
            client, key = client_token(data_dir, env, scopes="sign,anchor")
            headers = {"Authorization": f"Bearer {person}"}
            docs = asyncio.run(upload_many(base, headers, 20, 4096))
            alone = {
                kind: drive(base, person, client, key, docs, (kind,), alone_seconds)[kind]
                for kind in KINDS
            }
            mixed = drive(base, person, client, key, docs, KINDS, seconds)
    results = []
    for kind in KINDS:
        solo, mix = alone[kind], mixed[kind]
        p99_solo = percentile(solo, 0.99) if solo else 0.0
        p99_mix = percentile(mix, 0.99) if mix else float("inf")
        results.append(
            Result(
                "B7",
                f"{database}, {workers} worker{'s' if workers > 1 else ''}: {kind} p99 under "
                f"the mix ({len(mix)} done in {seconds:.0f} s, "
                f"p50 {percentile(mix, 0.5) if mix else 0:.1f} ms; alone {len(solo)} in "
                f"{alone_seconds:.0f} s, p50 {percentile(solo, 0.5) if solo else 0:.1f} ms)",
                p99_mix,
                "ms",
                {"alone p99": p99_solo},
                "alone p99",
                "<= 3x alone",
                bool(mix) and p99_mix <= 3 * max(p99_solo, 1.0),
            )
        )
    return results


async def _person_token_on(database_url: str) -> str:
    from gateway.auth.principals import Principal
    from gateway.auth.tokens import issue_token
    from gateway.db.setup import close_database, open_database

    await open_database(database_url)
    try:
        return await issue_token(principal=await Principal.get(username="alice"))
    finally:
        await close_database()


def run(quick: bool) -> list[Result]:
    """B7 on SQLite, and on PostgreSQL when one answers, with one worker and with two (the
    default on this 2-core machine); quick mode runs one of each database."""
    from bench.__main__ import postgres_url

    nodes = (
        [("SQLite", 1), ("PostgreSQL", 2)]
        if quick
        else [("SQLite", 1), ("PostgreSQL", 1), ("SQLite", 2), ("PostgreSQL", 2)]
    )
    results = []
    for database, workers in nodes:
        if database == "SQLite":
            results += measure(database, None, quick, workers)
            continue
        url = postgres_url()  # a fresh database for each node
        if url is not None:
            results += measure(database, url, quick, workers)
    return results
