"""Administrators' work in a real browser (Debian's Chromium via Playwright) on ``sekisho serve``.

API clients (create, token shown once, second token, revoke a token so the API refuses it,
change), named keys (create, rotate; the create form used with the keyboard only), unlocking
a locked-out account, the refusals non-admins get, and the API explorer at ``/api/docs``
rendering every operation under the CSP with no request leaving the origin. Screenshots land
in test-output/screenshots/.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.nodes import http_get, run_cli, running_node
from tests.web.browser import (
    browser,
    console_errors,
    need_browser,
    new_page,
    passwords_from,
    shoot,
    sign_in,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

__all__ = ["browser"]
pytestmark = pytest.mark.slow
ADMIN_PASSWORD = "steady calm harbour lights"


@dataclass
class Node:
    """The running node, its data directory and the demo accounts' passwords."""

    base: str
    data_dir: Path
    passwords: dict[str, str]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """``sekisho init --demo`` and ``sekisho serve``."""
    need_browser()
    data_dir = tmp_path_factory.mktemp("admin") / "var"
    result = run_cli(["init", "--demo"], data_dir)
    assert result.returncode == 0, result.stderr
    passwords = passwords_from(result.stdout)
    with running_node(data_dir) as base:
        yield Node(base, data_dir, passwords)


def choose_password(page: Page, current: str, chosen: str) -> None:
    """Answer the first sign-in's demand for a password of one's own."""
    page.get_by_label("Current password").fill(current)
    page.get_by_label("New password", exact=True).fill(chosen)
    page.get_by_label("New password again").fill(chosen)
    page.get_by_role("button", name="Change password").click()
    page.get_by_text("Your password has been changed").wait_for()


def signed_in(browser: Browser, node: Node, username: str) -> Page:
    """A fresh browser context signed in as ``username`` (choosing a password the first time)."""
    page = new_page(browser, node.base)
    password = node.passwords[username]
    sign_in(page, username, password)
    if page.url.endswith("/me/password"):
        chosen = f"{username} chose this password"
        choose_password(page, password, chosen)
        node.passwords[username] = chosen
        page.goto("/")
    assert page.url == node.base + "/", page.url
    return page


def api_status(node: Node, token: str, path: str = "/api/v1/keys") -> int:
    """The status of an API call made with a bearer token (outside the browser)."""
    status, _ = http_get(node.base + path, headers={"Authorization": f"Bearer {token}"})
    return status


def problems(page: Page, *expected: str) -> list[str]:
    """Console errors (CSP violations, script errors) other than Chromium's [DOM] hints about
    the password form and the ``expected`` answers to deliberately bad input."""
    return [
        e
        for e in map(str, console_errors(page))
        if not e.startswith("[DOM]") and not any(x in e for x in expected)
    ]


def server_log(node: Node) -> str:
    """Everything the serving process wrote (stdout and stderr)."""
    return "".join(p.read_text(errors="replace") for p in node.data_dir.parent.glob("serve-*.log"))


def test_an_administrator_adds_a_client_sees_its_token_once_and_revokes_one(
    node: Node, browser: Browser
) -> None:
    page = signed_in(browser, node, "admin")
    page.get_by_role("link", name="API clients").click()
    page.get_by_label("Name", exact=True).fill("Bad Name")
    page.get_by_label("ledger-read").check()
    page.get_by_role("button", name="Create client and issue its token").click()
    alert = page.get_by_role("alert")
    assert "must be 1-64 characters" in alert.inner_text()
    assert page.get_by_label("Name", exact=True).input_value() == "Bad Name"  # kept for fixing

    page.get_by_label("Name", exact=True).fill("records-mirror")
    page.get_by_role("button", name="Create client and issue its token").click()
    page.get_by_text("API client records-mirror created").wait_for()
    first = page.locator("#new-token .once").inner_text().strip()
    assert len(first) > 30
    shoot(page, "admin-client-created-token-once")
    assert api_status(node, first) == 200
    assert problems(page, "400 (Bad Request)") == []

    page.goto("/admin/clients")  # shown once: never again on any page
    assert first not in page.content()
    page.get_by_role("link", name="records-mirror").click()
    assert first not in page.content()
    assert first[:12] in page.content()  # its prefix identifies it

    page.get_by_label("Label").fill("rotation 2026-12")
    page.get_by_role("button", name="Issue a token").click()
    page.get_by_text("New bearer token for records-mirror").wait_for()
    second = page.locator("#new-token .once").inner_text().strip()
    assert second != first and api_status(node, second) == 200
    shoot(page, "admin-client-second-token")

    page.goto("/admin/clients/records-mirror")
    page.get_by_role("button", name=f"Revoke token {first[:12]}").click()
    page.get_by_text("Token revoked").wait_for()
    assert api_status(node, first) == 401
    assert api_status(node, second) == 200

    page.get_by_label("Requests per minute").fill("120")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("Changes saved and ledgered.").wait_for()
    shoot(page, "admin-client-page")
    page.get_by_label("Requests per minute").fill("-3")
    page.get_by_role("button", name="Save changes").click()
    assert "whole number" in page.get_by_role("alert").inner_text()

    page.get_by_role("button", name="Revoke client records-mirror").click()
    page.get_by_text("Client records-mirror revoked with all its tokens.").wait_for()
    assert api_status(node, second) == 401
    log = server_log(node)
    assert first not in log and second not in log
    page.context.close()


