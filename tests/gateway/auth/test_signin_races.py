"""Sign-in throttling holds under concurrency, on SQLite and PostgreSQL (issue #14).

Before the fix the lock-out was read before argon2 ran in a thread and the
failure counted after it, so 60 concurrent guesses had 55 passwords checked
against a limit of 5. Now every check reserves a slot first, in the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.auth.passwords import hash_password
from gateway.auth.principals import Principal
from gateway.auth.sessions import SessionPolicy, SessionStore
from gateway.auth.signin import LockedOut, SignedIn, SignInFailed, SignInService, ThrottlePolicy
from gateway.errors import BadRequest
from gateway.ledger.queued import QueuedLedger
from tests.gateway.databases import database_url, opened
from tests.gateway.ledger_rows import ledger_entries

PASSWORD = "the right password, long enough"
POLICY = ThrottlePolicy(max_failures=5, max_address_failures=20)
CHECKED = {"bad_password", "granted", "disabled", "unknown_account"}


def sign_in_service(policy: ThrottlePolicy = POLICY) -> SignInService:
    sessions = SessionStore(SessionPolicy(idle=timedelta(hours=1), absolute=timedelta(hours=8)))
    return SignInService(QueuedLedger("node-a"), sessions, policy)


@pytest.fixture(params=["sqlite", "postgres"])
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SignInService]:
    async with opened(database_url(request, tmp_path)):
        await Principal.create(
            username="alice",
            password_hash=hash_password(PASSWORD),
            level="SECRET",
            roles=["reader"],
        )
        yield sign_in_service()


async def checked_attempts() -> list[str]:
    """Reasons of the attempts whose password was actually verified."""
    entries = await ledger_entries("auth.sign_in")
    return [e["reason"] for e in entries if e["reason"] in CHECKED]


async def test_sixty_concurrent_guesses_check_five_passwords(service: SignInService) -> None:
    results = await asyncio.gather(
        *(service.with_password("alice", f"guess {n}", f"192.0.2.{n}") for n in range(60)),
        return_exceptions=True,
    )
    assert all(isinstance(r, SignInFailed | LockedOut) for r in results), results
    assert await checked_attempts() == ["bad_password"] * 5
    # Four wrong passwords; the fifth locks the account (and says so); 55 never checked.
    assert sum(isinstance(r, SignInFailed) for r in results) == 4
    with pytest.raises(LockedOut):  # the right password is not even checked now
        await service.with_password("alice", PASSWORD, "198.51.100.1")


async def test_a_right_password_among_concurrent_guesses_gets_no_extra_checks(
    service: SignInService,
) -> None:
    guesses = [service.with_password("alice", f"guess {n}", "192.0.2.1") for n in range(40)]
    guesses.insert(20, service.with_password("alice", PASSWORD, "192.0.2.1"))
    results = await asyncio.gather(*guesses, return_exceptions=True)
    checked = await checked_attempts()
    # The address allows 20 and the account 5 failures: one success may clear the
    # account's count once, so at most 5 + 1 + 5 checks, never the 41 of before.
    assert len(checked) <= 11, checked
    assert sum(isinstance(r, SignedIn) for r in results) <= 1


async def test_concurrent_guesses_from_one_address_check_at_most_its_limit(
    service: SignInService,
) -> None:
    names = [f"user{n}" for n in range(60)]
    results = await asyncio.gather(
        *(service.with_password(name, "guess", "203.0.113.9") for name in names),
        return_exceptions=True,
    )
    assert all(isinstance(r, SignInFailed | LockedOut) for r in results)
    assert len(await checked_attempts()) == 20


async def test_changing_the_password_obeys_the_same_lock_out(service: SignInService) -> None:
    alice = await Principal.get(username="alice")
    for n in range(4):
        with pytest.raises(SignInFailed):
            await service.with_password("alice", f"guess {n}", "192.0.2.1")
    with pytest.raises(LockedOut):  # the fifth failure, through the password form
        await service.check_password(alice, "another guess", "192.0.2.2")
    with pytest.raises(LockedOut):  # locked: the right current password is not checked
        await service.change_password(
            alice, PASSWORD, "a brand new password", "a brand new password", source="x", keep=""
        )
    assert (await Principal.get(username="alice")).password_hash == alice.password_hash


async def test_concurrent_password_changes_check_five_passwords(service: SignInService) -> None:
    alice = await Principal.get(username="alice")
    results = await asyncio.gather(
        *(service.check_password(alice, f"guess {n}", "192.0.2.1") for n in range(30)),
        return_exceptions=True,
    )
    assert all(isinstance(r, BadRequest | LockedOut) for r in results), results
    assert await checked_attempts() == ["bad_password"] * 5
