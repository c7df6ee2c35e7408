"""TLS client certificates authenticate API clients, on a real TLS listener on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from gateway.app import build_app
from gateway.bootstrap import initialise
from gateway.config import HttpSettings, Settings
from gateway.errors import ConfigError
from gateway.http.tls import server_ssl_context
from gateway.ledger.queued import QueuedLedger
from gateway.signing.clients import ClientService, ClientSpec
from hsm import TokenConfig
from tests.gateway.signing.api_node import node_settings
from tests.gateway.signing.tlscerts import Issued, TlsMaterial, make_tls_material
from tests.nodes import free_port

BODY = {"digest": base64.b64encode(hashlib.sha256(b"tls").digest()).decode()}


@dataclass
class TlsNode:
    base: str
    settings: Settings
    tls: TlsMaterial
    clients: ClientService

    def context(self, client: Issued | None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.tls.ca.cert))
        if client is not None:
            context.load_cert_chain(str(client.cert), str(client.key))
        return context

    async def sign(self, client: Issued | None, headers: dict[str, str] | None = None) -> int:
        status, _ = await self.sign_message(client, headers)
        return status

    async def sign_message(
        self, client: Issued | None, headers: dict[str, str] | None = None
    ) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.base}/api/v1/sign/default",
                json=BODY,
                headers=headers or {},
                ssl=self.context(client),
            ) as response,
        ):
            body = await response.json()
            return response.status, str(body.get("message", ""))


@pytest.fixture
async def tls_node(
    tmp_path: Path, token_config: TokenConfig, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[TlsNode]:
    monkeypatch.setenv("SEKISHO_HSM_PIN", token_config.pin.reveal())
    tls = make_tls_material(tmp_path)
    settings = node_settings(
        tmp_path / "var",
        token_config,
        SEKISHO_HTTP_TLS_CERT=str(tls.server.cert),
        SEKISHO_HTTP_TLS_KEY=str(tls.server.key),
        SEKISHO_HTTP_TLS_CLIENT_CA=str(tls.ca.cert),
    )
    await initialise(settings)
    runner = web.AppRunner(build_app(settings))
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_ssl_context(settings.http))
    await site.start()
    service = ClientService(QueuedLedger(settings.node.name), actor="operator:test")
    try:
        yield TlsNode(f"https://127.0.0.1:{port}", settings, tls, service)
    finally:
        await runner.cleanup()


async def test_client_certificate_authenticates_the_registered_client(tls_node: TlsNode) -> None:
    tls = tls_node.tls
    _, token = await tls_node.clients.add(
        "cert-client",
        ClientSpec(scopes=("sign",), keys=("default",), cert_fingerprint=tls.client.sha256),
    )
    assert await tls_node.sign(tls.client) == 200  # no bearer token: the certificate is enough
    assert await tls_node.sign(None) == 401  # the certificate is optional; without it, no identity
    assert await tls_node.sign(None, {"Authorization": f"Bearer {token}"}) == 200
    status, message = await tls_node.sign_message(tls.other_client)  # from the CA, unregistered
    assert (status, message) == (401, "no API client is registered for this client certificate")
    with pytest.raises(aiohttp.ClientError):
        await tls_node.sign(tls.rogue)  # not issued by the client CA: the handshake fails
    await tls_node.clients.revoke("cert-client")
    assert await tls_node.sign(tls.client) == 401


def test_tls_settings_are_checked(tmp_path: Path) -> None:
    assert server_ssl_context(HttpSettings()) is None
    tls = make_tls_material(tmp_path)
    with pytest.raises(ConfigError, match="must be set together"):
        server_ssl_context(HttpSettings(tls_cert=str(tls.server.cert)))
    with pytest.raises(ConfigError, match="must be set together"):
        server_ssl_context(HttpSettings(tls_client_ca=str(tls.ca.cert)))
    with pytest.raises(ConfigError, match=r"http\.tls_key \(SEKISHO_HTTP_TLS_KEY\)"):
        server_ssl_context(HttpSettings(tls_cert=str(tls.server.cert), tls_key="/nonexistent"))
    with pytest.raises(ConfigError, match="cannot load"):
        server_ssl_context(HttpSettings(tls_cert=str(tls.server.cert), tls_key=str(tls.client.key)))
    context = server_ssl_context(
        HttpSettings(
            tls_cert=str(tls.server.cert),
            tls_key=str(tls.server.key),
            tls_client_ca=str(tls.ca.cert),
        )
    )
    assert context is not None and context.verify_mode == ssl.CERT_OPTIONAL
