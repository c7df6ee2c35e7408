"""Public anchoring at a TSA that is not Sekisho: OpenSSL's own ``openssl ts -reply``."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
from argparse import Namespace
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gateway.anchoring import checks as checks_module
from gateway.anchoring.checks import check_anchors
from gateway.anchoring.models import AnchorRow
from gateway.anchoring.service import ALERT, Anchoring
from gateway.anchoring.tsa import TrustedTsa, verify_reply
from gateway.app_keys import ANCHORING
from gateway.auth.principals import Principal
from gateway.auth.tokens import issue_token
from gateway.cli import anchor_cmd, ledger_cmd
from gateway.cli.progress import ProgressBar
from gateway.config import TsaEndpoint, load_settings
from gateway.errors import ConfigError
from gateway.ledger.models import NodeRow
from gateway.ledger.store import pack_coord
from gateway.oversight.alerts import recent_ledger_alerts
from gateway.tlog.merkle import root_coords
from tests.gateway.ledger.conftest import LedgerNode, MakeNode
from tests.nodes import free_port, run_cli
from tests.tsa_server import OPENSSL, OpensslTsa, make_ca

OFFICER = "person:olivia"


def tsas(*items: dict[str, str]) -> str:
    return json.dumps(list(items))


async def anchored_node(make_node: MakeNode, openssl_tsa: OpensslTsa, **extra: str) -> LedgerNode:
    """A node anchoring at the OpenSSL TSA only on demand."""
    return await make_node(
        SEKISHO_ANCHORING_TSAS=tsas(openssl_tsa.setting()),
        SEKISHO_ANCHORING_INTERVAL_SECONDS="0",
        **extra,
    )


def anchoring(node: LedgerNode) -> Anchoring:
    return node.app[ANCHORING]


async def entries_of(node: LedgerNode, entry_type: str) -> list[dict[str, Any]]:
    size = (await node.ledger.latest()).size
    return [e for e in await node.ledger.opened_entries(0, size) if e["type"] == entry_type]


def openssl_verify(
    tmp_path: Path, reply: bytes, note: str, ca: Path
) -> subprocess.CompletedProcess[str]:
    reply_path, note_path = tmp_path / "anchor.tsr", tmp_path / "checkpoint.note"
    reply_path.write_bytes(reply)
    note_path.write_bytes(note.encode())
    return subprocess.run(
        [str(OPENSSL), "ts", "-verify", "-in", reply_path, "-data", note_path, "-CAfile", ca],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


async def test_the_newest_checkpoint_is_anchored_stored_ledgered_and_verifies(
    make_node: MakeNode, openssl_tsa: OpensslTsa, tmp_path: Path
) -> None:
    node = await anchored_node(make_node, openssl_tsa)
    await node.append(5)
    latest = await node.ledger.latest()
    [outcome] = await anchoring(node).anchor_now(actor=OFFICER)
    assert outcome.state == "anchored", outcome.error
    assert (outcome.tsa, outcome.size, outcome.root) == ("openssl", latest.size, latest.root)

    row = await AnchorRow.get(size=latest.size, tsa="openssl")
    assert row.note == latest.note and bytes(row.root) == latest.root
    assert row.token_sha256 == outcome.token_sha256
    while not await entries_of(node, "checkpoint.anchored"):
        await asyncio.sleep(0.01)
    [entry] = await entries_of(node, "checkpoint.anchored")
    assert entry["tsa"] == "openssl" and entry["size"] == latest.size
    assert entry["root_hash"] == latest.root.hex()
    assert entry["token_sha256"] == row.token_sha256
    assert outcome.gen_time is not None
    assert entry["gen_time"] == outcome.gen_time.isoformat().replace("+00:00", "Z")
    assert entry["actor"] == OFFICER  # who asked for this anchoring

    # stock OpenSSL re-verifies the stored reply over the stored checkpoint note
    done = openssl_verify(tmp_path, bytes(row.reply), row.note, openssl_tsa.ca)
    assert "Verification: OK" in done.stdout, done.stdout + done.stderr

    # the anchoring entry itself is the only news: nothing to anchor again
    [again] = await anchoring(node).anchor_now(actor=OFFICER)
    assert again.state == "already"
    assert await AnchorRow.filter(tsa="openssl").count() == 1

    [check] = await check_anchors(node.ledger.store, anchoring(node).tsas)
    assert check.token_ok and check.tree_ok, (check.token_problem, check.tree_problem)


async def test_new_entries_are_anchored_again(make_node: MakeNode, openssl_tsa: OpensslTsa) -> None:
    node = await anchored_node(make_node, openssl_tsa)
    [first] = await anchoring(node).anchor_now(actor=OFFICER)
    await node.append(2)
    [second] = await anchoring(node).anchor_now(actor=OFFICER)
    assert (first.state, second.state) == ("anchored", "anchored")
    assert second.size > first.size
    checks = await check_anchors(node.ledger.store, anchoring(node).tsas)
    assert [c.size for c in checks] == [second.size, first.size]
    assert all(c.ok for c in checks)


async def test_a_tampered_token_a_wrong_certificate_and_a_changed_history_are_reported(
    make_node: MakeNode, openssl_tsa: OpensslTsa, tmp_path: Path
) -> None:
    node = await anchored_node(make_node, openssl_tsa)
    await node.append(6)
    [outcome] = await anchoring(node).anchor_now(actor=OFFICER)
    row = await AnchorRow.get(size=outcome.size, tsa="openssl")
    store = node.ledger.store

    # another CA for the same TSA name: the token no longer verifies
    other_ca, _ = make_ca(tmp_path, "other")
    wrong = TrustedTsa.from_endpoint(
        TsaEndpoint(name="openssl", url=openssl_tsa.url, certs=str(other_ca))
    )
    [check] = await check_anchors(store, [wrong])
    assert not check.token_ok and check.tree_ok
    assert "does not verify" in (check.token_problem or "")

    # a TSA no longer configured cannot be checked
    [check] = await check_anchors(store, [])
    assert not check.token_ok and "not configured" in (check.token_problem or "")

    # one flipped byte of the signed TSTInfo (the genTime digits), SHA-256 recomputed or not
    reply = bytearray(row.reply)
    at = bytes(reply).index(b"Z\x30") - 3  # inside the GeneralizedTime of TSTInfo
    reply[at] ^= 0x01
    await AnchorRow.filter(id=row.id).update(reply=bytes(reply))
    [check] = await check_anchors(store, anchoring(node).tsas)
    assert not check.token_ok and check.tree_ok
    done = openssl_verify(tmp_path, bytes(reply), row.note, openssl_tsa.ca)
    assert "Verification: OK" not in done.stdout

    # history rewritten under the anchor: the tree's root at that size changed
    await AnchorRow.filter(id=row.id).update(reply=row.reply)
    coord = root_coords(outcome.size)[0]
    await NodeRow.filter(key=pack_coord(coord)).update(hash=bytes(32))
    [check] = await check_anchors(store, anchoring(node).tsas)
    assert check.token_ok and not check.tree_ok
    assert "history changed" in (check.tree_problem or "")


async def test_an_unreachable_tsa_never_blocks_the_log_backs_off_and_raises_one_alert(
    make_node: MakeNode,
) -> None:
    dead = {"name": "down", "url": f"http://127.0.0.1:{free_port()}/", "certs": ""}
    node = await make_node(
        SEKISHO_ANCHORING_TSAS=tsas({**dead, "certs": str(_any_ca())}),
        SEKISHO_ANCHORING_INTERVAL_SECONDS="1",
        SEKISHO_ANCHORING_RETRY_SECONDS="1",
        SEKISHO_ANCHORING_ALERT_AFTER_SECONDS="2",
        SEKISHO_ANCHORING_TIMEOUT_MS="500",
    )
    state = anchoring(node).states["down"]
    before = (await node.ledger.latest()).size
    while len(state.delays) < 3:  # the log goes on appending meanwhile
        await node.append(1)
        await asyncio.sleep(0.2)
    assert state.delays[:3] == [1.0, 2.0, 4.0]
    assert "cannot reach" in state.last_error
    assert (await node.ledger.latest()).size > before + 3
    while not await entries_of(node, "alert.raised"):
        await asyncio.sleep(0.1)
    await asyncio.sleep(2.5)  # more rounds fail: still the one alert for this outage
    [alert] = await entries_of(node, "alert.raised")
    assert alert["alert"] == ALERT and alert["actor"] == "ledger-anchoring"
    tamper, _, _ = await recent_ledger_alerts(node.ledger)  # what the officers' alerts page lists
    assert [a.alert for a in tamper] == [ALERT]
    assert await AnchorRow.all().count() == 0


_CA: list[Path] = []


def _any_ca() -> Path:
    """A CA certificate file for a TSA that is never reached."""
    if not _CA:
        import tempfile

        directory = Path(tempfile.mkdtemp(prefix="ca-"))
        _CA.append(make_ca(directory)[0])
    return _CA[0]


async def test_the_schedule_anchors_by_itself_on_the_sequencer(
    make_node: MakeNode, openssl_tsa: OpensslTsa
) -> None:
    node = await make_node(
        SEKISHO_ANCHORING_TSAS=tsas(openssl_tsa.setting()),
        SEKISHO_ANCHORING_INTERVAL_SECONDS="1",
    )
    assert node.ledger.is_leader
    while not await AnchorRow.exists():
        await asyncio.sleep(0.1)
    while not await entries_of(node, "checkpoint.anchored"):
        await asyncio.sleep(0.05)


async def test_anchorings_over_http(make_node: MakeNode, openssl_tsa: OpensslTsa) -> None:
    node = await anchored_node(make_node, openssl_tsa)
    client = node.client
    assert (await client.post("/api/v1/ledger/anchors")).status == 401
    reader = {"Authorization": f"Bearer {await node.person_token('reader')}"}
    response = await client.post("/api/v1/ledger/anchors", headers=reader)
    assert response.status == 403 and (await response.json())["error"] == "forbidden"

    officer = await Principal.create(username="oscar", level="SECRET", roles=["officer"])
    headers = {"Authorization": f"Bearer {await issue_token(principal=officer)}"}
    response = await client.post("/api/v1/ledger/anchors", headers=headers)
    assert response.status == 200, await response.text()
    [result] = (await response.json())["results"]
    assert result["state"] == "anchored" and result["tsa"] == "openssl"
    while not await entries_of(node, "checkpoint.anchored"):
        await asyncio.sleep(0.01)
    [entry] = await entries_of(node, "checkpoint.anchored")
    assert entry["actor"] == "person:oscar"  # the officer who asked, committed like any actor

    listing = await node.get_json("/api/v1/ledger/anchors")
    assert listing["tsas"] == ["openssl"]
    [anchor] = listing["anchors"]
    assert anchor["token_verifies"] and anchor["tree_consistent"]
    assert anchor["size"] == result["size"]
    reply = await client.get(anchor["reply"])
    assert reply.content_type == "application/timestamp-reply"
    row = await AnchorRow.get(id=anchor["id"])
    assert await reply.read() == bytes(row.reply)
    note = await client.get(anchor["checkpoint"])
    assert await note.text() == row.note
    missing = await client.get("/api/v1/ledger/anchors/999/reply")
    assert missing.status == 404 and (await missing.json())["error"] == "not_found"
    bad = await client.get("/api/v1/ledger/anchors/x/reply")
    assert bad.status == 400


def test_bad_anchoring_settings_are_one_line_errors(tmp_path: Path) -> None:
    def load(**env: str) -> None:
        load_settings(environ={"SEKISHO_DATA": str(tmp_path), **env})

    with pytest.raises(ConfigError, match="needs a url"):
        load(SEKISHO_ANCHORING_TSAS=tsas({"name": "a", "url": "ftp://x", "certs": "c"}))
    item = {"name": "a", "url": "http://x", "certs": "c"}
    with pytest.raises(ConfigError, match="listed twice"):
        load(SEKISHO_ANCHORING_TSAS=tsas(item, item))
    with pytest.raises(ConfigError, match="hash is sha256"):
        load(
            SEKISHO_ANCHORING_TSAS=tsas(
                {"name": "a", "url": "http://x", "certs": "c", "hash": "md5"}
            )
        )
    with pytest.raises(ConfigError, match="alert_after_seconds"):
        load(SEKISHO_ANCHORING_ALERT_AFTER_SECONDS="0")
    with pytest.raises(ConfigError, match="cannot read certs file"):
        TrustedTsa.from_endpoint(TsaEndpoint(name="a", url="http://x", certs=str(tmp_path / "no")))
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match="no PEM certificate"):
        TrustedTsa.from_endpoint(
            TsaEndpoint(name="a", url="http://x", certs=str(tmp_path / "junk.pem"))
        )


async def test_anchoring_on_postgres(
    make_node: MakeNode, openssl_tsa: OpensslTsa, pg_database_url: str
) -> None:
    node = await make_node(
        pg_database_url,
        SEKISHO_ANCHORING_TSAS=tsas(openssl_tsa.setting()),
        SEKISHO_ANCHORING_INTERVAL_SECONDS="0",
    )
    await node.append(3)
    first, second = await asyncio.gather(
        anchoring(node).anchor_now(actor=OFFICER), anchoring(node).anchor_now(actor=OFFICER)
    )
    assert sorted(o.state for o in first + second) == ["already", "anchored"]
    [check] = await check_anchors(node.ledger.store, anchoring(node).tsas)
    assert check.ok and check.gen_time.tzinfo is not None


def test_the_cli_without_tsas_is_one_line(tmp_path: Path) -> None:
    done = run_cli(["ledger", "anchor"], tmp_path / "var")
    assert done.returncode == 1
    assert done.stderr == (
        "sekisho: error: no TSA is configured: add [[anchoring.tsas]] (docs/deployment.md)\n"
    )


async def test_asking_without_tsas_is_a_409(make_node: MakeNode) -> None:
    node = await make_node()
    response = await node.client.post(
        "/api/v1/ledger/anchors", headers=await node.officer_headers()
    )
    assert response.status == 409 and (await response.json())["error"] == "conflict"
    listing = await node.get_json("/api/v1/ledger/anchors")
    assert listing == {"tsas": [], "anchors": []}


async def test_each_outage_raises_its_own_alert_once(
    make_node: MakeNode, openssl_tsa: OpensslTsa
) -> None:
    broken = openssl_tsa.setting("flaky", url=openssl_tsa.url + "nowhere")  # answers 404
    node = await make_node(
        SEKISHO_ANCHORING_TSAS=tsas(broken),
        SEKISHO_ANCHORING_INTERVAL_SECONDS="1",
        SEKISHO_ANCHORING_RETRY_SECONDS="1",
        SEKISHO_ANCHORING_RETRY_MAX_SECONDS="1",
        SEKISHO_ANCHORING_ALERT_AFTER_SECONDS="2",
    )
    service = anchoring(node)
    while len(await entries_of(node, "alert.raised")) < 1:
        await asyncio.sleep(0.1)
    assert "answered HTTP 404" in service.states["flaky"].last_error
    failing = service.tsas[0]
    service.tsas[0] = replace(failing, url=openssl_tsa.url)  # the TSA comes back
    while service.states["flaky"].last_error or not await AnchorRow.exists():
        await asyncio.sleep(0.1)
    assert len(await entries_of(node, "alert.raised")) == 1
    service.tsas[0] = failing  # and goes away again: a second outage, a second alert
    while len(await entries_of(node, "alert.raised")) < 2:
        await node.append(1)  # something new to anchor (a quiet log stays anchored)
        await asyncio.sleep(0.1)
    await asyncio.sleep(2.5)
    assert len(await entries_of(node, "alert.raised")) == 2


async def test_the_public_list_verifies_each_token_once_and_still_sees_tampering(
    make_node: MakeNode, openssl_tsa: OpensslTsa, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anonymous callers cannot make the node re-verify every TSA token per request, and
    a stored reply changed afterwards is checked afresh (the memo is keyed by content)."""
    node = await anchored_node(make_node, openssl_tsa)
    for _ in range(3):
        await node.append(2)
        await anchoring(node).anchor_now(actor=OFFICER)
    verified: list[bytes] = []
    real = verify_reply

    def counting(reply: bytes, data: bytes, tsa: TrustedTsa) -> Any:
        verified.append(reply)
        return real(reply, data, tsa)

    monkeypatch.setattr(checks_module, "verify_reply", counting)  # where checks call it
    first = await node.get_json("/api/v1/ledger/anchors")
    assert len(first["anchors"]) == 3 and len(verified) == 3
    for _ in range(5):
        assert await node.get_json("/api/v1/ledger/anchors") == first
    assert len(verified) == 3  # nothing verified again for the same stored bytes

    row = await AnchorRow.get(id=first["anchors"][0]["id"])
    reply = bytearray(row.reply)
    reply[bytes(reply).index(b"Z\x30") - 3] ^= 0x01  # inside the signed genTime
    await AnchorRow.filter(id=row.id).update(reply=bytes(reply))
    listing = await node.get_json("/api/v1/ledger/anchors")
    assert not listing["anchors"][0]["token_verifies"]
    assert all(a["token_verifies"] for a in listing["anchors"][1:])
    assert len(verified) == 4


