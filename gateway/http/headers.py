"""Security headers on machine responses (API, ledger resources, health, metrics).

The portal sets its own (``web.portal.security``). Machine responses are never
meant to be rendered or framed by a browser, so every one says so; API answers
are not cached unless the handler chose a policy (ledger tiles are immutable).
The hook runs as each response is prepared, so streamed downloads get it too.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from aiohttp import web, web_response
from aiohttp.http_exceptions import HttpProcessingError

from gateway.http.paths import is_machine_path

MACHINE_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
SERVER_NAME = "Sekisho"
HSTS = "max-age=63072000; includeSubDomains"


async def plain_server_name(request: web.Request, response: web.StreamResponse) -> None:
    """Name the server without versions on every response (``on_response_prepare`` hook).

    aiohttp would send ``Server: Python/3.x aiohttp/3.y``, telling anyone which releases
    (and so which published defects) to try; nobody needs that to use the node. aiohttp's
    own 400 for a request it cannot parse is made outside the application, so its default
    name is replaced too (``hide_server_software``).
    """
    response.headers["Server"] = SERVER_NAME


def hide_server_software() -> None:
    """Make aiohttp's default ``Server`` value ours, for the answers no hook sees, and log
    those answers (requests it cannot parse) in one line."""
    setattr(web_response, "SERVER_SOFTWARE", SERVER_NAME)  # noqa: B010 (not re-exported)
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _OneLineForUnparsable) for f in server_log.filters):
        server_log.addFilter(_OneLineForUnparsable())


class _OneLineForUnparsable(logging.Filter):
    """aiohttp logs a request it cannot parse (a broken request line, a header over its
    limit: the caller's bytes, answered 400) as an error with a traceback. Keep one
    warning line naming the problem instead, as for every other bad input."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], HttpProcessingError):
            problem = record.exc_info[1]
            record.msg = "unparsable request refused with 400: %s"
            record.args = (str(problem.message).splitlines()[0][:200],)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


async def machine_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Add the machine security headers (``on_response_prepare`` hook)."""
    if not is_machine_path(request.path):
        return
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Content-Security-Policy", MACHINE_CSP)
    headers.setdefault("Referrer-Policy", "no-referrer")
    if request.path.startswith("/api/"):
        headers.setdefault("Cache-Control", "no-store")
    if request.secure:
        headers.setdefault("Strict-Transport-Security", HSTS)


def attachment(filename: str) -> str:
    """A ``Content-Disposition`` saving as ``filename`` (RFC 6266: ASCII fallback and UTF-8)."""
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
