"""A bare aiohttp server returning constant bytes: the framework ceiling baseline."""

from __future__ import annotations

import sys

from aiohttp import web


def main() -> None:
    """Serve ``size`` constant bytes on ``port`` at any path."""
    port, size = int(sys.argv[1]), int(sys.argv[2])
    payload = b"x" * size

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=payload, content_type="application/octet-stream")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
