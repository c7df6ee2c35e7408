"""The witness composition root: its database, token, cosigner, mirrors and routes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from gateway.config import Settings
from gateway.db.setup import close_database, open_database
from gateway.health.prometheus import METRICS, Metrics
from gateway.http.client_tls import client_ssl_context
from gateway.http.headers import hide_server_software, plain_server_name
from gateway.ledger.audit.sources import Fetcher
from gateway.ledger.client import HttpLedgerClient
from gateway.node_token import open_node_token
from gateway.tlog.witness_protocol import MAX_ADD_CHECKPOINT_BODY
from gateway.witness import http
from gateway.witness.app_keys import MIRRORS, REQUESTS, SERVICE, SETTINGS, ResponseCounts
from gateway.witness.cosigner import Cosigner
from gateway.witness.runner import MirrorRunner
from gateway.witness.service import WitnessService
from gateway.witness.store import WitnessStore

WITNESS_MODELS = ["gateway.witness.models"]
_FETCH_TIMEOUT = aiohttp.ClientTimeout(total=60, connect=10)
MIRROR_CREDENTIAL_HINT = (
    "register the mirror at the log with 'sekisho clients add NAME --scopes ledger-read' and "
    "give its token with 'witness add-log ... --token-file FILE' or SEKISHO_WITNESS_MIRROR_TOKEN"
)


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    """The witness's own database for the app's lifetime."""
    await open_database(app[SETTINGS].witness_database_url, model_modules=WITNESS_MODELS)
    yield
    await close_database()


async def service_ctx(app: web.Application) -> AsyncIterator[None]:
    """Log in to the witness token once; cosign with its key."""
    settings = app[SETTINGS]
    token = await open_node_token(settings)
    try:
        cosigner = await Cosigner.create(token, settings.witness.key, settings.witness_name)
        app[SERVICE] = WitnessService(WitnessStore(), cosigner)
        yield
    finally:
        await token.close()


async def mirror_ctx(app: web.Application) -> AsyncIterator[None]:
    """Pull mirrored logs in the background."""
    settings = app[SETTINGS]
    ssl_context = client_ssl_context(settings.witness.tls_ca, "witness.tls_ca")
    async with aiohttp.ClientSession(
        timeout=_FETCH_TIMEOUT, connector=aiohttp.TCPConnector(ssl=ssl_context)
    ) as session:

        def fetcher_for(url: str, token: str | None) -> Fetcher:
            return HttpLedgerClient(session, url, token=token, hint=MIRROR_CREDENTIAL_HINT)

        runner = MirrorRunner(WitnessStore(), fetcher_for, settings.witness.mirror_seconds)
        app[MIRRORS] = runner
        await runner.start()
        yield
        await runner.stop()


def build_witness_app(settings: Settings) -> web.Application:
    """The aiohttp application of a witness node."""
    request_metrics = Metrics()
    app = web.Application(
        middlewares=[request_metrics.middleware, http.error_middleware],
        client_max_size=MAX_ADD_CHECKPOINT_BODY,
    )
    app[SETTINGS] = settings
    app[METRICS] = request_metrics
    app[REQUESTS] = ResponseCounts()
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(service_ctx)
    app.cleanup_ctx.append(mirror_ctx)
    hide_server_software()
    app.on_response_prepare.append(plain_server_name)
    app.add_routes(http.routes)
    return app
