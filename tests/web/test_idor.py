"""Object-level authorisation: every route with an id in its path, walked by the wrong caller.

The walk is driven by the router, so a new route with a path parameter fails this test
until it is classified below: either refused to a caller without rights to the object,
or public by design (with the reason). Refusals must not leak the object and must not
change it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.auth.models import SecurityKey
from gateway.auth.principals import Principal
from gateway.auth.tokens import issue_token
from gateway.documents.models import ApprovalRequest
from gateway.signing.clients import ClientSpec
from hsm import KeyAlgorithm
from tests.gateway.app_fixtures import operator_managers
from tests.web.conftest import Portal, form_token, person, sign_in

SECRET_TITLE = "Operation Nightjar"
SECRET_BODY = b"nightjar mission plan: grid 31U DQ 48251 11932"

# Routes that name an object in their path and are public by design.
PUBLIC_BY_DESIGN = {
    ("GET", "/api/v1/ledger/receipts/{index}"): "inclusion receipts: hashes and checkpoints",
    ("GET", "/ledger/tile/{path}"): "C2SP hash tiles (entry bundles need an entry reader)",
    ("GET", "/static/swagger-ui/{name}"): "the API explorer's Swagger UI files (public code)",
    ("GET", "/api/v1/ledger/anchors/{id}/reply"): "public anchoring: a TSA's token",
    ("GET", "/api/v1/ledger/anchors/{id}/checkpoint"): "the signed checkpoint a TSA stamped",
}
# (A witness node's /mirror/{log}/... routes live in its own app and serve the same
# public hash tiles; entry bundles only to its registered readers.)

# Who walks each refused route: "person" (a signed-in, low-cleared reader with API
# token and portal session), "client" (a signing client limited to the default key)
# or "rival" (another client with the anchor scope: chains belong to their client).
REFUSED = {
    ("GET", "/api/v1/documents/{id}"): "person",
    ("DELETE", "/api/v1/documents/{id}"): "person",
    ("GET", "/api/v1/documents/{id}/versions"): "person",
    ("POST", "/api/v1/documents/{id}/versions"): "person",
    ("POST", "/api/v1/documents/{id}/check"): "person",
    ("GET", "/api/v1/documents/{id}/content"): "person",
    ("GET", "/api/v1/documents/{id}/receipt"): "person",
    ("GET", "/api/v1/documents/{id}/anchor"): "person",
    ("GET", "/api/v1/ledger/entries/{index}/opening"): "person",
    ("POST", "/api/v1/documents/{id}/downgrade"): "person",
    ("PATCH", "/api/v1/admin/users/{username}"): "person",
    ("POST", "/api/v1/admin/users/{username}/disable"): "person",
    ("POST", "/api/v1/admin/users/{username}/enable"): "person",
    ("GET", "/api/v1/keys/{name}"): "client",
    ("POST", "/api/v1/sign/{key}"): "client",
    ("POST", "/api/v1/verify/{key}"): "client",
    ("POST", "/api/v1/cms/{key}"): "client",
    ("GET", "/api/v1/anchors/{record}"): "rival",
    ("GET", "/api/v1/custody/handovers/{handover}"): "rival",
    ("POST", "/api/v1/custody/handovers/{handover}/signatures"): "rival",
    ("GET", "/api/v1/custody/rules/{name}"): "person",  # rules: officers, auditors, admins
    ("GET", "/api/v1/custody/rules/{name}/items"): "person",
    ("GET", "/officer/custody/rules/{name}"): "person",
    ("POST", "/me/handovers/{handover}/sign"): "person",  # not a party: 404
    ("GET", "/api/v1/ledger/entries/{index}"): "person",  # entries: officers, auditors, mirrors
    ("GET", "/documents/{id}"): "person",
    ("GET", "/documents/{id}/download"): "person",
    ("GET", "/documents/{id}/receipt"): "person",
    ("GET", "/documents/{id}/check"): "person",
    ("POST", "/documents/{id}/check"): "person",
    ("GET", "/admin/people/{username}"): "person",
    ("POST", "/admin/people/{username}"): "person",
    ("POST", "/admin/people/{username}/disable"): "person",
    ("POST", "/admin/people/{username}/enable"): "person",
    ("POST", "/admin/people/{username}/certificates"): "person",
    ("POST", "/admin/people/{username}/certificates/{id}/remove"): "person",
    ("POST", "/admin/people/{username}/security-keys"): "person",
    ("POST", "/admin/people/{username}/security-keys/options"): "person",
    ("POST", "/admin/people/{username}/security-keys/{id}/remove"): "person",
    ("POST", "/me/security/keys/{id}/remove"): "person",  # another person's key
    ("POST", "/admin/clients/{name}/revoke"): "person",
    ("GET", "/documents/{id}/new-version"): "person",
    ("POST", "/documents/{id}/new-version"): "person",
    ("GET", "/documents/{id}/downgrade"): "person",
    ("POST", "/documents/{id}/downgrade"): "person",
    ("GET", "/documents/{id}/destroy"): "person",
    ("POST", "/documents/{id}/destroy"): "person",
    ("POST", "/approvals/{id}/{verb}"): "person",
    ("GET", "/api/v1/approvals/{id}"): "person",
    ("POST", "/api/v1/approvals/{id}/approve"): "person",
    ("POST", "/api/v1/approvals/{id}/refuse"): "person",
    ("GET", "/admin/clients/{name}"): "person",
    ("POST", "/admin/clients/{name}"): "person",
    ("POST", "/admin/clients/{name}/tokens"): "person",
    ("POST", "/admin/clients/{name}/tokens/{prefix}/revoke"): "person",
    ("POST", "/admin/keys/{name}/rotate"): "person",
    ("POST", "/admin/people/{username}/unlock"): "person",
    ("POST", "/api/v1/admin/users/{username}/unlock"): "person",
}


@dataclass
class World:
    """The objects the wrong callers go after, and the callers."""

    values: dict[str, str]
    person_bearer: dict[str, str]
    client_bearer: dict[str, str]
    rival_bearer: dict[str, str]
    owner_bearer: dict[str, str]
    csrf: str


def path_of(resource: web.AbstractResource) -> str:
    """The route's path with bare parameter names (``{id:\\d+}`` becomes ``{id}``)."""
    info = resource.get_info()
    if "formatter" in info:
        return str(info["formatter"])
    return str(info.get("path", resource.canonical))