async def test_remote_verify_lists_the_anchorings_checked_here(
    make_node: MakeNode, openssl_tsa: OpensslTsa, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ledger verify --url`` lists the node's anchorings as local mode does: each TSA
    token checked against the TSAs configured here, each root against the audited tree."""
    node = await anchored_node(make_node, openssl_tsa)
    await node.append(3)
    [first] = await anchoring(node).anchor_now(actor=OFFICER)
    await node.append(2)  # the tree grows past the anchored size
    [second] = await anchoring(node).anchor_now(actor=OFFICER)
    await node.append(1)
    base = str(node.client.make_url("/")).rstrip("/")
    vkey = (await node.get_json("/api/v1/ledger/key"))["vkey"]
    monkeypatch.setenv(ledger_cmd.TOKEN_ENV, await node.client_token("ledger-read"))
    args = Namespace(url=base, key=vkey, origin=None, token_file=None)

    async def verify() -> list[str]:
        bar = ProgressBar(io.StringIO(), "verifying")
        result, checks = await ledger_cmd._verify_remote(args, node.settings, bar, None)
        assert result.ok, result.finding
        return [anchor_cmd.check_line(c) for c in checks]

    lines = await verify()
    assert [line.split(":")[0] for line in lines] == [
        f"anchor {n}" for n in sorted([a.id for a in await AnchorRow.all()], reverse=True)
    ]
    for line, outcome in zip(lines, (second, first), strict=True):
        assert f"checkpoint {outcome.size} " in line and " at openssl, " in line
        assert line.endswith("token OK; tree consistent"), line

    row = await AnchorRow.get(size=first.size)
    flipped = bytearray(bytes(row.reply))
    flipped[-5] ^= 0x01  # inside the signature
    await AnchorRow.filter(id=row.id).update(reply=bytes(flipped))
    [_, tampered] = await verify()
    assert "token DOES NOT VERIFY" in tampered and tampered.endswith("tree consistent")
