"""An in-process gateway on the session's SoftHSM token, for the ledger HTTP and auditor tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from tortoise.backends.base.executor import EXECUTOR_CACHE

from gateway.app import build_app
from gateway.app_keys import AUDITOR, LEDGER
from gateway.auth.principals import ApiClient, Principal
from gateway.auth.tokens import issue_token
from gateway.bootstrap import initialise
from gateway.config import Settings, load_settings
from gateway.ledger.audit.auditor import LedgerAuditor
from gateway.ledger.service import LedgerService
from hsm import SoftHsmLayout, TokenConfig
from tests.tsa_server import openssl_tsa  # noqa: F401 - a session fixture for the anchoring tests

AiohttpClient = Callable[[web.Application], Awaitable["TestClient[Any, Any]"]]


class NeverLeads:
    """A leadership never granted: the ledger service of a second ``--workers`` process."""

    async def try_acquire(self) -> bool:
        return False

    async def still_held(self) -> bool:
        return False

    async def release(self) -> None:
        return None


@dataclass
class LedgerNode:
    """A running in-process gateway."""

    client: TestClient[Any, Any]
    app: web.Application
    settings: Settings

    @property
    def ledger(self) -> LedgerService:
        return self.app[LEDGER]

    @property
    def auditor(self) -> LedgerAuditor:
        return self.app[AUDITOR]

    async def append(self, count: int, tag: str = "t") -> int:
        """Append ``count`` entries and wait until all are integrated; the tree size after."""
        tickets = await asyncio.gather(
            *(
                self.ledger.record("record.anchored", client=tag, digest=f"{i:064x}")
                for i in range(count)
            )
        )
        indexes = await asyncio.gather(*(self.ledger.integrated(t) for t in tickets))
        size = max(indexes) + 1
        while (await self.ledger.latest()).size < size:
            await asyncio.sleep(0.01)
        return (await self.ledger.latest()).size

    async def person_token(self, *roles: str) -> str:
        """A personal bearer token of a new person holding ``roles``."""
        person = await Principal.create(
            username=f"p{await Principal.all().count()}-{'-'.join(roles)}",
            level="SECRET",
            roles=list(roles),
        )
        return await issue_token(principal=person)

    async def client_token(self, *scopes: str) -> str:
        """A bearer token of a new API client holding ``scopes`` (a mirror: ledger-read)."""
        client = await ApiClient.create(
            name=f"c{await ApiClient.all().count()}", scopes=list(scopes)
        )
        return await issue_token(client=client)

    async def officer_headers(self) -> dict[str, str]:
        """Authorization headers of an officer (who may read entries)."""
        return {"Authorization": f"Bearer {await self.person_token('officer')}"}

    async def get_json(
        self, url: str, status: int = 200, headers: dict[str, str] | None = None
    ) -> Any:
        """GET a JSON resource and check its status."""
        response = await self.client.get(url, headers=headers)
        assert response.status == status, await response.text()
        assert response.content_type == "application/json"
        return await response.json()


MakeNode = Callable[..., Awaitable[LedgerNode]]


@pytest.fixture
async def make_node(
    tmp_path: Path,
    token_config: TokenConfig,
    softhsm_layout: SoftHsmLayout,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: AiohttpClient,
) -> AsyncIterator[MakeNode]:
    """Start an in-process node on SQLite, or on ``database_url`` when given."""
    monkeypatch.setenv("SEKISHO_HSM_PIN", token_config.pin.reveal())
    monkeypatch.setenv("SOFTHSM2_CONF", str(softhsm_layout.conf))

    async def make(database_url: str | None = None, **extra: str) -> LedgerNode:
        environ = {
            "SEKISHO_DATA": str(tmp_path / "var"),
            "SEKISHO_HSM_MODULE": token_config.module_path,
            "SEKISHO_HSM_TOKEN_LABEL": token_config.token_label or "",
            "SEKISHO_LEDGER_BATCH_MS": "1",
            "SEKISHO_LEDGER_AUDIT_SECONDS": "0",
            **extra,
        }
        if database_url:
            environ["SEKISHO_DATABASE_URL"] = database_url
        settings = load_settings(environ=environ)
        EXECUTOR_CACHE.clear()  # Tortoise caches ORM SQL per connection name, not per backend
        await initialise(settings)
        app = build_app(settings)
        client = await aiohttp_client(app)
        node = LedgerNode(client, app, settings)
        while await node.ledger.store.latest_checkpoint() is None:  # the sequencer's first step
            await asyncio.sleep(0.01)
        return node

    yield make
    EXECUTOR_CACHE.clear()  # leave no backend-specific SQL behind for later tests
