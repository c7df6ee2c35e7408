"""Document actions and the two-person rule in Debian's Chromium (Playwright) on ``sekisho serve``.

One node with the demo accounts and a second officer, owen (TOP SECRET//LOGISTICS, GBR,
uploader too), where TOP SECRET documents need a second officer's approval. Another node
with a two-second window shows expiry. Each new page is screenshotted.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
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
)

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Browser, Page

__all__ = ["browser"]
pytestmark = pytest.mark.slow
RULE = {"SEKISHO_DOCUMENTS_TWO_PERSON_LEVELS": "TOP SECRET"}
OWEN = ["--level", "TOP SECRET", "--compartments", "LOGISTICS", "--nationality", "GBR"]


@dataclass
class Node:
    """A running node and its accounts' passwords."""

    base: str
    passwords: dict[str, str]


def start(data_dir: Path, extra: dict[str, str]) -> Iterator[Node]:
    """``init --demo``, a second officer, then ``serve`` with ``extra`` settings."""
    need_browser()
    result = run_cli(["init", "--demo"], data_dir, extra)
    assert result.returncode == 0, result.stderr
    passwords = passwords_from(result.stdout)
    roles = ["--roles", "reader,uploader,officer"]
    added = run_cli(["users", "add", "owen", *OWEN, *roles], data_dir, extra)
    assert added.returncode == 0, added.stderr
    passwords.update(passwords_from(added.stdout))
    with running_node(data_dir, extra) as base:
        yield Node(base, passwords)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """TOP SECRET needs two officers, within ten minutes."""
    yield from start(tmp_path_factory.mktemp("docflows") / "var", RULE)


def signed_in(browser: Browser, node: Node, username: str) -> Page:
    """A fresh browser context (its own cookies) signed in as ``username``."""
    page = new_page(browser, node.base)
    password = node.passwords[username]
    sign_in(page, username, password)
    if page.url.endswith("/me/password"):
        chosen = f"{username} chose this password"
        page.get_by_label("Current password").fill(password)
        page.get_by_label("New password", exact=True).fill(chosen)
        page.get_by_label("New password again").fill(chosen)
        page.get_by_role("button", name="Change password").click()
        node.passwords[username] = chosen
        page.goto("/")
    assert page.url == node.base + "/", page.url
    return page


def upload(page: Page, title: str, level: str, content: bytes, *compartments: str) -> str:
    """Upload through the form (the progress script sends it); the new document's id."""
    page.goto("/upload")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Classification level").select_option(level)
    for name in compartments:
        page.get_by_role("checkbox", name=name).check()
    page.get_by_label("File", exact=True).set_input_files(
        {"name": "file.txt", "mimeType": "text/plain", "buffer": content}
    )
    page.get_by_role("button", name="Encrypt and upload").click()
    page.get_by_text("Uploaded, encrypted and anchored").wait_for()
    found = re.search(r"/documents/([0-9a-f-]{36})\?uploaded=1$", page.url)
    assert found is not None, page.url
    return found.group(1)


def script_problems(page: Page) -> list[str]:
    """CSP refusals and script errors seen (not the browser's notes on 4xx answers or forms)."""
    noise = ("Failed to load resource", "[DOM]")
    return [str(m) for m in console_errors(page) if not str(m).startswith(noise)]


