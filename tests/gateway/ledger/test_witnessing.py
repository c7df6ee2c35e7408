"""The log side of witnessing in-process, against fake witnesses that follow the spec.

Covers what real processes make hard to arrange: a witness that holds another
size (409, retried once with a proof from it), one holding another root for
the same size (a split view, reported), rounds and quorum, cosigned receipts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway import bootstrap
from gateway.app_keys import WITNESSING
from gateway.errors import LedgerRolledBack, SekishoError, Unavailable
from gateway.ledger import wiring
from gateway.ledger.store import unpack_coord
from gateway.ledger.witnessing import Witnessing, WitnessReply
from gateway.tlog.checkpoint import sign_cosignature
from gateway.tlog.merkle import EMPTY_ROOT, leaf_hash
from gateway.tlog.note import (
    SIG_ED25519_COSIGNATURE,
    cosignature_key_id,
    parse_note,
    parse_verifier_key,
    verifier_key,
)
from gateway.tlog.receipt import LeafHash, parse_receipt, verify_receipt
from gateway.tlog.witness_protocol import (
    SIZE_CONTENT_TYPE,
    format_add_checkpoint_response,
    format_size_conflict,
)
from gateway.witness.core import LogRecord, SizeConflict, check_submission, parse_submission
from tests.gateway.ledger.conftest import LedgerNode, MakeNode
from tests.nodes import until
from tests.web.conftest import person, sign_in


@dataclass
class FakeWitness:
    """A witness in memory: the spec's checks, a software cosigning key."""

    name: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    record: LogRecord | None = None
    down: bool = False
    requests: list[int] = field(default_factory=list)

    @property
    def public_key(self) -> bytes:
        return self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def vkey(self) -> str:
        return verifier_key(self.name, self.public_key, sig_type=SIG_ED25519_COSIGNATURE)

    def answer(self, body: str) -> WitnessReply:
        if self.down:
            raise Unavailable(f"cannot reach the witness {self.name}")
        sub = parse_submission(body.encode())
        self.requests.append(sub.request.old_size)
        assert self.record is not None
        try:
            check_submission(self.record, sub)
        except SizeConflict as exc:
            return WitnessReply(409, SIZE_CONTENT_TYPE, format_size_conflict(exc.size).encode())
        except SekishoError as exc:
            return WitnessReply(exc.status, "text/plain", exc.message.encode())
        cp, held = sub.checkpoint, self.record
        self.record = replace(
            held, size=cp.size, root=cp.root_hash, note=sub.request.checkpoint_note
        )
        key_id = cosignature_key_id(self.name, self.public_key)
        line = sign_cosignature(sub.note.text, self.name, key_id, int(time.time()), self.key.sign)
        return WitnessReply(200, "text/plain", format_add_checkpoint_response([line]).encode())


class FakeTransport:
    def __init__(self, witnesses: dict[str, FakeWitness]) -> None:
        self.witnesses = witnesses

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def add_checkpoint(self, url: str, body: str) -> WitnessReply:
        await asyncio.sleep(0)
        return self.witnesses[url].answer(body)


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeWitness]:
    witnesses = {f"http://w{n}.test": FakeWitness(f"w{n}.test") for n in (1, 2, 3)}
    transport = FakeTransport(witnesses)
    monkeypatch.setattr(wiring, "HttpWitnessTransport", lambda *args: transport)
    return witnesses


async def start(
    make_node: MakeNode, fakes: dict[str, FakeWitness]
) -> tuple[LedgerNode, Witnessing]:
    setting = json.dumps([{"url": url, "vkey": w.vkey} for url, w in fakes.items()])
    node = await make_node(SEKISHO_LEDGER_WITNESSES=setting, SEKISHO_LEDGER_QUORUM="2")
    key = await node.get_json("/api/v1/ledger/key")
    name, _, log_public = parse_verifier_key(key["vkey"])
    for witness in fakes.values():
        witness.record = LogRecord(1, key["origin"], name, log_public, 0, EMPTY_ROOT, None)
    return node, node.app[WITNESSING]


async def final_size(node: LedgerNode) -> int:
    state = await node.get_json("/api/v1/ledger/witnesses")
    return int(state["final_size"] or 0)


