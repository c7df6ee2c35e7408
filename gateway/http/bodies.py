"""A slow-body guard: a request body that stops arriving is refused with 408.

aiohttp has no read timeout for request bodies, so a client that sends a few
bytes of an upload and then stalls would hold its connection, its partial blob
and its handler for as long as TCP keeps the connection up. This middleware
watches every request that has a body: when the handler is waiting for body
bytes and none arrived for ``http.body_idle_seconds``, it fails the body stream
with :class:`BodyTimeout`. The handler's pending read raises it, the upload path
cleans up as for any failed upload, and the client gets a 408 JSON error, and
the connection is closed. Install it outermost, so the error middleware has made
the 408 answer before it looks. A handler that is busy (not waiting for the
body) is never timed out: the transport is then paused by flow control and the
client is not to blame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import StreamReader, web

from gateway.errors import SekishoError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BODY_IDLE_SECONDS: web.AppKey[float] = web.AppKey("body_idle_seconds", float)


class BodyTimeout(SekishoError):
    """The client stopped sending the request body."""

    status = 408
    code = "body_timeout"

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the request body stopped arriving for {seconds:g} s; send it again")


def _waiting_for_data(content: StreamReader) -> bool:
    # aiohttp keeps the pending reader's future in ``_waiter`` (no public accessor); if a
    # release renames it, this reads False and the guard stays off rather than misfiring.
    return getattr(content, "_waiter", None) is not None


async def _watch(content: StreamReader, seconds: float) -> None:
    seen = content.total_bytes
    while not content.is_eof():
        await asyncio.sleep(seconds)
        if content.total_bytes == seen and _waiting_for_data(content):
            content.set_exception(BodyTimeout(seconds))
            return
        seen = content.total_bytes


@web.middleware
async def slow_body_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Fail the body of a request whose client stalls mid-body (408)."""
    seconds = request.app.get(BODY_IDLE_SECONDS)
    if not seconds or not request.body_exists:
        return await handler(request)
    watchdog = asyncio.create_task(_watch(request.content, seconds))
    try:
        response = await handler(request)
    finally:
        watchdog.cancel()
    if isinstance(request.content.exception(), BodyTimeout):
        response.force_close()  # the rest of the body is not worth waiting for
    return response
