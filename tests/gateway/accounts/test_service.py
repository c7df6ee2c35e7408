"""The account service on SQLite and PostgreSQL: validation, one ledger entry per change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.accounts.rules import AccountError
from gateway.accounts.service import (
    AccountChanges,
    AccountService,
    Actor,
    NewAccount,
    account_view,
)
from gateway.auth.identity import Unauthenticated
from gateway.auth.principals import ApiToken, Principal
from gateway.auth.tokens import authenticate_bearer
from gateway.errors import Conflict, NotFound, Unavailable
from gateway.ledger.queued import QueuedLedger
from gateway.ledger.store import TortoiseLedgerStore
from gateway.policy.labels import LevelScheme
from tests.gateway.databases import database_url, opened
from tests.gateway.ledger_rows import ledger_entries, raw_ledger_bytes

ACTOR = Actor("person:boss", "192.0.2.7")


@pytest.fixture(params=["sqlite", "postgres"])
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AccountService]:
    async with opened(database_url(request, tmp_path)):
        yield AccountService(QueuedLedger("node-a"), LevelScheme())


async def changes_of(username: str) -> list[dict[str, Any]]:
    return await ledger_entries("principal.changed", principal=username)


async def test_every_change_is_one_entry_and_no_op_is_none(service: AccountService) -> None:
    new = NewAccount(
        "carol",
        "secret",
        compartments=("logistics", "alpha"),
        nationality="usa",
        roles=("reader", "uploader"),
        display_name="Carol Codeword-Named",
    )
    person, password = await service.create(new, ACTOR)
    assert (person.level, person.compartments, person.nationality) == (
        "SECRET",
        ["ALPHA", "LOGISTICS"],
        "USA",
    )
    assert person.must_change_password and person.password_hash.startswith("$argon2id$")
    [created] = await changes_of("carol")
    assert created["change"] == "created"
    assert created["actor"] == "person:boss" and created["source"] == "192.0.2.7"
    assert created["level"] == "SECRET" and created["roles"] == ["reader", "uploader"]
    assert "password" in created["fields"] and "compartments" in created["fields"]

    _, changed = await service.update("carol", AccountChanges(level="TOP SECRET"), ACTOR)
    assert changed == ["level"]
    _, changed = await service.update(
        "carol", AccountChanges(level="top  secret", roles=("uploader", "reader")), ACTOR
    )
    assert changed == []  # same values in another spelling: nothing to ledger
    _, changed = await service.update(
        "carol", AccountChanges(compartments=(), nationality="GBR"), ACTOR
    )
    assert changed == ["compartments", "nationality"]
    assert (await service.set_disabled("carol", True, ACTOR))[1] is True
    assert (await service.set_disabled("carol", True, ACTOR))[1] is False
    assert (await service.set_disabled("carol", False, ACTOR))[1] is True

    entries = await changes_of("carol")
    assert [e["change"] for e in entries] == [
        "created",
        "updated",
        "updated",
        "disabled",
        "enabled",
    ]
    assert entries[1]["fields"] == ["level"] and entries[1]["level"] == "TOP SECRET"
    raw = await raw_ledger_bytes()
    for secret in (password.encode(), b"Codeword", b"LOGISTICS", b"USA", b"argon2"):
        assert secret not in raw
    view = account_view(await service.get("carol"))
    assert "password_hash" not in view and view["nationality"] == "GBR"


@pytest.mark.parametrize(
    ("new", "fragment"),
    [
        (NewAccount("Carol", "SECRET"), "invalid username"),
        (NewAccount("-carol", "SECRET"), "invalid username"),
        (NewAccount("c" * 65, "SECRET"), "invalid username"),
        (NewAccount("carol", "COSMIC"), "unknown classification level"),
        (NewAccount("carol", "SECRET", compartments=("a b",)), "malformed compartment"),
        (NewAccount("carol", "SECRET", compartments=("X", "x")), "listed twice"),
        (NewAccount("carol", "SECRET", nationality="US"), "United States is USA"),
        (NewAccount("carol", "SECRET", nationality="U5A"), "not an ISO 3166-1 alpha-3 code"),
        (NewAccount("carol", "SECRET", roles=("reader", "root")), "unknown role(s) root"),
        (NewAccount("carol", "SECRET", roles=()), "at least one role"),
        (NewAccount("carol", "SECRET", display_name="a\nb"), "printable"),
    ],
)
async def test_invalid_accounts_are_refused_unledgered(
    service: AccountService, new: NewAccount, fragment: str
) -> None:
    with pytest.raises(AccountError, match=None) as caught:
        await service.create(new, ACTOR)
    assert fragment in caught.value.message
    assert await Principal.all().count() == 0
    assert await ledger_entries("principal.changed") == []


async def test_duplicates_unknown_users_and_the_last_admin(service: AccountService) -> None:
    await service.create(NewAccount("root", "TOP SECRET", roles=("admin",)), ACTOR)
    with pytest.raises(Conflict, match="already exists"):
        await service.create(NewAccount("root", "SECRET"), ACTOR)
    with pytest.raises(NotFound):
        await service.update("nobody", AccountChanges(level="SECRET"), ACTOR)
    with pytest.raises(Conflict, match="last enabled administrator"):
        await service.set_disabled("root", True, ACTOR)
    with pytest.raises(Conflict, match="last enabled administrator"):
        await service.update("root", AccountChanges(roles=("officer",)), ACTOR)
    await service.create(NewAccount("deputy", "SECRET", roles=("admin", "reader")), ACTOR)
    await service.set_disabled("root", True, ACTOR)  # another admin remains
    with pytest.raises(Conflict, match="last enabled administrator"):
        await service.update("deputy", AccountChanges(roles=("reader",)), ACTOR)
    assert len(await changes_of("root")) == 2  # created, disabled; refusals ledger nothing


async def test_personal_tokens_authenticate_until_revoked(service: AccountService) -> None:
    await service.create(NewAccount("dana", "SECRET", roles=("reader", "officer")), ACTOR)
    token, prefix = await service.issue_token("dana", "laptop", ACTOR)
    assert token.startswith(prefix) and len(prefix) == 12
    caller = await authenticate_bearer(token)
    assert (caller.name, caller.roles) == ("dana", frozenset({"reader", "officer"}))
    assert [t.label for t in await service.tokens("dana")] == ["laptop"]

    second, _ = await service.issue_token("dana", "", ACTOR)
    row, changed = await service.revoke_token(prefix, ACTOR)
    assert changed and row.revoked
    with pytest.raises(Unauthenticated):
        await authenticate_bearer(token)
    assert (await authenticate_bearer(second)).name == "dana"  # the other token still works
    assert (await service.revoke_token(prefix, ACTOR))[1] is False
    assert (await service.revoke_token(second, ACTOR))[1] is True  # the whole token works too
    with pytest.raises(NotFound):
        await service.revoke_token("sks_nothere0", ACTOR)

    third, _ = await service.issue_token("dana", "", ACTOR)
    await service.set_disabled("dana", True, ACTOR)
    with pytest.raises(Unauthenticated):
        await authenticate_bearer(third)
    with pytest.raises(Conflict, match="disabled"):
        await service.issue_token("dana", "", ACTOR)
    await service.set_disabled("dana", False, ACTOR)
    with pytest.raises(Unauthenticated):  # disabling revoked it: enabling does not revive it
        await authenticate_bearer(third)

    entries = await changes_of("dana")
    assert [e["change"] for e in entries] == [
        "created",
        "token_issued",
        "token_issued",
        "token_revoked",
        "token_revoked",
        "token_issued",
        "disabled",
        "enabled",
    ]
    assert entries[-2]["fields"] == ["disabled", "tokens"]
    assert entries[1]["token"] == prefix and entries[3]["token"] == prefix
    raw = await raw_ledger_bytes()
    assert token.encode() not in raw and third.encode() not in raw


async def test_nothing_changes_when_the_ledger_cannot_record(
    service: AccountService, monkeypatch: pytest.MonkeyPatch
) -> None:
    await service.create(NewAccount("erin", "SECRET"), ACTOR)

    async def unwritable(self: TortoiseLedgerStore, entries: Any) -> list[int]:
        raise Unavailable("the ledger cannot record entries right now")

    # Entries are queued in the change's own transaction: a queue that cannot be
    # written rolls the change back.
    monkeypatch.setattr(TortoiseLedgerStore, "enqueue", unwritable)
    broken = service
    with pytest.raises(Unavailable):
        await broken.create(NewAccount("frank", "SECRET"), ACTOR)
    with pytest.raises(Unavailable):
        await broken.update("erin", AccountChanges(level="TOP SECRET"), ACTOR)
    with pytest.raises(Unavailable):
        await broken.set_disabled("erin", True, ACTOR)
    with pytest.raises(Unavailable):
        await broken.issue_token("erin", "", ACTOR)
    erin = await service.get("erin")
    assert (erin.level, erin.disabled) == ("SECRET", False)
    assert not await Principal.exists(username="frank")
    assert await ApiToken.all().count() == 0  # the unledgered token was removed again
