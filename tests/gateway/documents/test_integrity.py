"""Fail-closed recording and tamper detection on stored documents."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp
import pytest
from tortoise import connections

from gateway.app_keys import DOCUMENTS
from gateway.documents.envelope import associated_data
from gateway.documents.models import DocumentVersion, SegmentAnchor
from gateway.documents.stream_aead import HEADER_SIZE, StreamEncryptor, parse_header
from tests.gateway.documents.conftest import Gateway, MakePerson
from tests.gateway.documents.test_api import upload
from tests.gateway.documents.test_piece_hashing import wait_for_idle_helper
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
    alerts = await alert_entries()  # the segment anchor catches it before the AEAD would
    assert [(a["document"], a["detail_code"]) for a in alerts] == [(doc, "ciphertext_anchor")]


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
    assert [a["detail_code"] for a in await alert_entries()] == ["ciphertext_anchor"]


SEGMENT = 64 * 1024


async def swap_in_other_content(gateway: Gateway, doc: str, plain: bytes, segment: int) -> bytes:
    """Re-encrypt other content under the version's own key, header and associated data.

    What a holder of the data key could store: every segment authenticates, so only the
    anchor can tell it from the original. Returns the new plaintext.
    """
    row = await DocumentVersion.get(document_id=doc, version=1)
    assert row.wrapped_key is not None
    context = gateway.client.app[DOCUMENTS].context
    key = await context.token.unwrap_data_key(row.kek_label, bytes(row.wrapped_key))
    path = gateway.settings.blob_dir / row.blob_key[:2] / row.blob_key[2:4] / row.blob_key
    stored = path.read_bytes()
    header = parse_header(stored[:HEADER_SIZE])
    ad = associated_data(doc, 1, context.pdp.parse(row.label))
    other = bytearray(plain)
    other[segment * SEGMENT + 10] ^= 0xFF  # one segment differs, the rest is the same
    encryptor = StreamEncryptor(key, ad, header.segment_size, nonce_prefix=header.nonce_prefix)
    swapped = encryptor.header() + encryptor.update(bytes(other)) + encryptor.finalize()
    assert swapped[:HEADER_SIZE] == stored[:HEADER_SIZE] and swapped != stored
    path.write_bytes(swapped)
    return bytes(other)


@pytest.mark.parametrize("swapped", [2, 30])  # in the first 1 MiB read, and well after it
async def test_swapped_ciphertext_is_refused_before_its_first_differing_segment(
    gateway: Gateway, make_person: MakePerson, swapped: int
) -> None:
    alice = await make_person("alice", "SECRET")
    plain = bytes(range(256)) * (40 * SEGMENT // 256)  # forty 64 KiB segments
    doc = await upload(gateway, alice, "SECRET", plain)
    other = await swap_in_other_content(gateway, doc, plain, swapped)
    first_differing = swapped * SEGMENT

    url = f"/api/v1/documents/{doc}/content"
    response = await gateway.client.get(url, headers=alice)
    received = bytearray()
    if response.status == 200:  # what came before the swapped segment may stream
        try:
            async for chunk in response.content.iter_any():
                received += chunk
        except aiohttp.ClientPayloadError:
            pass  # aborted, as it must be
    else:
        assert response.status == 503
    assert plain.startswith(bytes(received))  # nothing of the other content
    assert len(received) <= first_differing
    if swapped == 30:
        assert len(received) >= SEGMENT  # earlier, vouched-for segments were served

    ranged = await gateway.client.get(
        url, headers={**alice, "Range": f"bytes={first_differing}-{first_differing + 99}"}
    )
    assert ranged.status == 503
    assert bytes(other[first_differing : first_differing + 100]) not in await ranged.read()
    before = await gateway.client.get(url, headers={**alice, "Range": "bytes=0-99"})
    assert before.status == 206 and await before.read() == plain[:100]  # untouched segment
    details = [a["detail_code"] for a in await alert_entries()]
    assert details == ["ciphertext_anchor", "ciphertext_anchor"]


async def test_versions_stored_before_segment_anchors_are_still_served_and_checked(
    gateway: Gateway, make_person: MakePerson
) -> None:
    alice = await make_person("alice", "SECRET")
    plain = b"stored by an older release" * 5000
    doc = await upload(gateway, alice, "SECRET", plain)
    row = await DocumentVersion.get(document_id=doc, version=1)
    await SegmentAnchor.filter(version_row=row.id).delete()  # as an older release stored it
    gateway.client.app[DOCUMENTS].reader._leaf_cache.clear()
    url = f"/api/v1/documents/{doc}/content"
    response = await gateway.client.get(url, headers=alice)
    assert response.status == 200 and await response.read() == plain
    ranged = await gateway.client.get(url, headers={**alice, "Range": "bytes=10-19"})
    assert await ranged.read() == plain[10:20]
    await DocumentVersion.filter(id=row.id).update(ciphertext_sha256="0" * 64)
    refused = await gateway.client.get(url, headers=alice)
    assert refused.status == 503  # the whole-ciphertext hash is still checked for old versions


@pytest.mark.parametrize("swapped", [3, 12, 70])  # hashed by the helper, here, and later on
async def test_swapped_ciphertext_is_refused_in_time_when_a_helper_hashes_part_of_it(
    gateway: Gateway, make_person: MakePerson, swapped: int
) -> None:
    alice = await make_person("alice", "SECRET")
    plain = bytes(range(256)) * (100 * SEGMENT // 256)  # 6.25 MiB: long enough for a helper
    doc = await upload(gateway, alice, "SECRET", plain)
    pool = gateway.client.app[DOCUMENTS].context.piece_helpers
    assert pool is not None
    helper = await asyncio.to_thread(wait_for_idle_helper, pool)
    pool.give_back(helper)
    url = f"/api/v1/documents/{doc}/content"
    whole = await gateway.client.get(url, headers=alice)
    assert await whole.read() == plain
    hashed = helper.answered
    assert hashed > 0
    other = await swap_in_other_content(gateway, doc, plain, swapped)
    first_differing = swapped * SEGMENT

    response = await gateway.client.get(url, headers=alice)
    received = bytearray()
    if response.status == 200:
        try:
            async for chunk in response.content.iter_any():
                received += chunk
        except aiohttp.ClientPayloadError:
            pass
    else:
        assert response.status == 503
    assert plain.startswith(bytes(received)) and len(received) <= first_differing
    ranged = await gateway.client.get(
        url, headers={**alice, "Range": f"bytes=0-{first_differing + 5 * SEGMENT}"}
    )
    body = b""
    if ranged.status == 206:
        with contextlib.suppress(aiohttp.ClientPayloadError):
            body = await ranged.read()
    else:
        assert ranged.status == 503
    assert plain.startswith(body) and len(body) <= first_differing
    assert bytes(other[first_differing : first_differing + 100]) not in body
    assert helper.answered > hashed  # the helper hashed pieces of the refused downloads too
    details = [a["detail_code"] for a in await alert_entries()]
    assert details == ["ciphertext_anchor", "ciphertext_anchor"]
