"""``/healthz`` (the process is up) and ``/readyz`` (database, token and signing answer).

Both answer anyone: a load balancer needs only the status code (200 ready, 503
not) and may see which checks fail. What a check found (error texts, token
labels and module paths, which keys a token holds, the auditor's finding) goes
only to a credential that may watch the node, as request and process metrics
do (:func:`gateway.auth.watchers.may_watch`): anyone else gets each check's
``ok`` alone.
"""

from __future__ import annotations

from aiohttp import web

from gateway.app_keys import AUDITOR, DOCUMENTS, LEDGER, SETTINGS, TOKEN
from gateway.auth.watchers import may_watch
from gateway.db.setup import database_ready
from gateway.documents.blob_backends import blob_store_problem
from gateway.http.auth import optional_identity
from gateway.node_token import token_uses
from hsm import HsmError, Token

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Readiness: the database answers, the token signs, the blob store is reachable.

    Each check's details only for a caller who may watch the node; ``ok`` for anyone.
    """
    checks = await _checks(request)
    ready = all(bool(check["ok"]) for check in checks.values())
    if not may_watch(optional_identity(request)):
        checks = {name: {"ok": bool(check["ok"])} for name, check in checks.items()}
    return web.json_response(
        {"ready": ready, "checks": checks},
        status=200 if ready else 503,
        headers={"Cache-Control": "no-store"},  # the body depends on who asks
    )


async def _checks(request: web.Request) -> dict[str, dict[str, object]]:
    """Every check, with what it found."""
    checks: dict[str, dict[str, object]] = {}
    db_ok = await database_ready()
    checks["database"] = {"ok": db_ok} if db_ok else {"ok": False, "error": "no answer to SELECT 1"}
    try:
        await request.app[TOKEN].self_test(request.app[SETTINGS].keys.ledger)
        checks["token"] = {"ok": True}
    except HsmError as exc:
        checks["token"] = {"ok": False, "error": exc.message}
    token = request.app[TOKEN]
    if len(token.members()) > 1:  # keys on several tokens: each one's state and keys
        checks["tokens"] = await _each_token(token)
    documents = request.app.get(DOCUMENTS)
    if documents is not None:
        problem = await blob_store_problem(documents.context.blobs)
        checks["blobs"] = {"ok": True} if problem is None else {"ok": False, "error": problem}
    ledger = request.app.get(LEDGER)
    if ledger is not None:  # a rolled-back or forked ledger halts writes: the node is not ready
        rollback = ledger.rollback
        checks["ledger_history"] = (
            {"ok": True}
            if rollback is None
            else {
                "ok": False,
                "error": f"ledger rolled back or forked: {rollback}",
            }
        )
    auditor = request.app.get(AUDITOR)
    if auditor is not None:  # reports tampering; never makes the node unready (docs/decisions.md)
        checks["ledger"] = auditor.status.as_check()
    return checks


async def _each_token(token: Token) -> dict[str, object]:
    """Ping every token; one that is gone fails only the functions whose keys it holds."""
    states: list[dict[str, object]] = []
    for member in token.members():
        state: dict[str, object] = {"token": member.config.describe()}
        state["keys"] = token_uses(token, member)
        try:
            await member.ping()
            state["ok"] = True
        except HsmError as exc:
            state.update(ok=False, error=exc.message)
        states.append(state)
    failed = [s for s in states if not s["ok"]]
    result: dict[str, object] = {"ok": not failed, "tokens": states}
    if failed:
        result["error"] = "; ".join(str(s["error"]) for s in failed)
    return result
