"""``GET /api/v1/trail``: the access trail for security officers and auditors (JSON or CSV)."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from gateway.app_keys import LEDGER, SETTINGS, TRAIL
from gateway.http.auth import identity
from gateway.http.headers import attachment
from gateway.http.models import answer
from gateway.oversight.record import record_view, trail_filters
from gateway.trail.answers import TrailEventView, TrailPage
from gateway.trail.export import csv_filename, csv_header, csv_rows
from gateway.trail.openapi import PATH
from gateway.trail.query import TrailQueryError, parse_query

routes = web.RouteTableDef()


@routes.get(PATH)
async def trail(request: web.Request) -> web.StreamResponse:
    """Filtered access decisions, newest first."""
    caller = identity(request)
    caller.require_role("officer", "auditor", "admin")
    try:
        query = parse_query(request.query.items())
    except TrailQueryError as exc:
        body = {"error": exc.code, "message": exc.message, "parameter": exc.parameter}
        return web.json_response(body, status=400)
    await record_view(request.app[LEDGER], caller, "trail", trail_filters(query))
    service = request.app[TRAIL]
    if query.format == "json":
        page = await service.page(query)
        cursor = None if page.next_cursor is None else str(page.next_cursor)
        events = [TrailEventView(**event.as_dict()) for event in page.events]
        view = TrailPage(events=events, next_cursor=cursor)
        return web.json_response(answer(view), headers={"Cache-Control": "no-store"})
    name = csv_filename(request.app[SETTINGS].node.name, datetime.now(UTC))
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": attachment(name),
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    await response.write(csv_header().encode())
    async for chunk in service.export(query):
        await response.write(csv_rows(chunk).encode())
    await response.write_eof()
    return response
