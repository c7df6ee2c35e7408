"""Two gateway processes on one PostgreSQL database share one sign-in throttle (#14).

The counters live in the database and every check reserves its slot there first,
so guesses spread over several processes check no more passwords than the limit.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest

from tests.cluster import Process, start_all, stopped_at_exit

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
LIMIT = 5


async def attempt(
    base: str, username: str, password: str, together: asyncio.Barrier | None = None
) -> int:
    """One browser: the sign-in page (cookie and CSRF token), then the form (``together``
    with the other browsers once all have their forms)."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
        async with browser.get(base + "/login") as page:
            found = _CSRF.search(await page.text())
        assert found is not None
        form = {"csrf": found.group(1), "username": username, "password": password, "next": "/"}
        if together is not None:
            await together.wait()
        async with browser.post(base + "/login", data=form, allow_redirects=False) as answer:
            return answer.status


async def guesses(bases: list[str], count: int) -> list[int]:
    together = asyncio.Barrier(count)
    return list(
        await asyncio.gather(
            *(attempt(bases[n % len(bases)], "alice", f"guess {n}", together) for n in range(count))
        )
    )


@pytest.mark.slow
def test_guesses_spread_over_two_processes_check_at_most_the_limit(
    tmp_path: Path, pg_database_url: str
) -> None:
    extra = {
        "SEKISHO_DATABASE_URL": pg_database_url,
        "SEKISHO_PORTAL_MAX_FAILURES": str(LIMIT),
        "SEKISHO_PORTAL_MAX_ADDRESS_FAILURES": "1000",
        "SEKISHO_LEDGER_AUDIT_SECONDS": "0",
    }
    first = Process(tmp_path / "var", ["serve"], extra)
    assert first.cli("init").returncode == 0
    added = first.cli("users", "add", "alice", "--level", "SECRET")
    assert added.returncode == 0, added.stderr
    password = added.stdout.split("one-time password for 'alice': ")[1].split()[0]
    second = Process(tmp_path / "var", ["serve"], extra)
    with stopped_at_exit(first, second):
        start_all(first, second)
        statuses = asyncio.run(guesses([first.url, second.url], 60))
        right = asyncio.run(attempt(second.url, "alice", password))
    assert statuses.count(401) == LIMIT - 1, statuses  # the last allowed failure locks: 429
    assert statuses.count(429) == 60 - (LIMIT - 1)
    assert right == 429  # locked in both processes: the right password is not checked


@pytest.mark.slow
def test_guesses_spread_over_the_workers_of_one_node_check_at_most_the_limit(
    tmp_path: Path,
) -> None:
    """``serve --workers 2`` on SQLite: the workers share the throttle as separate nodes do."""
    extra = {
        "SEKISHO_PORTAL_MAX_FAILURES": str(LIMIT),
        "SEKISHO_PORTAL_MAX_ADDRESS_FAILURES": "1000",
        "SEKISHO_LEDGER_AUDIT_SECONDS": "0",
        "SEKISHO_HTTP_WORKERS": "2",
    }
    node = Process(tmp_path / "var", ["serve"], extra)
    assert node.cli("init").returncode == 0
    added = node.cli("users", "add", "alice", "--level", "SECRET")
    assert added.returncode == 0, added.stderr
    password = added.stdout.split("one-time password for 'alice': ")[1].split()[0]
    with stopped_at_exit(node):
        node.start()
        statuses = asyncio.run(guesses([node.url], 60))  # 60 connections: both workers accept
        right = asyncio.run(attempt(node.url, "alice", password))
    assert "2 worker processes" in node.log.read_text()
    assert statuses.count(401) == LIMIT - 1, statuses
    assert statuses.count(429) == 60 - (LIMIT - 1)
    assert right == 429