def test_an_administrator_creates_a_key_with_the_keyboard_and_rotates_it(
    node: Node, browser: Browser
) -> None:
    page = signed_in(browser, node, "admin")
    page.goto("/admin/keys")
    # Keyboard only: Tab to the name field, type, choose with the arrow keys, Enter.
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "key-name":
            break
    else:
        pytest.fail("the key name field cannot be reached with Tab")
    page.keyboard.type("drone-footage")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "algorithm"
    page.keyboard.press("ArrowDown")  # ec-p256 -> ed25519
    assert page.get_by_label("Algorithm").input_value() == "ed25519"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "purpose"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Create key"
    page.keyboard.press("Enter")
    page.get_by_text("Signing key drone-footage created (version 1)").wait_for()
    rows = page.locator("#sign-h + table tbody tr", has_text="drone-footage")
    assert rows.count() == 1 and "ed25519" in rows.first.inner_text()

    page.get_by_role("button", name="Rotate key drone-footage").click()
    page.get_by_text("Signing key drone-footage rotated to version 2").wait_for()
    rows = page.locator("#sign-h + table tbody tr", has_text="drone-footage")
    texts = [rows.nth(i).inner_text() for i in range(rows.count())]
    assert len(texts) == 2 and "retired" in texts[0] and "active" in texts[1]
    shoot(page, "admin-keys-rotated")
    assert problems(page) == []

    page.get_by_label("Name", exact=True).fill("drone-footage")
    page.get_by_role("button", name="Create key").click()
    assert "already exists" in page.get_by_role("alert").inner_text()
    page.context.close()


def test_an_administrator_unlocks_a_locked_out_account(node: Node, browser: Browser) -> None:
    bob = new_page(browser, node.base)
    for _ in range(5):
        sign_in(bob, "bob", "not bob's password at all")
    assert "Too many failed sign-ins" in bob.content()

    page = signed_in(browser, node, "admin")
    page.goto("/admin/people/bob")
    assert "sign-in is locked until" in page.locator("#lock-h + p").inner_text()
    shoot(page, "admin-person-locked")
    page.get_by_role("button", name="Unlock sign-in").click()
    page.get_by_text("Sign-in unlocked and ledgered").wait_for()
    assert page.get_by_text("Not locked out.").is_visible()

    sign_in(bob, "bob", node.passwords["bob"])  # works again at once
    assert bob.url.endswith("/me/password"), bob.url
    bob.context.close()
    page.context.close()


def test_non_administrators_get_the_refusal_of_other_admin_pages(
    node: Node, browser: Browser
) -> None:
    page = signed_in(browser, node, "alice")
    for path in ("/admin/people", "/admin/clients", "/admin/clients/records-mirror", "/admin/keys"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
    page.goto("/")
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    for path in (
        "/admin/clients",
        "/admin/clients/anyone/tokens",
        "/admin/keys",
        "/admin/keys/default/rotate",
        "/admin/people/bob/unlock",
    ):
        answer = page.request.post(path, form={"csrf": token or "", "name": "x"})
        assert answer.status == 403, path
    page.context.close()


def same_origin_only(base: str, blocked: list[str]) -> Callable[[Route], None]:
    """A route handler that lets same-origin requests through and aborts (and notes) others."""

    def handle(route: Route) -> None:
        url = route.request.url
        if url.startswith(base + "/") or url.startswith("data:"):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    return handle


def test_the_api_explorer_renders_every_operation_under_the_csp_from_this_origin(
    node: Node, browser: Browser
) -> None:
    page = new_page(browser, node.base)  # public, like the document it shows
    blocked: list[str] = []
    page.context.route("**/*", same_origin_only(node.base, blocked))
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    response = page.goto("/api/docs")
    assert response is not None and response.status == 200
    csp = response.headers["content-security-policy"]
    assert "'unsafe-inline'" not in csp and "script-src 'self'" in csp
    page.locator(".opblock").first.wait_for()
    document = json.loads(http_get(node.base + "/api/openapi.json")[1])
    operations = sum(
        1
        for item in document["paths"].values()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    )
    assert page.locator(".opblock").count() == operations
    assert page.get_by_text("Sekisho gateway API").first.is_visible()
    page.locator(".opblock-summary", has_text="/api/v1/keys").first.click()
    page.get_by_role("button", name="Try it out").first.wait_for()
    shoot(page, "api-explorer")
    assert violations == []
    assert console_errors(page) == []
    assert blocked == []
    page.context.close()

    portal = signed_in(browser, node, "alice")
    portal.get_by_role("link", name="API explorer").click()
    portal.locator(".opblock").first.wait_for()
    assert portal.url == node.base + "/api/docs"
    portal.context.close()
