"""An entry queued by a process that does not sequence is integrated when it rings (#19).

The follower here is a second ledger service on the node's database whose
leadership is never granted, as a second ``--workers`` process is. The
sequencer's poll is made an hour long, so only the doorbell can wake it within
the follower's wait.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from gateway.ledger import doorbell
from gateway.ledger.doorbell import Doorbell
from gateway.ledger.service import LedgerService
from gateway.ledger.store import TortoiseLedgerStore
from tests.gateway.ledger.conftest import MakeNode, NeverLeads


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_the_sequencer_integrates_a_follower_entry_when_rung(
    make_node: MakeNode,
    database: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = request.getfixturevalue("pg_database_url") if database == "postgres" else None
    node = await make_node(url)
    await node.append(1)  # the sequencer is running and has looked at least once
    monkeypatch.setattr(doorbell, "IDLE_WAIT", 3600.0)
    await node.append(1)  # its next wait is the hour-long one
    follower = LedgerService(
        TortoiseLedgerStore(),
        node.ledger.signer,
        cast(Any, NeverLeads()),
        node="follower",
        bell=Doorbell(node.settings.database_url),
    )
    await follower.start()
    try:
        tickets = [
            await follower.record("record.anchored", client="f", digest=f"{n:064x}")
            for n in range(3)
        ]
        assert all(ticket.index is None for ticket in tickets)  # queued, not sequenced here
        indexes = await asyncio.gather(*(follower.integrated(t, wait_seconds=30) for t in tickets))
    finally:
        await follower.stop()
    assert len(set(indexes)) == 3


async def test_a_ring_without_a_listener_is_harmless() -> None:
    bell = Doorbell("sqlite:///nowhere/at/all")
    bell.ring()  # nobody listens: no error, the sequencer's poll covers it
    woken = asyncio.Event()
    bell.listen(woken.set)
    other = Doorbell("sqlite:///nowhere/at/all")
    other.listen(lambda: None)  # the name is taken: this one does not listen
    other.ring()
    async with asyncio.timeout(30):
        await woken.wait()
    bell.close()
    other.close()


async def test_the_bell_is_named_without_the_database_password() -> None:
    """Socket names are world-readable (/proc/net/unix): the hash must not cover a password."""
    listening = Doorbell("postgres://sekisho:first-password@db.example:5432/sekisho")
    woken = asyncio.Event()
    listening.listen(woken.set)
    ringing = Doorbell("postgres://sekisho:other-password@db.example:5432/sekisho")
    ringing.ring()
    async with asyncio.timeout(30):
        await woken.wait()
    listening.close()
    ringing.close()
