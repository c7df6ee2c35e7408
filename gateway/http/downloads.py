"""The download loop: stream a body that may fail part-way (API and portal downloads)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.errors import BrokenStream


async def send_stream(
    request: web.Request, response: web.StreamResponse, body: AsyncIterator[bytes]
) -> web.StreamResponse:
    """Prepare ``response`` and stream ``body``.

    A :class:`~gateway.errors.BrokenStream` (a segment that fails to decrypt)
    after bytes have left aborts the connection, so the client sees a truncated
    response rather than a complete-looking one.
    """
    await response.prepare(request)
    try:
        async for chunk in body:
            await response.write(chunk)
    except BrokenStream:
        if request.transport is not None:
            request.transport.abort()
        return response
    await response.write_eof()
    return response
