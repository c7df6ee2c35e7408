"""Several real processes on one log: one sequencer, no gaps, nothing acknowledged lost."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.db.setup import close_database, open_database
from gateway.ledger.entries import open_entry
from gateway.ledger.store import TortoiseLedgerStore
from gateway.tlog.merkle import leaf_hash, root_from_leaves
from gateway.tlog.note import parse_note
from tests.nodes import node_env, run_cli, wait_for


def start_appender(
    data_dir: Path, count: int, ack: Path, extra: dict[str, str]
) -> subprocess.Popen[bytes]:
    """An appender process; its stderr goes to a file beside ``ack`` (a pipe nobody
    reads while the test waits on another process could fill up and stall it)."""
    with open(ack.with_suffix(".err"), "ab") as errors:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.ledger_appender", str(count), str(ack)],
            env=node_env(data_dir, extra),
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )


def finished(process: subprocess.Popen[bytes], ack: Path, timeout: float = 600) -> None:
    """Wait for an appender and check it succeeded (its stderr's end if not)."""
    process.wait(timeout=timeout)
    assert process.returncode == 0, ack.with_suffix(".err").read_text()[-2000:]


def read_acks(paths: list[Path]) -> tuple[dict[int, str], dict[int, int]]:
    """queue id -> entry digest (queued) and queue id -> index (integrated)."""
    queued: dict[int, str] = {}
    integrated: dict[int, int] = {}
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) != 3:
                continue  # a line cut short by kill -9 was never acknowledged
            kind, queue_id, value = parts
            if kind == "queued":
                queued[int(queue_id)] = value
            elif kind == "integrated":
                integrated[int(queue_id)] = int(value)
    return queued, integrated


async def pending_entries(database_url: str) -> int:
    """Entries queued by ``init`` before any sequencer ran."""
    await open_database(database_url)
    try:
        return await TortoiseLedgerStore().pending_count()
    finally:
        await close_database()


async def check_log(database_url: str, queued: dict[int, str], integrated: dict[int, int]) -> int:
    """Contiguous, unique, every acknowledged entry present, checkpoints consistent."""
    await open_database(database_url)
    try:
        store = TortoiseLedgerStore()
        latest = await store.latest_checkpoint()
        assert latest is not None
        data = await store.leaves(0, latest.size)
        assert len(data) == latest.size, "gap in the leaf indexes"
        assert len(set(data)) == len(data), "duplicate entries"
        rows = await store.indexes_for_queue_ids(list(queued))
        assert set(rows) == set(queued), "an acknowledged entry is missing"
        for queue_id, index in integrated.items():
            assert rows[queue_id] == index
        openings = await store.openings([leaf_hash(d) for d in data])
        for queue_id, digest in queued.items():
            entry = data[rows[queue_id]]
            assert digest in str(open_entry(entry, openings.get(leaf_hash(entry))))
        hashes = [leaf_hash(d) for d in data]
        checkpoints = await store.checkpoints(-1, 1_000_000)
        sizes = [c.size for c in checkpoints]
        assert sizes == sorted(set(sizes)), "checkpoints must strictly grow"
        origin = parse_note(checkpoints[0].note).text.split("\n")[0]
        for checkpoint in checkpoints:
            # Each checkpoint commits to a prefix of the one final tree: mutually consistent.
            assert checkpoint.root == root_from_leaves(hashes[: checkpoint.size])
            assert parse_note(checkpoint.note).text.startswith(origin + "\n")
        return latest.size
    finally:
        await close_database()


@pytest.mark.slow
def test_three_processes_on_postgres_share_one_tree(tmp_path: Path, pg_database_url: str) -> None:
    data_dir = tmp_path / "var"
    extra = {"SEKISHO_DATABASE_URL": pg_database_url}
    assert run_cli(["init"], data_dir, extra).returncode == 0
    init_entries = asyncio.run(pending_entries(pg_database_url))
    acks = [tmp_path / f"ack-{n}.txt" for n in range(3)]
    counts = [3334, 3333, 3333]
    processes = [start_appender(data_dir, c, a, extra) for c, a in zip(counts, acks, strict=True)]
    for process, ack in zip(processes, acks, strict=True):
        finished(process, ack)
    queued, integrated = read_acks(acks)
    assert len(queued) == 10_000
    assert len(integrated) == 10_000
    size = asyncio.run(check_log(pg_database_url, queued, integrated))
    assert size == 10_000 + init_entries


@pytest.mark.slow
def test_leadership_moves_when_the_sequencer_is_killed(
    tmp_path: Path, pg_database_url: str
) -> None:
    data_dir = tmp_path / "var"
    extra = {"SEKISHO_DATABASE_URL": pg_database_url}
    assert run_cli(["init"], data_dir, extra).returncode == 0
    acks = [tmp_path / f"ack-{n}.txt" for n in range(2)]
    first = start_appender(data_dir, 3000, acks[0], extra)
    # The first process alone leads: its entries are integrated as it appends them.
    wait_for(lambda: read_acks(acks[:1])[1], what="the first process to sequence")
    second = start_appender(data_dir, 3000, acks[1], extra)
    wait_for(lambda: read_acks(acks[1:])[0], what="the second process to queue entries")
    first.send_signal(signal.SIGKILL)
    first.wait()
    finished(second, acks[1])
    queued, integrated = read_acks(acks)
    assert len(queued) >= 3000
    asyncio.run(check_log(pg_database_url, queued, integrated))


@pytest.mark.slow
def test_kill_9_of_the_sequencer_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    assert run_cli(["init"], data_dir).returncode == 0
    ack = tmp_path / "ack.txt"
    rng = random.Random(os.getpid())
    for _ in range(4):
        acknowledged = len(read_acks([ack])[0])
        process = start_appender(data_dir, 4000, ack, {})
        # killed at a random moment once it appends (starting takes long on a loaded machine)
        wait_for(lambda: len(read_acks([ack])[0]) > acknowledged, what="the appender to append")  # noqa: B023
        time.sleep(rng.uniform(0.0, 1.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
    drain = start_appender(data_dir, 0, ack, {})
    finished(drain, ack, timeout=300)
    queued, integrated = read_acks([ack])
    assert queued, "the appender acknowledged nothing before being killed"
    database_url = f"sqlite://{data_dir / 'sekisho.sqlite3'}"
    asyncio.run(check_log(database_url, queued, integrated))
