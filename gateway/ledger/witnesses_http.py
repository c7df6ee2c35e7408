"""The log's witnesses over HTTP: finality and witness status, the final checkpoint, gauges.

Every gateway process answers (the status rows are shared in the database);
only the sequencing process knows the co-signing latency it measured.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.app_keys import LEDGER, SETTINGS, WITNESSING
from gateway.auth.watchers import may_watch
from gateway.errors import NotFound
from gateway.http.auth import optional_identity
from gateway.http.openapi import error_responses, json_answer
from gateway.ledger.answers import WitnessesView
from gateway.ledger.cosignatures import (
    CosignatureStore,
    Finality,
    WitnessKey,
    cosigned_note,
    finality,
)
from gateway.ledger.witnessing import witness_keys as ledger_witness_keys

routes = web.RouteTableDef()
API = "/api/v1/ledger"
Gauge = tuple[str, str, Mapping[str, str], float]
"""(metric name, help text, labels, value)."""


def witness_keys(app: web.Application) -> tuple[list[WitnessKey], int]:
    """The witnesses and quorum of this node (:func:`gateway.ledger.witnessing.witness_keys`)."""
    return ledger_witness_keys(app.get(WITNESSING), app[SETTINGS])


async def current_finality(app: web.Application) -> Finality:
    """Finality of the latest checkpoint and every witness's status."""
    keys, quorum = witness_keys(app)
    latest = await app[LEDGER].latest()
    return await finality(keys, quorum, latest.size, CosignatureStore())


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@routes.get(API + "/witnesses")
async def witnesses(request: web.Request) -> web.Response:
    """Quorum, final size, each witness's size and lag; latency on the sequencer.

    Each witness's address and last error text (host names, ports, connection errors:
    the site's infrastructure) go only to who may watch the node; anyone else gets
    ``null`` for both, which is all a log verifier needs.
    """
    watching = may_watch(optional_identity(request))
    state = await current_finality(request.app)
    witnessing = request.app.get(WITNESSING)
    latency = None
    if witnessing is not None and witnessing.ledger.is_leader:
        latency = witnessing.latency.summary()
    body: dict[str, Any] = {
        "quorum": state.quorum,
        "latest_size": state.latest_size,
        "final_size": state.final_size,
        "final_lag": state.lag,
        "witnesses": [
            {
                "name": w.name,
                "url": w.url if watching else None,
                "size": w.size,
                "lag": w.lag,
                "last_error": w.last_error if watching else None,
                "last_attempt_at": _when(w.last_attempt_at),
                "last_success_at": _when(w.last_success_at),
            }
            for w in state.witnesses
        ],
        "cosigning_latency": latency,
    }
    return web.json_response(body)


@routes.get(API + "/final-checkpoint")
async def final_checkpoint(request: web.Request) -> web.Response:
    """The newest checkpoint a quorum of witnesses cosigned, with their cosignatures."""
    keys, quorum = witness_keys(request.app)
    store = CosignatureStore()
    signers = [k.signer for k in keys]
    size = await store.final_size(signers, quorum)
    stored = None if size is None else await request.app[LEDGER].store.checkpoint(size)
    if size is None or stored is None:
        raise NotFound("no checkpoint has been cosigned by a quorum of witnesses yet")
    note = cosigned_note(stored.note, await store.lines(size, signers))
    return web.Response(
        text=note,
        content_type="text/plain",
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "X-Root": base64.b64encode(stored.root).decode()},
    )


async def witness_gauges(app: web.Application) -> list[Gauge]:
    """Gauges for ``/metrics``: finality, and size, lag and health per witness."""
    keys, _ = witness_keys(app)
    if not keys:
        return []
    state = await current_finality(app)
    final = state.final_size or 0
    gauges: list[Gauge] = [
        (
            "sekisho_ledger_witness_quorum",
            "Cosignatures making a checkpoint final.",
            {},
            state.quorum,
        ),
        ("sekisho_ledger_final_size", "Entries in the last final checkpoint.", {}, final),
        (
            "sekisho_ledger_final_lag_entries",
            "Entries not yet in a final checkpoint.",
            {},
            state.lag,
        ),
    ]
    per_witness = (
        ("sekisho_ledger_witness_size", "Tree size each witness last cosigned.", "size"),
        ("sekisho_ledger_witness_lag_entries", "Entries each witness is behind.", "lag"),
        ("sekisho_ledger_witness_up", "1 when the witness's last answer was a cosignature.", "up"),
    )
    for name, help_text, field in per_witness:
        for w in state.witnesses:
            value = getattr(w, field) if field != "up" else int(w.last_error is None)
            gauges.append((name, help_text, {"witness": w.name}, value))
    witnessing = app.get(WITNESSING)
    if witnessing is not None and witnessing.ledger.is_leader and witnessing.latency.last:
        summary = witnessing.latency.summary()
        gauges.append(
            (
                "sekisho_ledger_cosign_latency_seconds",
                "Last time from sequencing to a final checkpoint (this sequencer).",
                {},
                summary["last_ms"] / 1000,
            )
        )
    return gauges


PATHS: dict[str, Any] = {
    API + "/witnesses": {
        "get": {
            "summary": "Finality (k-of-n witness quorum) and each witness's size and lag; its "
            "address and last error for admins, auditors and metrics clients",
            "security": [],
            "responses": {
                "200": json_answer(WitnessesView),
                **error_responses(401, 503),
            },
        }
    },
    API + "/final-checkpoint": {
        "get": {
            "summary": "The newest checkpoint a quorum of witnesses cosigned, with cosignatures",
            "security": [],
            "responses": {
                "200": {
                    "description": "signed note (c2sp.org/tlog-checkpoint) with cosignature lines",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                **error_responses(404, 503),
            },
        }
    },
}
