"""Request bodies: a size limit per route, deadlines while they arrive, and the JSON reader.

**Size.** Every route accepts at most :data:`SMALL_BODY` bytes (forms, JSON)
unless its handler is marked with :func:`body_limit`. The limit is checked
from ``Content-Length`` before anything is read, and while the body streams
(aiohttp's own ``client_max_size`` check in ``read``/``post``/``json``, which
the middleware sets to the route's limit). Only upload routes take large bodies,
and their handlers authenticate before they read a byte; a large route's
declared size is still checked up front against ``http.max_body_mib``.

**Time.** aiohttp has no read timeout for request bodies. The slow-body
middleware watches every request that has a body: when the handler waits for
body bytes and none arrived for ``http.body_idle_seconds``, or the body is not
complete after ``http.body_total_seconds`` (a body trickled a byte at a time
never goes idle), it fails the body stream with :class:`BodyTimeout`. The
handler's pending read raises it, the upload path cleans up as for any failed
upload, the client gets a 408 JSON error and the connection is closed. A
handler that is busy (not waiting for the body) is never timed out: the
transport is then paused by flow control and the client is not to blame.

**JSON.** :func:`read_json` is the one JSON body reader: ``application/json``,
the route's size limit, no NaN or Infinity, and at most :data:`MAX_JSON_DEPTH`
levels of nesting (deeper input used to reach ``RecursionError``: a 500).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import StreamReader, web

from gateway.errors import BadRequest, SekishoError, TooLarge, UnsupportedMediaType
from gateway.http.models import BodyModel as BodyModel  # re-exported: web/ reads models here
from gateway.http.models import validate_body
from gateway.http.text import check_json_text

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)
M = TypeVar("M", bound=BodyModel)
BODY_IDLE_SECONDS: web.AppKey[float] = web.AppKey("body_idle_seconds", float)
BODY_TOTAL_SECONDS: web.AppKey[float] = web.AppKey("body_total_seconds", float)
LARGE_BODY_BYTES: web.AppKey[int] = web.AppKey("large_body_bytes", int)
SMALL_BODY = 64 * 1024
"""Any route's body limit unless its handler says otherwise: forms and JSON."""
LARGE = -1
"""``body_limit(LARGE)``: the node's ``http.max_body_mib`` (upload routes only)."""
MAX_JSON_DEPTH = 32
_LIMIT_ATTRIBUTE = "sekisho_body_limit"
_REFUSED_UNREAD = frozenset({408, 411, 413})


class BodyTimeout(SekishoError):
    """The client stopped sending the request body, or took too long overall."""

    status = 408
    code = "body_timeout"


class LengthRequired(SekishoError):
    """A multipart body on a small-body route must declare its length."""

    status = 411
    code = "length_required"


def body_limit(limit: int) -> Callable[[H], H]:
    """Mark a handler as accepting bodies up to ``limit`` bytes (``LARGE``: uploads)."""

    def mark(handler: H) -> H:
        setattr(handler, _LIMIT_ATTRIBUTE, limit)
        return handler

    return mark


def route_limit(request: web.Request) -> int:
    """The body limit of the route this request matched."""
    limit = getattr(request.match_info.handler, _LIMIT_ATTRIBUTE, SMALL_BODY)
    if not isinstance(limit, int):
        return SMALL_BODY
    return request.app.get(LARGE_BODY_BYTES, SMALL_BODY) if limit == LARGE else limit


@web.middleware
async def body_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a body over the route's limit before it is read, and cap it while it streams."""
    if not request.body_exists:
        return await handler(request)
    limit = route_limit(request)
    declared = request.content_length
    if declared is not None and declared > limit:
        raise TooLarge(f"this request's body may be at most {limit} bytes")
    if declared is None and limit <= SMALL_BODY and request.content_type.startswith("multipart/"):
        raise LengthRequired("send this form with a Content-Length")
    # aiohttp checks client_max_size as read()/post()/json() stream; it has no public setter.
    request._client_max_size = limit
    return await handler(request)


# ----- time -----------------------------------------------------------------------


def _waiting_for_data(content: StreamReader) -> bool:
    # aiohttp keeps the pending reader's future in ``_waiter`` (no public accessor); if a
    # release renames it, this reads False and the guard stays off rather than misfiring.
    return getattr(content, "_waiter", None) is not None


async def _watch(content: StreamReader, idle: float, total: float) -> None:
    loop = asyncio.get_running_loop()
    started = last_progress = loop.time()
    seen = content.total_bytes
    while not content.is_eof():
        now = loop.time()
        waits = [last_progress + idle - now] if idle else []
        waits += [started + total - now] if total else []
        await asyncio.sleep(max(0.25, min(waits)))  # past the deadline: poll until it waits
        now = loop.time()
        if content.total_bytes != seen or not _waiting_for_data(content):
            seen, last_progress = content.total_bytes, now
        if not _waiting_for_data(content) or content.is_eof():
            continue
        if total and now - started >= total:
            message = f"the request body took longer than {total:g} s; send it again"
            content.set_exception(BodyTimeout(message))
            return
        if idle and now - last_progress >= idle:
            message = f"the request body stopped arriving for {idle:g} s; send it again"
            content.set_exception(BodyTimeout(message))
            return


@web.middleware
async def slow_body_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Fail the body of a request whose client stalls or trickles (408); install outermost."""
    idle = request.app.get(BODY_IDLE_SECONDS, 0.0)
    total = request.app.get(BODY_TOTAL_SECONDS, 0.0)
    if not request.body_exists:
        return await handler(request)
    watchdog = asyncio.create_task(_watch(request.content, idle, total)) if idle or total else None
    try:
        response = await handler(request)
    finally:
        if watchdog is not None:
            watchdog.cancel()
    if response.status in _REFUSED_UNREAD and not request.content.is_eof():
        response.force_close()  # the rest of the body is not worth waiting for
    return response


# ----- reading --------------------------------------------------------------------


async def read_body(request: web.Request, media_type: str, limit: int | None = None) -> bytes:
    """The body, if it has ``media_type`` and at most ``limit`` (the route's) bytes."""
    if request.content_type != media_type:
        raise UnsupportedMediaType(f"send the body as {media_type}")
    limit = route_limit(request) if limit is None else limit
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"the body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"the body is larger than {limit} bytes")
    return bytes(body)


class BadJson(BadRequest):
    """The body is not JSON this API accepts."""

    code = "bad_json"


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (iterative: no recursion limit)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH:
            return depth
        stack.extend((child, depth + 1) for child in item)
    return deepest


def parse_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, nesting at most :data:`MAX_JSON_DEPTH`, no NUL
    in any string (``gateway.http.text``)."""
    try:
        value = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        raise BadJson("the body is not valid JSON") from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise BadJson(f"the JSON nests deeper than {MAX_JSON_DEPTH} levels")
    check_json_text(value)
    return value


async def read_json(request: web.Request, limit: int | None = None) -> Any:
    """A JSON body (``application/json``) within the route's size limit."""
    return parse_json(await read_body(request, "application/json", limit))


async def read_model(request: web.Request, model: type[M], limit: int | None = None) -> M:
    """A JSON body checked by ``model`` (the API's codes); for callers outside the API."""
    return validate_body(model, await read_json(request, limit))
