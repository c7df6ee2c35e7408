"""A closed-loop HTTP load generator, run in its own process apart from the server's loop."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import dataclass

import aiohttp


@dataclass
class LoadResult:
    """Completed requests, errors, elapsed seconds and sampled latencies (ms)."""

    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


async def _drive(
    urls: list[str], headers: dict[str, str], concurrency: int, seconds: float
) -> LoadResult:
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0}
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker(offset: int) -> None:
            n = offset
            while time.perf_counter() < deadline:
                url = urls[n % len(urls)]
                n += concurrency
                start = time.perf_counter()
                try:
                    async with session.get(url) as response:
                        await response.read()
                        ok = response.status == 200
                except aiohttp.ClientError:
                    ok = False
                latencies.append((time.perf_counter() - start) * 1000)
                counts["ok" if ok else "errors"] += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - start
    return LoadResult(counts["ok"], counts["errors"], elapsed, latencies)


def _child(
    urls: list[str],
    headers: dict[str, str],
    concurrency: int,
    seconds: float,
    queue: multiprocessing.Queue[LoadResult],
) -> None:
    queue.put(asyncio.run(_drive(urls, headers, concurrency, seconds)))


def run_load(
    urls: list[str], headers: dict[str, str], concurrency: int, seconds: float
) -> LoadResult:
    """Run GET load against ``urls`` from a separate process and return its figures."""
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[LoadResult] = context.Queue()
    process = context.Process(target=_child, args=(urls, headers, concurrency, seconds, queue))
    process.start()
    result = queue.get(timeout=seconds + 120)
    process.join(timeout=30)
    return result
