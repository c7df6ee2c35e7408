"""Demo accounts from ``init --demo`` must replace their one-time passwords (#14)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import build_app
from gateway.bootstrap import DEMO_ACCOUNTS, initialise
from hsm import TokenConfig
from tests.gateway.app_fixtures import node_settings
from tests.web.conftest import csrf_of


async def test_demo_accounts_must_choose_their_own_password(
    tmp_path: Path,
    token_config: TokenConfig,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[..., Awaitable[TestClient]],  # type: ignore[type-arg]
) -> None:
    monkeypatch.setenv("SEKISHO_HSM_PIN", token_config.pin.reveal())
    settings = node_settings(tmp_path / "var", token_config)
    report = await initialise(settings, demo=True)
    names = [account[0] for account in DEMO_ACCOUNTS]
    assert set(names) <= set(report.passwords)
    client = await aiohttp_client(build_app(settings))
    for name in names:
        client.session.cookie_jar.clear()
        page = await client.get("/login")
        response = await client.post(
            "/login",
            data={
                "csrf": csrf_of(await page.text()),
                "username": name,
                "password": report.passwords[name],
                "next": "/documents",
            },
            allow_redirects=False,
        )
        assert response.status == 303
        assert response.headers["Location"] == "/me/password", name
        forced = await client.get("/documents", allow_redirects=False)
        assert forced.headers["Location"] == "/me/password", name


def test_demo_display_names_name_no_level_or_role() -> None:
    """A display name that carries a level or role goes stale when an officer changes it."""
    words = {"TOP SECRET", "SECRET", "CONFIDENTIAL", "RESTRICTED", "UNCLASSIFIED"}
    words |= {"officer", "reader", "uploader", "auditor", "admin"}
    for username, display, *_ in DEMO_ACCOUNTS:
        lowered = display.lower()
        assert not any(word.lower() in lowered for word in words), (username, display)
