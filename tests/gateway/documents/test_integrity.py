"""Fail-closed recording and tamper detection on stored documents."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from tortoise import connections

from gateway.documents.models import DocumentVersion
from tests.gateway.documents.conftest import Gateway, MakePerson
from tests.gateway.documents.test_api import upload
from tests.gateway.ledger_rows import ledger_entries


async def alert_entries() -> list[dict[str, Any]]:
    """Alert entries, queued or integrated."""
    return await ledger_entries("alert.raised")


async def test_content_is_refused_when_the_ledger_queue_is_unwritable(
    gateway: Gateway, make_person: MakePerson
) -> None:
    alice = await make_person("alice", "SECRET")
    doc = await upload(gateway, alice, "SECRET", b"mission plan")
    connection = connections.get("default")
    await connection.execute_script("ALTER TABLE ledger_pending RENAME TO ledger_pending_away")
    try:
        response = await gateway.client.get(f"/api/v1/documents/{doc}/content", headers=alice)
        body = await response.read()
        assert response.status == 503
        assert b"mission plan" not in body
        assert json.loads(body)["error"] == "unavailable"
        denied = await gateway.client.get(f"/api/v1/documents/{doc}", headers=alice)
        assert denied.status == 503
    finally:
        await connection.execute_script("ALTER TABLE ledger_pending_away RENAME TO ledger_pending")
    response = await gateway.client.get(f"/api/v1/documents/{doc}/content", headers=alice)
    assert response.status == 200
    assert await response.read() == b"mission plan"


async def test_changed_ciphertext_is_refused_with_an_alert(
    gateway: Gateway, make_person: MakePerson
) -> None:
    alice = await make_person("alice", "SECRET")
    doc = await upload(gateway, alice, "SECRET", b"A" * 200_000)
    row = await DocumentVersion.get(document_id=doc, version=1)
    path = gateway.settings.blob_dir / row.blob_key[:2] / row.blob_key[2:4] / row.blob_key
    stored = bytearray(path.read_bytes())
    stored[150_000] ^= 0x01
    path.write_bytes(bytes(stored))
    response = await gateway.client.get(f"/api/v1/documents/{doc}/content", headers=alice)
    assert response.status == 503
    assert (await response.json())["error"] == "integrity_failure"
    alerts = await alert_entries()
    assert [(a["document"], a["detail_code"]) for a in alerts] == [(doc, "aead")]


async def test_changed_wrapped_key_is_refused_with_an_alert(
    gateway: Gateway, make_person: MakePerson
) -> None:
    alice = await make_person("alice", "SECRET")
    doc = await upload(gateway, alice, "SECRET", b"fuel manifest")
    row = await DocumentVersion.get(document_id=doc, version=1)
    assert row.wrapped_key is not None
    tampered = bytearray(row.wrapped_key)
    tampered[3] ^= 0x80
    await DocumentVersion.filter(id=row.id).update(wrapped_key=bytes(tampered))
    response = await gateway.client.get(f"/api/v1/documents/{doc}/content", headers=alice)
    assert response.status == 503
    assert "wrapped key" in (await response.json())["message"]
    assert [a["detail_code"] for a in await alert_entries()] == ["wrapped_key"]


async def test_relabelling_in_the_database_cannot_decrypt(
    gateway: Gateway, make_person: MakePerson
) -> None:
    officer = await make_person("olivia", "TOP SECRET", ("NUCLEAR",))
    reader = await make_person("rob", "SECRET")
    doc = await upload(gateway, officer, "TOP SECRET//NUCLEAR", b"launch codes")
    assert (await gateway.client.get(f"/api/v1/documents/{doc}", headers=reader)).status == 404
    await DocumentVersion.filter(document_id=doc).update(label="SECRET")
    response = await gateway.client.get(f"/api/v1/documents/{doc}/content", headers=reader)
    body = await response.read()
    assert response.status == 503
    assert b"launch codes" not in body
    assert [a["detail_code"] for a in await alert_entries()] == ["aead"]


async def test_large_document_tamper_aborts_the_stream(
    gateway: Gateway, make_person: MakePerson
) -> None:
    alice = await make_person("alice", "SECRET")
    data = bytes(range(256)) * 16384  # 4 MiB: streamed before the end-to-end hash is known
    doc = await upload(gateway, alice, "SECRET", data)
    row = await DocumentVersion.get(document_id=doc, version=1)
    path = gateway.settings.blob_dir / row.blob_key[:2] / row.blob_key[2:4] / row.blob_key
    stored = bytearray(path.read_bytes())
    stored[-100] ^= 0x01
    path.write_bytes(bytes(stored))
    response = await gateway.client.get(f"/api/v1/documents/{doc}/content", headers=alice)
    assert response.status == 200
    received = bytearray()
    try:
        async for chunk in response.content.iter_any():
            received += chunk
    except aiohttp.ClientPayloadError:
        pass  # the server aborted the connection, as it must
    assert len(received) < len(data), "a tampered document must never be delivered whole"
    assert [a["detail_code"] for a in await alert_entries()] == ["aead"]
