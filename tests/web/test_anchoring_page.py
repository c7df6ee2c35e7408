"""The officers' ledger page anchors the log at OpenSSL's TSA, in a real browser (Chromium)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.nodes import http_get, run_cli, running_node
from tests.tsa_server import OpensslTsa, openssl_tsa
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
    from playwright.sync_api import Browser, Page

__all__ = ["browser", "openssl_tsa"]
pytestmark = pytest.mark.slow
SIDEWAYS = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.fixture(scope="module")
def node(
    tmp_path_factory: pytest.TempPathFactory, openssl_tsa: OpensslTsa
) -> Iterator[tuple[str, dict[str, str]]]:
    """A demo node anchoring at the OpenSSL TSA on demand only."""
    need_browser()
    data_dir = tmp_path_factory.mktemp("anchoring-portal") / "var"
    result = run_cli(["init", "--demo"], data_dir)
    assert result.returncode == 0, result.stderr
    extra = {
        "SEKISHO_ANCHORING_TSAS": json.dumps([openssl_tsa.setting()]),
        "SEKISHO_ANCHORING_INTERVAL_SECONDS": "0",
    }
    with running_node(data_dir, extra) as base:
        yield base, passwords_from(result.stdout)


def officer_page(browser: Browser, base: str, password: str) -> Page:
    page = new_page(browser, base)
    sign_in(page, "olivia", password)
    if page.url.endswith("/me/password"):
        chosen = "olivia chose this password"
        page.get_by_label("Current password").fill(password)
        page.get_by_label("New password", exact=True).fill(chosen)
        page.get_by_label("New password again").fill(chosen)
        page.get_by_role("button", name="Change password").click()
    return page


def test_an_officer_anchors_the_log_and_sees_the_token_verify(
    node: tuple[str, dict[str, str]], browser: Browser
) -> None:
    base, passwords = node
    page = officer_page(browser, base, passwords["olivia"])
    page.goto("/officer/ledger")
    panel = page.locator("#anchoring")
    assert "Not anchored yet" in panel.inner_text()
    panel.get_by_role("button", name="Anchor the newest checkpoint now").click()
    row = page.locator("#anchoring tbody tr").first
    text = row.inner_text()
    assert "openssl" in text and "verifies" in text and "consistent" in text, text
    shoot(page, "ledger-anchoring")
    href = row.get_by_role("link", name="token (.tsr)").get_attribute("href")
    assert href is not None
    status, body = http_get(base + href)
    assert status == 200 and len(body) > 500
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/officer/ledger")
    assert page.evaluate(SIDEWAYS) <= 0
    assert not [e for e in console_errors(page) if "Content Security Policy" in str(e)]
    page.context.close()
