"""An in-process gateway on the session's SoftHSM token, and people with personal tokens.

Import the fixtures into a package's conftest.py to use them there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import build_app
from gateway.app_keys import LEDGER, TOKEN
from gateway.auth.principals import Principal
from gateway.auth.tokens import issue_token
from gateway.bootstrap import initialise
from gateway.config import Settings, load_settings
from gateway.signing.clients import ClientService
from gateway.signing.keymgmt import KeyManager
from hsm import TokenConfig

Headers = dict[str, str]
MakePerson = Callable[..., Awaitable[Headers]]


@dataclass
class AppNode:
    """A running in-process gateway and its settings."""

    client: TestClient  # type: ignore[type-arg]
    settings: Settings


def node_settings(data_dir: Path, token_config: TokenConfig, **extra: str) -> Settings:
    """Settings for a node on the shared test token, with its own data directory."""
    environ = {
        "SEKISHO_DATA": str(data_dir),
        "SEKISHO_HSM_MODULE": token_config.module_path,
        "SEKISHO_HSM_TOKEN_LABEL": token_config.token_label or "",
        "SEKISHO_LEDGER_BATCH_MS": "1",
        "SEKISHO_LEDGER_AUDIT_SECONDS": "0",
        **extra,
    }
    return load_settings(environ=environ)


def operator_managers(app: web.Application, settings: Settings) -> tuple[KeyManager, ClientService]:
    """Key and client management in the serving process, as an operator (as the portal does)."""
    ledger = app[LEDGER]
    keys = KeyManager(
        app[TOKEN],
        ledger,
        ca_label=settings.keys.ca,
        node=settings.node.name,
        actor="operator:test",
    )
    return keys, ClientService(ledger, actor="operator:test")


async def serve_node(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    token_config: TokenConfig,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[..., Awaitable[TestClient]],  # type: ignore[type-arg]
    database: str = "sqlite",
    **extra: str,
) -> AppNode:
    """Initialise a node in a temporary directory and serve it in-process, on SQLite or
    (``database="postgres"``) a throwaway PostgreSQL database; ``extra`` settings."""
    monkeypatch.setenv("SEKISHO_HSM_PIN", token_config.pin.reveal())
    if database == "postgres":
        extra["SEKISHO_DATABASE_URL"] = str(request.getfixturevalue("pg_database_url"))
    settings = node_settings(tmp_path / "var", token_config, **extra)
    await initialise(settings)
    return AppNode(await aiohttp_client(build_app(settings)), settings)


@pytest.fixture
async def app_node(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    token_config: TokenConfig,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[..., Awaitable[TestClient]],  # type: ignore[type-arg]
) -> AppNode:
    """Initialise a node in a temporary directory and serve it in-process: on SQLite, or
    on the database named by indirect parametrization (``"sqlite"``, ``"postgres"``)."""
    database = getattr(request, "param", "sqlite")
    return await serve_node(request, tmp_path, token_config, monkeypatch, aiohttp_client, database)


@pytest.fixture
def make_person(app_node: AppNode) -> MakePerson:
    """Create a person and return the Authorization header of a personal token."""

    async def make(
        username: str,
        roles: tuple[str, ...] = ("reader",),
        level: str = "SECRET",
    ) -> Headers:
        person = await Principal.create(
            username=username, level=level, nationality="USA", roles=list(roles)
        )
        return {"Authorization": f"Bearer {await issue_token(principal=person)}"}

    return make
