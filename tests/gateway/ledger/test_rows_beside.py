"""An access-trail row lands with its entry's queue id; on SQLite it is written in the
transaction that writes the entry (the sequencer's batch, or the queue's write in a process
that does not sequence), and by its request when that batch fails: never lost, never twice."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import pytest

from gateway.documents.access import AccessRecorder
from gateway.documents.models import AccessEvent
from gateway.ledger.sequencer import direct_index
from gateway.ledger.service import LedgerService, Ticket
from gateway.ledger.store import IntegrationBatch, TortoiseLedgerStore
from tests.gateway.databases import database_url
from tests.gateway.ledger.conftest import MakeNode, NeverLeads


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_url(request, tmp_path)


async def _read(recorder: AccessRecorder, actor: str) -> None:
    await recorder.record_actor(
        actor,
        action="download",
        outcome="granted",
        reason="granted",
        source="192.0.2.7",
        document_id="0b5e0f5c-3f43-4c56-9a0e-1d2b3c4d5e6f",
        version=1,
    )


async def test_the_row_lands_with_its_entry(make_node: MakeNode, url: str) -> None:
    node = await make_node(url if url.startswith("postgres") else None)
    await _read(AccessRecorder(node.ledger), "person:ada")
    [row] = await AccessEvent.filter(actor="person:ada")
    entries = await node.ledger.opened_entries(0, (await node.ledger.latest()).size)
    entry = entries[direct_index(row.ledger_queue_id)]
    assert (entry["type"], entry["actor"], entry["action"]) == (
        "document.accessed",
        "person:ada",
        "download",
    )


async def test_a_failed_batch_leaves_the_row_to_its_request(
    make_node: MakeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite, where rows ride with their entries (PostgreSQL writes them apart)."""
    node = await make_node()
    integrate = TortoiseLedgerStore.integrate
    failures: list[int] = []

    async def fail_once(self: TortoiseLedgerStore, batch: IntegrationBatch) -> Any:
        if batch.beside and not failures:
            failures.append(len(batch.beside))
            raise OSError("the batch write failed")
        return await integrate(self, batch)

    monkeypatch.setattr(TortoiseLedgerStore, "integrate", fail_once)
    await _read(AccessRecorder(node.ledger), "person:bob")
    assert failures == [1]
    [row] = await AccessEvent.filter(actor="person:bob")  # exactly one
    index = await node.ledger.integrated(Ticket(row.ledger_queue_id))
    [entry] = await node.ledger.opened_entries(index, index + 1)
    assert (entry["type"], entry["actor"]) == ("document.accessed", "person:bob")


async def test_rows_queued_by_a_process_that_does_not_sequence_land_once_with_their_entries(
    make_node: MakeNode, url: str
) -> None:
    node = await make_node(url if url.startswith("postgres") else None)
    follower = LedgerService(
        TortoiseLedgerStore(), node.ledger.signer, cast(Any, NeverLeads()), node="follower"
    )
    await follower.start()
    try:
        readers = [f"person:r{n}" for n in range(6)]
        await asyncio.gather(*(_read(AccessRecorder(follower), actor) for actor in readers))
    finally:
        await follower.stop()
    for actor in readers:
        [row] = await AccessEvent.filter(actor=actor)  # exactly one each
        assert row.ledger_queue_id > 0  # queued, not sequenced in that process
        index = await node.ledger.integrated(Ticket(row.ledger_queue_id))
        [entry] = await node.ledger.opened_entries(index, index + 1)
        assert (entry["type"], entry["actor"], entry["node"]) == (
            "document.accessed",
            actor,
            "follower",
        )


@pytest.mark.parametrize("url", ["postgres"], indirect=True)
async def test_postgres_refuses_a_batch_with_rows_rather_than_dropping_them(
    make_node: MakeNode, url: str
) -> None:
    """PostgreSQL's batch writes no rows beside entries (their requests do): one handed to
    it anyway is an error, never a trail row silently lost."""
    node = await make_node(url)
    latest = await node.ledger.store.latest_checkpoint()
    assert latest is not None
    row = AccessEvent(actor="person:ada", action="download", outcome="granted", reason="granted")
    with pytest.raises(ValueError, match="not written"):
        await node.ledger.store.integrate(
            IntegrationBatch(latest.size, [], [], latest, [(-1, row)])
        )
    assert (await node.ledger.store.latest_checkpoint()) == latest
