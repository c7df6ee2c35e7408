"""Anchorings over HTTP: the list with each re-check, the TSA replies (DER), anchoring on demand.

Anchorings are public like checkpoints (a TSA token says nothing but a hash and a
time); asking for one now is for officers and admins.
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from gateway.anchoring.answers import AnchorList, AnchorResults
from gateway.anchoring.checks import AnchorCheck
from gateway.anchoring.models import AnchorRow
from gateway.anchoring.report import current_checks
from gateway.anchoring.service import AnchorOutcome
from gateway.app_keys import ANCHORING, LEDGER
from gateway.errors import NotFound
from gateway.http.auth import identity
from gateway.http.headers import attachment
from gateway.http.models import answer
from gateway.http.openapi import error_responses, json_answer
from gateway.http.params import path_int

routes = web.RouteTableDef()
API = "/api/v1/ledger/anchors"
REPLY_TYPE = "application/timestamp-reply"


def check_json(check: AnchorCheck) -> dict[str, Any]:
    """One anchoring as the API shows it."""
    return {
        "id": check.id,
        "size": check.size,
        "root": base64.b64encode(check.root).decode(),
        "tsa": check.tsa,
        "gen_time": check.gen_time.isoformat(),
        "token_sha256": check.token_sha256,
        "token_verifies": check.token_ok,
        "token_problem": check.token_problem,
        "tree_consistent": check.tree_ok,
        "tree_problem": check.tree_problem,
        "reply": f"{API}/{check.id}/reply",
        "checkpoint": f"{API}/{check.id}/checkpoint",
    }


def outcome_json(outcome: AnchorOutcome) -> dict[str, Any]:
    """What one TSA did with the newest checkpoint."""
    return {
        "tsa": outcome.tsa,
        "state": outcome.state,
        "size": outcome.size,
        "root": base64.b64encode(outcome.root).decode(),
        "gen_time": outcome.gen_time.isoformat() if outcome.gen_time else None,
        "token_sha256": outcome.token_sha256 or None,
        "error": outcome.error or None,
    }


async def _row(request: web.Request) -> AnchorRow:
    anchor_id = path_int(request.match_info, "id", canonical=True)
    row = await AnchorRow.get_or_none(id=anchor_id)
    if row is None:
        raise NotFound(f"no anchoring {anchor_id}")
    return row


@routes.get(API)
async def anchors(request: web.Request) -> web.Response:
    """The newest anchorings, each with whether its token and its checkpoint still hold."""
    checks = await current_checks(request.app[LEDGER], request.app[ANCHORING])
    tsas = [t.name for t in request.app[ANCHORING].tsas]
    view = AnchorList.model_validate({"tsas": tsas, "anchors": [check_json(c) for c in checks]})
    return web.json_response(answer(view))


@routes.post(API)
async def anchor_now(request: web.Request) -> web.Response:
    """Anchor the newest checkpoint at every configured TSA now (officers and admins)."""
    caller = identity(request)
    caller.require_role("officer", "admin")
    outcomes = await request.app[ANCHORING].anchor_now(actor=caller.actor)
    view = AnchorResults.model_validate({"results": [outcome_json(o) for o in outcomes]})
    return web.json_response(answer(view))


@routes.get(API + "/{id}/reply")
async def reply(request: web.Request) -> web.Response:
    """The TSA's DER TimeStampResp, for ``openssl ts -verify -in``."""
    row = await _row(request)
    return web.Response(
        body=bytes(row.reply),
        content_type=REPLY_TYPE,
        headers={"Content-Disposition": attachment(f"anchor-{row.id}.tsr")},
    )


@routes.get(API + "/{id}/checkpoint")
async def checkpoint(request: web.Request) -> web.Response:
    """The signed checkpoint note the TSA timestamped (``openssl ts -verify -data``)."""
    row = await _row(request)
    return web.Response(text=row.note, content_type="text/plain", charset="utf-8")


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}
PATHS: dict[str, Any] = {
    API: {
        "get": {
            "summary": "Anchorings of the log at external RFC 3161 TSAs, each re-checked",
            "security": [],
            "responses": {
                "200": json_answer(AnchorList),
                **error_responses(503),
            },
        },
        "post": {
            "summary": "Anchor the newest checkpoint at every configured TSA now",
            "description": "Officers and admins. Each TSA's result: anchored, already "
            "(that TSA anchored this checkpoint before) or failed (with the error).",
            "responses": {
                "200": json_answer(AnchorResults, description="one result per configured TSA"),
                **error_responses(401, 403, 409, 503),
            },
        },
    },
    API + "/{id}/reply": {
        "get": {
            "summary": "The TSA's DER TimeStampResp (check it with openssl ts -verify)",
            "security": [],
            "parameters": [_ID],
            "responses": {
                "200": {
                    "description": "RFC 3161 TimeStampResp",
                    "content": {REPLY_TYPE: {"schema": {"type": "string", "format": "binary"}}},
                },
                **error_responses(400, 404),
            },
        }
    },
    API + "/{id}/checkpoint": {
        "get": {
            "summary": "The signed checkpoint note that was timestamped",
            "security": [],
            "parameters": [_ID],
            "responses": {
                "200": {
                    "description": "signed note (c2sp.org/tlog-checkpoint)",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                **error_responses(400, 404),
            },
        }
    },
}
