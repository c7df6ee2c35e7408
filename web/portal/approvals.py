"""The two-person rule in the portal: pending requests, approve and refuse, the count in nav.

Pages call :class:`~gateway.documents.approvals.ApprovalDesk`, as the API
does, so the same officer, clearance and not-your-own checks apply in the same order:
a person without the officer role is refused (and recorded) before the request is looked
up, and a request about a document above the officer is answered (and recorded) as an
id that does not exist, before its status is told.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.app_keys import DOCUMENTS
from gateway.documents.approvals import ApprovalDesk
from gateway.errors import SekishoError
from web.portal.app_keys import VIEWER, WAITING, Viewer
from web.portal.auth import source_of
from web.portal.render import page
from web.portal.security import Handler, see_other, viewer_of

routes = web.RouteTableDef()
DONE = {"approved": "Approved and carried out", "refused": "Refused"}


def _desk(request: web.Request) -> ApprovalDesk:
    return ApprovalDesk(request.app[DOCUMENTS])


async def _page(
    request: web.Request,
    viewer: Viewer,
    *,
    error: str = "",
    status: int = 200,
    record: bool = True,
) -> web.Response:
    """The list, recorded as its own decision unless ``record`` is False (shown again
    under a decision's error: that decision recorded the one entry)."""
    found = await _desk(request).visible(viewer.identity, source=source_of(request), record=record)
    items: list[dict[str, Any]] = [
        {
            "request": row,
            "title": document.title,
            "label": document.label,
            "mine": row.requested_by == viewer.identity.actor,
        }
        for row, document in found
    ]
    context = {
        "title": "Approvals",
        "requests": items,
        "error": error,
        "done": DONE.get(request.query.get("done", ""), ""),
    }
    labels = [item["label"] for item in items] + [
        str(item["request"].new_label) for item in items if item["request"].new_label
    ]
    return page(request, "approvals.html", context, labels=labels, status=status)


@routes.get("/approvals")
async def approvals(request: web.Request) -> web.Response:
    """Pending requests on documents this officer is cleared for (the desk refuses, and
    records, a person without the officer role; a list shown is one entry)."""
    return await _page(request, viewer_of(request))


@routes.post("/approvals/{id}/{verb:approve|refuse}")
async def decide(request: web.Request) -> web.Response:
    """Approve (and carry out) or refuse a request made by another officer."""
    viewer = viewer_of(request)
    desk = _desk(request)
    source = source_of(request)
    request_id, verb = request.match_info["id"], request.match_info["verb"]
    # first, and recorded as the API records it: the same 403 page for every id
    await desk.require_officer(viewer.identity, action=verb, source=source)
    try:
        if verb == "approve":
            await desk.approve(viewer.identity, request_id, source=source)
        else:
            await desk.refuse(viewer.identity, request_id, source=source)
    except SekishoError as exc:
        if exc.status >= 500:
            raise
        request[WAITING] = await desk.waiting_for(viewer.identity)
        return await _page(request, viewer, error=exc.message, status=exc.status, record=False)
    return see_other(f"/approvals?done={'approved' if verb == 'approve' else 'refused'}")


@web.middleware
async def waiting_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the requests an officer could decide, for the nav of the page about to render."""
    viewer = request.get(VIEWER)
    if viewer is not None and request.method == "GET" and viewer.has_role("officer", "admin"):
        request[WAITING] = await _desk(request).waiting_for(viewer.identity)
    return await handler(request)
