"""Security headers on machine responses (API, ledger resources, health, metrics).

The portal sets its own (``web.portal.security``). Machine responses are never
meant to be rendered or framed by a browser, so every one says so; API answers
are not cached unless the handler chose a policy (ledger tiles are immutable).
The hook runs as each response is prepared, so streamed downloads get it too.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from gateway.http.paths import is_machine_path

MACHINE_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
HSTS = "max-age=63072000; includeSubDomains"


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
