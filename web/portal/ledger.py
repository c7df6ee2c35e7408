"""The officers' ledger page: latest checkpoint, witnesses, audits and whole-ledger verification."""

from __future__ import annotations

import base64

from aiohttp import web

from gateway.anchoring.report import current_checks
from gateway.app_keys import ANCHORING, AUDITOR, LEDGER
from gateway.oversight.record import record_view
from web.portal.anchoring import cosigning
from web.portal.app_keys import PORTAL
from web.portal.officer import officer, overseer
from web.portal.render import page
from web.portal.security import see_other

routes = web.RouteTableDef()
REFRESH_SECONDS = 1
ANCHORS_SHOWN = 20


@routes.get("/officer/ledger")
async def ledger_page(request: web.Request) -> web.Response:
    """Size, root and signed note of the latest checkpoint; co-signing; verification."""
    viewer = overseer(request)
    ledger = request.app[LEDGER]
    latest = await ledger.latest()
    auditor = request.app.get(AUDITOR)
    run = request.app[PORTAL].verifier.latest
    context = {
        "title": "Ledger",
        "checkpoint": latest,
        "root": base64.b64encode(latest.root).decode(),
        "origin": ledger.signer.origin,
        "vkey": ledger.signer.verifier_key,
        "cosigning": cosigning(request.app, latest),
        "audit": auditor.status if auditor is not None else None,
        "run": run,
        "refresh": (
            f"{REFRESH_SECONDS}; url=/officer/ledger?run={run.number}"
            if run is not None and run.running
            else None
        ),
        "pending": await ledger.pending_count(),
        "leader": ledger.is_leader,
        "can_verify": viewer.has_role("officer", "admin"),
        "anchors": await current_checks(request.app[LEDGER], request.app[ANCHORING], ANCHORS_SHOWN),
        "tsas": [
            (tsa.name, request.app[ANCHORING].states[tsa.name])
            for tsa in request.app[ANCHORING].tsas
        ],
    }
    return page(request, "ledger.html", context)


@routes.post("/officer/ledger/verify")
async def verify(request: web.Request) -> web.Response:
    """Start verifying the whole ledger in the background; the ledger page shows progress."""
    viewer = officer(request)
    run = request.app[PORTAL].verifier.start(viewer.identity.actor)
    await record_view(request.app[LEDGER], viewer.identity, "ledger.verify", {"run": run.number})
    return see_other(f"/officer/ledger?run={run.number}")


@routes.post("/officer/ledger/anchor")
async def anchor(request: web.Request) -> web.Response:
    """Have every configured TSA timestamp the newest checkpoint now (each one is ledgered)."""
    viewer = officer(request)
    await request.app[ANCHORING].anchor_now(actor=viewer.identity.actor)
    return see_other("/officer/ledger#anchoring")
