"""A NUL character anywhere in API input is a clear 400, never a 500; so is a value
longer than any column.

PostgreSQL refuses NUL in any text value (SQLite keeps it), so before this every
search, filter, lookup or write that carried one to the database was a 500 there,
on some routes only. The walk is driven by the router, as ``web/test_idor.py``'s,
so a new route is walked without being listed: every path parameter, a set of
query parameters and JSON and form bodies, sent as a person holding every role and
as a client holding every scope, on PostgreSQL and on SQLite.
"""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from gateway.auth.identity import CLIENT_SCOPES
from gateway.auth.principals import Principal
from gateway.auth.tokens import issue_token
from gateway.signing.clients import ClientSpec
from tests.gateway.app_fixtures import AppNode, app_node, operator_managers
from tests.web.test_idor import path_of

__all__ = ["app_node"]  # the fixture, taken by indirect parametrisation
NUL = "a\x00b"
LONG = "x" * 4000
"""Longer than any column: the ORM refused such a look-up with a ValidationError (a 500)."""
QUERY_NAMES = (
    "q", "title", "label", "person", "subject", "kind", "view", "action", "outcome",
    "since", "until", "after", "before", "cursor", "name", "key", "document", "client",
    "owner", "version", "page", "limit", "format", "status", "type", "index", "leaf_hash",
)  # fmt: skip
BODY_FIELDS = (
    "subject", "kind", "digest", "record", "name", "reason", "label", "title", "key",
    "username", "password", "display_name", "level", "compartments", "nationality", "roles",
    "scopes", "keys", "algorithm", "usage", "data", "message", "text", "owner", "item",
    "from", "to", "rule", "note", "chain_writers", "certificate", "filename", "confirm",
)  # fmt: skip


async def _callers(node: AppNode) -> list[dict[str, str]]:
    """A person with every role and a client with every scope."""
    person = await Principal.create(
        username="everyone",
        level="TOP SECRET",
        nationality="USA",
        roles=["reader", "uploader", "officer", "auditor", "admin"],
    )
    _, clients = operator_managers(node.client.app, node.settings)
    spec = ClientSpec(scopes=CLIENT_SCOPES, keys=("default",), rate_per_minute=0)
    _, client_token = await clients.add("everything", spec)
    return [
        {"Authorization": f"Bearer {await issue_token(principal=person)}"},
        {"Authorization": f"Bearer {client_token}"},
    ]


def _api_routes(app: web.Application) -> list[tuple[str, str]]:
    found = []
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS") or route.resource is None:
            continue
        path = path_of(route.resource)
        if path.startswith("/api/") or path.startswith("/ledger/"):
            found.append((route.method, path))
    return sorted(set(found))


def _filled(path: str, value: str) -> str:
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + value + path[end + 1 :]
    return path


@pytest.mark.parametrize("app_node", ["postgres", "sqlite"], indirect=True)
async def test_a_nul_in_any_api_input_is_a_clear_400(app_node: AppNode) -> None:
    """On PostgreSQL, where NUL was a 500, and on SQLite, which would have stored it."""
    node = app_node
    app = node.client.app
    assert isinstance(app, web.Application)
    failures: list[str] = []
    body = json.dumps({name: NUL for name in BODY_FIELDS} | {"nested": {"list": [NUL]}})
    for headers in await _callers(node):
        for method, path in _api_routes(app):
            sends: list[tuple[str, str | None, dict[str, str]]] = [
                (_filled(path, "a%00b"), None, {}),
                (_filled(path, LONG), None, {}),
            ]
            if "{" in path:
                sends.append((path.replace("{", "").replace("}", ""), None, {}))
            plain = path.replace("{", "").replace("}", "")
            if method == "GET":  # one parameter at a time: another's 400 must not hide it
                sends += [
                    (f"{plain}?{name}={value}", None, {})
                    for name in QUERY_NAMES
                    for value in ("a%00b", LONG)
                ]
            if method in ("POST", "PUT", "PATCH", "DELETE"):
                sends.append((plain, body, {"Content-Type": "application/json"}))
            for target, data, extra in sends:
                response = await node.client.request(
                    method, target, data=data, headers=headers | extra
                )
                text = await response.text()
                if response.status >= 500:
                    failures.append(f"{method} {target!r}: {response.status} {text[:200]}")
    assert not failures, "\n".join(failures)
