"""What sign-in failures tell, store and log (#14, #13 item 7).

A password typed into the username field used to be stored verbatim in
``sign_in_attempt``, shown on /officer/alerts and written to the debug log.
Now a name that is no account's is kept only as a keyed hash and its length,
and its look-up is never logged. And the person signing in cannot tell an
unknown name from a wrong password from a disabled account.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

import pytest

import gateway.auth.passwords
import gateway.auth.signin
from gateway.auth.models import SignInAttempt, SignInLock
from gateway.auth.name_tags import is_tag, scrub_typed_names
from tests.gateway.ledger_rows import raw_ledger_bytes
from tests.web.conftest import PASSWORD, Portal, form_token, ledger_entries, person, sign_in

TYPED = ["Correct Horse Battery 42!", "correcthorsebattery42"]  # passwords typed as names


@pytest.fixture
def portal_settings() -> dict[str, str]:
    return {"SEKISHO_PORTAL_MAX_FAILURES": "5", "SEKISHO_PORTAL_MAX_ADDRESS_FAILURES": "50"}


async def test_a_password_typed_as_a_name_is_never_stored_shown_or_logged(
    portal: Portal, caplog: pytest.LogCaptureFixture
) -> None:
    await person("olivia", level="TOP SECRET", roles=("reader", "officer"))
    caplog.set_level(logging.DEBUG)
    for typed in TYPED:
        for _ in range(3):
            failed = await sign_in(portal.client, typed, "whatever")
            assert failed.status == 401
    assert "sign_in_attempt" in caplog.text  # SQL is logged at debug level, just not these
    attempts = await SignInAttempt.all()
    assert len(attempts) == 6 and all(is_tag(a.username) for a in attempts)
    assert len({a.username for a in attempts}) == 2  # the same name, the same tag
    assert await sign_in(portal.client, "olivia") is not None
    alerts = await portal.client.get("/officer/alerts")
    assert alerts.status == 200
    page = await alerts.text()
    assert "unknown name (25 characters" in page and "unknown name (21 characters" in page
    raw = await raw_ledger_bytes()
    for typed in TYPED:
        for form in (typed, typed.lower(), typed.strip().lower()):
            assert form not in caplog.text, "a typed name reached the log"
            assert form not in page
            assert form.encode() not in raw


async def test_names_stored_verbatim_before_are_replaced_by_tags(portal: Portal) -> None:
    await person("alice")
    now = datetime.now(UTC)
    old: dict[str, Any] = {
        "at": now,
        "source": "192.0.2.1",
        "outcome": "denied",
        "reason": "unknown_account",
    }
    await SignInAttempt.create(username="hunter2hunter2", known=False, **old)
    await SignInAttempt.create(username="alice", known=True, **old)
    await SignInAttempt.create(username="cert:0123456789abcdef", known=False, **old)
    lock: dict[str, Any] = {"scope": "account", "at": now, "until": now, "failures": 5}
    await SignInLock.create(subject="hunter2hunter2", **lock)
    await SignInLock.create(subject="alice", **lock)
    assert await scrub_typed_names() == 2
    names = {a.username for a in await SignInAttempt.all()}
    assert "hunter2hunter2" not in names and {"alice", "cert:0123456789abcdef"} <= names
    subjects = {lock.subject for lock in await SignInLock.all()}
    assert "hunter2hunter2" not in subjects and "alice" in subjects
    assert await scrub_typed_names() == 0


def _masked(html: str, name: str) -> str:
    html = re.sub(r'name="csrf" value="[^"]+"', 'name="csrf" value=""', html)
    return html.replace(name, "NAME")


async def test_unknown_wrong_and_disabled_look_the_same_to_the_person(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    await person("alice")
    dora = await person("dora")
    dora.disabled = True
    await dora.save(update_fields=["disabled"])
    checks: list[str] = []
    verify = gateway.auth.passwords.verify_password

    def counted(stored: str, password: str) -> bool:
        checks.append(stored)
        return verify(stored, password)

    monkeypatch.setattr(gateway.auth.signin, "verify_password", counted)
    answers = []
    for name, password in (("nobody", "whatever"), ("alice", "wrong one"), ("dora", PASSWORD)):
        response = await sign_in(portal.client, name, password)
        answers.append(
            (
                response.status,
                dict(response.headers).get("Retry-After"),
                _masked(await response.text(), name),
            )
        )
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 401
    assert len(checks) == 3  # argon2 ran for the unknown name too
    reasons = [e["reason"] for e in await ledger_entries(portal.app, "auth.sign_in")]
    assert reasons == ["unknown_account", "bad_password", "disabled"]  # for officers only


async def test_the_password_form_is_locked_with_sign_in(
    portal: Portal, aiohttp_client: Any
) -> None:
    alice = await person("alice")
    browser = await aiohttp_client(portal.client.server)
    assert (await sign_in(browser, "alice")).status == 303
    for _ in range(5):  # someone else guesses alice's password until she is locked out
        await sign_in(portal.client, "alice", "a wrong guess")
    token = await form_token(browser, "/me/password")
    new = "a new password nobody knows"
    changed = await browser.post(
        "/me/password",
        data={"csrf": token, "current": PASSWORD, "new": new, "repeat": new},
        allow_redirects=False,
    )
    assert changed.status == 429 and int(changed.headers["Retry-After"]) > 0
    assert "locked" in (await changed.text()).lower()
    assert (await type(alice).get(id=alice.id)).password_hash == alice.password_hash
