"""The portal in a real browser: Debian's Chromium (headless, via Playwright) on ``sekisho serve``.

One node with the demo accounts serves the whole module: alice (SECRET//LOGISTICS,
FRA), bob (CONFIDENTIAL, JPN), olivia (TOP SECRET//LOGISTICS officer, GBR) and
admin. Screenshots of each main page land in test-output/screenshots/.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["browser"]
pytestmark = pytest.mark.slow
ADMIN_PASSWORD = "steady calm harbour lights"
TOP_SECRET_TITLE = "Operation Kestrel order of battle"
SECRET_TITLE = "Northern depot fuel resupply schedule"
SECRET_CONTENT = b"Depot N-4: 40 000 l diesel, convoy departs 04:30 local.\n" * 200


@dataclass
class Node:
    """The running node and the demo accounts' passwords."""

    base: str
    passwords: dict[str, str]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """``sekisho init --demo`` and ``sekisho serve``; the admin chooses a password first."""
    need_browser()
    data_dir = tmp_path_factory.mktemp("portal") / "var"
    result = run_cli(["init", "--demo"], data_dir)
    assert result.returncode == 0, result.stderr
    passwords = passwords_from(result.stdout)
    assert set(passwords) == {"admin", "alice", "bob", "olivia"}
    with running_node(data_dir) as base:
        yield Node(base, passwords)


@pytest.fixture(scope="module")
def admin_password(node: Node, browser: Browser) -> str:
    """The administrator signs in with the one-time password and must choose another."""
    page = new_page(browser, node.base)
    sign_in(page, "admin", node.passwords["admin"])
    assert page.url.endswith("/me/password")
    assert page.get_by_text("Choose your own before you continue").is_visible()
    shoot(page, "change-password")
    page.get_by_label("Current password").fill(node.passwords["admin"])
    page.get_by_label("New password", exact=True).fill(ADMIN_PASSWORD)
    page.get_by_label("New password again").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    assert page.get_by_text("Your password has been changed").is_visible()
    page.context.close()
    return ADMIN_PASSWORD


def signed_in(browser: Browser, node: Node, username: str, admin_password: str) -> Page:
    """A fresh browser context signed in as ``username``."""
    page = new_page(browser, node.base)
    password = admin_password if username == "admin" else node.passwords[username]
    sign_in(page, username, password)
    if page.url.endswith("/me/password"):  # a demo account's one-time password
        chosen = f"{username} chose this password"
        page.get_by_label("Current password").fill(password)
        page.get_by_label("New password", exact=True).fill(chosen)
        page.get_by_label("New password again").fill(chosen)
        page.get_by_role("button", name="Change password").click()
        node.passwords[username] = chosen
        page.goto("/")
    assert page.url == node.base + "/", page.url
    return page


def upload(page: Page, title: str, level: str, content: bytes, name: str, *extra: str) -> str:
    """Upload through the form; returns the new document's id."""
    page.goto("/upload")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Classification level").select_option(level)
    for compartment in extra:
        page.get_by_label(compartment).check()
    page.get_by_label("File", exact=True).set_input_files(
        {"name": name, "mimeType": "text/plain", "buffer": content}
    )
    page.get_by_role("button", name="Encrypt and upload").click()
    page.get_by_text("Uploaded, encrypted and anchored").wait_for()
    found = re.search(r"/documents/([0-9a-f-]{36})\?uploaded=1$", page.url)
    assert found is not None, page.url
    return found.group(1)


@pytest.fixture(scope="module")
def top_secret_id(node: Node, browser: Browser, admin_password: str) -> str:
    """A TOP SECRET document, uploaded by the administrator."""
    page = signed_in(browser, node, "admin", admin_password)
    document_id = upload(page, TOP_SECRET_TITLE, "TOP SECRET", b"kestrel\n" * 50, "kestrel.txt")
    assert page.locator(".banner").first.inner_text() == "TOP SECRET"
    page.context.close()
    return document_id


@pytest.fixture(scope="module")
def alice_was_denied(node: Node, browser: Browser, admin_password: str, top_secret_id: str) -> None:
    """Alice (SECRET) has asked for the TOP SECRET document: one denied decision.

    Made here, not left to another test: xdist may run the module's tests on two workers,
    each with its own node."""
    page = signed_in(browser, node, "alice", admin_password)
    response = page.goto(f"/documents/{top_secret_id}")
    assert response is not None and response.status == 404
    page.context.close()


