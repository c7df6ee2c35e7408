"""No text read from a request may hold a NUL character.

PostgreSQL refuses NUL in every text value (SQLite keeps it), so a NUL that reached
a search, a filter, a look-up or a write was a 500 on PostgreSQL, and on SQLite a
stored title or name that no other tool could show or export. No field has a use
for one. So the address (path and query, by :func:`nul_middleware`), every JSON
string (:func:`check_json_text`, from the one JSON reader) and every form field and
file name (:func:`refuse_nul`, from the form readers) is refused with a 400
``bad_text`` naming where the NUL was, on every database alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.errors import BadRequest

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
NUL = "\x00"


class NulInText(BadRequest):
    """A NUL character in text the caller sent."""

    code = "bad_text"


def _shown(name: str) -> str:
    name = name.replace(NUL, "")
    return repr(name if len(name) <= 32 else name[:32] + "...")


def refuse_nul(where: str, name: str, value: str) -> None:
    """Refuse a NUL in ``name`` or ``value`` (``where``: "form field", "query parameter"...)."""
    if NUL in name or NUL in value:
        raise NulInText(f"{where} {_shown(name)} contains a NUL character")


def check_address(request: web.Request) -> None:
    """Refuse a NUL in the path, a query parameter's name or its value."""
    if NUL in request.path:
        raise NulInText("the address contains a NUL character")
    for name, value in request.query.items():
        refuse_nul("query parameter", name, value)


@web.middleware
async def nul_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Check the address of every request (API, portal, ledger resources) first."""
    check_address(request)
    return await handler(request)


def check_json_text(value: Any) -> None:
    """Refuse a NUL in any string or object key of a parsed JSON value (iterative)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                raise NulInText("a JSON string in the body contains a NUL character")
        elif isinstance(item, dict):
            for key, child in item.items():
                if NUL in key:
                    raise NulInText("a JSON object key in the body contains a NUL character")
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)
