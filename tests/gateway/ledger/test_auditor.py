"""The periodic auditor inside the service: readiness, metrics, one alert per finding."""

from __future__ import annotations

import asyncio

import pytest

from gateway.ledger.audit.auditor import LedgerAuditor
from gateway.ledger.models import CheckpointRow, LeafRow
from tests.gateway.ledger.conftest import LedgerNode, MakeNode


async def metrics(node: LedgerNode) -> dict[str, float]:
    response = await node.client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples: dict[str, float] = {}
    for line in (await response.text()).splitlines():
        if line and not line.startswith("#"):
            name, value = line.split(" ")
            samples[name] = float(value)
    return samples


async def ledger_check(node: LedgerNode) -> dict[str, object]:
    """The auditor's /readyz check as a metrics scraper reads it (anonymous: ``ok`` alone)."""
    anonymous = await node.get_json("/readyz")
    assert anonymous["checks"]["ledger"] == {"ok": True}, anonymous
    watcher = {"Authorization": f"Bearer {await node.client_token('metrics')}"}
    body = await node.get_json("/readyz", headers=watcher)
    assert body["ready"] is True, body  # tampering is reported, never a readiness failure
    check: dict[str, object] = body["checks"]["ledger"]
    assert check["ok"] is True
    return check


async def flip_leaf(index: int) -> None:
    row = await LeafRow.get(idx=index)
    data = bytes(row.data)
    await LeafRow.filter(idx=index).update(data=data[:-2] + bytes([data[-2] ^ 1]) + data[-1:])


async def break_signature(size: int) -> None:
    row = await CheckpointRow.get(size=size)
    note = row.note.replace("\n\u2014 ", "\n\u2014 x", 1)
    await CheckpointRow.filter(size=size).update(note=note)


async def settle(node: LedgerNode) -> int:
    """Wait until nothing is queued; the tree size then."""
    for _ in range(500):
        if await node.ledger.store.pending_count() == 0:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    return (await node.ledger.latest()).size


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_database_url"))


async def test_tampered_leaf_is_shown_and_alerted_once(
    make_node: MakeNode, database_url: str | None
) -> None:
    node = await make_node(database_url)
    size = await node.append(300)
    assert (await node.auditor.run_once()).ok
    check = await ledger_check(node)
    assert check["audit"] == "intact" and check["verified_size"] == size
    assert check["finding"] is None
    samples = await metrics(node)
    assert samples["sekisho_ledger_audit_ok"] == 1
    assert samples["sekisho_ledger_tree_size"] == size
    assert samples["sekisho_ledger_audit_verified_size"] == size
    assert samples["sekisho_ledger_pending_entries"] == 0
    assert samples["sekisho_ledger_is_sequencer"] == 1

    await flip_leaf(123)
    result = await node.auditor.run_once(full=True)
    assert result.finding is not None and result.finding.index == 123
    check = await ledger_check(node)
    assert check["audit"] == "tampered" and check["finding_index"] == 123
    assert str(check["finding"]).startswith("leaf 123: stored data does not hash")
    samples = await metrics(node)
    assert samples["sekisho_ledger_audit_ok"] == 0
    assert samples["sekisho_ledger_audit_finding_index"] == 123
    assert samples["sekisho_ledger_audit_verified_size"] < 123

    assert await settle(node) == size + 1
    [alert] = await node.ledger.opened_entries(size, size + 1)
    assert alert["type"] == "alert.raised" and alert["alert"] == "ledger.tampered"
    assert (alert["index"], alert["detail_code"]) == (123, "leaf_hash_mismatch")
    for full in (False, True):  # the finding stays, the alert is not repeated
        assert (await node.auditor.run_once(full=full)).finding == result.finding
    assert await settle(node) == size + 1


async def test_tampered_signature_is_found(make_node: MakeNode) -> None:
    node = await make_node()
    size = await node.append(20)
    await break_signature(size)
    result = await node.auditor.run_once()
    assert result.finding is not None and result.finding.code == "checkpoint_signature"
    check = await ledger_check(node)
    assert str(check["finding"]).startswith(f"checkpoint at size {size}: signature invalid")


async def test_incremental_runs_and_the_periodic_full_pass(make_node: MakeNode) -> None:
    node = await make_node()
    size = await node.append(50)
    now = [0.0]
    auditor = LedgerAuditor(node.ledger, interval=30, full_interval=600, clock=lambda: now[0])
    assert (await auditor.run_once()).state.size == size  # the first run is a full pass
    first_full = auditor.status.last_full_audit
    assert first_full is not None

    size = await node.append(20)
    now[0] = 30
    assert (await auditor.run_once()).state.size == size
    assert auditor.status.last_full_audit == first_full  # that was incremental

    await flip_leaf(3)  # an old leaf: incremental runs do not re-read it
    now[0] = 60
    assert (await auditor.run_once()).ok
    size = await node.append(5)
    await flip_leaf(size - 2)  # a new leaf: the next incremental run reads it
    now[0] = 90
    result = await auditor.run_once()
    assert result.finding is not None and result.finding.index == size - 2

    now[0] = 601  # the full pass is due and finds the older change first
    result = await auditor.run_once()
    assert result.finding is not None and result.finding.index == 3
    assert auditor.status.last_full_audit != first_full