def id_routes(app: web.Application) -> set[tuple[str, str]]:
    """Method and path of every route whose path names an object."""
    found = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS") or route.resource is None:
            continue
        path = path_of(route.resource)
        if "{" in path:
            found.add((route.method, path))
    return found


def fill(path: str, values: Mapping[str, str], route: tuple[str, str]) -> str:
    """The path with each parameter replaced by the object the walker goes after."""
    approval = path.startswith(("/approvals/", "/api/v1/approvals/"))
    names = {
        "verb": "approve",
        "id": values["certificate"]
        if path.endswith("{id}/remove")
        else values["approval"]
        if approval
        else values["document"],
        "username": values["owner"],
        "name": values["client"] if path.startswith("/admin/clients") else values["key"],
        "key": values["key"],
        "record": values["record"],
        "handover": values["handover"],
        "index": "0",
        "path": "0/000",
        "prefix": values["client_token"],
    }
    for name, value in names.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no value for a parameter of {route}"
    return path


def body_for(method: str, path: str, csrf: str) -> dict[str, Any]:
    """A request body that would succeed for a caller with rights, so only rights refuse it."""
    digest = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
    if method == "POST" and path.endswith("/check"):
        form = aiohttp.FormData()
        if not path.startswith("/api/"):
            form.add_field("csrf", csrf)
        form.add_field("file", SECRET_BODY, filename="plan.txt")
        return {"data": form}
    if not path.startswith("/api/"):
        return {"data": {"csrf": csrf, "level": "TOP SECRET", "label": "TOP SECRET"}}
    if method == "POST" and path.endswith("/versions"):
        return {"data": b"replacement", "params": {"filename": "r.txt"}}
    if path.endswith("/downgrade"):
        return {"json": {"label": "UNCLASSIFIED", "reason": "idor"}}
    if "/admin/users/" in path:
        return {"json": {"level": "TOP SECRET", "roles": ["admin"]}}
    if path.startswith(("/api/v1/sign/", "/api/v1/cms/")):
        return {"json": {"digest": digest}}
    if path.endswith("/signatures"):
        return {"json": {"key": "default", "version": 1, "signature": digest}}
    if path.startswith("/api/v1/verify/"):
        return {"json": {"digest": digest, "signature": base64.b64encode(b"s").decode()}}
    return {}


