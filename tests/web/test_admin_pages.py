"""Administrators' client, key and unlock pages in-process: the same checks and ledger entries
as the CLI, readable errors, tokens shown once; and the explorer's page and files."""

from __future__ import annotations

import re

from gateway.auth.principals import ApiToken
from tests.web.conftest import PASSWORD, Portal, form_token, ledger_entries, person, sign_in

_TOKEN = re.compile(r'class="once token">([^<]+)<')


async def admin_session(portal: Portal) -> str:
    """Sign in an administrator; the CSRF token of their session."""
    await person("root", roles=("admin",))
    assert (await sign_in(portal.client, "root")).status == 303
    return await form_token(portal.client, "/admin/clients")


async def test_clients_are_added_changed_and_revoked_as_the_cli_does(portal: Portal) -> None:
    csrf = await admin_session(portal)
    client = portal.client
    bad = await client.post(
        "/admin/clients",
        data={"csrf": csrf, "name": "signer", "scopes": "sign", "rate": "600"},
    )
    text = await bad.text()
    assert bad.status == 400 and "need the keys the client may use" in text, text

    added = await client.post(
        "/admin/clients",
        data=[
            ("csrf", csrf),
            ("name", "signer"),
            ("scopes", "sign"),
            ("scopes", "verify"),
            ("keys", "default"),
            ("rate", "60"),
        ],
    )
    page = await added.text()
    assert added.status == 201, page
    found = _TOKEN.search(page)
    assert found is not None
    token = found.group(1)
    assert added.headers["Cache-Control"] == "no-store"
    listing = await (await client.get("/admin/clients")).text()
    assert token not in listing and token[:12] in listing

    changed = await client.post(
        "/admin/clients/signer",
        data=[("csrf", csrf), ("scopes", "verify"), ("keys", "default"), ("rate", "0")],
        allow_redirects=False,
    )
    assert changed.status == 303 and changed.headers["Location"].endswith("saved=changed")
    issued = await client.post("/admin/clients/signer/tokens", data={"csrf": csrf, "label": "b"})
    second = _TOKEN.search(await issued.text())
    assert issued.status == 201 and second is not None
    revoked = await client.post(
        f"/admin/clients/signer/tokens/{token[:12]}/revoke",
        data={"csrf": csrf},
        allow_redirects=False,
    )
    assert revoked.status == 303
    assert (await ApiToken.get(prefix=token[:12])).revoked
    unknown = await client.post(
        "/admin/clients/signer/tokens/nosuchprefix/revoke", data={"csrf": csrf}
    )
    assert unknown.status == 404 and "has no token with prefix" in await unknown.text()
    missing = await client.get("/admin/clients/nobody")
    assert missing.status == 404

    entries = await ledger_entries(portal.app, "client.changed")
    assert [e["change"] for e in entries] == ["created", "updated", "token_issued", "token_revoked"]
    assert all(e["actor"] == "person:root" for e in entries)
    assert all(e["source"] != "cli" for e in entries)
    assert all(token not in str(e) and second.group(1) not in str(e) for e in entries)


async def test_bad_client_input_is_answered_in_words(portal: Portal) -> None:
    csrf = await admin_session(portal)
    for data, words in (
        ({"name": "x", "scopes": "ledger-read", "rate": "many"}, "whole number"),
        ({"name": "x", "scopes": "ledger-read", "rate": "99999999999999"}, "whole number"),
        ({"name": "x", "scopes": "ledger-read", "certificate": "-----BEGIN junk"}, "not PEM"),
        ({"name": "x", "scopes": "ledger-read", "certificate": "abcd"}, "64 hex digits"),
        ({"name": "x", "scopes": "ledger-read", "chain_writers": "ghost"}, "no live API client"),
        ({"name": "x", "scopes": "root"}, "scopes must be"),
        ({"name": "x", "scopes": "verify", "keys": "nope"}, "no signing key named"),
    ):
        answer = await portal.client.post("/admin/clients", data={"csrf": csrf, **data})
        text = await answer.text()
        assert answer.status == 400, (data, text)
        assert words in text, (data, text)


