"""A bare aiohttp server returning constant bytes: the framework ceiling baseline.

Up to 1 MiB is one response body; a larger size is streamed in 1 MiB writes from
one buffer, as the gateway streams a download (B4: what HTTP alone costs).
"""

from __future__ import annotations

import sys

from aiohttp import web

CHUNK = 1024 * 1024


def main() -> None:
    """Serve ``size`` constant bytes on ``port`` at any path."""
    port, size = int(sys.argv[1]), int(sys.argv[2])
    payload = b"x" * min(size, CHUNK)

    async def handler(request: web.Request) -> web.StreamResponse:
        if size <= CHUNK:
            return web.Response(body=payload, content_type="application/octet-stream")
        response = web.StreamResponse()
        response.content_type = "application/octet-stream"
        response.content_length = size
        await response.prepare(request)
        left = size
        while left:
            part = payload if left >= CHUNK else payload[:left]
            await response.write(part)
            left -= len(part)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
