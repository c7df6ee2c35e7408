"""Disabling, demoting or lowering a clearance ends the person's sessions, on every path (#14).

Before the fix only the portal's disable button ended sessions: disabling through
the admin API or the CLI left them in the table, and after enabling the account
again the old session cookie worked again. Personal tokens behaved the same.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.accounts.service import AccountChanges, AccountService, Actor
from gateway.auth.certificates import CertificateActor, PersonCertificates
from gateway.auth.models import PortalSession
from gateway.auth.tokens import issue_token
from gateway.ledger.queued import QueuedLedger
from gateway.policy.labels import LevelScheme
from tests.web.conftest import Portal, form_token, person, sign_in
from web.portal.app_keys import PORTAL

USERS = "/api/v1/admin/users"
Client = TestClient[Any, Any]


async def signed_in_client(
    portal: Portal, aiohttp_client: Callable[..., Awaitable[Client]], username: str
) -> Client:
    """Another browser (its own cookie jar) on the same app, signed in as ``username``."""
    client = await aiohttp_client(portal.client.server)
    assert (await sign_in(client, username)).status == 303
    assert (await client.get("/documents", allow_redirects=False)).status == 200
    return client


async def works(client: Client) -> bool:
    return (await client.get("/documents", allow_redirects=False)).status == 200


@pytest.fixture
async def admin_headers(portal: Portal) -> dict[str, str]:
    boss = await person("boss", level="TOP SECRET", roles=("admin", "reader"))
    return {"Authorization": f"Bearer {await issue_token(principal=boss)}"}


async def test_disabling_through_the_api_ends_sessions_for_good(
    portal: Portal, admin_headers: dict[str, str], aiohttp_client: Any
) -> None:
    await person("alice")
    browser = await signed_in_client(portal, aiohttp_client, "alice")
    api = portal.client
    assert (await api.post(USERS + "/alice/disable", headers=admin_headers)).status == 200
    assert await PortalSession.filter(principal__username="alice").count() == 0
    assert (await api.post(USERS + "/alice/enable", headers=admin_headers)).status == 200
    assert not await works(browser)  # the old session does not come back


async def test_disabling_offline_as_the_cli_does_ends_sessions(
    portal: Portal, aiohttp_client: Any
) -> None:
    await person("alice")
    browser = await signed_in_client(portal, aiohttp_client, "alice")
    offline = AccountService(QueuedLedger(portal.settings.node.name), LevelScheme())
    operator = Actor("operator:root", "cli")
    await offline.set_disabled("alice", True, operator)
    await offline.set_disabled("alice", False, operator)
    assert not await works(browser)
    assert await PortalSession.filter(principal__username="alice").count() == 0


async def test_disabling_in_the_portal_ends_sessions_for_good(
    portal: Portal, aiohttp_client: Any
) -> None:
    await person("alice")
    await person("root", level="TOP SECRET", roles=("admin", "reader"))
    browser = await signed_in_client(portal, aiohttp_client, "alice")
    admin = await signed_in_client(portal, aiohttp_client, "root")
    for action in ("disable", "enable"):
        token = await form_token(admin, "/admin/people/alice")
        done = await admin.post(
            f"/admin/people/alice/{action}", data={"csrf": token}, allow_redirects=False
        )
        assert done.status == 303
    assert not await works(browser)


@pytest.mark.parametrize(
    ("change", "ends"),
    [
        ({"roles": ["reader"]}, True),  # uploader role removed
        ({"level": "CONFIDENTIAL"}, True),
        ({"compartments": []}, True),
        ({"nationality": "DEU"}, True),
        ({"level": "TOP SECRET"}, False),  # raised: nothing to end
        ({"roles": ["reader", "uploader", "officer"]}, False),
        ({"display_name": "Alice A."}, False),
    ],
)
async def test_lowering_a_clearance_or_removing_a_role_ends_sessions(
    portal: Portal,
    admin_headers: dict[str, str],
    aiohttp_client: Any,
    change: dict[str, Any],
    ends: bool,
) -> None:
    await person("alice", compartments=("LOGISTICS",))
    browser = await signed_in_client(portal, aiohttp_client, "alice")
    response = await portal.client.patch(USERS + "/alice", json=change, headers=admin_headers)
    assert response.status == 200, await response.text()
    assert (await response.json())["changed"]
    assert await works(browser) is not ends


async def test_a_service_change_that_lowers_nothing_keeps_sessions(
    portal: Portal, aiohttp_client: Any
) -> None:
    await person("alice")
    browser = await signed_in_client(portal, aiohttp_client, "alice")
    offline = AccountService(QueuedLedger(portal.settings.node.name), LevelScheme())
    await offline.update("alice", AccountChanges(display_name="Alice"), Actor("operator:x", "cli"))
    assert await works(browser)


async def test_removing_a_certificate_ends_the_sessions_it_could_have_opened(
    portal: Portal,
) -> None:
    alice = await person("alice")
    certificates = PersonCertificates(QueuedLedger(portal.settings.node.name))
    actor = CertificateActor("person:root", "192.0.2.1")
    row = await certificates.add(alice, "ab" * 32, "laptop", actor)
    sessions = portal.app[PORTAL].sessions
    by_certificate = await sessions.create(alice, "certificate", "192.0.2.9")
    by_password = await sessions.create(alice, "password", "192.0.2.9")
    await certificates.remove(alice, row.id, actor)
    assert await sessions.resolve(by_certificate) is None
    assert await sessions.resolve(by_password) is not None
