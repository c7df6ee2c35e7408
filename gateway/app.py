"""The composition root: the one place that wires database, token, API and portal together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from gateway.accounts import http as accounts_http
from gateway.accounts import openapi as accounts_openapi
from gateway.accounts.service import AccountService
from gateway.anchoring import http as anchoring_http
from gateway.anchoring.wiring import build_anchoring
from gateway.app_keys import (
    ACCOUNTS,
    ANCHORING,
    AUDITOR,
    CUSTODY,
    DOCUMENTS,
    LEDGER,
    OVERSIGHT,
    POLICY,
    SETTINGS,
    SIGNING,
    TOKEN,
    TRAIL,
    WITNESSING,
)
from gateway.auth.last_used import flush_noted
from gateway.config import Settings, SigningSettings
from gateway.custody import http as custody_http
from gateway.custody import openapi as custody_openapi
from gateway.custody.wiring import build_custody, overdue_loop
from gateway.db.setup import close_database, open_database
from gateway.documents import approvals_http, approvals_openapi
from gateway.documents import http as documents_http
from gateway.documents import openapi as documents_openapi
from gateway.documents.approvals import expiry_interval, run_expiry_sweep
from gateway.documents.blob_backends import check_blob_store, open_blob_store, run_sweeper
from gateway.documents.wiring import build_documents
from gateway.health import http as health
from gateway.health import metrics
from gateway.health.prometheus import METRICS, Metrics
from gateway.http import openapi as openapi_self
from gateway.http.auth import auth_middleware
from gateway.http.bodies import (
    BODY_IDLE_SECONDS,
    BODY_TOTAL_SECONDS,
    LARGE_BODY_BYTES,
    body_limit_middleware,
    slow_body_middleware,
)
from gateway.http.errors import error_middleware
from gateway.http.headers import hide_server_software, machine_headers, plain_server_name
from gateway.http.openapi import OPENAPI_DOCUMENT, build_document, serve_openapi
from gateway.http.text import nul_middleware
from gateway.ledger import http as ledger_http
from gateway.ledger import openapi as ledger_openapi
from gateway.ledger import witnesses_http
from gateway.ledger.audit.auditor import LedgerAuditor
from gateway.ledger.wiring import build_ledger, build_witnessing
from gateway.node_token import open_node_token, serving_profile
from gateway.oversight import http as oversight_http
from gateway.oversight import openapi as oversight_openapi
from gateway.oversight.log import OversightLog
from gateway.policy.pdp import decision_point
from gateway.signing import anchors_http
from gateway.signing import http as signing_http
from gateway.signing import openapi as signing_openapi
from gateway.signing.wiring import build_signing
from gateway.trail import http as trail_http
from gateway.trail import openapi as trail_openapi
from gateway.trail.service import TrailService
from web.portal import setup_portal


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the database for the app's lifetime."""
    await open_database(app[SETTINGS].database_url)
    yield
    await flush_noted()
    await close_database()


async def token_ctx(app: web.Application) -> AsyncIterator[None]:
    """Log in to the token once for the app's lifetime."""
    token = await open_node_token(app[SETTINGS])
    try:
        await serving_profile(token, app[SETTINGS])
    except BaseException:
        await token.close()
        raise
    app[TOKEN] = token
    yield
    await token.close()


async def ledger_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the ledger (sequencer when this process leads) for the app's lifetime."""
    ledger = await build_ledger(app[SETTINGS], app[TOKEN])
    app[LEDGER] = ledger
    await ledger.start()
    yield
    await ledger.stop()


async def witnessing_ctx(app: web.Application) -> AsyncIterator[None]:
    """Collect witness cosignatures (sent only while this process sequences)."""
    witnessing = build_witnessing(app[SETTINGS], app[LEDGER])
    if witnessing is None:
        yield
        return
    app[WITNESSING] = witnessing
    await witnessing.start()
    yield
    await witnessing.stop()


async def anchoring_ctx(app: web.Application) -> AsyncIterator[None]:
    """Anchor the log at the configured TSAs (on the schedule only while this process sequences)."""
    ledger = app[LEDGER]
    anchoring, transport = build_anchoring(
        app[SETTINGS], ledger.store, ledger, is_leader=lambda: ledger.is_leader
    )
    app[ANCHORING] = anchoring
    await transport.start()
    if anchoring.tsas:
        await anchoring.start()
    yield
    await anchoring.stop()
    await transport.close()