async def test_rounds_reach_the_quorum_and_receipts_carry_it(
    make_node: MakeNode, fakes: dict[str, FakeWitness]
) -> None:
    node, witnessing = await start(make_node, fakes)
    size = await node.append(50)

    async def final() -> bool:
        return await final_size(node) >= size

    await until(final, "a final checkpoint")
    receipt = parse_receipt(
        await (await node.client.get(f"/api/v1/ledger/receipts/{size - 1}")).text()
    )
    key = await node.get_json("/api/v1/ledger/key")
    _, _, log_public = parse_verifier_key(key["vkey"])
    cosigners = [(w.name, w.public_key) for w in fakes.values()]
    data = await node.ledger.entry(size - 1)
    verify_receipt(
        receipt,
        LeafHash(leaf_hash(data)),
        key["name"],
        log_public,
        key["origin"],
        witnesses=cosigners,
        quorum=2,
    )
    note = parse_note(await (await node.client.get("/ledger/checkpoint")).text())
    assert {s.name for s in note.signatures} >= {key["name"], "w1.test", "w2.test"}
    assert witnessing.latency.summary()["count"] > 0
    final_note = await (await node.client.get("/api/v1/ledger/final-checkpoint")).text()
    assert len(parse_note(final_note).signatures) >= 3
    metrics = await (await node.client.get("/metrics")).text()
    assert 'sekisho_ledger_witness_up{witness="w1.test"} 1' in metrics
    assert "sekisho_ledger_final_size" in metrics


async def test_a_witness_down_then_back_catches_up_with_one_proof(
    make_node: MakeNode, fakes: dict[str, FakeWitness]
) -> None:
    node, _ = await start(make_node, fakes)
    late = fakes["http://w3.test"]
    late.down = True
    size = await node.append(20)

    async def final() -> bool:
        return await final_size(node) >= size

    await until(final, "final without w3")
    watcher = {"Authorization": f"Bearer {await node.person_token('auditor')}"}
    state = await node.get_json("/api/v1/ledger/witnesses", headers=watcher)
    w3 = next(w for w in state["witnesses"] if w["name"] == "w3.test")
    assert "cannot reach" in w3["last_error"]
    assert w3["url"].startswith("http")
    # Anyone else sees the witness's progress, not the site's addresses or error texts.
    for headers in ({}, {"Authorization": f"Bearer {await node.person_token('officer')}"}):
        public = await node.get_json("/api/v1/ledger/witnesses", headers=headers)
        assert public["final_size"] == state["final_size"]
        for witness in public["witnesses"]:
            assert witness["url"] is None and witness["last_error"] is None, witness
    held = late.record.size if late.record else 0
    late.down = False
    late.requests.clear()
    size = await node.append(300)

    async def caught_up() -> bool:
        return late.record is not None and late.record.size >= size

    await until(caught_up, "w3 to catch up")
    assert late.requests[0] == held  # one request, with a proof from the size it held


async def test_a_witness_holding_another_size_gets_a_proof_from_it(
    make_node: MakeNode, fakes: dict[str, FakeWitness]
) -> None:
    node, witnessing = await start(make_node, fakes)
    size = await node.append(10)

    async def final() -> bool:
        return await final_size(node) >= size

    await until(final, "final")
    # The log forgets what w1 holds (a new sequencer with stale status rows).
    peer = next(p for p in witnessing._peers if p.key.name == "w1.test")
    peer.known = 0
    fakes["http://w1.test"].requests.clear()
    size = await node.append(5)

    async def w1_moved() -> bool:
        record = fakes["http://w1.test"].record
        return record is not None and record.size >= size

    await until(w1_moved, "w1 to cosign after a 409")
    requests = fakes["http://w1.test"].requests
    assert requests[0] == 0 and requests[1] > 0  # 409, then the proof from its size