async def build_world(portal: Portal) -> World:
    """A TOP SECRET document, its owner, an admin's objects, and two wrong callers."""
    client = portal.client
    owner = await Principal.create(
        username="owner", level="TOP SECRET", nationality="FRA", roles=["reader", "uploader"]
    )
    owner_bearer = {"Authorization": f"Bearer {await issue_token(principal=owner)}"}
    uploaded = await client.post(
        "/api/v1/documents",
        params={"title": SECRET_TITLE, "label": "TOP SECRET", "filename": "plan.txt"},
        data=SECRET_BODY,
        headers=owner_bearer,
    )
    assert uploaded.status == 201, await uploaded.text()
    document = (await uploaded.json())["id"]
    owner_key = await SecurityKey.create(
        credential_id="owner-key", principal=owner, public_key=b"cose", name="owner's key"
    )
    assert str(owner_key.id) == "1"  # the id the walkers go after (as for certificates)

    keys, clients = operator_managers(portal.app, portal.settings)
    other_key = f"idor-{uuid.uuid4().hex[:8]}"  # the session's token is shared: fresh labels
    await keys.create(other_key, KeyAlgorithm.EC_P256, "sign")
    spec = ClientSpec(scopes=("sign", "verify", "cms"), keys=("default",), rate_per_minute=0)
    _, limited = await clients.add("limited", spec)
    anchor_spec = ClientSpec(scopes=("anchor",), keys=(), rate_per_minute=0)
    _, anchorer = await clients.add("anchorer", anchor_spec)
    _, rival = await clients.add("rival", anchor_spec)
    anchored = await client.post(
        "/api/v1/anchors",
        json={
            "subject": "part:1234",
            "kind": "custody",
            "digest": base64.b64encode(hashlib.sha256(b"p").digest()).decode(),
        },
        headers={"Authorization": f"Bearer {anchorer}"},
    )
    assert anchored.status in (200, 201), await anchored.text()
    record = str((await anchored.json())["record"])
    opened = await client.post(
        "/api/v1/custody/handovers",
        json={
            "subject": "part:1234",
            "kind": "custody",
            "digest": base64.b64encode(hashlib.sha256(b"h").digest()).decode(),
            "metadata": {"state": "in-transit"},
            "giver": "client:anchorer",
            "receiver": "client:limited",
        },
        headers={"Authorization": f"Bearer {anchorer}"},
    )
    assert opened.status == 201, await opened.text()
    handover = str((await opened.json())["handover"])

    low = await person("low", level="CONFIDENTIAL", roles=("reader", "uploader"))
    low_bearer = {"Authorization": f"Bearer {await issue_token(principal=low)}"}
    assert (await sign_in(client, "low")).status == 303
    csrf = await form_token(client, "/")
    approval = await ApprovalRequest.create(
        id=str(uuid.uuid4()),
        document_id=document,
        version=1,
        action="destroy",
        requested_by="person:someone",
        requested_at=datetime.now(UTC),
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    values = {
        "approval": approval.id,
        "document": document,
        "owner": "owner",
        "client": "anchorer",
        "certificate": "1",
        "record": record,
        "handover": handover,
        "key": other_key,
        "client_token": anchorer[:12],
    }
    return World(
        values,
        low_bearer,
        {"Authorization": f"Bearer {limited}"},
        {"Authorization": f"Bearer {rival}"},
        owner_bearer,
        csrf,
    )


async def test_every_id_route_is_classified(portal: Portal) -> None:
    routes = id_routes(portal.app)
    unclassified = routes - set(REFUSED) - set(PUBLIC_BY_DESIGN)
    assert not unclassified, f"classify these routes in this test: {sorted(unclassified)}"
    stale = (set(REFUSED) | set(PUBLIC_BY_DESIGN)) - routes
    assert not stale, f"no longer routed: {sorted(stale)}"


async def test_no_route_serves_or_changes_an_object_to_a_caller_without_rights(
    portal: Portal,
) -> None:
    world = await build_world(portal)
    client = portal.client
    walked = []
    for route, walker in sorted(REFUSED.items()):
        method, template = route
        path = fill(template, world.values, route)
        headers = {
            "person": world.person_bearer,
            "client": world.client_bearer,
            "rival": world.rival_bearer,
        }[walker]
        if not path.startswith("/api/"):
            headers = {}  # the portal: the signed-in low reader's session cookie
        response = await client.request(
            method,
            path,
            headers=headers,
            allow_redirects=False,
            **body_for(method, path, world.csrf),
        )
        if response.status == 303:  # the check form lives on the document page
            assert response.headers["Location"].startswith(f"/documents/{world.values['document']}")
            response = await client.get(response.headers["Location"])
        text = await response.text()
        assert response.status in (401, 403, 404), f"{method} {path}: {response.status} {text}"
        assert SECRET_TITLE not in text and SECRET_BODY.decode() not in text, route
        if path.startswith("/api/"):
            assert json.loads(text)["error"], route
        walked.append(route)
    assert len(walked) == len(REFUSED)

    # Nothing was changed by the refused calls.
    meta = await client.get(
        f"/api/v1/documents/{world.values['document']}", headers=world.owner_bearer
    )
    assert meta.status == 200
    described = await meta.json()
    assert described["title"] == SECRET_TITLE
    assert described["label"].startswith("TOP SECRET")
    content = await client.get(
        f"/api/v1/documents/{world.values['document']}/content", headers=world.owner_bearer
    )
    assert content.status == 200 and await content.read() == SECRET_BODY
    assert (await ApprovalRequest.get(id=world.values["approval"])).status == "pending"
    owner = await Principal.get(username="owner")
    assert not owner.disabled and owner.level == "TOP SECRET" and "admin" not in owner.roles
    low = await Principal.get(username="low")
    assert low.level == "CONFIDENTIAL" and "admin" not in low.roles
    assert await SecurityKey.filter(principal_id=owner.id).count() == 1
    listed = await client.get("/api/v1/keys", headers=world.client_bearer)
    assert [k["name"] for k in (await listed.json())["keys"]] == ["default"]


async def test_public_id_routes_hold_only_public_ledger_data(portal: Portal) -> None:
    world = await build_world(portal)
    for route in PUBLIC_BY_DESIGN:
        method, template = route
        path = fill(template, world.values, route)
        response = await portal.client.request(method, path, headers=world.person_bearer)
        assert response.status < 500, route
        assert SECRET_BODY not in await response.read(), route


async def test_machine_responses_carry_security_headers(portal: Portal) -> None:
    """API answers, errors and streamed downloads are never framed, sniffed or cached."""
    world = await build_world(portal)
    document = world.values["document"]
    for path, headers in (
        ("/api/v1/documents", world.owner_bearer),
        (f"/api/v1/documents/{document}/content", world.owner_bearer),
        (f"/api/v1/documents/{document}", world.person_bearer),  # a 404 error body
        ("/api/v1/documents", {}),  # a 401
    ):
        response = await portal.client.get(path, headers=headers)
        await response.read()
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["X-Frame-Options"] == "DENY", path
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], path
        assert response.headers["Cache-Control"] == "no-store", path
    tile = await portal.client.get("/ledger/tile/0/000.p/1")
    assert tile.status == 200
    assert tile.headers["X-Content-Type-Options"] == "nosniff"
    assert tile.headers["Cache-Control"] != "no-store"  # tiles keep their own policy


