"""What a witness shows its operators: logs, cosigned sizes, mirrors, evidence, the alarm."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gateway.tlog.witness_protocol import origin_hash
from gateway.witness.models import Evidence, WitnessedLog
from gateway.witness.runner import TOKEN_ENV as MIRROR_TOKEN_ENV
from gateway.witness.store import WitnessStore

__all__ = ["EVIDENCE_SHOWN", "Sample", "metric_samples", "witness_status"]

EVIDENCE_SHOWN = 20
Sample = tuple[str, str, Mapping[str, str], float]
"""(metric name, help text, labels, value)."""


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def mirror_path(origin: str) -> str:
    """Where a mirrored log's tlog-tiles resources are served (``<path>checkpoint``...)."""
    return f"/mirror/{origin_hash(origin)}/ledger/"


def _credential(row: WitnessedLog) -> str:
    """Where the mirror's token comes from (never the token, nor the file's path)."""
    if row.token_file:
        return "token_file"
    return "environment" if os.environ.get(MIRROR_TOKEN_ENV) else "none"


def _log_view(row: WitnessedLog) -> dict[str, Any]:
    view: dict[str, Any] = {
        "origin": row.origin,
        "origin_hash": origin_hash(row.origin),
        "vkey": row.vkey,
        "size": row.size,
        "root": base64.b64encode(bytes(row.root)).decode(),
        "cosigned_at": _when(row.cosigned_at),
        "url": row.url or None,
    }
    if row.mirror:
        view["mirror"] = {
            "size": row.mirror_size,
            "path": mirror_path(row.origin),
            "error": row.mirror_error,
            "halted": row.mirror_halted,
            "synced_at": _when(row.mirror_synced_at),
            "credential": _credential(row),
        }
    return view


def _evidence_view(row: Evidence) -> dict[str, Any]:
    return {
        "id": row.id,
        "origin": row.origin,
        "kind": row.kind,
        "alarm": row.alarm,
        "detail": row.detail,
        "held_size": row.held_size,
        "held_checkpoint": row.held_note,
        "presented_old_size": row.presented_old_size,
        "presented_checkpoint": row.presented_note,
        "presented_proof": row.presented_proof.split("\n")[:-1] if row.presented_proof else [],
        "at": _when(row.created_at),
    }


async def witness_status(store: WitnessStore, name: str, vkey: str) -> dict[str, Any]:
    """The JSON of ``GET /status``."""
    counts = await store.evidence_counts()
    alarms = sum(n for (_, alarm), n in counts.items() if alarm)
    return {
        "name": name,
        "vkey": vkey,
        "alarm": alarms > 0,
        "alarms": alarms,
        "logs": [_log_view(row) for row in await store.logs()],
        "evidence_counts": {kind: n for (kind, _), n in sorted(counts.items())},
        "evidence": [_evidence_view(row) for row in await store.evidence(EVIDENCE_SHOWN)],
    }


def metric_samples(status: Mapping[str, Any], requests: Mapping[int, int]) -> list[Sample]:
    """Prometheus samples for a status (and the add-checkpoint answers so far)."""
    samples: list[Sample] = [
        ("sekisho_witness_alarm", "1 while evidence of a split view is held.", {}, status["alarm"]),
    ]
    for kind, count in status["evidence_counts"].items():
        samples.append(
            ("sekisho_witness_evidence", "Evidence records kept, by kind.", {"kind": kind}, count)
        )
    for view in status["logs"]:
        labels = {"origin": view["origin"]}
        samples.append(
            ("sekisho_witness_log_size", "Tree size last cosigned, by log.", labels, view["size"])
        )
        mirror = view.get("mirror")
        if mirror is not None:
            samples.append(
                (
                    "sekisho_witness_mirror_size",
                    "Entries mirrored and verified.",
                    labels,
                    mirror["size"],
                )
            )
            healthy = mirror["error"] is None and not mirror["halted"]
            samples.append(
                ("sekisho_witness_mirror_ok", "1 while the mirror is in step.", labels, healthy)
            )
    for code, count in sorted(requests.items()):
        samples.append(
            (
                "sekisho_witness_add_checkpoint_responses",
                "add-checkpoint answers since start, by HTTP status.",
                {"code": str(code)},
                count,
            )
        )
    return samples
