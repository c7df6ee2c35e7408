"""The officers' oversight log: who looked at the trail, alerts, activity and the ledger.

Read by the same people as the trail (:func:`web.portal.officer.overseer`). Each
page or export is itself one ``oversight.viewed`` entry (view ``oversight`` or
``oversight.export``), with its filters.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

from aiohttp import web

from gateway.app_keys import LEDGER, OVERSIGHT, SETTINGS
from gateway.http.headers import attachment
from gateway.oversight.log import COLUMNS, OversightQuery, parse_oversight_query, query_filters
from gateway.oversight.record import record_view
from gateway.trail.export import csv_filename, csv_lines
from gateway.trail.query import TrailQueryError
from web.portal.officer import overseer, query_pairs
from web.portal.render import page
from web.portal.security import secure_headers

routes = web.RouteTableDef()
FILTERS = ("person", "view", "from", "to")
PAGE_SIZE = "50"
VIEWS = ("trail", "trail.export", "alerts", "activity", "ledger.verify", "oversight")
"""Views offered in the filter (any other recorded name can be typed in the address)."""


def _filters(request: web.Request) -> dict[str, str]:
    return {name: request.query.get(name, "").strip() for name in FILTERS}


@routes.get("/officer/oversight")
async def oversight_page(request: web.Request) -> web.Response:
    """Recorded oversight actions, newest first, 50 a page."""
    viewer = overseer(request)
    filters = _filters(request)
    cursor = request.query.get("cursor", "")
    kept = {k: v for k, v in filters.items() if v}
    context: dict[str, object] = {
        "title": "Oversight log",
        "filters": filters,
        "views": VIEWS,
        "actions": [],
        "error": "",
        "next": None,
        "exports": None,
        "first_page": not cursor,
        "newest": "/officer/oversight?" + urlencode(kept),
    }
    try:
        query = parse_oversight_query(query_pairs(filters, limit=PAGE_SIZE, cursor=cursor))
    except TrailQueryError as exc:
        context["error"] = exc.message
        return page(request, "oversight.html", context, status=400)
    await record_view(request.app[LEDGER], viewer.identity, "oversight", query_filters(query))
    result = await request.app[OVERSIGHT].page(query)
    context["actions"] = result.actions
    if result.next_cursor is not None:
        context["next"] = "/officer/oversight?" + urlencode({**kept, "cursor": result.next_cursor})
    context["exports"] = {
        "csv": "/officer/oversight.csv?" + urlencode(kept),
        "json": "/officer/oversight.json?" + urlencode(kept),
    }
    return page(request, "oversight.html", context)


async def _export(request: web.Request, kind: str) -> tuple[OversightQuery, str]:
    """The export's query (a bad filter is a 400 page), recorded once; the file name."""
    viewer = overseer(request)
    query = parse_oversight_query(query_pairs(_filters(request)))
    filters = query_filters(query) | {"as": kind}
    await record_view(request.app[LEDGER], viewer.identity, "oversight.export", filters)
    name = csv_filename(request.app[SETTINGS].node.name, datetime.now(UTC), "oversight")
    return query, name[:-3] + kind


async def _attachment(request: web.Request, name: str, content_type: str) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": f"{content_type}; charset=utf-8",
            "Content-Disposition": attachment(name),
        }
    )
    secure_headers(request, response.headers)
    await response.prepare(request)
    return response


@routes.get("/officer/oversight.csv")
async def oversight_csv(request: web.Request) -> web.StreamResponse:
    """Every matching action as CSV."""
    query, name = await _export(request, "csv")
    response = await _attachment(request, name, "text/csv")
    await response.write(csv_lines([COLUMNS]).encode())
    async for chunk in request.app[OVERSIGHT].export(query):
        rows = [
            [a.id, a.at, a.actor, a.view, a.filters_text(), a.node, a.ledger_index] for a in chunk
        ]
        await response.write(csv_lines(rows).encode())
    await response.write_eof()
    return response


@routes.get("/officer/oversight.json")
async def oversight_json(request: web.Request) -> web.StreamResponse:
    """Every matching action as one JSON document ``{"actions": [...]}``."""
    query, name = await _export(request, "json")
    response = await _attachment(request, name, "application/json")
    await response.write(b'{"actions":[')
    separator = b""
    async for chunk in request.app[OVERSIGHT].export(query):
        for action in chunk:
            await response.write(separator + json.dumps(action.as_dict()).encode())
            separator = b","
    await response.write(b"]}\n")
    await response.write_eof()
    return response