async def test_keys_are_created_and_rotated_with_the_cli_checks(portal: Portal) -> None:
    csrf = await admin_session(portal)
    client = portal.client
    created = await client.post(
        "/admin/keys",
        data={"csrf": csrf, "name": "drone", "algorithm": "ec-p256", "purpose": "sign"},
        allow_redirects=False,
    )
    assert created.status == 303, await created.text()
    rotated = await client.post(
        "/admin/keys/drone/rotate", data={"csrf": csrf}, allow_redirects=False
    )
    assert rotated.status == 303 and "version=2" in rotated.headers["Location"]
    for data, words in (
        ({"name": "Drone", "algorithm": "ec-p256", "purpose": "sign"}, "must be 1-32"),
        ({"name": "d2", "algorithm": "aes-256", "purpose": "sign"}, "algorithm must be"),
        ({"name": "d2", "algorithm": "ec-p256", "purpose": "x"}, "purpose must be"),
        ({"name": "drone", "algorithm": "ec-p256", "purpose": "sign"}, "already exists"),
    ):
        answer = await client.post("/admin/keys", data={"csrf": csrf, **data})
        assert answer.status in (400, 409), data
        assert words in await answer.text(), data
    spoof = await client.get(
        "/admin/keys", params={"created": "1", "key": "Pay ME", "version": "1"}
    )
    assert "Pay ME" not in await spoof.text()  # only this page's own redirect is echoed
    unknown = await client.post("/admin/keys/ghost/rotate", data={"csrf": csrf})
    assert unknown.status == 400 and "no signing key named" in await unknown.text()
    registered = await ledger_entries(portal.app, "key.registered")
    assert [e["key"] for e in registered if e["actor"] == "person:root"] == ["drone", "drone"]
    rotations = await ledger_entries(portal.app, "key.rotated")
    assert [(e["key"], e["new_version"], e["actor"]) for e in rotations] == [
        ("drone", 2, "person:root")
    ]


async def test_unlocking_is_ledgered_and_only_when_locked(portal: Portal) -> None:
    await person("bob")
    client = portal.client
    for _ in range(3):  # SEKISHO_PORTAL_MAX_FAILURES=3 in these tests
        await sign_in(client, "bob", "wrong password, wrong")
    refused = await sign_in(client, "bob")
    assert refused.status == 429
    csrf = await admin_session(portal)
    page = await (await client.get("/admin/people/bob")).text()
    assert "Unlock sign-in" in page
    unlocked = await client.post(
        "/admin/people/bob/unlock", data={"csrf": csrf}, allow_redirects=False
    )
    assert unlocked.headers["Location"].endswith("saved=unlocked")
    again = await client.post(
        "/admin/people/bob/unlock", data={"csrf": csrf}, allow_redirects=False
    )
    assert again.headers["Location"].endswith("saved=not_locked")
    entries = await ledger_entries(portal.app, "principal.changed")
    unlocks = [e for e in entries if e["change"] == "unlocked"]
    assert len(unlocks) == 1
    assert (unlocks[0]["principal"], unlocks[0]["actor"], unlocks[0]["fields"]) == (
        "bob",
        "person:root",
        ["lockout"],
    )
    assert (await sign_in(client, "bob", PASSWORD)).status == 303


async def test_the_explorer_page_and_only_its_files_are_served(portal: Portal) -> None:
    page = await portal.client.get("/api/docs")
    text = await page.text()
    assert page.status == 200 and page.content_type == "text/html"
    assert "<script>" not in text and "style=" not in text  # no inline script or style
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', text):
        asset = await portal.client.get(src)
        assert asset.status == 200, src
    for name in ("swagger-initializer.js", "oauth2-redirect.html", "..%2f__init__.py", "LICENSE"):
        assert (await portal.client.get(f"/static/swagger-ui/{name}")).status == 404, name
