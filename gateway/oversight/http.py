"""``GET /api/v1/oversight``: who looked at the trail and how (officers, auditors, admins).

Looking is itself an oversight action: each request is one ``oversight.viewed``
entry (view ``oversight``, with its filters), however many actions it lists.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from gateway.app_keys import LEDGER, OVERSIGHT, SETTINGS
from gateway.http.auth import identity
from gateway.http.headers import attachment
from gateway.http.models import answer
from gateway.oversight.answers import OversightActionView, OversightPage
from gateway.oversight.log import COLUMNS, parse_oversight_query, query_filters
from gateway.oversight.openapi import PATH
from gateway.oversight.record import record_view
from gateway.trail.export import csv_filename, csv_lines
from gateway.trail.query import TrailQueryError

routes = web.RouteTableDef()
ROLES = ("officer", "auditor", "admin")
"""The trail API's readers: the same people may see who read it."""


@routes.get(PATH)
async def oversight(request: web.Request) -> web.StreamResponse:
    """Recorded oversight actions, newest first (JSON pages or a CSV export)."""
    caller = identity(request)
    caller.require_role(*ROLES)
    try:
        query = parse_oversight_query(request.query.items())
    except TrailQueryError as exc:
        body = {"error": exc.code, "message": exc.message, "parameter": exc.parameter}
        return web.json_response(body, status=400)
    await record_view(request.app[LEDGER], caller, "oversight", query_filters(query))
    log = request.app[OVERSIGHT]
    if query.base.format == "json":
        page = await log.page(query)
        cursor = None if page.next_cursor is None else str(page.next_cursor)
        actions = [OversightActionView(**action.as_dict()) for action in page.actions]
        view = OversightPage(actions=actions, next_cursor=cursor)
        return web.json_response(answer(view), headers={"Cache-Control": "no-store"})
    name = csv_filename(request.app[SETTINGS].node.name, datetime.now(UTC), "oversight")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": attachment(name),
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    await response.write(csv_lines([COLUMNS]).encode())
    async for chunk in log.export(query):
        rows = [
            [a.id, a.at, a.actor, a.view, a.filters_text(), a.node, a.ledger_index] for a in chunk
        ]
        await response.write(csv_lines(rows).encode())
    await response.write_eof()
    return response
