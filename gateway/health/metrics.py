"""``/metrics``: ledger gauges read at each scrape, beside request and process metrics.

The ledger's gauges (its size, queue, sequencer, rollback, audit and witness
state) are for anyone, as its checkpoints are. Request and process metrics
count requests by route and status over time, granted and refused reads and
downloads among them: they go only to a credential that may watch the node, an
API client with the ``metrics`` scope (what Prometheus scrapes with) or an
admin or auditor.
"""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.app_keys import AUDITOR, LEDGER
from gateway.auth.watchers import may_watch
from gateway.health.prometheus import METRICS, Sample, metrics_response
from gateway.http.auth import optional_identity
from gateway.ledger.witnesses_http import witness_gauges

log = logging.getLogger("sekisho.http")
routes = web.RouteTableDef()


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Ledger size, queue, sequencer role, audit result and witnesses; requests; process."""
    gauges: list[Sample] = []
    ledger = request.app.get(LEDGER)
    if ledger is not None:
        try:
            latest = await ledger.store.latest_checkpoint()
            pending = await ledger.store.pending_count()
        except Exception as exc:  # the store is down: leave its gauges out, keep the rest
            log.warning("metrics: the ledger store did not answer: %s", exc)
        else:
            gauges.append(
                (
                    "sekisho_ledger_tree_size",
                    "Entries in the latest signed checkpoint.",
                    {},
                    latest.size if latest else 0,
                )
            )
            gauges.append(
                (
                    "sekisho_ledger_pending_entries",
                    "Entries queued, not yet integrated.",
                    {},
                    pending,
                )
            )
        gauges.append(
            (
                "sekisho_ledger_is_sequencer",
                "1 while this process sequences the log.",
                {},
                int(ledger.is_leader),
            )
        )
        gauges.append(
            (
                "sekisho_ledger_rolled_back",
                "1 while the database ledger contradicts the token's checkpoint or a witness.",
                {},
                int(ledger.rollback is not None),
            )
        )
    auditor = request.app.get(AUDITOR)
    if auditor is not None:
        status = auditor.status
        gauges.append(
            (
                "sekisho_ledger_audit_ok",
                "0 while the auditor holds a tamper finding, else 1.",
                {},
                int(status.ok),
            )
        )
        gauges.append(
            (
                "sekisho_ledger_audit_verified_size",
                "Entries verified up to the last clean checkpoint.",
                {},
                status.verified_size,
            )
        )
        gauges.append(
            (
                "sekisho_ledger_audit_finding_index",
                "Entry index of the held finding, -1 when none.",
                {},
                status.finding.index if status.finding else -1,
            )
        )
        if status.last_audit is not None:
            gauges.append(
                (
                    "sekisho_ledger_audit_last_run_timestamp_seconds",
                    "Unix time the last audit finished.",
                    {},
                    status.last_audit.timestamp(),
                )
            )
    try:
        gauges.extend(await witness_gauges(request.app))
    except Exception as exc:  # the store is down: leave the witness gauges out
        log.warning("metrics: witness status unavailable: %s", exc)
    watching = may_watch(optional_identity(request))
    return metrics_response(request.app[METRICS], gauges, with_requests=watching)