def tab_to(page: Page, check: str, limit: int = 80) -> None:
    """Press Tab until the focused element satisfies the JavaScript predicate ``check``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(e => {check})(document.activeElement)"):
            return
    raise AssertionError(f"Tab never reached {check}")


def request_id_on(page: Page) -> str:
    """The id of the first request on the approvals page (from its form's action)."""
    action = page.locator("form[action^='/approvals/']").first.get_attribute("action")
    assert action is not None
    return action.split("/")[2]


def test_an_uploader_adds_a_version_with_progress_and_no_officer_actions(
    node: Node, browser: Browser
) -> None:
    page = signed_in(browser, node, "alice")
    doc = upload(page, "Depot fuel", "SECRET", b"v1\n" * 5000, "LOGISTICS")
    assert page.get_by_role("link", name="Downgrade").count() == 0
    assert page.get_by_role("link", name="Destroy").count() == 0
    page.get_by_role("link", name="Upload a new version").click()
    assert page.get_by_label("Classification level").input_value() == "SECRET"
    assert page.get_by_role(
        "checkbox", name="LOGISTICS"
    ).is_checked()  # the current label, to start from
    shoot(page, "document-new-version")
    page.get_by_label("Classification level").select_option("CONFIDENTIAL")
    page.get_by_label("File", exact=True).set_input_files(
        {"name": "v2.txt", "mimeType": "text/plain", "buffer": b"v2\n" * 400_000}
    )
    page.get_by_role("button", name=re.compile("Encrypt and upload version 2")).click()
    page.get_by_role("alert").get_by_text("cannot lower the label").wait_for()
    assert page.url.endswith(f"/documents/{doc}/new-version")  # the script showed the answer
    page.get_by_label("Classification level").select_option("SECRET")
    page.get_by_label("File", exact=True).set_input_files(
        {"name": "v2.txt", "mimeType": "text/plain", "buffer": b"v2\n" * 400_000}
    )
    page.get_by_role("button", name=re.compile("Encrypt and upload version 2")).click()
    page.get_by_text("Uploaded, encrypted and anchored").wait_for()
    assert page.locator(".sub").first.inner_text().startswith("Version 2")
    assert script_problems(page) == []  # the script ran under the CSP without complaint
    page.context.close()


def test_the_new_version_form_works_without_javascript(node: Node, browser: Browser) -> None:
    context = browser.new_context(base_url=node.base, java_script_enabled=False)
    page = context.new_page()
    sign_in(page, "bob", node.passwords["bob"])
    if page.url.endswith("/me/password"):
        chosen = "bob chose this password"
        page.get_by_label("Current password").fill(node.passwords["bob"])
        page.get_by_label("New password", exact=True).fill(chosen)
        page.get_by_label("New password again").fill(chosen)
        page.get_by_role("button", name="Change password").click()
        node.passwords["bob"] = chosen
    doc = upload(page, "Canteen menu", "CONFIDENTIAL", b"rice\n")
    page.get_by_role("link", name="Upload a new version").click()
    page.get_by_label("File", exact=True).set_input_files(
        {"name": "v2.txt", "mimeType": "text/plain", "buffer": b"noodles\n"}
    )
    page.get_by_role("button", name=re.compile("Encrypt and upload version 2")).click()
    page.get_by_text("Uploaded, encrypted and anchored").wait_for()
    assert page.url.endswith(f"/documents/{doc}?uploaded=1")
    context.close()


def test_an_officer_downgrades_with_the_keyboard_alone(node: Node, browser: Browser) -> None:
    writer = signed_in(browser, node, "alice")
    doc = upload(writer, "Depot rota", "SECRET", b"rota\n", "LOGISTICS")
    writer.context.close()
    page = signed_in(browser, node, "olivia")
    page.goto(f"/documents/{doc}")
    assert page.get_by_role("link", name="Upload a new version").count() == 0  # not an uploader
    tab_to(page, "e.textContent.trim() === 'Downgrade'")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Downgrade").wait_for()
    shoot(page, "document-downgrade")
    tab_to(page, "e.id === 'level'")
    page.keyboard.type("CONF")  # a closed select picks by typing
    assert page.get_by_label("Classification level").input_value() == "CONFIDENTIAL"
    tab_to(page, "e.id === 'reason'")
    page.keyboard.type("The rota is published on the notice board.")
    tab_to(page, "e.tagName === 'BUTTON' && e.textContent.trim() === 'Downgrade'")
    page.keyboard.press("Enter")
    page.get_by_text("Downgraded").first.wait_for()
    assert page.locator(".doc-title .label").inner_text() == "CONFIDENTIAL//LOGISTICS"
    page.context.close()


def test_destruction_needs_the_title_typed_exactly(node: Node, browser: Browser) -> None:
    writer = signed_in(browser, node, "alice")
    doc = upload(writer, "Old rota", "SECRET", b"old\n", "LOGISTICS")
    writer.context.close()
    page = signed_in(browser, node, "olivia")
    page.goto(f"/documents/{doc}/destroy")
    shoot(page, "document-destroy")
    tab_to(page, "e.id === 'confirm'")
    page.keyboard.type("old rota")
    page.keyboard.press("Enter")
    page.get_by_role("alert").get_by_text("exactly").wait_for()
    page.get_by_label(re.compile("Type the document's title")).fill("Old rota")
    page.get_by_role("button", name="Destroy this document").click()
    page.get_by_role("heading", name="Document destroyed").wait_for()
    shoot(page, "document-destroyed")
    page.goto(f"/documents/{doc}/download")
    assert page.get_by_role("heading", level=1).inner_text() != "Old rota"
    page.context.close()


def test_two_officers_in_two_browsers_decide_a_top_secret_destruction(
    node: Node, browser: Browser
) -> None:
    owen = signed_in(browser, node, "owen")
    doc = upload(owen, "Kestrel order of battle", "TOP SECRET", b"kestrel\n", "LOGISTICS")
    owen.goto(f"/documents/{doc}/destroy")
    owen.get_by_label(re.compile("Type the document's title")).fill("Kestrel order of battle")
    owen.get_by_role("button", name="Destroy this document").click()
    owen.get_by_text("Waiting for a second officer").wait_for()
    shoot(owen, "document-destroy-requested")
    owen.goto("/approvals")
    assert owen.get_by_text("Yours: waiting for another officer").is_visible()
    assert owen.get_by_role("button", name=re.compile("^Approve")).count() == 0
    csrf = owen.locator("input[name=csrf]").first.get_attribute("value")
    listing = owen.context.request.get("/api/v1/approvals")  # the portal cookie is no API token
    assert listing.status == 401
    # the requester posts an approval anyway (no button offered): refused, the document stays
    own = owen.context.request.post(
        f"/approvals/{request_id_of(node, browser)}/approve", form={"csrf": str(csrf)}
    )
    assert own.status == 403 and "another officer" in own.text()

    olivia = signed_in(browser, node, "olivia")
    nav = olivia.get_by_role("navigation", name="Main").get_by_role(
        "link", name=re.compile("Approvals")
    )
    assert re.search(r"Approvals\s*1", nav.inner_text())
    nav.click()
    shoot(olivia, "approvals")
    tab_to(olivia, "e.tagName === 'BUTTON' && e.textContent.trim() === 'Approve'")
    olivia.keyboard.press("Enter")
    olivia.get_by_text("Approved and carried out").wait_for()
    assert olivia.get_by_text("No requests are waiting").is_visible()
    owen.goto(f"/documents/{doc}")
    assert owen.locator(".badge.bad").first.inner_text() == "destroyed"  # every version shredded
    assert owen.get_by_role("link", name="Destroy").count() == 0
    for page in (owen, olivia):
        assert script_problems(page) == []
        page.context.close()


def request_id_of(node: Node, browser: Browser) -> str:
    """The pending request's id, as the other officer's approvals page shows it."""
    page = signed_in(browser, node, "olivia")
    page.goto("/approvals")
    found = request_id_on(page)
    page.context.close()
    return found


def test_a_refused_downgrade_changes_nothing(node: Node, browser: Browser) -> None:
    owen = signed_in(browser, node, "owen")
    doc = upload(owen, "Falcon logistics annex", "TOP SECRET", b"falcon\n", "LOGISTICS")
    owen.goto(f"/documents/{doc}/downgrade")
    owen.get_by_label("Classification level").select_option("SECRET")
    owen.get_by_label("Reason").fill("Annex no longer sensitive")
    owen.get_by_role("button", name="Downgrade").click()
    owen.get_by_text("Waiting for a second officer").wait_for()
    shoot(owen, "document-downgrade-requested")
    olivia = signed_in(browser, node, "olivia")
    olivia.goto("/approvals")
    olivia.get_by_role("button", name=re.compile("^Refuse")).first.click()
    olivia.get_by_text("Refused").first.wait_for()
    owen.goto(f"/documents/{doc}")
    assert owen.locator(".doc-title .label").inner_text() == "TOP SECRET//LOGISTICS"
    for page in (owen, olivia):
        page.context.close()


@pytest.fixture(scope="module")
def quick_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A node whose two-person requests expire after five seconds."""
    extra = {**RULE, "SEKISHO_DOCUMENTS_TWO_PERSON_WINDOW": "5"}
    yield from start(tmp_path_factory.mktemp("expiry") / "var", extra)


def test_an_unanswered_request_expires(quick_node: Node, browser: Browser) -> None:
    olivia = signed_in(browser, quick_node, "olivia")
    owen = signed_in(browser, quick_node, "owen")
    doc = upload(owen, "Heron signals plan", "TOP SECRET", b"heron\n", "LOGISTICS")
    owen.goto(f"/documents/{doc}/destroy")
    owen.get_by_label(re.compile("Type the document's title")).fill(doc)
    owen.get_by_role("button", name="Destroy this document").click()
    owen.get_by_text("Waiting for a second officer").wait_for()
    olivia.goto("/approvals")
    stale = request_id_on(olivia)
    time.sleep(6)  # past the five-second window
    olivia.get_by_role("button", name=re.compile("^Approve")).first.click()
    olivia.get_by_role("alert").get_by_text("no longer pending (it is expired)").wait_for()
    assert olivia.get_by_text("No requests are waiting").is_visible()
    olivia.goto("/officer/trail")
    assert olivia.get_by_text("expire_destroy").count() + olivia.get_by_text("expired").count() > 0
    assert stale
    owen.goto(f"/documents/{doc}")
    assert owen.get_by_role("heading", name="Heron signals plan").is_visible()
    for page in (owen, olivia):
        page.context.close()