@pytest.fixture(scope="module")
def secret_id(node: Node, browser: Browser, admin_password: str) -> str:
    """Alice uploads a SECRET//LOGISTICS document (label choices no higher than hers)."""
    page = signed_in(browser, node, "alice", admin_password)
    page.goto("/upload")
    levels = page.get_by_label("Classification level").locator("option").all_inner_texts()
    assert levels == ["Choose a level", "UNCLASSIFIED", "CONFIDENTIAL", "SECRET"]
    shoot(page, "upload")
    document_id = upload(
        page, SECRET_TITLE, "SECRET", SECRET_CONTENT, "fuel-schedule.txt", "LOGISTICS"
    )
    assert page.locator(".doc-title .label").inner_text() == "SECRET//LOGISTICS"
    assert page.locator(".banner").first.inner_text() == "SECRET//LOGISTICS"
    assert console_errors(page) == []  # no CSP violation, no script error
    shoot(page, "document-after-upload")
    page.context.close()
    return document_id


@pytest.fixture(scope="module")
def downloaded(
    node: Node,
    browser: Browser,
    admin_password: str,
    secret_id: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[bytes, str]:
    """Olivia (TOP SECRET//LOGISTICS) finds alice's document, downloads it and its receipt."""
    page = signed_in(browser, node, "olivia", admin_password)
    page.get_by_role("link", name="Documents", exact=True).click()
    page.get_by_role("link", name=SECRET_TITLE).click()
    assert page.url.endswith(f"/documents/{secret_id}")
    folder = tmp_path_factory.mktemp("downloads")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download", exact=True).click()
    content = Path(download_info.value.path()).read_bytes()
    download_info.value.save_as(folder / "doc.txt")
    with page.expect_download() as receipt_info:
        page.get_by_role("link", name="Download receipt").click()
    receipt = Path(receipt_info.value.path()).read_text()
    page.get_by_label("File to check").set_input_files(
        {"name": "copy.txt", "mimeType": "text/plain", "buffer": content}
    )
    page.get_by_role("button", name="Check against the anchor").click()
    page.get_by_text("is byte for byte version 1").wait_for()
    shoot(page, "document")
    page.context.close()
    return content, receipt


def test_each_role_signs_in_and_sign_out_ends_the_session(
    node: Node, browser: Browser, admin_password: str
) -> None:
    expected_nav = {
        "alice": ["Documents", "Upload", "My activity", "My security"],
        "bob": ["Documents", "Upload", "My activity", "My security"],
        "olivia": [
            "Documents",
            "My activity",
            "My security",
            "Access trail",
            "Alerts",
            "Activity",
            "Custody",
            "Ledger",
            "Oversight log",
            "Approvals",
        ],
        "admin": [
            "Documents",
            "Upload",
            "My activity",
            "My security",
            "Access trail",
            "Alerts",
            "Activity",
            "Custody",
            "Ledger",
            "Oversight log",
            "Approvals",
            "People",
            "API clients",
            "Keys",
        ],
    }
    page = new_page(browser, node.base)
    page.goto("/")
    assert page.url.endswith("/login")
    shoot(page, "sign-in")
    page.context.close()
    for username, nav in expected_nav.items():
        page = signed_in(browser, node, username, admin_password)
        assert page.get_by_role("heading", name=re.compile("^Welcome")).is_visible()
        links = page.get_by_role("navigation", name="Main").get_by_role("link")
        assert links.all_inner_texts() == nav
        shoot(page, f"dashboard-{username}")
        cookies = page.context.cookies()
        sign_out(page)
        assert page.get_by_text("You have signed out.").is_visible()
        page.goto("/documents")
        assert page.url.endswith("/login?next=/documents")
        replay = new_page(browser, node.base)  # the old session cookie is dead on the server
        replay.context.add_cookies(cookies)  # type: ignore[arg-type]
        replay.goto("/documents")
        assert "/login" in replay.url
        replay.context.close()
        page.context.close()


def test_a_secret_person_never_sees_a_top_secret_document(
    node: Node, browser: Browser, admin_password: str, top_secret_id: str
) -> None:
    page = signed_in(browser, node, "alice", admin_password)
    page.goto("/documents")
    assert TOP_SECRET_TITLE not in page.content()
    page.get_by_label("Title contains").fill("Kestrel")
    page.get_by_role("button", name="Search").click()
    assert page.get_by_text("No document you are cleared for matches this search.").is_visible()
    assert TOP_SECRET_TITLE not in page.content()
    response = page.goto(f"/documents/{top_secret_id}")
    assert response is not None and response.status == 404
    assert page.get_by_role("heading", name="Not found").is_visible()
    assert TOP_SECRET_TITLE not in page.content()
    assert page.locator(".banner").first.inner_text() == "UNCLASSIFIED"
    shoot(page, "not-found")
    download = page.request.get(f"/documents/{top_secret_id}/download")
    assert download.status == 404
    page.context.close()

    olivia = signed_in(browser, node, "olivia", admin_password)
    olivia.goto("/documents?q=Kestrel")
    assert olivia.get_by_role("link", name=TOP_SECRET_TITLE).is_visible()
    assert olivia.locator(".banner").first.inner_text() == "TOP SECRET"
    olivia.context.close()


def test_upload_as_one_person_and_download_as_another(
    node: Node, browser: Browser, admin_password: str, secret_id: str, downloaded: tuple[bytes, str]
) -> None:
    content, receipt = downloaded
    assert content == SECRET_CONTENT
    assert receipt.startswith("c2sp.org/tlog-proof@v1\n") or "index" in receipt
    bob = signed_in(browser, node, "bob", admin_password)  # CONFIDENTIAL: not cleared
    bob.goto("/documents")
    assert SECRET_TITLE not in bob.content()
    response = bob.goto(f"/documents/{secret_id}")
    assert response is not None and response.status == 404
    bob.context.close()


def test_the_officer_sees_both_events_and_exports_them(
    node: Node,
    browser: Browser,
    admin_password: str,
    secret_id: str,
    downloaded: tuple[bytes, str],
    top_secret_id: str,
    alice_was_denied: None,
) -> None:
    page = signed_in(browser, node, "olivia", admin_password)
    page.get_by_role("link", name="Access trail").click()
    page.get_by_label("Document id").fill(secret_id)
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("tbody tr")
    texts = rows.all_inner_texts()
    assert any("alice" in t and "upload" in t and "granted" in t for t in texts), texts
    assert any("olivia" in t and "content" in t and "granted" in t for t in texts), texts
    shoot(page, "officer-trail")

    with page.expect_download() as csv_info:
        page.get_by_role("link", name="Export CSV").click()
    exported = list(csv.DictReader(io.StringIO(Path(csv_info.value.path()).read_text())))
    pairs = {(row["actor"], row["action"]) for row in exported}
    assert {("person:alice", "upload"), ("person:olivia", "content")} <= pairs
    assert {row["document_id"] for row in exported} == {secret_id}
    with page.expect_download() as json_info:
        page.get_by_role("link", name="Export JSON").click()
    events = json.loads(Path(json_info.value.path()).read_text())["events"]
    assert {(e["actor"], e["action"]) for e in events} == pairs

    page.goto(f"/officer/trail?document={top_secret_id}&outcome=denied")
    denied = page.locator("tbody tr").all_inner_texts()
    assert any("alice" in t and "level" in t for t in denied), denied

    page.get_by_role("link", name="Alerts", exact=True).click()
    shoot(page, "officer-alerts")
    page.get_by_role("link", name="Activity", exact=True).click()
    assert page.locator("svg.chart rect.granted").count() >= 1
    shoot(page, "officer-activity")
    page.get_by_role("link", name="Ledger", exact=True).click()
    page.get_by_role("button", name="Verify the whole ledger").click()
    page.get_by_text("The ledger is intact").wait_for()
    shoot(page, "officer-ledger")

    page.get_by_role("link", name="Oversight log").click()  # who looked at the trail
    looked = page.locator("tbody tr").all_inner_texts()
    assert any("olivia" in t and "trail" in t and f"document={secret_id}" in t for t in looked)
    assert any("olivia" in t and "ledger.verify" in t for t in looked), looked
    page.get_by_label("View").select_option("trail.export")
    page.get_by_role("button", name="Filter").click()
    exports = page.locator("tbody tr").all_inner_texts()
    assert len(exports) == 2 and all("as=" in t for t in exports), exports
    shoot(page, "officer-oversight")
    assert console_errors(page) == []
    page.context.close()


def test_personnel_see_their_history_and_administrators_their_pages(
    node: Node, browser: Browser, admin_password: str, downloaded: tuple[bytes, str]
) -> None:
    page = signed_in(browser, node, "olivia", admin_password)
    page.get_by_role("link", name="My activity").click()
    assert page.locator("tbody tr", has_text="content").count() >= 1
    shoot(page, "my-activity")
    page.context.close()

    admin = signed_in(browser, node, "admin", admin_password)
    admin.get_by_role("link", name="People").click()
    assert admin.get_by_role("link", name="alice").is_visible()
    shoot(admin, "admin-people")
    admin.get_by_role("link", name="alice").click()
    shoot(admin, "admin-person")
    admin.get_by_role("link", name="API clients").click()
    shoot(admin, "admin-clients")
    admin.get_by_role("link", name="Keys").click()
    assert admin.get_by_role("heading", name="Key-encryption keys").is_visible()
    shoot(admin, "admin-keys")
    admin.goto("/documents")
    shoot(admin, "documents")
    admin.context.close()


def test_repeated_failed_sign_ins_lock_the_account(node: Node, browser: Browser) -> None:
    page = new_page(browser, node.base)
    for _ in range(5):
        sign_in(page, "mallory", "guess")
    assert page.get_by_text("Too many failed sign-ins").is_visible()
    shoot(page, "locked-out")
    page.context.close()


def test_the_keyboard_alone_signs_in_and_moves_around(
    node: Node, browser: Browser, admin_password: str
) -> None:
    # bob has chosen his password (whichever tests ran first on this worker's node)
    signed_in(browser, node, "bob", admin_password).context.close()
    page = new_page(browser, node.base)
    page.goto("/login")

    def focused() -> str:
        return str(page.evaluate("document.activeElement.id || document.activeElement.innerText"))

    assert focused() == "username"  # the sign-in form starts in the username field
    page.keyboard.type("bob")
    page.keyboard.press("Tab")
    assert focused() == "password"
    page.keyboard.type(node.passwords["bob"])
    page.keyboard.press("Tab")
    assert focused() == "Sign in"
    page.keyboard.press("Enter")
    page.get_by_role("heading", name=re.compile("^Welcome")).wait_for()
    page.keyboard.press("Tab")
    assert focused() == "Skip to main content"
    page.keyboard.press("Tab")
    assert "Sekisho" in focused()  # the brand link, then the masthead and navigation
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    background = page.evaluate("getComputedStyle(document.activeElement).backgroundColor")
    assert outline != "none" or background == "rgb(255, 191, 71)"  # a visible focus style
    page.context.close()


# How far anything sticks out sideways on the page: the document, a table or its scrolling
# panel, the masthead (0 or less when everything fits the viewport).
SIDEWAYS = """() => {
  const width = document.documentElement.clientWidth;
  const parts = [...document.querySelectorAll('table, .panel, .masthead .bar, .masthead nav')];
  const inner = parts.map(e => Math.max(e.scrollWidth - e.clientWidth,
                                        e.getBoundingClientRect().right - width));
  return Math.max(document.documentElement.scrollWidth - width, ...inner);
}"""


def test_a_phone_reads_every_page_without_sideways_scrolling(
    node: Node, browser: Browser, admin_password: str
) -> None:
    """390 px wide: tables stack their rows and the header wraps (screenshots to compare)."""
    page = signed_in(browser, node, "olivia", admin_password)
    page.set_viewport_size({"width": 390, "height": 844})
    paths = {
        "documents": "/documents",
        "history": "/me/history",
        "security-keys": "/me/security",
        "trail": "/officer/trail",
        "alerts": "/officer/alerts",
        "oversight": "/officer/oversight",
    }
    for name, path in paths.items():
        page.goto(path)
        overflow = page.evaluate(SIDEWAYS)
        shoot(page, f"phone-{name}")
        assert overflow <= 0, (path, overflow)
    page.goto("/documents")
    first = page.locator("td a.title-link").first
    if first.count():
        first.click()
        shoot(page, "phone-document")
        assert page.evaluate(SIDEWAYS) <= 0
    page.context.close()
