"""HTTP handlers for record anchoring: append a custody-chain link, read chains with receipts."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.app_keys import SIGNING
from gateway.http.bodies import read_json
from gateway.http.params import MAX_INT32, query_int
from gateway.ledger.commitments import decode_opening, expand
from gateway.signing.anchors import (
    AnchorService,
    Link,
    anchor_request,
    check_owner,
    check_subject,
)
from gateway.signing.http import API, client
from gateway.signing.requests import InputError
from gateway.signing.responses import b64

routes = web.RouteTableDef()
WAIT_SECONDS = 30.0
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


def _anchors(request: web.Request) -> AnchorService:
    return request.app[SIGNING].anchors


def link_view(link: Link) -> dict[str, Any]:
    """A chain link as the API shows it; ``entry`` is the exact ledger entry text."""
    row = link.record
    return {
        "record": str(row.id),
        "owner": row.owner,
        "subject": row.subject,
        "subject_sha256": row.subject_sha256,
        "sequence": row.sequence,
        "kind": row.kind,
        "hash": row.hash,
        "digest": b64(bytes.fromhex(row.digest)),
        "metadata": row.metadata,
        "metadata_sha256": row.metadata_sha256,
        "client": row.client,
        "created_at": row.created_at.isoformat(),
        "previous": row.previous,
        "entry": bytes(row.entry).decode("utf-8"),
        # the entry's fields are commitments; this opens them for the chain's parties
        "opening": None
        if link.opening is None
        else expand("record.anchored", decode_opening(link.opening)),
        "leaf_hash": row.leaf_hash,
        "index": link.index,
        "receipt": link.receipt,
    }


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise InputError(f"{name!r} must be true or false", code="bad_parameter")


@routes.post(API + "/anchors")
async def anchor(request: web.Request) -> web.Response:
    """Anchor a record; with ``wait=true`` answer once integrated, with its receipt."""
    caller = client(request, "anchor")
    body = await read_json(request)
    new = anchor_request(body)
    wait = _flag(request.query.get("wait", body.get("wait", False)), "wait")
    service = _anchors(request)
    record = await service.anchor(caller, new)
    link = await service.wait(record, WAIT_SECONDS) if wait else await service.new_link(record)
    status = 202 if wait and link.receipt is None else 201
    return web.json_response(
        link_view(link), status=status, headers={"Location": f"{API}/anchors/{record.id}"}
    )


@routes.get(API + "/anchors")
async def chain(request: web.Request) -> web.Response:
    """A subject's custody chain in order, each link with its receipt once integrated."""
    caller = client(request, "anchor")
    subject = check_subject(request.query.get("subject"))
    owner = check_owner(request.query.get("owner")) or caller.name
    after = query_int(request.query, "after", default=0, high=MAX_INT32)
    limit = (
        query_int(request.query, "limit", default=DEFAULT_LIMIT, high=MAX_LIMIT) or DEFAULT_LIMIT
    )
    links = await _anchors(request).chain(caller, subject, owner=owner, after=after, limit=limit)
    more = len(links) == limit
    return web.json_response(
        {
            "owner": owner,
            "subject": subject,
            "links": [link_view(link) for link in links],
            "next_after": links[-1].record.sequence if more else None,
        }
    )


@routes.get(API + "/anchors/{record}")
async def get_link(request: web.Request) -> web.Response:
    """One anchored record with its receipt (404 unless the caller may read its chain)."""
    caller = client(request, "anchor")
    link = await _anchors(request).get(caller, request.match_info["record"])
    return web.json_response(link_view(link))
