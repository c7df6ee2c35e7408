"""Security officers' pages: the access trail (filters, pages, CSV and JSON), alerts, activity.

Auditors read these pages too (:func:`overseer`); actions stay with officers (:func:`officer`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from aiohttp import web

from gateway.app_keys import AUDITOR, DOCUMENTS, LEDGER, SETTINGS, TRAIL
from gateway.documents.titles import readable_titles
from gateway.http.headers import attachment
from gateway.oversight import alerts
from gateway.oversight.activity import SPANS, activity
from gateway.oversight.record import record_view, trail_filters
from gateway.trail.export import csv_filename, csv_header, csv_rows
from gateway.trail.query import OUTCOMES, TrailQuery, TrailQueryError, parse_query
from gateway.trail.service import TrailService
from web.portal.app_keys import Viewer
from web.portal.chart import build_chart
from web.portal.render import page
from web.portal.security import secure_headers, viewer_of

routes = web.RouteTableDef()
FILTERS = ("person", "document", "outcome", "action", "from", "to")
_LOCAL_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?")
ALERT_PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
OVERSIGHT_ROLES = ("officer", "auditor", "admin")
"""Who may read the trail, alerts, activity and the ledger page (auditors read only)."""


def officer(request: web.Request) -> Viewer:
    """The signed-in officer (403 for anyone else)."""
    viewer = viewer_of(request)
    viewer.identity.require_role("officer", "admin")
    return viewer


def overseer(request: web.Request) -> Viewer:
    """The signed-in officer, auditor or admin (403 for anyone else): read-only pages."""
    viewer = viewer_of(request)
    viewer.identity.require_role(*OVERSIGHT_ROLES)
    return viewer


def _filters(request: web.Request) -> dict[str, str]:
    """The non-empty filters from the form, as typed."""
    return {name: request.query.get(name, "").strip() for name in FILTERS}


def query_pairs(filters: dict[str, str], **extra: str) -> list[tuple[str, str]]:
    """Filters as trail query parameters; form times (UTC) become RFC 3339."""
    pairs: list[tuple[str, str]] = []
    for name, value in filters.items():
        if not value:
            continue
        if name in ("from", "to") and _LOCAL_TIME.fullmatch(value):
            value = value + (":00Z" if value.count(":") == 1 else "Z")
        pairs.append((name, value))
    return pairs + [(k, v) for k, v in extra.items() if v]


def _trail(request: web.Request) -> TrailService:
    return request.app[TRAIL]


@routes.get("/officer/trail")
async def trail(request: web.Request) -> web.Response:
    """Filtered access decisions, newest first, 50 a page."""
    viewer = overseer(request)
    filters = _filters(request)
    cursor = request.query.get("cursor", "")
    context: dict[str, object] = {
        "title": "Access trail",
        "filters": filters,
        "outcomes": OUTCOMES,
        "events": [],
        "titles": {},
        "error": "",
        "next": None,
        "exports": None,
        "first_page": not cursor,
        "newest": "/officer/trail?" + urlencode({k: v for k, v in filters.items() if v}),
    }
    try:
        query = parse_query(query_pairs(filters, limit="50", cursor=cursor))
    except TrailQueryError as exc:
        context["error"] = exc.message
        return page(request, "trail.html", context, status=400)
    await record_view(request.app[LEDGER], viewer.identity, "trail", trail_filters(query))
    result = await _trail(request).page(query)
    kept = {k: v for k, v in filters.items() if v}
    context["events"] = result.events
    pdp = request.app[DOCUMENTS].context.pdp
    ids = (event.document_id for event in result.events)
    context["titles"] = await readable_titles(pdp, viewer_of(request).identity, ids)
    if result.next_cursor is not None:
        context["next"] = "/officer/trail?" + urlencode({**kept, "cursor": result.next_cursor})
    context["newest"] = "/officer/trail?" + urlencode(kept)
    context["exports"] = {
        "csv": "/officer/trail.csv?" + urlencode(kept),
        "json": "/officer/trail.json?" + urlencode(kept),
    }
    return page(request, "trail.html", context)


def _export_query(request: web.Request) -> TrailQuery:
    """Every event matching the filters (a bad filter is a 400 page)."""
    return parse_query(query_pairs(_filters(request)))


@routes.get("/officer/trail.csv")
async def trail_csv(request: web.Request) -> web.StreamResponse:
    """Every matching decision as CSV."""
    viewer = overseer(request)
    query = _export_query(request)
    await record_view(
        request.app[LEDGER], viewer.identity, "trail.export", trail_filters(query) | {"as": "csv"}
    )
    name = csv_filename(request.app[SETTINGS].node.name, datetime.now(UTC))
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": attachment(name),
        }
    )
    secure_headers(request, response.headers)
    await response.prepare(request)
    await response.write(csv_header().encode())
    async for chunk in _trail(request).export(query):
        await response.write(csv_rows(chunk).encode())
    await response.write_eof()
    return response


@routes.get("/officer/trail.json")
async def trail_json(request: web.Request) -> web.StreamResponse:
    """Every matching decision as one JSON document ``{"events": [...]}``."""
    viewer = overseer(request)
    query = _export_query(request)
    await record_view(
        request.app[LEDGER], viewer.identity, "trail.export", trail_filters(query) | {"as": "json"}
    )
    name = csv_filename(request.app[SETTINGS].node.name, datetime.now(UTC))[:-4] + ".json"
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Content-Disposition": attachment(name),
        }
    )
    secure_headers(request, response.headers)
    await response.prepare(request)
    await response.write(b'{"events":[')
    separator = b""
    async for chunk in _trail(request).export(query):
        for event in chunk:
            await response.write(separator + json.dumps(event.as_dict()).encode())
            separator = b","
    await response.write(b"]}\n")
    await response.write_eof()
    return response


@routes.get("/officer/alerts")
async def alerts_page(request: web.Request) -> web.Response:
    """Repeated denials, failed sign-ins, lock-outs and tamper findings."""
    viewer = overseer(request)
    period = request.query.get("period", "24h")
    if period not in ALERT_PERIODS:
        period = "24h"
    await record_view(request.app[LEDGER], viewer.identity, "alerts", {"period": period})
    now = datetime.now(UTC)
    auditor = request.app.get(AUDITOR)
    found = await alerts.collect(
        request.app[LEDGER],
        auditor.status if auditor is not None else None,
        since=now - ALERT_PERIODS[period],
        now=now,
    )
    context = {"title": "Alerts", "alerts": found, "period": period, "periods": ALERT_PERIODS}
    return page(request, "alerts.html", context)


@routes.get("/officer/activity")
async def activity_page(request: web.Request) -> web.Response:
    """Granted and denied decisions over time, as a bar chart."""
    viewer = overseer(request)
    span_name = request.query.get("span", "24h")
    span = SPANS.get(span_name) or SPANS["24h"]
    span_name = span_name if span_name in SPANS else "24h"
    await record_view(request.app[LEDGER], viewer.identity, "activity", {"span": span_name})
    buckets = await activity(span)
    label_format = "%H:%M" if span.step < timedelta(days=1) else "%d %b"
    if span.step >= timedelta(hours=6) and span.step < timedelta(days=1):
        label_format = "%d %b %H:%M"
    context = {
        "title": "Activity",
        "chart": build_chart(buckets, label_format),
        "span": span,
        "span_name": span_name,
        "spans": SPANS,
        "buckets": buckets,
        "label_format": label_format,
    }
    return page(request, "activity.html", context)
