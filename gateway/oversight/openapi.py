"""OpenAPI path item for /api/v1/oversight."""

from __future__ import annotations

from typing import Any

from gateway.http.openapi import error_responses, json_answer
from gateway.oversight.answers import OversightPage
from gateway.trail.query import DEFAULT_LIMIT, FORMATS, MAX_LIMIT

PATH = "/api/v1/oversight"


def _param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema}


_TIME = {"type": "string", "format": "date-time"}

PATHS: dict[str, Any] = {
    PATH: {
        "get": {
            "summary": (
                "Who looked at the trail: every recorded oversight action (trail views and "
                "exports with their filters, alert and activity views, whole-ledger "
                "verification runs, views of this list), newest first (officer, auditor or admin)"
            ),
            "description": (
                "Each request is itself recorded (view `oversight`, its filters), once. "
                "Filters combine with AND; paging and `format=csv` work as on /api/v1/trail. "
                "Unknown, repeated or malformed parameters give 400 with `parameter`."
            ),
            "parameters": [
                _param("person", "username, or an actor such as client:name", {"type": "string"}),
                _param("view", "e.g. trail, trail.export, alerts", {"type": "string"}),
                _param("from", "RFC 3339, inclusive", _TIME),
                _param("to", "RFC 3339, exclusive", _TIME),
                _param(
                    "limit",
                    f"page size (default {DEFAULT_LIMIT})",
                    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                ),
                _param("cursor", "next_cursor of the previous page", {"type": "string"}),
                _param("format", "json (default) or csv", {"enum": list(FORMATS)}),
            ],
            "responses": {
                "200": json_answer(
                    OversightPage,
                    description="a page of actions, or the CSV export",
                    other_content={"text/csv": {"schema": {"type": "string"}}},
                ),
                **error_responses(400, 401, 403, 503),
            },
        }
    }
}