async def test_no_answer_names_the_server_software_or_its_version(
    portal: Portal, caplog: pytest.LogCaptureFixture
) -> None:
    """Pages, API answers, errors, health and ledger resources, and the parser's own
    refusal of a broken request line say ``Server: Sekisho``, not aiohttp's and Python's
    releases (which would tell a caller which published defects to try). The broken
    request is one warning line in the log, not an error with a traceback."""
    world = await build_world(portal)
    for path, headers in (
        ("/", {}),  # the sign-in page (a redirect or a page)
        ("/api/v1/documents", world.owner_bearer),
        ("/api/v1/documents", {}),  # a 401
        (f"/api/v1/documents/{world.values['document']}", world.person_bearer),  # a 404
        ("/healthz", {}),
        ("/readyz", {}),
        ("/metrics", {}),
        ("/ledger/checkpoint", {}),
        ("/no/such/route", {}),
    ):
        response = await portal.client.get(path, headers=headers, allow_redirects=False)
        await response.read()
        assert response.headers.get("Server") == "Sekisho", (path, response.headers.get("Server"))
    server = portal.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    assert raw.startswith(b"HTTP/1.0 400") or raw.startswith(b"HTTP/1.1 400"), raw[:80]
    assert b"aiohttp" not in raw.lower() and b"python" not in raw.lower(), raw[:400]
    refused = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert refused, "the refusal is logged"
    assert all(r.levelno == logging.WARNING and not r.exc_info for r in refused), refused
    assert "Invalid char in url path" in refused[-1].getMessage()