async def audit_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the periodic ledger auditor (incremental, with a periodic full pass)."""
    settings = app[SETTINGS].ledger
    auditor = LedgerAuditor(
        app[LEDGER], interval=settings.audit_seconds, full_interval=settings.audit_full_seconds
    )
    app[AUDITOR] = auditor
    await auditor.start()
    yield
    await auditor.stop()


async def documents_ctx(app: web.Application) -> AsyncIterator[None]:
    """The document services, on the token, ledger and blob store (with its leftover sweep)."""
    settings = app[SETTINGS]
    async with open_blob_store(settings) as blobs:
        await check_blob_store(blobs)
        app[DOCUMENTS] = build_documents(settings, app[TOKEN], app[LEDGER], app[POLICY], blobs)
        sweeper = asyncio.create_task(
            run_sweeper(blobs, timedelta(minutes=settings.blobs.sweep_minutes)), name="blob-sweep"
        )
        expiry = asyncio.create_task(
            run_expiry_sweep(app[DOCUMENTS].changes.book, expiry_interval(settings)),
            name="approval-expiry",
        )
        yield
        for task in (sweeper, expiry):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await app[DOCUMENTS].close()


async def accounts_ctx(app: web.Application) -> AsyncIterator[None]:
    """The account service (API and portal administration), on the ledger."""
    app[ACCOUNTS] = AccountService(app[LEDGER], app[POLICY].scheme)
    yield


async def trail_ctx(app: web.Application) -> AsyncIterator[None]:
    """The access-trail service (API, officers' pages, each person's history)."""
    app[TRAIL] = TrailService(app[LEDGER].store)
    app[OVERSIGHT] = OversightLog(app[LEDGER].store)
    yield


async def signing_ctx(app: web.Application) -> AsyncIterator[None]:
    """The signing API's services (key registry, signing, anchoring, rate limits)."""
    app[SIGNING] = build_signing(app[SETTINGS], app[TOKEN], app[LEDGER])
    yield


async def custody_ctx(app: web.Application) -> AsyncIterator[None]:
    """Custody hand-overs, and the periodic overdue check (``signing.custody_check_seconds``)."""
    app[CUSTODY] = build_custody(app[SIGNING], app[LEDGER])
    seconds = app[SETTINGS].signing.custody_check_seconds
    task = asyncio.create_task(overdue_loop(app[LEDGER], seconds)) if seconds else None
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def build_app(settings: Settings) -> web.Application:
    """Build the aiohttp application for one node."""
    request_metrics = Metrics()
    app = web.Application(
        middlewares=[
            request_metrics.middleware,
            slow_body_middleware,
            error_middleware,
            nul_middleware,
            body_limit_middleware,
            auth_middleware,
        ],
        client_max_size=settings.http.max_body_mib * 1024 * 1024,
    )
    app[SETTINGS] = settings
    app[METRICS] = request_metrics
    app[POLICY] = decision_point(settings)
    app[BODY_IDLE_SECONDS] = float(settings.http.body_idle_seconds)
    app[BODY_TOTAL_SECONDS] = float(settings.http.body_total_seconds)
    app[LARGE_BODY_BYTES] = settings.http.max_body_mib * 1024 * 1024
    hide_server_software()
    app.on_response_prepare.append(plain_server_name)
    app.on_response_prepare.append(machine_headers)
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(token_ctx)
    app.cleanup_ctx.append(ledger_ctx)
    app.cleanup_ctx.append(witnessing_ctx)
    app.cleanup_ctx.append(anchoring_ctx)
    app.cleanup_ctx.append(audit_ctx)
    app.cleanup_ctx.append(documents_ctx)
    app.cleanup_ctx.append(signing_ctx)
    app.cleanup_ctx.append(custody_ctx)
    app.cleanup_ctx.append(accounts_ctx)
    app.cleanup_ctx.append(trail_ctx)
    app.add_routes(health.routes)
    app.add_routes(metrics.routes)
    app.add_routes(ledger_http.routes)
    app.add_routes(witnesses_http.routes)
    app.add_routes(anchoring_http.routes)
    app.add_routes(documents_http.routes)
    app.add_routes(approvals_http.routes)
    app.add_routes(signing_http.routes)
    app.add_routes(anchors_http.routes)
    app.add_routes(custody_http.routes)
    app.add_routes(accounts_http.routes)
    app.add_routes(trail_http.routes)
    app.add_routes(oversight_http.routes)
    app[OPENAPI_DOCUMENT] = build_document(api_descriptions(settings))
    app.router.add_get(openapi_self.OPENAPI_PATH, serve_openapi)
    setup_portal(app)  # last: its middleware and services sit inside the gateway's
    return app


def api_descriptions(settings: Settings | None = None) -> dict[str, dict[str, object]]:
    """OpenAPI path items contributed by each API module (limits from ``settings``)."""
    max_batch = (settings.signing if settings else SigningSettings()).max_batch
    parts: dict[str, dict[str, object]] = {
        **openapi_self.PATHS,
        **documents_openapi.PATHS,
        **approvals_openapi.PATHS,
        **ledger_openapi.PATHS,
        **witnesses_http.PATHS,
        **anchoring_http.PATHS,
        **signing_openapi.paths(max_batch),
        **accounts_openapi.PATHS,
        **trail_openapi.PATHS,
        **custody_openapi.PATHS,
        **oversight_openapi.PATHS,
    }
    return parts
