"""HTTP handlers for custody rules, two-party hand-overs and chain views/exports."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gateway.app_keys import CUSTODY, LEDGER, SIGNING
from gateway.auth.identity import Identity
from gateway.custody.answers import (
    ChainExport,
    HandoverList,
    HandoverView,
    RuleItems,
    RuleList,
    RuleVersions,
    StoredRule,
)
from gateway.custody.export import chain_view, export_chain, handover_view, rule_view, timeline
from gateway.custody.handovers import handover_request
from gateway.custody.items import rule_items
from gateway.custody.rules import parse_rule
from gateway.custody.store import add_rule, latest_rules, rule_versions
from gateway.errors import NotFound
from gateway.http import bodies
from gateway.http.auth import identity
from gateway.http.headers import attachment
from gateway.http.models import ResponseModel, answer
from gateway.oversight.record import record_view
from gateway.signing.anchors import check_owner, check_subject, link_view, may_use_chains
from gateway.signing.http import client
from gateway.signing.models import AnchorRecord
from gateway.signing.requests import InputError
from gateway.trail.export import csv_cell

API = "/api/v1/custody"
MAX_RULE_BYTES = 64 * 1024
RULE_MANAGERS = ("admin", "officer")
CHAIN_READERS = ("officer", "auditor", "admin")
TOML = "application/toml"

routes = web.RouteTableDef()


@routes.post(API + "/rules")
async def add(request: web.Request) -> web.Response:
    """Store a new version of a rule (JSON, or TOML with ``Content-Type: application/toml``)."""
    caller = identity(request)
    caller.require_role(*RULE_MANAGERS)
    toml = request.content_type == TOML
    data = await bodies.read_body(request, TOML if toml else "application/json", MAX_RULE_BYTES)
    rule = parse_rule(data, toml=toml)
    version = await add_rule(rule, ledger=request.app[LEDGER], actor=caller.actor, source="api")
    return _send(StoredRule, rule_view(version), status=201)


@routes.get(API + "/rules")
async def listing(request: web.Request) -> web.Response:
    """The newest version of every rule."""
    identity(request).require_role(*CHAIN_READERS)
    return _send(RuleList, {"rules": [rule_view(v) for v in await latest_rules()]})


@routes.get(API + "/rules/{name}")
async def show(request: web.Request) -> web.Response:
    """Every version of one rule, oldest first."""
    identity(request).require_role(*CHAIN_READERS)
    versions = await rule_versions(request.match_info["name"])
    return _send(RuleVersions, {"versions": [rule_view(v) for v in versions]})


@routes.get(API + "/rules/{name}/items")
async def items(request: web.Request) -> web.Response:
    """Chains under a rule that are stuck (overdue) or out of rule."""
    caller = identity(request)
    caller.require_role(*CHAIN_READERS)
    name = request.match_info["name"]
    await rule_versions(name)  # 404 for an unknown rule
    await record_view(request.app[LEDGER], caller, "custody-rule", {"rule": name})
    found = await rule_items(name, datetime.now(UTC))
    return _send(RuleItems, {"rule": name, "items": found})


@routes.post(API + "/handovers")
async def open_handover(request: web.Request) -> web.Response:
    """Open a two-party hand-over for the next link of a chain."""
    caller = client(request, "anchor")
    new = handover_request(await bodies.read_json(request))
    row = await request.app[CUSTODY].handovers.open(caller, new)
    return _send(HandoverView, handover_view(row), status=201)


@routes.get(API + "/handovers")
async def pending(request: web.Request) -> web.Response:
    """Pending hand-overs the caller is a party to or writes the chain of."""
    caller = client(request, "anchor")
    rows = await request.app[CUSTODY].handovers.pending(caller)
    return _send(HandoverList, {"handovers": [handover_view(row) for row in rows]})


@routes.get(API + "/handovers/{handover}")
async def get_handover(request: web.Request) -> web.Response:
    """One hand-over (404 unless the caller is a party or a chain writer)."""
    caller = client(request, "anchor")
    row = await request.app[CUSTODY].handovers.get(caller, request.match_info["handover"])
    return _send(HandoverView, handover_view(row))


@routes.post(API + "/handovers/{handover}/signatures")
async def sign_handover(request: web.Request) -> web.Response:
    """Add the caller's signature; the link is anchored once both parties' verify."""
    caller = client(request, "anchor")
    service = request.app[CUSTODY].handovers
    await service.get(caller, request.match_info["handover"])  # 404 before reading the body
    body = await bodies.read_json(request)
    row = await service.sign(caller, request.match_info["handover"], body)
    view = handover_view(row)
    if row.record is not None:
        link = await request.app[SIGNING].anchors.new_link(await _record(row.record))
        view["link"] = link_view(link)
    return _send(HandoverView, view)


async def _record(record_id: Any) -> AnchorRecord:
    return await AnchorRecord.get(id=record_id)


async def _chain_reader(request: web.Request) -> tuple[Identity, str, str]:
    """(caller, owner, subject): an officer naming an owner, or a party to the chain."""
    caller = identity(request)
    subject = check_subject(request.query.get("subject"))
    owner = check_owner(request.query.get("owner"))
    if caller.is_person:
        caller.require_role(*CHAIN_READERS)
        if owner is None:
            raise InputError("'owner' names the client whose chain to show", code="bad_owner")
        await record_view(request.app[LEDGER], caller, "custody-chain", {"owner": owner})
        return caller, owner, subject
    caller = client(request, "anchor")
    owner = owner or caller.name
    if not await may_use_chains(caller, owner):
        raise NotFound("no such chain", code="no_such_chain")
    return caller, owner, subject


@routes.get(API + "/chains")
async def chain(request: web.Request) -> web.StreamResponse:
    """A chain with its rule, state, holder, hand-overs and alerts: JSON export or CSV."""
    _, owner, subject = await _chain_reader(request)
    view = await chain_view(request.app[SIGNING].anchors, owner, subject, datetime.now(UTC))
    if request.query.get("format", "json") == "csv":
        return _csv(timeline(view), "custody-chain.csv")
    if request.query.get("format", "json") != "json":
        raise InputError("'format' is json or csv", code="bad_parameter")
    export = await export_chain(request.app[LEDGER], view)
    export["rule"] = view.rule
    export["overdue"] = view.overdue
    return _send(ChainExport, export, headers={"Cache-Control": "no-store"})


def _send(model: type[ResponseModel], data: dict[str, Any], **kwargs: Any) -> web.Response:
    """``data`` checked by and sent as ``model`` (what OpenAPI says the answer is)."""
    return web.json_response(answer(model.model_validate(data)), **kwargs)


def _csv(rows: list[dict[str, Any]], name: str) -> web.Response:
    out = io.StringIO()
    fields = ["at", "what", "sequence", "state", "party", "detail", "record"]
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(row.get(k, "")) for k in fields})
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": attachment(name)},
    )
