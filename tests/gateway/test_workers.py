"""``sekisho serve --workers N``: one port, N processes, one sequencer, nothing lost to kill -9."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from gateway.cli.supervisor import START_TIMEOUT_SECONDS
from tests.nodes import SEKISHO, free_port, http_get, node_env, run_cli, until, wait_for

pytestmark = pytest.mark.slow


def worker_pids(supervisor: int) -> list[int]:
    """The supervisor's children (the workers)."""
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(supervisor)], capture_output=True, text=True, check=False
    ).stdout
    return [int(pid) for pid in out.split()]


def sequencer_lock_holders(lock_file: Path) -> int:
    """How many processes hold the SQLite deployment's sequencer flock (from /proc/locks)."""
    inode = lock_file.stat().st_ino
    holders = 0
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "FLOCK" in fields and fields[-3].endswith(f":{inode}"):
            holders += 1
    return holders


async def anchor_until(
    url: str, token: str, stop: asyncio.Event, acknowledged: dict[str, str]
) -> None:
    """Anchor records until ``stop`` is set, filling in the acknowledged ones (record id ->
    leaf hash)."""
    headers = {"Authorization": f"Bearer {token}"}
    counter = iter(range(10**9))

    async def worker(session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            n = next(counter)
            digest = base64.b64encode(hashlib.sha256(f"w{n}".encode()).digest()).decode()
            body = {"subject": f"item-{n % 20}", "kind": "test.item", "digest": digest}
            try:
                async with session.post(url, json=body, headers=headers) as response:
                    if response.status == 201:
                        link = await response.json()
                        acknowledged[link["record"]] = link["leaf_hash"]
            except (aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.05)

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(16)))


async def test_workers_share_one_port_and_lose_nothing_to_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    assert run_cli(["init"], data_dir).returncode == 0
    added = run_cli(["clients", "add", "loader", "--scopes", "anchor", "--rate", "0"], data_dir)
    assert added.returncode == 0, added.stderr
    token = next(ln for ln in added.stdout.splitlines() if "bearer token" in ln).rsplit(" ", 1)[1]
    port = free_port()
    log = tmp_path / "serve.log"
    env = node_env(data_dir, {"SEKISHO_LEDGER_BATCH_MS": "2"})
    with open(log, "wb") as out:
        supervisor = subprocess.Popen(  # noqa: ASYNC220 - started once, then awaited on
            [*SEKISHO, "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        # the supervisor starts the second worker once the first is ready (each within
        # START_TIMEOUT_SECONDS; over a minute for both on a loaded machine)
        started = 2 * START_TIMEOUT_SECONDS
        wait_for(lambda: len(worker_pids(supervisor.pid)) == 2, started, "two workers")
        wait_for(lambda: http_get(base + "/readyz", timeout=2)[0] == 200, what="readiness")
        assert "2 worker processes" in log.read_text()
        lock_file = data_dir / "sequencer.lock"
        wait_for(lambda: lock_file.exists() and sequencer_lock_holders(lock_file) == 1, what="lock")

        acknowledged: dict[str, str] = {}
        stop = asyncio.Event()
        url = base + "/api/v1/anchors"
        running = asyncio.create_task(anchor_until(url, token, stop, acknowledged))

        def acknowledged_at_least(count: int) -> Callable[[], Awaitable[bool]]:
            async def enough() -> bool:
                return len(acknowledged) >= count

            return enough

        await until(acknowledged_at_least(25), "the first anchors")
        victim = worker_pids(supervisor.pid)[0]
        os.kill(victim, signal.SIGKILL)
        killed_at = len(acknowledged)
        await until(acknowledged_at_least(killed_at + 25), "anchors after the kill")
        stop.set()
        await running

        wait_for(
            lambda: (
                len(worker_pids(supervisor.pid)) == 2 and victim not in worker_pids(supervisor.pid)
            ),
            60,
            "a replacement worker",
        )
        assert re.search(rf"worker \d \(pid {victim}\) exited", log.read_text())
        assert sequencer_lock_holders(lock_file) == 1  # still exactly one sequencer

        # every acknowledged anchor is in the ledger exactly once
        def integrated() -> bool:
            with sqlite3.connect(data_dir / "sekisho.sqlite3") as db:
                return not db.execute("SELECT COUNT(*) FROM ledger_pending").fetchone()[0]

        wait_for(integrated, what="the queue to drain")
        with sqlite3.connect(data_dir / "sekisho.sqlite3") as db:
            leaves = [str(row[0]) for row in db.execute("SELECT leaf_hash FROM ledger_leaf")]
        assert len(leaves) == len(set(leaves))
        assert set(acknowledged.values()) <= set(leaves)
    finally:
        supervisor.send_signal(signal.SIGINT)
        supervisor.wait(timeout=60)
    assert worker_pids(supervisor.pid) == []
    verified = run_cli(["ledger", "verify"], data_dir)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def connections_per_worker(port: int, workers: list[int]) -> dict[int, int]:
    """How many established connections to ``port`` each worker process holds (from /proc)."""
    established: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                established.add(fields[9])  # the socket's inode
    held: dict[int, int] = {}
    for pid in workers:
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        held[pid] = len(inodes & established)
    return held


async def test_a_burst_of_connections_is_spread_over_the_workers(tmp_path: Path) -> None:
    """A hundred keep-alive clients connecting at once are shared by both workers (each
    worker has its own socket on the port). With one socket that both accepted on,
    whichever worker woke first took the burst: 60 of 64 clients on one worker was seen."""
    data_dir = tmp_path / "var"
    assert run_cli(["init"], data_dir).returncode == 0
    port = free_port()
    with open(tmp_path / "serve.log", "wb") as out:
        supervisor = subprocess.Popen(  # noqa: ASYNC220 - started once, then awaited on
            [*SEKISHO, "serve", "--port", str(port), "--workers", "2"],
            env=node_env(data_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    streams: list[asyncio.StreamWriter] = []
    try:
        wait_for(lambda: len(worker_pids(supervisor.pid)) == 2, 2 * START_TIMEOUT_SECONDS)
        wait_for(lambda: http_get(base + "/readyz", timeout=2)[0] == 200, what="readiness")
        opened = await asyncio.gather(
            *(asyncio.open_connection("127.0.0.1", port) for _ in range(100))
        )
        streams = [writer for _, writer in opened]
        workers = worker_pids(supervisor.pid)
        held = wait_for(
            lambda: (n := connections_per_worker(port, workers)) and sum(n.values()) == 100 and n,
            what="every connection accepted",
        )
        assert min(held.values()) >= 25, held  # an even share is 50 +- 5 (binomial)
    finally:
        for writer in streams:
            writer.close()
        supervisor.send_signal(signal.SIGINT)
        supervisor.wait(timeout=60)


def test_workers_refuse_a_port_another_process_shares(tmp_path: Path) -> None:
    """SO_REUSEPORT must not let a node join a port that another process (an old node, of
    the same user) already listens on with it: the two would split the clients."""
    data_dir = tmp_path / "var"
    assert run_cli(["init"], data_dir).returncode == 0
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        served = run_cli(["serve", "--port", str(port), "--workers", "2"], data_dir)
    assert served.returncode != 0
    errors = [line for line in served.stderr.splitlines() if line.startswith("sekisho: error")]
    assert errors == [f"sekisho: error: cannot listen on 127.0.0.1:{port}: Address already in use"]
    assert "Traceback" not in served.stderr
