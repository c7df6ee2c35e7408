"""Security keys on SQLite and PostgreSQL: register, assert (sign counter kept), step up, remove."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.auth.models import PortalSession, SecurityKey, WebAuthnChallenge
from gateway.auth.principals import Principal
from gateway.auth.security_keys import KeyActor, RelyingParty, SecurityKeyRefused, SecurityKeys
from gateway.auth.sessions import SessionPolicy, SessionStore, session_digest
from gateway.auth.signin import SignInFailed, SignInService, ThrottlePolicy
from gateway.ledger.queued import QueuedLedger
from tests.gateway.databases import database_url, opened
from tests.web.soft_key import SoftKey

ORIGIN = "https://example.org"
ACTOR = KeyActor("person:alice", "10.0.0.1")


@pytest.fixture(params=["sqlite", "postgres"])
async def alice(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Principal]:
    async with opened(database_url(request, tmp_path)):
        yield await Principal.create(username="alice", level="SECRET", roles=["reader"])


def services() -> tuple[SecurityKeys, SignInService, SessionStore]:
    keys = SecurityKeys(QueuedLedger("node-a"), RelyingParty("example.org", "Sekisho"))
    sessions = SessionStore(SessionPolicy(idle=timedelta(hours=1), absolute=timedelta(hours=8)))
    return keys, SignInService(QueuedLedger("node-a"), sessions, ThrottlePolicy(), keys), sessions


async def test_a_key_registers_signs_in_steps_up_and_is_removed(alice: Principal) -> None:
    keys, sign_in, sessions = services()
    key = SoftKey()
    options = json.loads(await keys.registration_options(alice, "blue", "browser-1"))
    credential = json.dumps(key.create(options, ORIGIN))
    stored = await keys.register(alice, credential, "browser-1", [ORIGIN], ACTOR)
    assert (stored.name, stored.sign_count) == ("blue", 1)

    options = json.loads(await keys.assertion_options("browser-2", "sign_in"))
    assertion = json.dumps(key.get(options, ORIGIN, rp_id="example.org"))
    signed = await sign_in.with_security_key(assertion, "browser-2", [ORIGIN], "10.0.0.2")
    assert signed.person.id == alice.id and signed.method == "security_key"
    assert (await SecurityKey.get(id=stored.id)).sign_count == 2
    # the same assertion again: its challenge is gone
    with pytest.raises(SignInFailed):
        await sign_in.with_security_key(assertion, "browser-2", [ORIGIN], "10.0.0.2")

    session = await sessions.create(alice, "password", "10.0.0.3")
    options = json.loads(await keys.assertion_options("browser-3", "step_up", alice))
    answer = json.dumps(key.get(options, ORIGIN, rp_id="example.org"))
    await sign_in.step_up(alice, session, answer, "browser-3", [ORIGIN], "10.0.0.3")
    assert (await PortalSession.get(id_hash=session_digest(session))).step_up == "security_key"

    await keys.remove(alice, stored.id, ACTOR)
    assert await SecurityKey.all().count() == 0
    assert await PortalSession.filter(method="security_key").count() == 0
    assert (await PortalSession.get(id_hash=session_digest(session))).step_up == ""
    assert await WebAuthnChallenge.all().count() == 0


async def test_a_registration_for_another_origin_is_refused(alice: Principal) -> None:
    keys, _, _ = services()
    options = json.loads(await keys.registration_options(alice, "blue", "browser-1"))
    credential = json.dumps(SoftKey().create(options, "https://example.org.evil.net"))
    with pytest.raises(SecurityKeyRefused):
        await keys.register(alice, credential, "browser-1", [ORIGIN], ACTOR)
    assert await SecurityKey.all().count() == 0
