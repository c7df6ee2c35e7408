"""HTTP handlers for /api/v1/approvals: the two-person rule's pending requests.

Every handler goes through :class:`~gateway.documents.approvals.ApprovalDesk`:
the officer role, then the request's existence, then the caller's clearance for its
document, each refusal recorded, before anything of the request (its status) is told.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.app_keys import DOCUMENTS
from gateway.auth.identity import Identity
from gateway.documents.approvals import ApprovalDesk, request_view
from gateway.documents.catalogue import DocumentCatalogue
from gateway.errors import Forbidden
from gateway.http.auth import client_address, identity

routes = web.RouteTableDef()


def _person(request: web.Request) -> Identity:
    """The calling person. An API client is refused here, before any request or document
    is looked up and without an entry, as ``/api/v1/documents`` refuses one: clients have
    no document access at all, so theirs is no decision about a document. A person's
    refusals (the officer role first) are the desk's, each recorded once."""
    caller = identity(request)
    if not caller.is_person:
        raise Forbidden("approvals are decided by people (officers), not API clients")
    return caller


def _catalogue(request: web.Request) -> DocumentCatalogue:
    return request.app[DOCUMENTS]


def _desk(request: web.Request) -> ApprovalDesk:
    return ApprovalDesk(_catalogue(request))


@routes.get("/api/v1/approvals")
async def pending(request: web.Request) -> web.Response:
    """Pending requests on documents the officer is cleared for, oldest first (recorded)."""
    found = await _desk(request).visible(_person(request), source=client_address(request))
    views = [request_view(row, title=document.title) for row, document in found]
    return web.json_response({"approvals": views})


@routes.get("/api/v1/approvals/{id}")
async def one(request: web.Request) -> web.Response:
    """One request (404 when unknown or its document is above the officer's clearance)."""
    row, document = await _desk(request).one(
        _person(request), request.match_info["id"], source=client_address(request)
    )
    return web.json_response({"approval": request_view(row, title=document.title)})


@routes.post("/api/v1/approvals/{id}/approve")
async def approve(request: web.Request) -> web.Response:
    """Approve and carry out a request; the requester cannot approve their own."""
    caller = _person(request)
    catalogue = _catalogue(request)
    source = client_address(request)
    decided = await ApprovalDesk(catalogue).approve(caller, request.match_info["id"], source=source)
    body: dict[str, Any] = {"approval": request_view(decided.request)}
    if decided.new_version is not None:
        body["document"] = await catalogue.created_view(caller, decided.new_version, source=source)
    else:
        body["destroyed_versions"] = decided.destroyed
    return web.json_response(body)


@routes.post("/api/v1/approvals/{id}/refuse")
async def refuse(request: web.Request) -> web.Response:
    """Refuse a request; the requester cannot refuse (or approve) their own."""
    row = await _desk(request).refuse(
        _person(request), request.match_info["id"], source=client_address(request)
    )
    return web.json_response({"approval": request_view(row)})
