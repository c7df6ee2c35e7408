"""OpenAPI path item for /api/v1/trail."""

from __future__ import annotations

from typing import Any

from gateway.http.openapi import error_responses, json_answer
from gateway.trail.answers import TrailPage
from gateway.trail.query import DEFAULT_LIMIT, FORMATS, MAX_LIMIT, OUTCOMES

PATH = "/api/v1/trail"


def _param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema}


_TIME = {"type": "string", "format": "date-time"}

PATHS: dict[str, Any] = {
    PATH: {
        "get": {
            "summary": (
                "The access trail: every access decision, newest first (officer, auditor or admin)"
            ),
            "description": (
                "Filters combine with AND. JSON pages hold at most `limit` events; pass "
                "`next_cursor` back as `cursor` for the next page (keyset paging, stable while "
                "new events arrive). `format=csv` streams every matching event (at most `limit` "
                "if given) as an attachment with a header row. Unknown, repeated or malformed "
                "parameters give 400 with `parameter` naming the culprit."
            ),
            "parameters": [
                _param("person", "username, or an actor such as client:name", {"type": "string"}),
                _param("document", "document id", {"type": "string", "format": "uuid"}),
                _param("outcome", "decision", {"enum": list(OUTCOMES)}),
                _param("action", "e.g. download, metadata, list", {"type": "string"}),
                _param("from", "RFC 3339, inclusive", _TIME),
                _param("to", "RFC 3339, exclusive", _TIME),
                _param("node", "node that made the decision", {"type": "string"}),
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
                    TrailPage,
                    description="a page of events, or the CSV export",
                    other_content={"text/csv": {"schema": {"type": "string"}}},
                ),
                **error_responses(400, 401, 403, 503),
            },
        }
    }
}
