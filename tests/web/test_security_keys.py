"""Security keys (WebAuthn) on the server: registration, sign-in, step-up, removal, refusals.

A software authenticator (tests/web/soft_key.py) makes real WebAuthn bytes, and the
portal verifies them with py_webauthn; the portal is reached as ``localhost`` (the
default RP id of a node listening on an address).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from gateway.auth.models import PortalSession, SecurityKey, WebAuthnChallenge
from gateway.auth.principals import Principal
from gateway.auth.tokens import issue_token
from gateway.documents.models import AccessEvent
from tests.web.conftest import Portal, csrf_of, ledger_entries, person, sign_in
from tests.web.soft_key import SoftKey
from tests.web.test_portal_pages import upload

HOST = {"Host": "localhost"}
ORIGIN = "http://localhost"
Client = TestClient[Any, Any]


@pytest.fixture
def portal_settings() -> dict[str, str]:
    return {
        "SEKISHO_PORTAL_MAX_FAILURES": "3",
        "SEKISHO_PORTAL_MAX_ADDRESS_FAILURES": "50",
        "SEKISHO_AUTH_SECURITY_KEY_LEVELS": "SECRET",
    }


async def token_on(client: Client, path: str) -> str:
    page = await client.get(path, headers=HOST)
    assert page.status == 200, await page.text()
    return csrf_of(await page.text())


async def post_json(
    client: Client,
    path: str,
    body: dict[str, Any],
    token: str,
    headers: dict[str, str] | None = None,
) -> ClientResponse:
    return await client.post(
        path, json=body, headers={**HOST, "X-CSRF-Token": token, **(headers or {})}
    )


async def register(
    client: Client,
    key: SoftKey,
    name: str = "blue key",
    *,
    origin: str = ORIGIN,
    base: str = "/me/security/keys",
    page: str = "/me/security",
) -> ClientResponse:
    token = await token_on(client, page)
    options = await post_json(client, base + "/options", {"name": name}, token)
    assert options.status == 200, await options.text()
    credential = key.create(await options.json(), origin)
    return await post_json(client, base, {"credential": credential}, token)


async def key_sign_in(
    client: Client,
    key: SoftKey,
    *,
    origin: str = ORIGIN,
    tamper: str = "",
) -> ClientResponse:
    token = await token_on(client, "/login")
    options = await (await post_json(client, "/login/security-key/options", {}, token)).json()
    if tamper == "challenge":
        options["challenge"] = options["challenge"][::-1]
    credential = key.get(options, origin, rp_id="localhost")
    return await post_json(client, "/login/security-key", {"credential": credential}, token)


async def signed_in_person(portal: Portal, name: str = "alice") -> Principal:
    who = await person(name)
    response = await sign_in(portal.client, name)
    assert response.status == 303
    return who


async def test_registration_is_verified_kept_and_ledgered(portal: Portal) -> None:
    alice = await signed_in_person(portal)
    key = SoftKey()
    response = await register(portal.client, key, "blue key")
    assert response.status == 200, await response.text()
    assert (await response.json())["redirect"] == "/me/security?saved=registered"
    stored = await SecurityKey.get(principal_id=alice.id)
    assert stored.name == "blue key" and stored.sign_count == 1 and stored.transports == ["usb"]
    page = await (await portal.client.get("/me/security", headers=HOST)).text()
    assert "blue key" in page
    entries = await ledger_entries(portal.app, "auth.security_key")
    assert [(e["principal"], e["actor"], e["change"], e["name"]) for e in entries] == [
        ("alice", "person:alice", "registered", "blue key")
    ]
    assert stored.credential_id not in json.dumps(entries)  # only its digest
    again = await register(portal.client, key, "same key")  # excluded, and refused as taken
    assert again.status == 409


@pytest.mark.parametrize("fault", ["origin", "challenge", "no_user_verification"])
async def test_registration_with_a_bad_origin_or_challenge_is_refused(
    portal: Portal, fault: str
) -> None:
    await signed_in_person(portal)
    key = SoftKey(user_verified=fault != "no_user_verification")
    token = await token_on(portal.client, "/me/security")
    options = await (
        await post_json(portal.client, "/me/security/keys/options", {"name": "k"}, token)
    ).json()
    if fault == "challenge":
        options["challenge"] = options["challenge"][::-1]
    origin = "http://evil.example" if fault == "origin" else ORIGIN
    credential = key.create(options, origin)
    body = {"credential": credential}
    response = await post_json(portal.client, "/me/security/keys", body, token)
    assert response.status == 400
    assert (await response.json())["error"] == "security_key_refused"
    assert await SecurityKey.all().count() == 0
    # the challenge was used up: the right answer to it is refused too
    retry = await post_json(
        portal.client, "/me/security/keys", {"credential": key.create(options, ORIGIN)}, token
    )
    assert retry.status == 400


async def test_sign_in_with_a_key_opens_a_strong_session(portal: Portal) -> None:
    await signed_in_person(portal)
    key = SoftKey()
    assert (await register(portal.client, key)).status == 200
    portal.client.session.cookie_jar.clear()
    response = await key_sign_in(portal.client, key)
    assert response.status == 200, await response.text()
    assert (await response.json())["redirect"] == "/"
    home = await portal.client.get("/", headers=HOST, allow_redirects=False)
    assert home.status == 200
    session = await PortalSession.get(method="security_key")
    assert session.principal_id == (await Principal.get(username="alice")).id
    entries = await ledger_entries(portal.app, "auth.sign_in")
    assert entries[-1]["method"] == "security_key" and entries[-1]["outcome"] == "granted"
    assert (await SecurityKey.get()).last_used_at is not None


async def test_bad_origin_challenge_replay_unknown_and_removed_keys_get_one_answer(
    portal: Portal,
) -> None:
    await signed_in_person(portal)
    key = SoftKey()
    assert (await register(portal.client, key)).status == 200
    stranger = SoftKey()
    stranger.user_handle = key.user_handle
    portal.client.session.cookie_jar.clear()
    answers = [
        await key_sign_in(portal.client, key, origin="http://evil.example"),
        await key_sign_in(portal.client, key, tamper="challenge"),
        await key_sign_in(portal.client, stranger),
    ]
    # a replayed assertion: the challenge it answers is used up
    token = await token_on(portal.client, "/login")
    asked = await post_json(portal.client, "/login/security-key/options", {}, token)
    credential = key.get(await asked.json(), ORIGIN)
    first = await post_json(portal.client, "/login/security-key", {"credential": credential}, token)
    assert first.status == 200
    portal.client.session.cookie_jar.clear()
    token = await token_on(portal.client, "/login")
    await post_json(portal.client, "/login/security-key/options", {}, token)
    answers.append(
        await post_json(portal.client, "/login/security-key", {"credential": credential}, token)
    )
    bodies = [(a.status, await a.json()) for a in answers]
    assert {status for status, _ in bodies} == {401}
    assert len({json.dumps(body) for _, body in bodies}) == 1, bodies
    reasons = [e["reason"] for e in await ledger_entries(portal.app, "auth.sign_in")]
    assert "unknown_key" in reasons and "bad_assertion" in reasons
    assert await WebAuthnChallenge.all().count() <= 1


async def test_removed_key_no_longer_signs_in_and_its_sessions_end(portal: Portal) -> None:
    await signed_in_person(portal)
    key = SoftKey()
    assert (await register(portal.client, key)).status == 200
    portal.client.session.cookie_jar.clear()
    assert (await key_sign_in(portal.client, key)).status == 200
    stored = await SecurityKey.get()
    token = await token_on(portal.client, "/me/security")
    removed = await portal.client.post(
        f"/me/security/keys/{stored.id}/remove",
        data={"csrf": token},
        headers=HOST,
        allow_redirects=False,
    )
    assert removed.status == 303
    assert await SecurityKey.all().count() == 0
    assert await PortalSession.filter(method="security_key").count() == 0
    portal.client.session.cookie_jar.clear()
    refused = await key_sign_in(portal.client, key)
    assert refused.status == 401
    changes = [e["change"] for e in await ledger_entries(portal.app, "auth.security_key")]
    assert changes == ["registered", "removed"]
    rows = await AccessEvent.filter(document_id=None).order_by("id")
    assert [r.action for r in rows] == ["key_registered", "key_sign_in", "key_removed"]
    assert all(r.ledger_queue_id != 0 for r in rows)  # each linked to its own auth.* entry


async def test_failures_lock_the_key_owner_out_like_passwords(portal: Portal) -> None:
    await signed_in_person(portal)
    key = SoftKey()
    assert (await register(portal.client, key)).status == 200
    portal.client.session.cookie_jar.clear()
    statuses = [
        (await key_sign_in(portal.client, key, origin="http://evil.example")).status
        for _ in range(3)
    ]
    assert statuses == [401, 401, 429]
    locked = await key_sign_in(portal.client, key)  # now even the right answer waits
    assert locked.status == 429 and "Retry-After" in locked.headers
    password = await sign_in(portal.client, "alice")  # the same account counter
    assert password.status == 429


async def test_secret_content_needs_a_step_up_then_is_served(portal: Portal) -> None:
    alice = await signed_in_person(portal)
    key = SoftKey()
    assert (await register(portal.client, key)).status == 200
    document = await upload(portal.client, "Nightjar", "SECRET")
    low = await upload(portal.client, "Canteen menu", "CONFIDENTIAL")
    assert (await portal.client.get(f"/documents/{low}/download")).status == 200
    page = await portal.client.get(f"/documents/{document}", headers=HOST)
    assert page.status == 200  # metadata needs no step-up
    assert f'href="/step-up?next=/documents/{document}/download' in await page.text()
    prompt = await portal.client.get(f"/documents/{document}/download", headers=HOST)
    assert prompt.status == 403
    text = await prompt.text()
    assert "Confirm with your security key" in text
    assert f'value="/documents/{document}/download"' in text
    trail = await AccessEvent.filter(document_id=document, action="content").order_by("id")
    assert [(r.outcome, r.reason) for r in trail] == [("denied", "step_up_required")]
    # the API: a personal bearer token is refused with a JSON naming the step-up
    bearer = {"Authorization": f"Bearer {await issue_token(principal=alice)}"}
    api = await portal.client.get(f"/api/v1/documents/{document}/content", headers=bearer)
    assert api.status == 403
    assert (await api.json())["error"] == "step_up_required"
    # a key of someone else does not step alice up
    token = await token_on(portal.client, "/step-up?next=/")
    options = await (await post_json(portal.client, "/step-up/options", {}, token)).json()
    assert [c["id"] for c in options["allowCredentials"]] == [
        (await SecurityKey.get()).credential_id
    ]
    other = SoftKey()
    wrong = await post_json(
        portal.client, "/step-up", {"credential": other.get(options, ORIGIN)}, token
    )
    assert wrong.status == 401
    options = await (await post_json(portal.client, "/step-up/options", {}, token)).json()
    target = f"/documents/{document}/download"
    done = await post_json(
        portal.client, "/step-up", {"credential": key.get(options, ORIGIN), "next": target}, token
    )
    assert done.status == 200, await done.text()
    assert (await done.json())["redirect"] == target
    served = await portal.client.get(target, headers=HOST)
    assert served.status == 200
    page = await portal.client.get(f"/documents/{document}", headers=HOST)
    assert "/step-up?next=" not in await page.text()  # the plain download link again
    steps = [(e["outcome"], e["reason"]) for e in await ledger_entries(portal.app, "auth.step_up")]
    assert steps == [("denied", "not_own_key"), ("granted", "granted")]
    rows = await AccessEvent.filter(document_id=None).order_by("id")
    assert [(r.actor, r.action, r.outcome) for r in rows] == [
        ("person:alice", "key_registered", "granted"),
        ("person:alice", "step_up", "granted"),
    ]
    history = await (await portal.client.get("/me/history", headers=HOST)).text()
    assert "<td>step_up</td>" in history and "<td>key_registered</td>" in history


async def test_administrator_registers_and_removes_a_key_for_a_person(portal: Portal) -> None:
    await person("bob")
    await signed_in_person(portal, "root")
    await Principal.filter(username="root").update(roles=["admin"])
    key = SoftKey()
    response = await register(
        portal.client,
        key,
        "bob's key",
        base="/admin/people/bob/security-keys",
        page="/admin/people/bob",
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["redirect"] == "/admin/people/bob?saved=key"
    stored = await SecurityKey.get()
    assert stored.principal_id == (await Principal.get(username="bob")).id
    entries = await ledger_entries(portal.app, "auth.security_key")
    assert [(e["principal"], e["actor"]) for e in entries] == [("bob", "person:root")]
    row = await AccessEvent.get(action="key_registered")
    assert (row.actor, row.reason) == ("person:root", "for person:bob")
    portal.client.session.cookie_jar.clear()
    signed = await key_sign_in(portal.client, key)
    assert signed.status == 200
    assert (await PortalSession.get(method="security_key")).principal_id == stored.principal_id


async def test_people_cannot_register_keys_for_others(portal: Portal) -> None:
    await person("bob")
    await signed_in_person(portal)
    token = await token_on(portal.client, "/me/security")
    response = await post_json(
        portal.client, "/admin/people/bob/security-keys/options", {"name": "x"}, token
    )
    assert response.status == 403
    assert await WebAuthnChallenge.all().count() == 0


async def test_keys_are_refused_at_an_address_that_is_not_the_rp_id(portal: Portal) -> None:
    await signed_in_person(portal)
    page = await portal.client.get("/me/security")
    token = csrf_of(await page.text())
    response = await portal.client.post(
        "/me/security/keys/options", json={"name": "k"}, headers={"X-CSRF-Token": token}
    )
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "wrong_origin" and "localhost" in body["message"]


async def test_json_requests_need_the_csrf_token(portal: Portal) -> None:
    await signed_in_person(portal)
    response = await portal.client.post(
        "/me/security/keys/options", json={"name": "k"}, headers=HOST
    )
    assert response.status == 403


async def test_open_sign_in_challenges_are_bounded(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.auth.security_keys.MAX_LIVE_CHALLENGES", 2)
    statuses = []
    for _ in range(3):  # three visitors (fresh cookies): the third finds the table full
        portal.client.session.cookie_jar.clear()
        token = await token_on(portal.client, "/login")
        answer = await post_json(portal.client, "/login/security-key/options", {}, token)
        statuses.append(answer.status)
    assert statuses == [200, 200, 429]
    assert "Retry-After" in answer.headers and (await answer.json())["error"] == "rate_limited"
    assert await WebAuthnChallenge.all().count() == 2


async def test_bad_json_bodies_get_one_json_answer_each(portal: Portal) -> None:
    """The key pages read their JSON with the API's reader: strict JSON, an object, bounded
    nesting, application/json; each refusal is a 400 the page's script can show."""
    await signed_in_person(portal)
    token = await token_on(portal.client, "/me/security")
    headers = {**HOST, "X-CSRF-Token": token}
    cases = [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'{"name": NaN}', "application/json"),
        (b"[" * 200 + b"]" * 200, "application/json"),
        (b'{"name": "k"}', "text/plain"),
    ]
    for raw, media_type in cases:
        response = await portal.client.post(
            "/me/security/keys/options",
            data=raw,
            headers={**headers, "Content-Type": media_type},
        )
        assert response.status == 400, (raw[:20], response.status)
        body = await response.json()
        assert body["error"] and body["message"], raw[:20]


async def test_key_bodies_are_checked_like_the_apis(portal: Portal) -> None:
    """The pages' bodies go through body models: a missing or non-object answer, a name
    that is not text, and unknown fields are each a 400 the script can show."""
    await signed_in_person(portal)
    token = await token_on(portal.client, "/me/security")
    cases: list[tuple[str, dict[str, Any], str | None]] = [
        ("/me/security/keys", {"next": "/"}, "bad_credential"),
        ("/me/security/keys", {"credential": "x"}, "bad_credential"),
        ("/me/security/keys/options", {"name": 5}, None),
        ("/me/security/keys/options", {"name": "k", "admin": True}, "unknown_field"),
    ]
    for path, body, code in cases:
        response = await post_json(portal.client, path, body, token)
        assert response.status == 400, (path, body, response.status)
        answer = await response.json()
        assert answer["message"], body
        if code is not None:
            assert answer["error"] == code, (body, answer)
