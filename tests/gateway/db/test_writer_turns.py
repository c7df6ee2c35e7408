"""SQLite writers in several processes take turns: none waits out the others (#19).

Two other processes write in a tight loop, as two busy gateway workers do. Before
the writer lock, a third process's writes waited in SQLite's sleeping busy
handler and failed with "database is locked" after the 10 s busy timeout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tortoise import connections

from gateway.db.outage import is_database_busy
from gateway.db.sqlite_engine import is_write, one_hop_writer, sqlite_writer
from gateway.db.transaction import transaction
from gateway.db.writer_lock import WriterLock
from tests.gateway.databases import opened

ROOT = Path(__file__).resolve().parents[3]
HAMMER_SECONDS = 120
HAMMER = """
import asyncio, sys, time
from tortoise import connections
from gateway.db.setup import close_database, open_database
from gateway.db.transaction import transaction
from gateway.db.writer_lock import WriterLock

async def main():
    await open_database(sys.argv[1])
    print("writing", flush=True)
    stop = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < stop:
        async with transaction() as conn:
            await conn.execute_query("INSERT INTO probe (who) VALUES ('hammer')")
    await close_database()

asyncio.run(main())
"""


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'turns.sqlite3'}"


@pytest.fixture
def hammers(database: str) -> Iterator[Callable[[], list[subprocess.Popen[str]]]]:
    """Two processes writing as fast as they can (started once the table exists)."""
    started: list[subprocess.Popen[str]] = []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def start() -> list[subprocess.Popen[str]]:
        for _ in range(2):
            process = subprocess.Popen(
                [sys.executable, "-c", HAMMER, database, str(HAMMER_SECONDS)],
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            started.append(process)
        for process in started:
            assert process.stdout is not None and process.stdout.readline() == "writing\n"
        return started

    yield start
    for process in started:
        process.kill()
        process.wait()


async def test_a_third_process_writes_while_two_others_hammer(
    database: str, hammers: Callable[[], list[subprocess.Popen[str]]]
) -> None:
    async with opened(database):
        await connections.get("default").execute_script(
            "CREATE TABLE probe (id INTEGER PRIMARY KEY, who TEXT NOT NULL)"
        )
        running = hammers()
        for n in range(40):
            async with transaction() as conn:  # reads, then writes: begins IMMEDIATE
                rows = await conn.execute_query_dict("SELECT COUNT(*) AS n FROM probe")
                await conn.execute_query(
                    "INSERT INTO probe (who) VALUES (?)", [f"third {n} after {rows[0]['n']}"]
                )
            await connections.get("default").execute_query(  # a write outside a transaction
                "INSERT INTO probe (who) VALUES ('third, alone')"
            )
            await sqlite_writer(connections.get("default")).write_at_once(
                lambda db: db.execute("INSERT INTO probe (who) VALUES ('third, in one hop')")
            )
        assert all(process.poll() is None for process in running), "the others stopped first"
        rows = await connections.get("default").execute_query_dict(
            "SELECT who, COUNT(*) AS n FROM probe GROUP BY who = 'hammer'"
        )
    counts = {row["who"] == "hammer": row["n"] for row in rows}
    assert counts[False] == 120
    assert counts[True] > 0


@pytest.mark.parametrize(
    ("query", "writes"),
    [
        ("SELECT 1", False),
        ("  select * FROM t", False),
        ("(SELECT 1) UNION (SELECT 2)", False),
        ("EXPLAIN QUERY PLAN SELECT 1", False),
        ("INSERT INTO t VALUES (1)", True),
        ("WITH x AS (SELECT 1) DELETE FROM t", True),
        ("PRAGMA wal_checkpoint", True),
        ("UPDATE t SET a = 1", True),
    ],
)
def test_statements_that_write_take_the_writer_lock(query: str, writes: bool) -> None:
    assert is_write(query) is writes


async def test_a_read_is_answered_while_this_process_writes(database: str) -> None:
    """A lookup does not queue behind the process's open write transaction (B7's downloads)."""
    async with opened(database):
        outside = connections.get("default")
        await outside.execute_script("CREATE TABLE probe (id INTEGER PRIMARY KEY, who TEXT)")
        await outside.execute_query("INSERT INTO probe (who) VALUES ('committed')")
        written, finish = asyncio.Event(), asyncio.Event()

        async def slow_writer() -> None:
            async with transaction() as conn:
                await conn.execute_query("INSERT INTO probe (who) VALUES ('uncommitted')")
                written.set()
                await finish.wait()

        writer = asyncio.create_task(slow_writer())
        await written.wait()
        async with asyncio.timeout(30):  # before: waited for the transaction, which waits for us
            rows = await outside.execute_query_dict("SELECT who FROM probe ORDER BY id")
        finish.set()
        await writer
        after = await outside.execute_query_dict("SELECT who FROM probe ORDER BY id")
    assert [row["who"] for row in rows] == ["committed"]
    assert [row["who"] for row in after] == ["committed", "uncommitted"]


@dataclasses.dataclass
class HeldLock:
    """A writer lock file that another process holds until ``let_go`` (as if it had stopped)."""

    path: str
    holder: subprocess.Popen[str]

    def let_go(self) -> None:
        self.holder.communicate("go\n")


def _hold(path: str) -> subprocess.Popen[str]:
    """Another process holding ``path``'s lock until it reads a line."""
    holder = subprocess.Popen(
        ["flock", "--exclusive", path, "sh", "-c", "echo held; read line"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


@pytest.fixture
def held_lock(tmp_path: Path) -> Iterator[HeldLock]:
    path = str(tmp_path / "stuck.sqlite3-writer")
    holder = _hold(path)
    yield HeldLock(path, holder)
    holder.kill()
    holder.wait()


async def test_a_writer_stuck_in_another_process_is_a_busy_error_not_a_hang(
    held_lock: HeldLock,
) -> None:
    lock = WriterLock(held_lock.path, wait_seconds=0.5)
    for _ in range(2):  # the second wait queues behind the first, still blocked
        with pytest.raises(sqlite3.OperationalError) as caught:
            await lock.acquire()
        assert is_database_busy(caught.value)
        assert "another process kept the SQLite writer lock" in str(caught.value)
        assert not lock.held
    lock.close()  # returns although a wait is still blocked in the kernel


async def test_the_lock_is_taken_once_the_stuck_writer_lets_go(held_lock: HeldLock) -> None:
    lock = WriterLock(held_lock.path, wait_seconds=0.5)
    with pytest.raises(sqlite3.OperationalError):
        await lock.acquire()
    held_lock.let_go()  # the holder exits, its lock with it
    await lock.acquire()
    assert lock.held
    other = WriterLock(held_lock.path, wait_seconds=0.5)  # a second writer waits its turn
    with pytest.raises(sqlite3.OperationalError):
        await other.acquire()
    lock.release()
    await other.acquire()
    other.close()
    lock.close()


async def test_a_one_hop_write_commits_everything_or_nothing(database: str) -> None:
    async with opened(database):
        client = connections.get("default")
        await client.execute_script("CREATE TABLE probe (id INTEGER PRIMARY KEY, who TEXT)")
        writer = sqlite_writer(client)

        def two_rows_then_fail(db: sqlite3.Connection) -> None:
            db.executemany("INSERT INTO probe (who) VALUES (?)", [("lost",), ("lost too",)])
            raise ValueError("the work failed")

        with pytest.raises(ValueError, match="the work failed"):
            await writer.write_at_once(two_rows_then_fail)
        kept = await writer.write_at_once(
            lambda db: db.execute("INSERT INTO probe (who) VALUES ('kept')").lastrowid
        )
        rows = await client.execute_query_dict("SELECT id, who FROM probe")  # the ORM's connection
    assert rows == [{"id": kept, "who": "kept"}]


async def test_a_cancelled_one_hop_write_still_finishes_and_gives_the_locks_back(
    database: str,
) -> None:
    async with opened(database):
        client = connections.get("default")
        await client.execute_script("CREATE TABLE probe (id INTEGER PRIMARY KEY, who TEXT)")
        writer = sqlite_writer(client)
        started, finish = threading.Event(), threading.Event()

        def slow(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO probe (who) VALUES ('slow')")
            started.set()
            finish.wait(30)

        task = asyncio.create_task(writer.write_at_once(slow))
        await asyncio.to_thread(started.wait, 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        finish.set()
        async with transaction() as conn:  # waits for the slow one's locks, then writes
            await conn.execute_query("INSERT INTO probe (who) VALUES ('next')")
        rows = await client.execute_query_dict("SELECT who FROM probe ORDER BY id")
    assert [row["who"] for row in rows] == ["slow", "next"]


async def test_no_one_hop_write_inside_a_transaction(database: str) -> None:
    async with opened(database), transaction() as conn:
        assert one_hop_writer(conn) is None
        with pytest.raises(TypeError, match="needs the database's own client"):
            sqlite_writer(conn)


async def test_a_one_hop_write_gives_the_writer_lock_back_while_the_loop_is_busy(
    database: str, tmp_path: Path
) -> None:
    """Another process waits for the transaction only, not for this event loop's next turn."""
    async with opened(database):
        client = connections.get("default")
        await client.execute_script("CREATE TABLE probe (id INTEGER PRIMARY KEY, who TEXT)")
        written = threading.Event()

        def one_row(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO probe (who) VALUES ('quick')")
            written.set()

        task = asyncio.create_task(sqlite_writer(client).write_at_once(one_row))
        await asyncio.to_thread(written.wait, 30)
        another_process = os.open(str(tmp_path / "turns.sqlite3-writer"), os.O_RDWR)
        try:
            taken = False
            for _ in range(200):  # the loop stays blocked here: it cannot give anything back
                try:
                    fcntl.flock(another_process, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    time.sleep(0.01)  # noqa: ASYNC251 - the loop must stay blocked
                    continue
                taken = True
                fcntl.flock(another_process, fcntl.LOCK_UN)
                break
        finally:
            os.close(another_process)
        await task
    assert taken


async def test_a_one_hop_write_behind_a_stuck_process_is_a_busy_error_then_goes_through(
    database: str, tmp_path: Path
) -> None:
    lock_path = str(tmp_path / "turns.sqlite3-writer")
    async with opened(database):
        writer = sqlite_writer(connections.get("default"))
        if writer.writer_lock is not None:
            writer.writer_lock.close()
        writer.writer_lock = WriterLock(lock_path, wait_seconds=0.5)
        holder = _hold(lock_path)
        try:
            with pytest.raises(sqlite3.OperationalError) as caught:
                await writer.write_at_once(lambda db: db.execute("CREATE TABLE probe (x)"))
            assert is_database_busy(caught.value)
            holder.communicate("go\n")  # the stuck process lets go
            await writer.write_at_once(lambda db: db.execute("CREATE TABLE probe (x)"))
        finally:
            holder.kill()
            holder.wait()
        rows = await connections.get("default").execute_query_dict("SELECT * FROM probe")
    assert rows == []