async def test_a_witness_holding_another_root_is_reported_as_a_split_view(
    make_node: MakeNode, fakes: dict[str, FakeWitness]
) -> None:
    node, witnessing = await start(make_node, fakes)
    size = await node.append(10)

    async def final() -> bool:
        return await final_size(node) >= size

    await until(final, "final")
    w2 = fakes["http://w2.test"]
    assert w2.record is not None
    # Someone with the log key showed w2 another tree of the size it holds.
    w2.record = replace(w2.record, root=bytes(32))

    watcher = {"Authorization": f"Bearer {await node.person_token('auditor')}"}

    def reported(text: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            state = await node.get_json("/api/v1/ledger/witnesses", headers=watcher)
            w = next(w for w in state["witnesses"] if w["name"] == "w2.test")
            return bool(w["last_error"]) and text in w["last_error"]

        return check

    # The log offers its checkpoint of that size again: 409 naming the size it sent.
    peer = next(p for p in witnessing._peers if p.key.name == "w2.test")
    peer.cosigned = peer.done = -1
    peer.wake.set()
    await until(reported("holds a different tree of size"), "the 409 split view")
    await assert_halted(node, "holds a different tree of size")


async def _never_empty() -> bool:
    """As an earlier release's ``init``: no ``ledger.started`` entry is written."""
    return False


async def assert_halted(node: LedgerNode, reason: str) -> None:
    """The alarm: writes refused with 503, /readyz and /metrics name it, officers see it."""
    assert node.ledger.rollback is not None and reason in node.ledger.rollback
    with pytest.raises(LedgerRolledBack) as refused:
        await node.ledger.record("record.anchored", client="t", digest="0" * 64)
    assert refused.value.status == 503
    watcher = {"Authorization": f"Bearer {await node.person_token('auditor')}"}
    ready = await node.get_json("/readyz", status=503, headers=watcher)
    assert reason in ready["checks"]["ledger_history"]["error"]
    assert "sekisho_ledger_rolled_back 1" in await (await node.client.get("/metrics")).text()


async def test_a_witness_refusing_the_consistency_proof_halts_the_ledger(
    make_node: MakeNode, fakes: dict[str, FakeWitness]
) -> None:
    node, _ = await start(make_node, fakes)
    await person("olga", roles=("reader", "officer"))
    assert (await sign_in(node.client, "olga")).status == 303
    size = await node.append(10)

    async def final() -> bool:
        return await final_size(node) >= size

    await until(final, "final")
    w2 = fakes["http://w2.test"]
    assert w2.record is not None
    # w2 was shown another tree of the size it holds: no proof from our tree reaches it.
    w2.record = replace(w2.record, root=bytes(32))
    await node.append(5)

    async def alarmed() -> bool:
        return node.ledger.rollback is not None

    await until(alarmed, "the 422 alarm")
    await assert_halted(node, "HTTP 422")
    page = await node.client.get("/officer/alerts")
    assert page.status == 200
    assert "The ledger was rolled back or forked" in await page.text()


async def test_a_witness_holding_a_bigger_tree_halts_the_ledger(
    make_node: MakeNode, fakes: dict[str, FakeWitness]
) -> None:
    node, _ = await start(make_node, fakes)
    size = await node.append(3)

    async def final() -> bool:
        return await final_size(node) >= size

    await until(final, "final")
    w3 = fakes["http://w3.test"]
    assert w3.record is not None
    # w3 holds a tree bigger than our database: our database lost entries it published.
    w3.record = replace(w3.record, size=size + 100)
    await node.append(1)

    async def alarmed() -> bool:
        return node.ledger.rollback is not None

    await until(alarmed, "the 409 alarm")
    await assert_halted(node, f"the witness holds size {size + 100}")


async def test_rows_deleted_where_the_token_cannot_tell_are_caught_by_a_witness_answer(
    make_node: MakeNode, fakes: dict[str, FakeWitness], monkeypatch: pytest.MonkeyPatch
) -> None:
    """#13 "Rollback ... the same through a witness answer": in a log begun by an earlier
    release (no ``ledger.started`` first entry naming its instance), a DBA deletes the newest
    entries and the ledger's instance id, so the checkpoint kept on the token no longer
    applies and the restart looks like a first start; the witnesses, holding the bigger
    tree, give the alarm: writes stop, /readyz names it, officers see it. (A log that begins
    with ``ledger.started`` is caught by the token itself: test_rollback.py.)"""
    monkeypatch.setattr(bootstrap, "_ledger_is_empty", _never_empty)
    node, _ = await start(make_node, fakes)
    await person("olga", roles=("reader", "officer"))
    keep = await node.append(3)
    size = await node.append(5)

    async def final() -> bool:
        return await final_size(node) >= size

    await until(final, "final")
    assert (await sign_in(node.client, "olga")).status == 303  # an officer's session, kept
    session = {cookie.key: cookie.value for cookie in node.client.session.cookie_jar}
    await node.client.close()
    database = node.settings.database_url.removeprefix("sqlite://")
    with sqlite3.connect(database) as db:
        db.execute("DELETE FROM ledger_leaf WHERE idx >= ?", (keep,))
        db.execute("DELETE FROM ledger_checkpoint WHERE size > ?", (keep,))
        db.execute("DELETE FROM node_state WHERE key = 'ledger_instance'")
        db.execute("DELETE FROM ledger_witness")  # what the node knew of the witnesses
        db.execute("DELETE FROM ledger_cosignature")
        keys = [row[0] for row in db.execute("SELECT key FROM ledger_node")]
        for key in keys:  # the subtrees that cover a deleted leaf
            level, index = unpack_coord(key)
            if (index + 1) << level > keep:
                db.execute("DELETE FROM ledger_node WHERE key = ?", (key,))

    setting = json.dumps([{"url": url, "vkey": w.vkey} for url, w in fakes.items()])
    restarted = await make_node(SEKISHO_LEDGER_WITNESSES=setting, SEKISHO_LEDGER_QUORUM="2")
    restarted.client.session.cookie_jar.update_cookies(session)
    with contextlib.suppress(LedgerRolledBack):  # the token saw nothing: the start went on
        await restarted.ledger.record("record.anchored", client="t", digest="1" * 64)

    async def alarmed() -> bool:
        return restarted.ledger.rollback is not None

    await until(alarmed, "the witness's alarm")
    await assert_halted(restarted, "the witness holds size")
    page = await restarted.client.get("/officer/alerts")
    assert page.status == 200
    assert "The ledger was rolled back or forked" in await page.text()
