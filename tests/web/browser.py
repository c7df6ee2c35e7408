"""Driving Debian's Chromium with Playwright against a real ``sekisho serve`` process.

No browser is downloaded: Playwright's Python wheel brings its driver, and the
browser is the distribution's ``chromium`` package (``./dev test`` installs it).
Without it the browser tests are skipped with the reason (a failure under CI).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import in_ci

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
_PASSWORD_LINE = re.compile(r"one-time password for '([a-z0-9._-]+)': (\S+)")


def need_browser() -> None:
    """Skip (fail under CI) when Chromium or Playwright is missing."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("playwright (pip install -e '.[test]')")
    if missing:
        message = "browser tests need " + " and ".join(missing) + "; ./dev test installs them"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium for the module."""
    need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


def passwords_from(output: str) -> dict[str, str]:
    """One-time passwords printed by ``sekisho init``."""
    return dict(_PASSWORD_LINE.findall(output))


def new_page(browser: Browser, base: str) -> Page:
    """A page in a fresh browser context (its own cookies), desktop sized."""
    context = browser.new_context(
        base_url=base, viewport={"width": 1280, "height": 860}, accept_downloads=True
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    setattr(page, "sekisho_errors", errors)  # noqa: B010 - for the CSP check
    return page


def sign_in(page: Page, username: str, password: str) -> None:
    """Fill in and send the sign-in form."""
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def sign_out(page: Page) -> None:
    """Press the sign-out button in the masthead."""
    page.get_by_role("button", name="Sign out").click()


def shoot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under test-output/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def console_errors(page: Page) -> list[Any]:
    """Console messages and page errors seen so far (CSP violations show up here)."""
    return list(getattr(page, "sekisho_errors", []))
