"""B5: 4 KiB documents through the API at 64 concurrent clients (each access authorised,
decrypted and durably ledgered) against a bare aiohttp handler returning 4 KiB."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp

from bench import s3
from bench.common import Result
from bench.load import LoadResult, run_load
from bench.node import free_port, server_process, tree_cpu_seconds
from gateway.auth.principals import Principal
from gateway.auth.tokens import issue_token
from gateway.db.setup import close_database, open_database

SIZE = 4096
CONCURRENCY = 64


async def person_token(data_dir: Path, username: str = "alice") -> str:
    """A personal API token for a demo account, made directly in the node's database."""
    await open_database(f"sqlite://{data_dir / 'sekisho.sqlite3'}")
    try:
        return await issue_token(principal=await Principal.get(username=username))
    finally:
        await close_database()


def init_node(data_dir: Path, extra: dict[str, str] | None = None) -> None:
    """``sekisho init --demo`` into a data directory (``extra``: more settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEKISHO_")}
    env.update({"SEKISHO_DATA": str(data_dir), **(extra or {})})
    subprocess.run(
        [sys.executable, "-m", "gateway.cli.main", "init", "--demo"],
        env=env,
        check=True,
        capture_output=True,
    )


async def upload_many(base: str, headers: dict[str, str], count: int, size: int) -> list[str]:
    """Upload ``count`` random documents; return their ids."""
    ids = []
    async with aiohttp.ClientSession(headers=headers) as session:
        for n in range(count):
            url = f"{base}/api/v1/documents?title=Doc%20{n}&label=SECRET//LOGISTICS"
            async with session.post(url, data=os.urandom(size)) as response:
                response.raise_for_status()
                ids.append((await response.json())["id"])
    return ids


@contextlib.contextmanager
def ceiling_server(size: int) -> Iterator[str]:
    """The bare aiohttp baseline server."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.ceiling", str(port), str(size)])
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/x", timeout=1).read()  # noqa: S310
                break
            except OSError:
                time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def measure(quick: bool, extra: dict[str, str] | None = None) -> LoadResult:
    """The 4 KiB read load against one node (``extra``: e.g. the S3 settings)."""
    return measure_workers(quick, extra, (1,))[1][0]


def measure_workers(
    quick: bool, extra: dict[str, str] | None, workers: tuple[int, ...]
) -> dict[int, tuple[LoadResult, float]]:
    """The load (and server CPU ms per request) on one node served by each worker count."""
    seconds = 2.0 if quick else 15.0
    measured: dict[int, tuple[LoadResult, float]] = {}
    with tempfile.TemporaryDirectory(prefix="sekisho-b5-") as tmp:
        data_dir = Path(tmp) / "var"
        init_node(data_dir, extra)
        token = asyncio.run(person_token(data_dir))
        headers = {"Authorization": f"Bearer {token}"}
        ids: list[str] = []
        for count in workers:
            env = {**(extra or {}), "SEKISHO_HTTP_WORKERS": str(count)}
            with server_process(data_dir, env) as (base, pid):
                ids = ids or asyncio.run(upload_many(base, headers, 20 if quick else 200, SIZE))
                urls = [f"{base}/api/v1/documents/{doc}/content" for doc in ids]
                run_load(urls, headers, CONCURRENCY, 0.5)  # warm every worker
                cpu = tree_cpu_seconds(pid)
                load = run_load(urls, headers, CONCURRENCY, seconds)
                used = tree_cpu_seconds(pid) - cpu
                measured[count] = (load, used * 1000 / max(1, load.requests))
    return measured


def run(quick: bool) -> list[Result]:
    """Requests per second and p99 for 4 KiB documents, next to the framework ceiling."""
    seconds = 2.0 if quick else 15.0
    by_workers = measure_workers(quick, None, (1, 2))
    (ours, cpu_one), (two, cpu_two) = by_workers[1], by_workers[2]
    with ceiling_server(SIZE) as ceiling_base:
        ceiling = run_load([ceiling_base + "/doc"], {}, CONCURRENCY, seconds)
    p99 = ours.p99_ms
    results = [
        Result(
            "B5",
            f"4 KiB document GET, {CONCURRENCY} clients, authorised+decrypted+ledgered "
            f"({ours.errors} errors)",
            ours.rate,
            "req/s",
            {"bare aiohttp 4 KiB": ceiling.rate},
            "bare aiohttp 4 KiB",
            ">= 1,000 req/s; p99 < 100 ms",
            ours.rate >= 1000 and p99 < 100 and ours.errors == 0,
            note=f"{cpu_one:.2f} ms server CPU per read",
        ),
        Result(
            "B5",
            f"the same with --workers 2 ({two.errors} errors; {cpu_two:.2f} ms server CPU per "
            "read; the load generator shares the 2 cores)",
            two.rate,
            "req/s",
            {"1 worker": ours.rate, "bare aiohttp 4 KiB": ceiling.rate},
            "1 worker",
            ">= 1.3x 1 worker",
            two.rate >= 1.3 * ours.rate,
        ),
        Result(
            "B5",
            "4 KiB document GET p99 latency",
            p99,
            "ms",
            {"bare aiohttp 4 KiB p99": ceiling.p99_ms},
            "bare aiohttp 4 KiB p99",
            "< 100 ms",
            p99 < 100,
        ),
    ]
    if s3.available():
        with s3.ceph_s3() as env:
            on_s3 = measure(quick, env)
        results.append(
            Result(
                "B5",
                f"the same on the S3 backend (Ceph RGW on loopback; {on_s3.errors} errors)",
                on_s3.rate,
                "req/s",
                {"filesystem": ours.rate, "bare aiohttp 4 KiB": ceiling.rate},
                "filesystem",
                "informational",
            )
        )
    return results
