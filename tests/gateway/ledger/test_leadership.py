"""Sequencer leadership on PostgreSQL: one holder, followers that do not churn connections."""

from __future__ import annotations

import asyncpg

from gateway.ledger.leadership import PostgresLeadership, lock_key


async def _sessions(dsn: str) -> int:
    """Connections to this test's database, besides the one asking."""
    conn = await asyncpg.connect(dsn.replace("postgres://", "postgresql://", 1))
    try:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        return int(await conn.fetchval(query)) - 1
    finally:
        await conn.close()


async def test_a_follower_keeps_one_connection_and_leads_as_soon_as_the_lock_is_given_up(
    pg_database_url: str,
) -> None:
    key = lock_key("leadership-test")
    leader, follower = (
        PostgresLeadership(pg_database_url, key),
        PostgresLeadership(pg_database_url, key),
    )
    try:
        assert await leader.try_acquire()
        for _ in range(20):  # a follower asks every few milliseconds while entries wait
            assert not await follower.try_acquire()
            assert not await follower.still_held()
        assert await _sessions(pg_database_url) == 2  # the leader's and the follower's
        await leader.release()
        assert await follower.try_acquire()  # unlocked, not left for the server to notice
        assert await follower.still_held()
        assert not await leader.try_acquire()
        await leader.release()  # a refused try gives its connection back
        assert await _sessions(pg_database_url) == 1
    finally:
        await leader.release()
        await follower.release()
