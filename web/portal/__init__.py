"""The portal: server-rendered pages for personnel, security officers and administrators.

:func:`setup_portal` is all the composition root calls. Pages call the same
gateway services as the API (the document catalogue, the trail service, the
account service), so the one policy decision point decides every path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from gateway.app_keys import LEDGER, SETTINGS
from gateway.auth.certificates import PersonCertificates
from gateway.auth.name_tags import scrub_typed_names
from gateway.auth.security_keys import RelyingParty, SecurityKeys
from gateway.auth.sessions import SessionPolicy, SessionStore
from gateway.auth.signin import SignInService, ThrottlePolicy
from gateway.http.errors import ERROR_PAGE
from gateway.oversight.verification import LedgerVerifier
from web.portal import (
    admin,
    admin_clients,
    admin_keys,
    approvals,
    auth,
    custody,
    doc_changes,
    documents,
    explorer,
    handovers,
    ledger,
    officer,
    oversight,
    security_keys,
)
from web.portal.app_keys import PORTAL, Portal
from web.portal.errors import error_page
from web.portal.render import STATIC_DIR, setup_templates, static_versions
from web.portal.security import portal_middleware

__all__ = ["setup_portal"]


async def portal_ctx(app: web.Application) -> AsyncIterator[None]:
    """The portal's services, on the ledger (runs after the gateway's own contexts)."""
    settings = app[SETTINGS].portal
    ledger_service = app[LEDGER]
    sessions = SessionStore(
        SessionPolicy(
            idle=timedelta(minutes=settings.session_idle_minutes),
            absolute=timedelta(hours=settings.session_absolute_hours),
        )
    )
    throttle = ThrottlePolicy(
        max_failures=settings.max_failures,
        max_address_failures=settings.max_address_failures,
        window=timedelta(minutes=settings.failure_window_minutes),
        lockout=timedelta(minutes=settings.lockout_minutes),
    )
    settings_all = app[SETTINGS]
    keys = SecurityKeys(
        ledger_service,
        RelyingParty(
            settings_all.webauthn_rp_id, settings_all.auth.rp_name, settings_all.auth.origins
        ),
    )
    await scrub_typed_names()  # names kept verbatim by earlier versions become tags
    verifier = LedgerVerifier(ledger_service)
    app[PORTAL] = Portal(
        sessions=sessions,
        sign_in=SignInService(ledger_service, sessions, throttle, keys),
        certificates=PersonCertificates(ledger_service),
        security_keys=keys,
        verifier=verifier,
        assume_tls=settings.assume_tls,
        static_versions=static_versions(),
    )
    yield
    await verifier.stop()


def setup_portal(app: web.Application) -> None:
    """Wire the portal into the gateway application (call after the gateway's contexts)."""
    setup_templates(app)
    app.middlewares.append(portal_middleware)
    app.middlewares.append(approvals.waiting_middleware)  # inside: the viewer is known
    app[ERROR_PAGE] = error_page
    app.cleanup_ctx.append(portal_ctx)
    app.router.add_static("/static", STATIC_DIR)
    for module in (
        auth,
        documents,
        doc_changes,
        approvals,
        officer,
        oversight,
        custody,
        handovers,
        ledger,
        admin,
        admin_clients,
        admin_keys,
        explorer,
        security_keys,
    ):
        app.add_routes(module.routes)
