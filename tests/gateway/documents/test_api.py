"""The documents API end to end: upload, list, read, ranges, versions, errors."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import AsyncIterator

from aiohttp import FormData

from gateway.app_keys import DOCUMENTS
from gateway.documents.models import AccessEvent
from tests.gateway.documents.conftest import Gateway, MakePerson
from tests.gateway.ledger_rows import ledger_entries


def form(title: str, label: str, data: bytes, tags: str = "") -> FormData:
    body = FormData()
    body.add_field("title", title)
    body.add_field("label", label)
    if tags:
        body.add_field("tags", tags)
    body.add_field("file", data, filename="../../etc/passwd", content_type="application/pdf")
    return body


async def upload(
    gw: Gateway, headers: dict[str, str], label: str, data: bytes, title: str = "Doc"
) -> str:
    response = await gw.client.post(
        "/api/v1/documents", data=form(title, label, data), headers=headers
    )
    assert response.status == 201, await response.text()
    body = await response.json()
    return str(body["id"])


async def test_upload_download_round_trip_and_metadata(
    gateway: Gateway, make_person: MakePerson
) -> None:
    alice = await make_person("alice", "SECRET", ("LOGISTICS",))
    data = os.urandom(200_000)
    response = await gateway.client.post(
        "/api/v1/documents",
        data=form("Convoy plan", "secret//logistics", data, "convoy,Plan"),
        headers=alice,
    )
    assert response.status == 201
    created = await response.json()
    assert created["label"] == "SECRET//LOGISTICS"
    assert created["tags"] == ["convoy", "plan"]
    assert created["version"]["plaintext_sha256"] == hashlib.sha256(data).hexdigest()
    assert created["version"]["filename"] == "passwd"  # no path survives
    assert isinstance(created["version"]["ledger_index"], int)

    content = await gateway.client.get(f"/api/v1/documents/{created['id']}/content", headers=alice)
    assert content.status == 200
    assert content.headers["Cache-Control"] == "no-store"
    assert "attachment" in content.headers["Content-Disposition"]
    assert await content.read() == data

    meta = await (
        await gateway.client.get(f"/api/v1/documents/{created['id']}", headers=alice)
    ).json()
    assert meta["title"] == "Convoy plan"
    assert [v["version"] for v in meta["versions"]] == [1]


async def test_ranges_return_exact_bytes(gateway: Gateway, make_person: MakePerson) -> None:
    alice = await make_person("alice", "SECRET")
    data = os.urandom(3 * 65536 + 123)
    doc = await upload(gateway, alice, "SECRET", data)
    rng = random.Random(7)
    cases = [(0, 0), (65535, 65536), (65530, 131080), (len(data) - 1, len(data) - 1)]
    for _ in range(20):
        low, high = sorted((rng.randrange(len(data)), rng.randrange(len(data))))
        cases.append((low, high))
    for start, end in cases:
        response = await gateway.client.get(
            f"/api/v1/documents/{doc}/content", headers={**alice, "Range": f"bytes={start}-{end}"}
        )
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes {start}-{end}/{len(data)}"
        assert await response.read() == data[start : end + 1]
    suffix = await gateway.client.get(
        f"/api/v1/documents/{doc}/content", headers={**alice, "Range": "bytes=-100"}
    )
    assert await suffix.read() == data[-100:]
    for bad in ("bytes=5-2", f"bytes={len(data)}-", "bytes=0-1,5-9", "items=0-1", "bytes=-0"):
        response = await gateway.client.get(
            f"/api/v1/documents/{doc}/content", headers={**alice, "Range": bad}
        )
        assert response.status == 416, bad
        assert (await response.json())["error"] == "range_not_satisfiable"


async def test_bad_uploads_get_clear_4xx(gateway: Gateway, make_person: MakePerson) -> None:
    bob = await make_person("bob", "CONFIDENTIAL", nationality="JPN")
    cases = [
        (form("t", "SECRET", b"x"), 403, "label_above_clearance"),
        (form("t", "CONFIDENTIAL//NUCLEAR", b"x"), 403, "label_above_clearance"),
        (form("t", "CONFIDENTIAL//REL TO USA", b"x"), 403, "label_above_clearance"),
        (form("t", "RESTRICTED", b"x"), 400, "invalid_label"),
        (form("t", "CONFIDENTIAL", b""), 400, "empty_file"),
        (form("", "CONFIDENTIAL", b"x"), 400, "missing_title"),
    ]
    for body, status, code in cases:
        response = await gateway.client.post("/api/v1/documents", data=body, headers=bob)
        assert response.status == status
        assert (await response.json())["error"] == code
    no_label = FormData()
    no_label.add_field("file", b"x", filename="a")
    response = await gateway.client.post("/api/v1/documents", data=no_label, headers=bob)
    assert (response.status, (await response.json())["error"]) == (400, "missing_label")
    anonymous = await gateway.client.post("/api/v1/documents", data=form("t", "CONFIDENTIAL", b"x"))
    assert anonymous.status == 401


async def test_oversize_upload_is_refused_and_nothing_left(
    gateway: Gateway, make_person: MakePerson
) -> None:
    alice = await make_person("alice", "SECRET")
    gateway.client.app[DOCUMENTS].context.max_bytes = 1024 * 1024

    async def two_mebibytes() -> AsyncIterator[bytes]:
        for _ in range(32):
            yield b"x" * 65536

    response = await gateway.client.post(
        "/api/v1/documents?title=Big&label=SECRET", data=two_mebibytes(), headers=alice
    )
    assert response.status == 413
    assert (await response.json())["error"] == "too_large"
    listing = await (await gateway.client.get("/api/v1/documents", headers=alice)).json()
    assert listing["count"] == 0
    blobs = [p for p in gateway.settings.blob_dir.rglob("*") if p.is_file()]
    assert blobs == []
    grants = await AccessEvent.filter(action="upload", actor="person:alice")
    assert [(row.outcome, row.version) for row in grants] == [("granted", 1)]  # still on record
    entries = [e for e in await ledger_entries("document.accessed") if e["action"] == "upload"]
    assert [(e["actor"], e["outcome"]) for e in entries] == [("person:alice", "granted")]


async def test_raw_upload_and_new_version(gateway: Gateway, make_person: MakePerson) -> None:
    alice = await make_person("alice", "SECRET")
    response = await gateway.client.post(
        "/api/v1/documents?title=Manifest&label=CONFIDENTIAL&filename=m.csv",
        data=b"a,b\n1,2\n",
        headers={**alice, "Content-Type": "text/csv"},
    )
    assert response.status == 201
    doc = (await response.json())["id"]
    second = await gateway.client.post(
        f"/api/v1/documents/{doc}/versions?label=SECRET", data=b"a,b\n3,4\n", headers=alice
    )
    assert second.status == 201
    assert (await second.json())["current_version"] == 2
    lower = await gateway.client.post(
        f"/api/v1/documents/{doc}/versions?label=UNCLASSIFIED", data=b"x", headers=alice
    )
    assert (lower.status, (await lower.json())["error"]) == (400, "use_downgrade")
    v1 = await gateway.client.get(f"/api/v1/documents/{doc}/content?version=1", headers=alice)
    assert await v1.read() == b"a,b\n1,2\n"
    v2 = await gateway.client.get(f"/api/v1/documents/{doc}/content", headers=alice)
    assert await v2.read() == b"a,b\n3,4\n"


async def test_downgrade_needs_reason_and_reencrypts(
    gateway: Gateway, make_person: MakePerson
) -> None:
    officer = await make_person(
        "olivia", "TOP SECRET", ("A",), roles=("reader", "officer", "uploader")
    )
    reader = await make_person("rob", "CONFIDENTIAL")
    doc = await upload(gateway, officer, "SECRET//A", b"declassify me")
    missing = await gateway.client.post(
        f"/api/v1/documents/{doc}/downgrade",
        json={"label": "CONFIDENTIAL", "reason": " "},
        headers=officer,
    )
    assert (missing.status, (await missing.json())["error"]) == (400, "missing_reason")
    up = await gateway.client.post(
        f"/api/v1/documents/{doc}/downgrade",
        json={"label": "TOP SECRET//A", "reason": "x"},
        headers=officer,
    )
    assert (up.status, (await up.json())["error"]) == (400, "not_a_downgrade")
    done = await gateway.client.post(
        f"/api/v1/documents/{doc}/downgrade",
        json={"label": "CONFIDENTIAL", "reason": "Operation complete; released"},
        headers=officer,
    )
    assert done.status == 201, await done.text()
    content = await gateway.client.get(f"/api/v1/documents/{doc}/content", headers=reader)
    assert await content.read() == b"declassify me"
    old = await gateway.client.get(f"/api/v1/documents/{doc}/content?version=1", headers=reader)
    assert old.status == 404


async def test_destroy_shreds_the_key(gateway: Gateway, make_person: MakePerson) -> None:
    officer = await make_person("olivia", "SECRET", roles=("reader", "officer", "uploader"))
    alice = await make_person("alice", "SECRET")
    doc = await upload(gateway, alice, "SECRET", b"burn after reading")
    # read first, so this process holds the unwrapped key in its short-lived cache
    read = await gateway.client.get(f"/api/v1/documents/{doc}/content", headers=alice)
    assert await read.read() == b"burn after reading"
    assert len(gateway.client.app[DOCUMENTS].context.data_keys) == 1
    refused = await gateway.client.delete(f"/api/v1/documents/{doc}", headers=alice)
    assert refused.status == 403
    destroyed = await gateway.client.delete(f"/api/v1/documents/{doc}", headers=officer)
    assert (await destroyed.json()) == {"destroyed_versions": 1}
    again = await gateway.client.delete(f"/api/v1/documents/{doc}", headers=officer)
    assert again.status == 410 and (await again.json())["error"] == "destroyed"
    from gateway.documents.models import DocumentVersion

    row = await DocumentVersion.get(document_id=doc, version=1)
    assert row.wrapped_key is None
    content = await gateway.client.get(f"/api/v1/documents/{doc}/content", headers=alice)
    assert content.status == 410 and b"burn" not in await content.read()
    assert len(gateway.client.app[DOCUMENTS].context.data_keys) == 0
    listing = await (await gateway.client.get("/api/v1/documents", headers=alice)).json()
    assert listing["count"] == 0
