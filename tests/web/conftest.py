"""An in-process gateway with the portal, people with passwords, and form helpers."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from gateway.app import build_app
from gateway.app_keys import LEDGER
from gateway.auth.passwords import hash_password
from gateway.auth.principals import Principal
from gateway.bootstrap import initialise
from gateway.config import Settings
from hsm import TokenConfig
from tests.gateway.app_fixtures import node_settings

PASSWORD = "a long enough test password"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
AppHook = Callable[[web.Application], None]


@dataclass
class Portal:
    """An in-process node with the portal."""

    client: TestClient  # type: ignore[type-arg]
    settings: Settings

    @property
    def app(self) -> web.Application:
        """The application under test."""
        app = self.client.app
        assert isinstance(app, web.Application)
        return app


async def person(
    username: str,
    level: str = "SECRET",
    roles: tuple[str, ...] = ("reader", "uploader"),
    compartments: tuple[str, ...] = (),
    nationality: str = "FRA",
    *,
    must_change: bool = False,
) -> Principal:
    """Create a person whose password is :data:`PASSWORD`."""
    return await Principal.create(
        username=username,
        display_name=username.title(),
        password_hash=hash_password(PASSWORD),
        must_change_password=must_change,
        level=level,
        compartments=list(compartments),
        nationality=nationality,
        roles=list(roles),
    )


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(html)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


async def sign_in(
    client: TestClient,  # type: ignore[type-arg]
    username: str,
    password: str = PASSWORD,
) -> ClientResponse:
    """Sign in through the form (without following the redirect)."""
    page = await client.get("/login")
    token = csrf_of(await page.text())
    return await client.post(
        "/login",
        data={"csrf": token, "username": username, "password": password, "next": "/"},
        allow_redirects=False,
    )


async def form_token(client: TestClient, path: str) -> str:  # type: ignore[type-arg]
    """The CSRF token on a page of a signed-in client."""
    page = await client.get(path)
    assert page.status == 200, await page.text()
    return csrf_of(await page.text())


async def ledger_entries(app: web.Application, entry_type: str) -> list[dict[str, Any]]:
    """Every integrated ledger entry of a type (waits for the queue to drain)."""
    ledger = app[LEDGER]
    for _ in range(200):
        if await ledger.store.pending_count() == 0:
            break
        await asyncio.sleep(0.02)
    latest = await ledger.latest()
    entries = await ledger.opened_entries(0, latest.size)
    return [e for e in entries if e.get("type") == entry_type]


@pytest.fixture
def portal_settings() -> dict[str, str]:
    """Extra SEKISHO_* settings for the node (override in a test module)."""
    return {"SEKISHO_PORTAL_MAX_FAILURES": "3", "SEKISHO_PORTAL_MAX_ADDRESS_FAILURES": "5"}


@pytest.fixture
def app_hook() -> AppHook | None:
    """Something to add to the app before it starts (override in a test)."""
    return None


@pytest.fixture
async def portal(
    tmp_path: Path,
    token_config: TokenConfig,
    monkeypatch: pytest.MonkeyPatch,
    portal_settings: dict[str, str],
    app_hook: AppHook | None,
    aiohttp_client: Callable[..., Awaitable[TestClient]],  # type: ignore[type-arg]
) -> Portal:
    """Initialise a node in a temporary directory and serve it (with the portal) in-process."""
    monkeypatch.setenv("SEKISHO_HSM_PIN", token_config.pin.reveal())
    settings = node_settings(tmp_path / "var", token_config, **portal_settings)
    await initialise(settings)
    app = build_app(settings)
    if app_hook is not None:
        app_hook(app)
    client = await aiohttp_client(app)
    return Portal(client, settings)
