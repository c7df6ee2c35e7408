"""The throttle counters' rules over time, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.auth.models import SignInThrottle
from gateway.auth.throttle import Counter, Throttle
from tests.gateway.databases import database_url, opened

WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=10)
ALICE = Counter("account", "alice", 3)
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
async def throttle(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Throttle]:
    async with opened(database_url(request, tmp_path)):
        yield Throttle(WINDOW, LOCKOUT)


async def fail(throttle: Throttle, at: datetime) -> datetime | None:
    assert await throttle.reserve(ALICE, at) is None
    return await throttle.failed(ALICE, at)


async def test_the_limit_locks_until_the_lock_out_ends(throttle: Throttle) -> None:
    assert await fail(throttle, T0) is None
    assert await fail(throttle, T0) is None
    assert await fail(throttle, T0) == T0 + LOCKOUT
    refused = await throttle.reserve(ALICE, T0 + LOCKOUT - timedelta(seconds=1))
    assert refused is not None and refused.until == T0 + LOCKOUT
    assert await throttle.reserve(ALICE, T0 + LOCKOUT) is None  # ended: counting starts again
    assert await throttle.failed(ALICE, T0 + LOCKOUT) is None


async def test_pending_checks_hold_their_slots_and_a_success_gives_them_back(
    throttle: Throttle,
) -> None:
    for _ in range(3):
        assert await throttle.reserve(ALICE, T0) is None
    refused = await throttle.reserve(ALICE, T0)  # three checks running: no fourth
    assert refused is not None and refused.until == T0 + LOCKOUT
    await throttle.succeeded(ALICE, clear=True)
    assert await throttle.reserve(ALICE, T0) is None


async def test_a_success_clears_an_account_but_not_an_address(throttle: Throttle) -> None:
    office = Counter("address", "192.0.2.1", 3)
    for counter in (ALICE, office):
        for _ in range(2):
            assert await throttle.reserve(counter, T0) is None
            assert await throttle.failed(counter, T0) is None
        assert await throttle.reserve(counter, T0) is None
        await throttle.succeeded(counter, clear=counter.scope == "account")
    rows = {r.scope: r.failures for r in await SignInThrottle.all()}
    assert rows == {"account": 0, "address": 2}


async def test_failures_older_than_the_window_are_forgotten_and_purged(
    throttle: Throttle,
) -> None:
    assert await fail(throttle, T0) is None
    assert await fail(throttle, T0) is None
    later = T0 + WINDOW + timedelta(seconds=1)
    assert await throttle.purge(T0) == 0  # still counting
    assert await throttle.purge(later) == 1
    assert await fail(throttle, later) is None  # a fresh count: one failure, not three
    assert await fail(throttle, later) is None
