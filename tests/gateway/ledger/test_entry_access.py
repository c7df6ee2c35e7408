"""Who reads entries: hash tiles, checkpoints and proofs are public; entries are not.

Entries (``/api/v1/ledger/entries/{i}``) and entry bundles
(``/ledger/tile/entries/<N>[.p/<W>]``) go to officers, auditors, admins and
``ledger-read`` clients (mirrors) only, unless ``ledger.public_entries``.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import ClientResponse

from tests.gateway.ledger.conftest import LedgerNode, MakeNode

SIZE = 300  # entries appended; initialisation adds a few, so bundle 001 is partial


def entry_paths(size: int) -> tuple[str, ...]:
    """Every way to read entries of a log of ``size`` (> 256): JSON, full and partial bundle."""
    return (
        "/api/v1/ledger/entries/0",
        f"/api/v1/ledger/entries/{size - 1}",
        "/ledger/tile/entries/000",
        f"/ledger/tile/entries/001.p/{size - 256}",
    )


def public_paths(size: int) -> tuple[str, ...]:
    """What witnesses and receipt holders need: checkpoints, hash tiles, proofs, key, receipts."""
    return (
        "/ledger/checkpoint",
        "/ledger/tile/0/000",
        f"/ledger/tile/0/001.p/{size - 256}",
        "/ledger/tile/1/000.p/1",
        "/api/v1/ledger/checkpoint",
        "/api/v1/ledger/key",
        "/api/v1/ledger/proof/inclusion?index=3",
        "/api/v1/ledger/proof/consistency?old=5",
        "/api/v1/ledger/receipts/3",
    )


async def _get(node: LedgerNode, path: str, token: str | None = None) -> ClientResponse:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    response = await node.client.get(path, headers=headers)
    await response.read()
    return response


async def _error(node: LedgerNode, path: str, status: int, token: str | None = None) -> Any:
    response = await _get(node, path, token)
    assert response.status == status, (path, await response.text())
    assert response.content_type == "application/json"
    body = await response.json()
    assert "public" not in response.headers.get("Cache-Control", "")
    return body


async def test_anonymous_callers_get_no_entry_but_every_public_resource(
    make_node: MakeNode,
) -> None:
    node = await make_node()
    size = await node.append(SIZE)
    for path in entry_paths(size):
        body = await _error(node, path, 401)
        assert body["error"] == "entries_need_credential", path
    # An index beyond the log answers exactly like one inside it: nothing more is told.
    inside = await _error(node, "/api/v1/ledger/entries/5", 401)
    beyond = await _error(node, "/api/v1/ledger/entries/999999", 401)
    assert inside == beyond
    for path in public_paths(size):
        response = await _get(node, path)
        assert response.status == 200, (path, await response.text())
    tile = await _get(node, "/ledger/tile/0/000")
    assert tile.headers["Cache-Control"] == "public, max-age=31536000, immutable"


async def test_officers_auditors_admins_and_mirrors_read_entries(make_node: MakeNode) -> None:
    node = await make_node()
    size = await node.append(SIZE)
    readers = {
        "officer": await node.person_token("officer"),
        "auditor": await node.person_token("reader", "auditor"),
        "admin": await node.person_token("admin"),
        "mirror": await node.client_token("ledger-read"),
    }
    expected = await node.ledger.entry(size - 1)
    for who, token in readers.items():
        for path in entry_paths(size):
            response = await _get(node, path, token)
            assert response.status == 200, (who, path, await response.text())
            cache = response.headers["Cache-Control"]
            if path.startswith("/api/"):
                assert cache == "no-store", (who, path)  # like every API answer
            else:
                assert cache.startswith("private, max-age="), (who, path)
                assert response.headers["Vary"] == "Authorization"
        body = await (await _get(node, f"/api/v1/ledger/entries/{size - 1}", token)).json()
        assert body["entry"] == json.loads(expected), who
    full = await _get(node, "/ledger/tile/entries/000", readers["mirror"])
    assert full.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    partial = await _get(node, f"/ledger/tile/entries/001.p/{size - 256}", readers["mirror"])
    assert partial.headers["Cache-Control"] == "private, max-age=60"


async def test_readers_uploaders_and_other_clients_are_refused(make_node: MakeNode) -> None:
    node = await make_node()
    size = await node.append(SIZE)
    refused = {
        "reader": await node.person_token("reader"),
        "uploader": await node.person_token("reader", "uploader"),
        "signing client": await node.client_token("anchor", "timestamp"),
    }
    for who, token in refused.items():
        for path in entry_paths(size):
            body = await _error(node, path, 403, token)
            assert body["error"] == "entries_forbidden", (who, path)
        for path in public_paths(size):
            assert (await _get(node, path, token)).status == 200, (who, path)
    body = await _error(node, "/ledger/tile/entries/000", 401, "sks_not-a-real-token")
    assert body["error"] == "unauthenticated"


async def test_public_mode_serves_entries_to_anyone(make_node: MakeNode) -> None:
    node = await make_node(SEKISHO_LEDGER_PUBLIC_ENTRIES="true")
    assert node.settings.ledger.public_entries
    size = await node.append(SIZE)
    for path in entry_paths(size):
        response = await _get(node, path)
        assert response.status == 200, (path, await response.text())
        assert not response.headers["Cache-Control"].startswith("private")
    full = await _get(node, "/ledger/tile/entries/000")
    assert full.headers["Cache-Control"] == "public, max-age=31536000, immutable"
