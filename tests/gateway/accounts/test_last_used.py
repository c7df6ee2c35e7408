"""A bearer token's last use is recorded in the background, and never fails the request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.accounts.service import AccountService, Actor, NewAccount
from gateway.auth import last_used
from gateway.auth.principals import ApiToken
from gateway.auth.tokens import authenticate_bearer, identity_cache
from gateway.ledger.queued import QueuedLedger
from gateway.policy.labels import LevelScheme
from tests.gateway.databases import database_url, opened

ACTOR = Actor("person:boss", "192.0.2.7")


@pytest.fixture(params=["sqlite", "postgres"])
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AccountService]:
    async with opened(database_url(request, tmp_path)):
        yield AccountService(QueuedLedger("node-a"), LevelScheme())
        await last_used.flush_noted()


async def test_the_first_use_of_a_token_is_recorded(service: AccountService) -> None:
    await service.create(NewAccount("erin", "SECRET", roles=("reader",)), ACTOR)
    token, prefix = await service.issue_token("erin", "", ACTOR)
    assert (await ApiToken.get(prefix=prefix)).last_used_at is None
    assert (await authenticate_bearer(token)).name == "erin"
    await last_used.flush_noted()
    assert (await ApiToken.get(prefix=prefix)).last_used_at is not None


async def test_a_failing_timestamp_write_does_not_fail_authentication(
    service: AccountService, monkeypatch: pytest.MonkeyPatch
) -> None:
    await service.create(NewAccount("finn", "SECRET", roles=("reader",)), ACTOR)
    token, prefix = await service.issue_token("finn", "", ACTOR)

    def locked(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(ApiToken, "filter", locked)
    identity_cache.clear()
    assert (await authenticate_bearer(token)).name == "finn"
    await last_used.flush_noted()  # the write failed, was logged and dropped
    monkeypatch.undo()
    assert (await ApiToken.get(prefix=prefix)).last_used_at is None
