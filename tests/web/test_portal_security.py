"""Portal web security: CSRF, headers, cookie flags, sessions and sign-in throttling."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from gateway.auth.models import PortalSession, SignInAttempt
from gateway.auth.sessions import session_digest
from gateway.errors import Unavailable
from tests.web.conftest import (
    PASSWORD,
    AppHook,
    Portal,
    csrf_of,
    form_token,
    ledger_entries,
    person,
    sign_in,
)


def cookie_header(response: object, name: str) -> str:
    """The Set-Cookie header for one cookie."""
    headers = getattr(response, "headers")  # noqa: B009 - ClientResponse or web.Response
    for value in headers.getall("Set-Cookie", []):
        if value.startswith(name + "="):
            return str(value)
    raise AssertionError(f"no Set-Cookie for {name}: {headers.getall('Set-Cookie', [])}")


async def test_pages_carry_security_headers_and_strict_cookies(portal: Portal) -> None:
    response = await portal.client.get("/login")
    assert response.status == 200
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'none'" in csp
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"  # the portal's own files only, nothing inline
    assert directives["connect-src"] == "'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP
    html = await response.text()
    assert "style=" not in html
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", html, re.S)
    assert scripts and all(not body.strip() for body in scripts)  # none inline
    assert all(src.startswith("/static/") for src in re.findall(r'<script[^>]*src="([^"]+)"', html))
    cookie = cookie_header(response, "sekisho-signin")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # not under TLS

    await person("alice")
    signed_in = await sign_in(portal.client, "alice")
    assert signed_in.status == 303
    session = cookie_header(signed_in, "sekisho-session")
    assert "HttpOnly" in session and "SameSite=Strict" in session
    static = await portal.client.get("/static/sekisho.css")
    assert static.status == 200 and "immutable" in static.headers["Cache-Control"]


async def test_a_form_post_without_the_csrf_token_is_refused(portal: Portal) -> None:
    await person("alice")
    client = portal.client
    page = await client.get("/login")
    token = csrf_of(await page.text())
    form = {"username": "alice", "password": PASSWORD}
    refused = await client.post("/login", data=form, allow_redirects=False)
    assert refused.status == 403
    assert "could not be accepted" in await refused.text()
    assert "text/html" in refused.headers["Content-Type"]
    wrong = await client.post("/login", data={**form, "csrf": "x" * 43}, allow_redirects=False)
    assert wrong.status == 403
    cross = await client.post(
        "/login",
        data={**form, "csrf": token},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert cross.status == 403
    assert await SignInAttempt.all().count() == 0  # refused before any password check

    assert (await sign_in(client, "alice")).status == 303
    no_token = await client.post("/logout", data={}, allow_redirects=False)
    assert no_token.status == 403
    assert (await client.get("/documents", allow_redirects=False)).status == 200  # still in
    json_post = await client.post("/logout", json={"csrf": "x"}, allow_redirects=False)
    assert json_post.status == 403
    token = await form_token(client, "/documents")
    out = await client.post("/logout", data={"csrf": token}, allow_redirects=False)
    assert out.status == 303 and out.headers["Location"] == "/login?signed_out=1"
    after = await client.get("/documents", allow_redirects=False)
    assert after.status == 303 and after.headers["Location"].startswith("/login")


async def test_sign_in_starts_a_new_session_each_time_and_planted_ids_do_nothing(
    portal: Portal,
) -> None:
    alice = await person("alice")
    client = portal.client
    client.session.cookie_jar.update_cookies({"sekisho-session": "planted-by-an-attacker"})
    planted = await client.get("/", allow_redirects=False)
    assert planted.status == 303  # unknown id: not signed in
    first = (await sign_in(client, "alice")).cookies["sekisho-session"].value
    second = (await sign_in(client, "alice")).cookies["sekisho-session"].value
    assert first != second and len(first) >= 43
    rows = await PortalSession.filter(principal_id=alice.id)
    assert [r.id_hash for r in rows] == [session_digest(second)]  # the first one was ended
    assert not await PortalSession.exists(id_hash=second)  # stored hashed, never the id


async def test_idle_and_absolute_time_outs_end_sessions(portal: Portal) -> None:
    await person("alice")
    client = portal.client
    cookie = (await sign_in(client, "alice")).cookies["sekisho-session"].value
    digest = session_digest(cookie)
    assert (await client.get("/documents", allow_redirects=False)).status == 200
    idle = portal.settings.portal.session_idle_minutes
    await PortalSession.filter(id_hash=digest).update(
        last_seen_at=datetime.now(UTC) - timedelta(minutes=idle, seconds=1)
    )
    timed_out = await client.get("/documents", allow_redirects=False)
    assert timed_out.status == 303
    assert not await PortalSession.exists(id_hash=digest)

    cookie = (await sign_in(client, "alice")).cookies["sekisho-session"].value
    await PortalSession.filter(id_hash=session_digest(cookie)).update(
        expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    assert (await client.get("/documents", allow_redirects=False)).status == 303


async def test_repeated_failures_lock_the_account_and_are_ledgered(portal: Portal) -> None:
    await person("alice")
    client = portal.client
    for _ in range(2):
        failed = await sign_in(client, "alice", "wrong password")
        assert failed.status == 401
        assert "not correct" in await failed.text()
    third = await sign_in(client, "alice", "wrong password")
    assert third.status == 429
    assert int(third.headers["Retry-After"]) > 0
    assert "locked" in (await third.text()).lower()
    with_right_password = await sign_in(client, "alice")
    assert with_right_password.status == 429  # locked: the password is not even checked

    attempts = await ledger_entries(portal.app, "auth.sign_in")
    denied = [e for e in attempts if e["outcome"] == "denied"]
    assert [e["reason"] for e in denied] == [
        "bad_password",
        "bad_password",
        "bad_password",
        "locked_account",
    ]
    assert all(e["principal"] == "alice" and e["source"] == "127.0.0.1" for e in denied)
    assert all("password" not in e or e["reason"] != PASSWORD for e in attempts)
    assert PASSWORD not in str(attempts) and "wrong password" not in str(attempts)
    locks = await ledger_entries(portal.app, "auth.locked_out")
    assert [(e["scope"], e["principal"], e["failures"]) for e in locks] == [("account", "alice", 3)]


async def test_failures_across_accounts_lock_the_address(portal: Portal) -> None:
    await person("alice")
    await person("bob")
    client = portal.client
    for name in ("nobody", "eve", "mallory", "trent", "alice"):
        await sign_in(client, name, "guess")
    blocked = await sign_in(client, "bob")  # a real account, right password, same address
    assert blocked.status == 429
    entries = await ledger_entries(portal.app, "auth.sign_in")
    assert entries[-1]["reason"] == "locked_address"
    assert {e["principal"] for e in entries[:4]} == {"(unknown)"}  # typed names stay local
    [lock] = await ledger_entries(portal.app, "auth.locked_out")
    assert (lock["scope"], lock["source"], lock["failures"]) == ("address", "127.0.0.1", 5)


async def test_a_successful_sign_in_is_ledgered(portal: Portal) -> None:
    await person("alice")
    assert (await sign_in(portal.client, "alice")).status == 303
    [entry] = await ledger_entries(portal.app, "auth.sign_in")
    assert entry["outcome"] == "granted" and entry["method"] == "password"


async def test_a_disabled_account_loses_its_session(portal: Portal) -> None:
    alice = await person("alice")
    await person("root", level="TOP SECRET", roles=("admin", "reader"))
    client = portal.client
    await sign_in(client, "alice")
    assert (await client.get("/documents", allow_redirects=False)).status == 200
    alice.disabled = True
    await alice.save(update_fields=["disabled"])
    assert (await client.get("/documents", allow_redirects=False)).status == 303
    assert (await sign_in(client, "alice")).status == 401


async def test_people_with_a_one_time_password_must_choose_their_own(portal: Portal) -> None:
    await person("newbie", must_change=True)
    client = portal.client
    response = await sign_in(client, "newbie")
    assert response.headers["Location"] == "/me/password"
    forced = await client.get("/documents", allow_redirects=False)
    assert forced.status == 303 and forced.headers["Location"] == "/me/password"
    token = await form_token(client, "/me/password")
    short = await client.post(
        "/me/password", data={"csrf": token, "current": PASSWORD, "new": "short", "repeat": "short"}
    )
    assert short.status == 400 and "at least 12" in await short.text()
    new = "another good long password"
    changed = await client.post(
        "/me/password",
        data={"csrf": token, "current": PASSWORD, "new": new, "repeat": new},
        allow_redirects=False,
    )
    assert changed.status == 303
    assert (await client.get("/documents", allow_redirects=False)).status == 200
    [entry] = [
        e
        for e in await ledger_entries(portal.app, "principal.changed")
        if e["change"] == "password_changed"
    ]
    assert entry["principal"] == "newbie" and entry["fields"] == ["password"]


def _failing_routes(app: web.Application) -> None:
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internal detail")

    async def down(request: web.Request) -> web.Response:
        raise Unavailable("the ledger cannot record entries right now")

    app.router.add_get("/boom", boom)
    app.router.add_get("/down", down)
    app.router.add_get("/api/v1/boom", boom)


@pytest.fixture
def app_hook() -> AppHook | None:
    return _failing_routes


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("/no/such/page", 404, "Not found"),
        ("/documents/not-a-document", 404, "clearance does not cover it"),
        ("/officer/trail", 403, "not allowed"),
        ("/documents?page=x", 400, "could not be understood"),
        ("/boom", 500, "Something went wrong on our side"),
        ("/down", 503, "temporarily unavailable"),
    ],
)
async def test_portal_errors_are_friendly_pages_and_the_api_keeps_json(
    portal: Portal, path: str, status: int, text: str
) -> None:
    await person("alice")
    await sign_in(portal.client, "alice")
    response = await portal.client.get(path)
    assert response.status == status
    assert response.headers["Content-Type"].startswith("text/html")
    body = await response.text()
    assert text in body
    assert "Traceback" not in body and "secret internal detail" not in body
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]

    api = await portal.client.get("/api/v1/boom")
    assert api.status == 500 and (await api.json())["error"] == "internal_error"
    missing = await portal.client.get("/api/v1/no-such-thing")
    assert missing.status == 404 and (await missing.json())["error"] == "not_found"


async def test_an_unknown_portal_address_gets_our_sentence_not_aiohttps_phrase(
    portal: Portal,
) -> None:
    await person("alice")
    await sign_in(portal.client, "alice")
    body = await (await portal.client.get("/no/such/page")).text()
    assert "Not Found." not in body
    assert "There is nothing at this address." in body
    # the heading comes first and the status is said once, in words
    assert '<h1>Not found</h1>\n  <p class="status">HTTP status 404</p>' in body
    assert "Error 404" not in body
    missing = await portal.client.get("/api/v1/no-such-thing")
    assert (await missing.json())["message"] == "there is nothing at this address"


async def test_only_officers_see_officer_pages_and_only_admins_admin_pages(
    portal: Portal,
) -> None:
    await person("olivia", level="TOP SECRET", roles=("reader", "officer"))
    await sign_in(portal.client, "olivia")
    assert (await portal.client.get("/officer/trail")).status == 200
    assert (await portal.client.get("/officer/alerts")).status == 200
    assert (await portal.client.get("/admin/people")).status == 403
    assert (await portal.client.get("/upload")).status == 403  # not an uploader
