"""Security keys in a real browser: Debian's Chromium with a CDP virtual authenticator.

One node (``sekisho init --demo``, SECRET and above need a security key) serves the
module, reached as ``localhost`` (the default RP id of a node listening on an
address). Each browser page gets a virtual CTAP2 authenticator with resident keys
and user verification, so ``navigator.credentials.create/get`` run for real through
/static/webauthn.js and the server verifies with py_webauthn.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from tests.nodes import run_cli, running_node
from tests.web.browser import (
    browser,
    console_errors,
    need_browser,
    new_page,
    passwords_from,
    shoot,
    sign_in,
    sign_out,
)
from tests.web.test_browser import upload

if TYPE_CHECKING:
    from playwright.sync_api import Browser, CDPSession, Page

__all__ = ["browser"]
pytestmark = pytest.mark.slow
SECRET_TITLE = "Harbour crane maintenance windows"
SECRET_CONTENT = b"Crane 3 offline 02:00-05:00 on the 14th.\n" * 40
AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "usb",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


@dataclass
class Node:
    """The running node (as localhost) and the demo accounts' passwords."""

    base: str
    passwords: dict[str, str]


@dataclass
class KeyPage:
    """A browser page with a virtual authenticator attached."""

    page: Page
    cdp: CDPSession
    authenticator: str

    def credentials(self) -> list[dict[str, Any]]:
        """The credentials the virtual authenticator holds."""
        found = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.authenticator})
        return list(found["credentials"])


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A demo node where SECRET and TOP SECRET content needs a security key."""
    need_browser()
    data_dir = tmp_path_factory.mktemp("keys") / "var"
    result = run_cli(["init", "--demo"], data_dir)
    assert result.returncode == 0, result.stderr
    extra = {"SEKISHO_AUTH_SECURITY_KEY_LEVELS": "SECRET,TOP SECRET"}
    with running_node(data_dir, extra) as base:
        yield Node(base.replace("127.0.0.1", "localhost"), passwords_from(result.stdout))


def with_key(browser: Browser, node: Node) -> KeyPage:
    """A fresh browser context whose page has a virtual security key."""
    page = new_page(browser, node.base)
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
    return KeyPage(page, cdp, added["authenticatorId"])


def password_sign_in(page: Page, node: Node, username: str) -> None:
    """Sign in with the password (choosing one's own the first time)."""
    password = node.passwords[username]
    sign_in(page, username, password)
    if page.url.endswith("/me/password"):
        chosen = f"{username} chose this password"
        page.get_by_label("Current password").fill(password)
        page.get_by_label("New password", exact=True).fill(chosen)
        page.get_by_label("New password again").fill(chosen)
        page.get_by_role("button", name="Change password").click()
        page.get_by_text("Your password has been changed").wait_for()
        node.passwords[username] = chosen
        page.goto("/")
    assert page.url == node.base + "/", page.url


def add_key(page: Page, name: str) -> None:
    """Fill in the name and press "Add security key" (the page's own form)."""
    page.get_by_label("Name of the new key").fill(name)
    page.get_by_role("button", name="Add security key").click()
    page.get_by_text("Security key registered.", exact=True).wait_for()


def key_sign_in(page: Page) -> None:
    """Press "Sign in with a security key" on the sign-in page."""
    page.goto("/login")
    page.get_by_role("button", name="Sign in with a security key").click()


@pytest.fixture(scope="module")
def alice(browser: Browser, node: Node) -> Iterator[KeyPage]:
    """Alice's browser with her virtual key, her key registered from /me/security."""
    keyed = with_key(browser, node)
    password_sign_in(keyed.page, node, "alice")
    keyed.page.get_by_role("link", name="My security").click()
    assert keyed.page.get_by_text("No security key registered.").is_visible()
    add_key(keyed.page, "Alice's blue key")
    yield keyed
    keyed.page.context.close()


def test_a_person_registers_a_key_and_signs_in_with_it(alice: KeyPage, node: Node) -> None:
    page = alice.page
    assert page.locator("td", has_text="Alice's blue key").is_visible()
    assert len(alice.credentials()) == 1  # a resident key on the authenticator
    shoot(page, "security-keys")
    sign_out(page)
    key_sign_in(page)
    page.wait_for_url(node.base + "/")
    assert page.get_by_role("heading", name="Welcome, Alice Moreau").is_visible()
    # no CSP violation, no script error (Chromium's [DOM] hints about the password form aside)
    assert [m for m in console_errors(page) if not m.startswith("[DOM]")] == []


def test_secret_content_asks_for_a_step_up_then_downloads(alice: KeyPage, node: Node) -> None:
    page = alice.page
    sign_out(page)
    password_sign_in(page, node, "alice")  # a password session: not enough for SECRET
    document = upload(page, SECRET_TITLE, "SECRET", SECRET_CONTENT, "cranes.txt", "LOGISTICS")
    assert page.get_by_text("confirm with your security key (once per sign-in)").is_visible()
    page.get_by_role("link", name="Download", exact=True).click()  # the prompt, not a file
    page.get_by_role("heading", name="Confirm with your security key").wait_for()
    shoot(page, "step-up-prompt")
    with page.expect_download() as download:
        page.get_by_role("button", name="Confirm with security key").click()
    path = download.value.path()
    assert path is not None and path.read_bytes() == SECRET_CONTENT
    page.goto(f"/documents/{document}")  # the session stays stepped up
    with page.expect_download() as again:
        page.get_by_role("link", name="Download", exact=True).click()
    path = again.value.path()
    assert path is not None and path.read_bytes() == SECRET_CONTENT


def test_a_removed_key_is_refused(browser: Browser, alice: KeyPage, node: Node) -> None:
    page = alice.page
    # A password session: removing a key ends the sessions opened with a key, and under
    # pytest-xdist this test may follow the key sign-in of the first one on its worker.
    page.context.clear_cookies()
    password_sign_in(page, node, "alice")
    page.goto("/me/security")
    page.get_by_role("button", name="Remove security key Alice's blue key").click()
    page.get_by_text("Security key removed.", exact=True).wait_for()
    assert page.get_by_text("No security key registered.").is_visible()
    page.context.clear_cookies()
    key_sign_in(page)  # the authenticator still holds the credential; the portal refuses it
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "The security key was not accepted" in alert.inner_text()
    assert page.url.startswith(node.base + "/login")
    shoot(page, "security-key-refused")
    # a key that was never registered here gets the same answer
    stranger = with_key(browser, node)
    stranger.cdp.send(
        "WebAuthn.addCredential",
        {
            "authenticatorId": stranger.authenticator,
            "credential": {**alice.credentials()[0], "credentialId": "c3RyYW5nZXIta2V5"},
        },
    )
    key_sign_in(stranger.page)
    stranger.page.get_by_role("alert").wait_for()
    assert "The security key was not accepted" in stranger.page.get_by_role("alert").inner_text()
    stranger.page.context.close()


def test_an_administrator_registers_a_key_for_a_person(browser: Browser, node: Node) -> None:
    admin = with_key(browser, node)
    password_sign_in(admin.page, node, "admin")
    admin.page.goto("/admin/people/olivia")
    add_key(admin.page, "Olivia's key")
    assert admin.page.locator("td", has_text="Olivia's key").is_visible()
    shoot(admin.page, "person-security-keys")
    [credential] = admin.credentials()
    admin.page.context.close()
    # Olivia takes her key (the credential) to her own browser and signs in with it.
    olivia = with_key(browser, node)
    olivia.cdp.send(
        "WebAuthn.addCredential",
        {"authenticatorId": olivia.authenticator, "credential": credential},
    )
    key_sign_in(olivia.page)
    # signed in as Olivia; her one-time password must still be replaced, as after any sign-in
    olivia.page.wait_for_url(node.base + "/me/password")
    assert olivia.page.locator(".who .name").inner_text() == "Olivia Grant"
    olivia.page.context.close()


def test_the_keyboard_alone_adds_a_key_and_signs_in_with_it(browser: Browser, node: Node) -> None:
    keyed = with_key(browser, node)
    page = keyed.page
    password_sign_in(page, node, "bob")
    page.goto("/me/security")

    def focused() -> str:
        return str(page.evaluate("document.activeElement.id || document.activeElement.innerText"))

    def tab_to(target: str) -> None:
        for _ in range(40):
            page.keyboard.press("Tab")
            if focused() == target:
                return
        raise AssertionError(f"Tab never reached {target!r}")

    tab_to("key-name")
    page.keyboard.type("Bob's keyring key")
    tab_to("Add security key")
    page.keyboard.press("Enter")
    page.get_by_text("Security key registered.", exact=True).wait_for()
    page.context.clear_cookies()
    page.goto("/login")
    tab_to("Sign in with a security key")
    page.keyboard.press("Enter")
    page.wait_for_url(node.base + "/")
    assert page.get_by_role("heading", name=re.compile("^Welcome")).is_visible()
    page.context.close()
