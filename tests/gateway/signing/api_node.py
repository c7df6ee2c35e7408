"""An in-process node for signing-API tests, API clients and named keys on the shared token.

The `node` fixture is imported into conftest.py; tests import the types from here.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import build_app
from gateway.app_keys import LEDGER
from gateway.bootstrap import initialise
from gateway.config import Settings, load_settings
from gateway.signing.clients import ClientService, ClientSpec
from gateway.signing.keymgmt import KeyManager
from gateway.signing.named_keys import KeyVersion
from hsm import KeyAlgorithm, TokenConfig
from tests.gateway.app_fixtures import operator_managers

Headers = dict[str, str]
Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Headers]]


def fresh(prefix: str) -> str:
    """A unique name, so key labels never collide on the session's shared token."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def node_settings(data_dir: Path, token_config: TokenConfig, **extra: str) -> Settings:
    """A node with its own data directory on the shared test token."""
    environ = {
        "SEKISHO_DATA": str(data_dir),
        "SEKISHO_HSM_MODULE": token_config.module_path,
        "SEKISHO_HSM_TOKEN_LABEL": token_config.token_label or "",
        "SEKISHO_HSM_PIN": token_config.pin.reveal(),
        "SEKISHO_LEDGER_BATCH_MS": "1",
        "SEKISHO_LEDGER_AUDIT_SECONDS": "0",
        **extra,
    }
    return load_settings(environ=environ)


@dataclass
class Node:
    """An initialised node served in-process."""

    client: Client
    settings: Settings
    app: web.Application

    def managers(self) -> tuple[KeyManager, ClientService]:
        """Key and client management in the serving process (as the portal does it)."""
        return operator_managers(self.app, self.settings)

    async def create_key(self, algorithm: KeyAlgorithm, purpose: str = "sign") -> KeyVersion:
        """A fresh named key."""
        return await self.managers()[0].create(fresh("k"), algorithm, purpose)

    async def add_client(
        self,
        *,
        scopes: Sequence[str] = ("sign", "verify", "cms", "timestamp", "anchor"),
        keys: Sequence[str] = ("default",),
        rate: int = 0,
        cert_sha256: str | None = None,
        name: str | None = None,
    ) -> Headers:
        """Register an API client; returns its Authorization header."""
        spec = ClientSpec(
            scopes=tuple(scopes),
            keys=tuple(keys) if any(s in scopes for s in ("sign", "verify", "cms")) else (),
            rate_per_minute=rate,
            cert_fingerprint=cert_sha256,
        )
        _, token = await self.managers()[1].add(name or fresh("client"), spec)
        return {"Authorization": f"Bearer {token}"}

    async def entries(self, entry_type: str) -> list[dict[str, Any]]:
        """Every integrated ledger entry of one type, in order (waits for the queue to drain)."""
        ledger = self.app[LEDGER]
        for _ in range(1000):
            if await ledger.store.pending_count() == 0:
                break
            await asyncio.sleep(0.01)
        size = (await ledger.latest()).size
        return [e for e in await ledger.opened_entries(0, size) if e["type"] == entry_type]


@pytest.fixture
async def node(
    tmp_path: Path,
    token_config: TokenConfig,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> Node:
    """Initialise a node in a temporary directory and serve it in-process."""
    monkeypatch.setenv("SEKISHO_HSM_PIN", token_config.pin.reveal())
    return await start_node(node_settings(tmp_path / "var", token_config), aiohttp_client)


async def start_node(settings: Settings, aiohttp_client: Callable[..., Awaitable[Client]]) -> Node:
    """Initialise a node with ``settings`` and serve it in-process."""
    await initialise(settings)
    app = build_app(settings)
    return Node(await aiohttp_client(app), settings, app)
