"""Officers' custody pages: a chain as a timeline with its rule, and per rule the items
stuck or out of rule; CSV and JSON exports (the JSON is what ``sekisho custody verify`` reads).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from urllib.parse import urlencode

from aiohttp import web

from gateway.app_keys import CUSTODY, LEDGER, SIGNING
from gateway.custody.export import ChainView, chain_view, export_chain, timeline
from gateway.custody.items import rule_items
from gateway.errors import BadRequest
from gateway.http.headers import attachment
from gateway.oversight.record import record_view
from gateway.signing.anchors import check_owner, check_subject
from gateway.trail.export import csv_cell
from web.portal.officer import overseer
from web.portal.render import page
from web.portal.security import secure_headers

routes = web.RouteTableDef()
COLUMNS = ["at", "what", "sequence", "state", "party", "detail", "record"]


async def _chain(request: web.Request, view_name: str) -> ChainView:
    viewer = overseer(request)
    owner = check_owner(request.query.get("owner", "").strip() or None)
    if owner is None:
        raise BadRequest("give the API client that owns the chain", code="bad_owner")
    subject = check_subject(request.query.get("subject", "").strip())
    await record_view(request.app[LEDGER], viewer.identity, view_name, {"owner": owner})
    return await chain_view(request.app[SIGNING].anchors, owner, subject, datetime.now(UTC))


@routes.get("/officer/custody")
async def index(request: web.Request) -> web.Response:
    """Find a chain; the rules, each with its items page."""
    viewer = overseer(request)
    await record_view(request.app[LEDGER], viewer.identity, "custody", {})
    context = {"title": "Custody", "rules": await request.app[CUSTODY].latest_rules()}
    return page(request, "custody.html", context)


@routes.get("/officer/custody/chain")
async def chain(request: web.Request) -> web.Response:
    """One chain: its rule, state, holder, pending hand-overs, alerts and timeline."""
    view = await _chain(request, "custody-chain")
    query = urlencode({"owner": view.owner, "subject": view.subject})
    context = {
        "title": f"Custody of {view.subject}",
        "view": view,
        "events": timeline(view),
        "exports": {
            "csv": f"/officer/custody/chain.csv?{query}",
            "json": f"/officer/custody/chain.json?{query}",
        },
    }
    return page(request, "custody_chain.html", context)


def _attachment(request: web.Request, body: str, media_type: str, name: str) -> web.Response:
    response = web.Response(
        text=body,
        content_type=media_type,
        charset="utf-8",
        headers={"Content-Disposition": attachment(name)},
    )
    secure_headers(request, response.headers)
    return response


@routes.get("/officer/custody/chain.csv")
async def chain_csv(request: web.Request) -> web.Response:
    """The chain's timeline as CSV."""
    view = await _chain(request, "custody-chain.export")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    for row in timeline(view):
        writer.writerow({k: csv_cell(row.get(k, "")) for k in COLUMNS})
    return _attachment(request, out.getvalue(), "text/csv", "custody-chain.csv")


@routes.get("/officer/custody/chain.json")
async def chain_json(request: web.Request) -> web.Response:
    """The chain export, for ``sekisho custody verify``."""
    view = await _chain(request, "custody-chain.export")
    export = await export_chain(request.app[LEDGER], view)
    return _attachment(
        request, json.dumps(export, indent=1), "application/json", "custody-chain.json"
    )


@routes.get("/officer/custody/rules/{name}")
async def rule(request: web.Request) -> web.Response:
    """A rule's newest version and the items stuck or out of rule."""
    viewer = overseer(request)
    name = request.match_info["name"]
    versions = await request.app[CUSTODY].rule_versions(name)
    await record_view(request.app[LEDGER], viewer.identity, "custody-rule", {"rule": name})
    context = {
        "title": f"Custody rule {name}",
        "rule": versions[-1],
        "versions": versions,
        "items": await rule_items(name, datetime.now(UTC)),
        "document": json.dumps(versions[-1].row.document, indent=2),
    }
    return page(request, "custody_rule.html", context)
