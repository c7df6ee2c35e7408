"""API views a refused person can reach are byte-identical for a hidden and a missing id.

Status, body and the headers a client can read must not tell a document the person
may not read from an id that never existed (docs/security.md).
"""

from __future__ import annotations

import uuid

from tests.gateway.documents.conftest import Gateway, MakePerson
from tests.gateway.documents.test_api import upload

SUFFIXES = (
    "",
    "/content",
    "/receipt",
    "/versions",
    "?version=1",
    "?version=2",
    "/content?version=1",
)
HEADERS = ("Content-Type", "Content-Length", "Cache-Control", "Content-Disposition", "ETag")


async def _view(
    gateway: Gateway, method: str, path: str, headers: dict[str, str], doc_id: str
) -> tuple[int, bytes, list[tuple[str, str | None]]]:
    response = await gateway.client.request(method, path, headers=headers)
    body = (await response.read()).replace(doc_id.encode(), b"ID")
    return response.status, body, [(h, response.headers.get(h)) for h in HEADERS]


async def test_hidden_and_missing_ids_look_the_same(
    gateway: Gateway, make_person: MakePerson
) -> None:
    holder = await make_person("holder", "SECRET", ("A",))
    reader = await make_person("reader", "SECRET")
    hidden = await upload(gateway, holder, "SECRET//A", b"nightjar", "Nightjar")
    missing = str(uuid.uuid4())
    for method in ("GET", "HEAD"):
        for suffix in SUFFIXES:
            seen_hidden = await _view(
                gateway, method, f"/api/v1/documents/{hidden}{suffix}", reader, hidden
            )
            seen_missing = await _view(
                gateway, method, f"/api/v1/documents/{missing}{suffix}", reader, missing
            )
            assert seen_hidden == seen_missing, (method, suffix)
            assert seen_hidden[0] == 404
