"""Account checks hold when administrators act at the same moment (issue #14).

Each check (the last enabled administrator, a free username, a live token, a
still-enabled account) used to be read, then ledgered, then written, with
awaits in between: two concurrent requests both passed it. Now the check and
the write share one serialised transaction, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.accounts.service import AccountChanges, AccountService, Actor, NewAccount
from gateway.auth.certificates import CertificateActor, PersonCertificates
from gateway.auth.principals import ApiToken, Principal
from gateway.errors import Conflict
from gateway.ledger.queued import QueuedLedger
from gateway.policy.labels import LevelScheme
from gateway.signing.clients import ClientService, ClientSpec
from tests.gateway.databases import database_url, opened
from tests.gateway.ledger_rows import ledger_entries

ROOT = Actor("person:root", "192.0.2.1")
DEPUTY = Actor("person:deputy", "192.0.2.2")


@pytest.fixture(params=["sqlite", "postgres"])
async def service(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[AccountService]:
    check = AccountService._keep_an_admin

    async def slow_check(self: AccountService, person: Principal) -> None:
        await check(self, person)
        await asyncio.sleep(0.05)  # widen the gap between the check and the write

    monkeypatch.setattr(AccountService, "_keep_an_admin", slow_check)
    async with opened(database_url(request, tmp_path)):
        accounts = AccountService(QueuedLedger("node-a"), LevelScheme())
        for name in ("root", "deputy"):
            await accounts.create(NewAccount(name, "TOP SECRET", roles=("admin",)), ROOT)
        yield accounts


async def enabled_admins() -> list[str]:
    people = await Principal.filter(disabled=False).order_by("username")
    return [p.username for p in people if "admin" in p.roles]


async def test_two_admins_disabling_each_other_leave_one(service: AccountService) -> None:
    results = await asyncio.gather(
        service.set_disabled("deputy", True, ROOT),
        service.set_disabled("root", True, DEPUTY),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Conflict) for r in results) == 1, results
    assert len(await enabled_admins()) == 1
    assert len(await ledger_entries("principal.changed", change="disabled")) == 1


async def test_two_admins_demoting_each_other_leave_one(service: AccountService) -> None:
    readers = AccountChanges(roles=("reader",))
    results = await asyncio.gather(
        service.update("deputy", readers, ROOT),
        service.update("root", readers, DEPUTY),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Conflict) for r in results) == 1, results
    assert len(await enabled_admins()) == 1


async def test_disabling_and_demoting_at_once_leave_one(service: AccountService) -> None:
    results = await asyncio.gather(
        service.set_disabled("deputy", True, ROOT),
        service.update("root", AccountChanges(roles=("officer",)), DEPUTY),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Conflict) for r in results) == 1, results
    assert len(await enabled_admins()) == 1


async def test_one_name_created_twice_at_once_is_one_account_and_one_entry(
    service: AccountService,
) -> None:
    results = await asyncio.gather(
        *(service.create(NewAccount("carol", "SECRET"), ROOT) for _ in range(5)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Conflict) for r in results) == 4, results
    assert await Principal.filter(username="carol").count() == 1
    assert len(await ledger_entries("principal.changed", principal="carol")) == 1


async def test_one_token_revoked_twice_at_once_is_one_entry(service: AccountService) -> None:
    _, prefix = await service.issue_token("root", "laptop", ROOT)
    results = await asyncio.gather(*(service.revoke_token(prefix, ROOT) for _ in range(5)))
    assert sorted(changed for _, changed in results) == [False] * 4 + [True]
    assert len(await ledger_entries("principal.changed", change="token_revoked")) == 1


async def test_one_account_disabled_twice_at_once_is_one_entry(service: AccountService) -> None:
    await service.create(NewAccount("erin", "SECRET"), ROOT)
    results = await asyncio.gather(*(service.set_disabled("erin", True, ROOT) for _ in range(5)))
    assert sorted(changed for _, changed in results) == [False] * 4 + [True]
    assert len(await ledger_entries("principal.changed", principal="erin", change="disabled")) == 1


async def test_no_live_token_survives_a_concurrent_disable(service: AccountService) -> None:
    await service.create(NewAccount("erin", "SECRET"), ROOT)
    results = await asyncio.gather(
        *(service.issue_token("erin", f"t{n}", ROOT) for n in range(4)),
        service.set_disabled("erin", True, ROOT),
        return_exceptions=True,
    )
    assert not any(isinstance(r, BaseException) and not isinstance(r, Conflict) for r in results)
    assert await ApiToken.filter(principal__username="erin", revoked=False).count() == 0


async def test_an_api_client_revoked_twice_at_once_is_one_entry(service: AccountService) -> None:
    clients = ClientService(QueuedLedger("node-a"), actor="operator:test")
    _, token = await clients.add("loader", ClientSpec(scopes=("anchor",)))
    results = await asyncio.gather(*(clients.revoke("loader") for _ in range(5)))
    assert sorted(results) == [False] * 4 + [True]
    assert len(await ledger_entries("client.changed", change="revoked")) == 1
    results = await asyncio.gather(*(clients.revoke_token("loader", token[:12]) for _ in range(3)))
    assert results == [False] * 3  # revoking the client revoked its tokens


async def test_one_certificate_registered_twice_at_once_is_one_entry(
    service: AccountService,
) -> None:
    certificates = PersonCertificates(QueuedLedger("node-a"))
    root = await service.get("root")
    actor = CertificateActor("person:root", "192.0.2.1")
    results = await asyncio.gather(
        *(certificates.add(root, "ab" * 32, "laptop", actor) for _ in range(5)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Conflict) for r in results) == 4, results
    added = await ledger_entries("principal.changed", change="certificate_added")
    assert len(added) == 1
