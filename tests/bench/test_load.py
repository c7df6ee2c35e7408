"""The benchmarks' load generator (wrk): what it sends and how it counts (nothing is timed here)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections import Counter
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bench.load import run_load

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")

SECRET = "Bearer not-on-the-command-line"


async def test_requests_cycle_the_urls_with_headers_and_body_and_errors_are_not_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    commands: list[list[str]] = []
    real_run = subprocess.run

    def recording_run(command: list[str], **options: Any) -> Any:
        commands.append(command)
        return real_run(command, **options)

    monkeypatch.setattr(subprocess, "run", recording_run)
    seen: Counter[tuple[str, str, str, bytes]] = Counter()

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        seen[request.method, request.path, request.headers.get("Authorization", ""), body] += 1
        return web.Response(status=404 if request.path == "/missing" else 200, text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    async with TestServer(app, host="127.0.0.1") as server:
        base = f"http://127.0.0.1:{server.port}"
        urls = [f"{base}/a", f"{base}/b", f"{base}/missing"]
        result = await asyncio.to_thread(
            run_load, urls, {"Authorization": SECRET}, 4, 1, method="POST", body='{"x": "é"}'
        )

    assert commands and not any(SECRET in arg for arg in commands[0])  # the token stays in a file
    paths = {path for (_, path, _, _) in seen}
    assert paths == {"/a", "/b", "/missing"}
    assert {(m, auth, body) for (m, _, auth, body) in seen} == {
        ("POST", SECRET, '{"x": "é"}'.encode())
    }
    missing = sum(n for (_, path, _, _), n in seen.items() if path == "/missing")
    answered = sum(seen.values())
    # every request the server answered in time is counted once, as a request or an error
    assert result.errors <= missing
    assert result.requests <= answered - result.errors
    assert result.requests > 0 and result.errors > 0
    assert result.rate > 0 and result.p99_ms >= result.p50_ms > 0
