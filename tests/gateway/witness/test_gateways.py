"""Two gateway processes on one PostgreSQL log: kill one during appends, lose nothing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from tests.cluster import (
    Process,
    add_anchor_client,
    make_witnesses,
    stopped_at_exit,
    witness_log,
    witnesses_setting,
)
from tests.nodes import http_get, until, wait_for


def metric(process: Process, name: str) -> float | None:
    status, body = http_get(process.url + "/metrics")
    if status != 200:
        return None
    found = re.search(rf"^{name} (\S+)$", body.decode(), re.MULTILINE)
    return float(found.group(1)) if found else None


async def load(
    gateways: list[Process], token: str, victim: Process, before: int, after: int
) -> dict[str, str]:
    """Anchor on every gateway; kill ``victim`` once ``before`` records are acknowledged and
    stop once ``after`` more are (so a loaded machine gets as far as a quiet one).

    Returns the acknowledged records (201: durably queued): record id -> leaf hash.
    """
    acknowledged: dict[str, str] = {}
    stop = asyncio.Event()
    headers = {"Authorization": f"Bearer {token}"}
    counter = iter(range(10**9))

    async def worker(session: aiohttp.ClientSession, gateway: Process) -> None:
        while not stop.is_set():
            n = next(counter)
            digest = base64.b64encode(hashlib.sha256(f"k{n}".encode()).digest()).decode()
            body = {"subject": f"s{n % 50}", "kind": "test.item", "digest": digest}
            try:
                async with session.post(
                    gateway.url + "/api/v1/anchors", json=body, headers=headers
                ) as response:
                    if response.status == 201:
                        link = await response.json()
                        acknowledged[link["record"]] = link["leaf_hash"]
            except (aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.05)  # the gateway is gone: nothing was acknowledged

    def at_least(count: int) -> Callable[[], Awaitable[bool]]:
        async def enough() -> bool:
            return len(acknowledged) >= count

        return enough

    async def killer() -> None:
        await until(at_least(before), "anchors before the kill")
        await asyncio.get_running_loop().run_in_executor(None, victim.kill)
        await until(at_least(len(acknowledged) + after), "anchors after the kill")
        stop.set()

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        workers = [worker(session, g) for g in gateways for _ in range(8)]
        try:
            await asyncio.gather(killer(), *workers)
        finally:
            stop.set()
    return acknowledged


async def stored_leaf_hashes(database_url: str) -> set[str]:
    conn = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        rows = await conn.fetch("SELECT leaf_hash FROM ledger_leaf")
        return {str(r["leaf_hash"]) for r in rows}
    finally:
        await conn.close()


@pytest.mark.slow
def test_kill_one_of_two_gateways_during_appends(tmp_path: Path, pg_database_url: str) -> None:
    [witness] = make_witnesses(tmp_path, 1)
    witness.start()
    shared = {
        "SEKISHO_DATABASE_URL": pg_database_url,
        "SEKISHO_LEDGER_ORIGIN": "sekisho.example/cluster",
        "SEKISHO_LEDGER_BATCH_MS": "2",
        "SEKISHO_LEDGER_AUDIT_SECONDS": "0",
        "SEKISHO_LEDGER_WITNESSES": witnesses_setting([witness]),
    }
    data = tmp_path / "gateway"  # one data dir: both processes use the same token
    first = Process(data, ["serve"], {**shared, "SEKISHO_NODE_NAME": "gw-a"})
    second = Process(data, ["serve"], {**shared, "SEKISHO_NODE_NAME": "gw-b"})
    done = first.cli("init")
    assert done.returncode == 0, done.stderr
    token = add_anchor_client(first)
    with stopped_at_exit(first, second, witness):
        first.start()
        wait_for(lambda: metric(first, "sekisho_ledger_is_sequencer") == 1, what="a sequencer")
        second.start()
        witness_log([witness], first)
        assert metric(second, "sekisho_ledger_is_sequencer") == 0
        for gateway in (first, second):  # both serve reads
            assert gateway.get_json("/api/v1/ledger/checkpoint")["size"] >= 0

        acknowledged = asyncio.run(load([first, second], token, first, before=100, after=100))

        assert first.process is not None and first.process.returncode == -9
        wait_for(lambda: metric(second, "sekisho_ledger_is_sequencer") == 1, what="failover")
        wait_for(
            lambda: metric(second, "sekisho_ledger_pending_entries") == 0, what="the queue drained"
        )
        missing = set(acknowledged.values()) - asyncio.run(stored_leaf_hashes(pg_database_url))
        assert not missing, f"{len(missing)} acknowledged entries were lost"
        size = int(second.get_json("/api/v1/ledger/checkpoint")["size"])
        # The survivor also took over sending checkpoints to the witness.
        wait_for(
            lambda: (second.get_json("/api/v1/ledger/witnesses")["final_size"] or 0) >= size,
            what="the survivor's checkpoints cosigned",
        )
        done = second.cli("ledger", "verify")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"ledger OK: {size} entries" in done.stdout
