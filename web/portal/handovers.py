"""A person's custody hand-overs: the pending ones naming them, and signing one."""

from __future__ import annotations

from aiohttp import web

from gateway.app_keys import CUSTODY
from web.portal.render import page
from web.portal.security import viewer_of

routes = web.RouteTableDef()


@routes.get("/me/handovers")
async def pending(request: web.Request) -> web.Response:
    """Pending hand-overs that name the signed-in person as giver or receiver."""
    viewer = viewer_of(request)
    party = f"person:{viewer.identity.name}"
    mine = await request.app[CUSTODY].pending_handovers(party)
    signed = request.query.get("signed", "")
    status = request.query.get("status", "")
    context = {
        "title": "Hand-overs",
        "handovers": mine,
        "party": party,
        "signed": signed,
        "status": status,
    }
    return page(request, "handovers.html", context)


@routes.post("/me/handovers/{handover}/sign")
async def sign(request: web.Request) -> web.Response:
    """Sign one hand-over as its giver or receiver (the node attests the signature)."""
    viewer = viewer_of(request)
    service = request.app[CUSTODY].handovers
    row = await service.sign_as_person(viewer.identity, request.match_info["handover"])
    raise web.HTTPSeeOther(f"/me/handovers?signed={row.id}&status={row.status}")
