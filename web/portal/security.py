"""The portal's request guard: sessions, sign-in gate, CSRF and security headers.

For every portal path (everything but the API, ledger resources, health and
metrics) the middleware resolves the session cookie to the person, sends
visitors who are not signed in to the sign-in page, refuses any state-changing
request without a valid CSRF token (and any that a browser marks as
cross-site), and sets the security headers: a Content-Security-Policy without
inline script (scripts only from the portal's own static files),
``frame-ancestors 'none'``, ``Cache-Control: no-store`` on every page, and HSTS
under TLS.

Cookies are HttpOnly and SameSite=Strict, and under TLS also Secure with the
``__Host-`` prefix (so no subdomain or plain-HTTP page can set them).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from urllib.parse import quote, urlsplit

from aiohttp import BodyPartReader, web
from multidict import CIMultiDict

from gateway.auth.sessions import csrf_matches, csrf_token, new_secret, plausible_secret
from gateway.auth.tokens import identity_of_person
from gateway.errors import Forbidden
from gateway.http.multipart import next_part, open_form, read_bytes
from gateway.http.paths import is_machine_path
from web.portal.app_keys import FORM, PORTAL, SECRET, VIEWER, Viewer
from web.portal.inputs import URLENCODED, form_text

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC_PATHS = frozenset(
    {"/login", "/login/certificate", "/login/security-key", "/login/security-key/options"}
)
STRONG_METHODS = frozenset({"certificate", "security_key"})
PASSWORD_PATHS = frozenset({"/me/password", "/logout"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STATIC_PREFIX = "/static/"
CSRF_FIELD = "csrf"
CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HSTS = "max-age=63072000; includeSubDomains"
STATIC_CACHE = "public, max-age=31536000, immutable"
_MAX_TOKEN = 128


class CsrfRefused(Forbidden):
    """A state-changing request without a valid CSRF token, or from another site."""

    code = "csrf"

    def __init__(self) -> None:
        super().__init__(
            "This form could not be accepted: it has expired or did not come from a Sekisho "
            "page. Go back, reload the page and try again."
        )


@dataclass(frozen=True)
class CookieNames:
    """The session and pre-sign-in cookie names for this connection."""

    session: str
    signin: str


def uses_tls(request: web.Request) -> bool:
    """True when the browser reached us over TLS (directly or through a TLS proxy)."""
    portal = request.app.get(PORTAL)
    return request.secure or (portal is not None and portal.assume_tls)


def cookie_names(request: web.Request) -> CookieNames:
    """``__Host-`` prefixed names under TLS."""
    if uses_tls(request):
        return CookieNames("__Host-sekisho-session", "__Host-sekisho-signin")
    return CookieNames("sekisho-session", "sekisho-signin")


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str) -> None:
    """Set one of our cookies: Path=/, HttpOnly, SameSite=Strict, Secure under TLS."""
    response.set_cookie(
        name, value, path="/", secure=uses_tls(request), httponly=True, samesite="Strict"
    )


def clear_cookie(request: web.Request, response: web.StreamResponse, name: str) -> None:
    """Remove one of our cookies (with the attributes it was set with)."""
    response.del_cookie(name, path="/", secure=uses_tls(request), httponly=True, samesite="Strict")


def csrf_for(secret: str) -> str:
    """The token forms carry for this browser secret."""
    return csrf_token(secret)


def secure_headers(
    request: web.Request, headers: CIMultiDict[str], *, cache: str = "no-store"
) -> None:
    """The portal's security headers (call before a streamed response is prepared)."""
    headers["Content-Security-Policy"] = CSP
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "same-origin"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
    headers.setdefault("Cache-Control", cache)
    if uses_tls(request):
        headers["Strict-Transport-Security"] = HSTS


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PRINTABLE_ASCII = "".join(chr(c) for c in range(0x21, 0x7F))


def local_target(target: str | None) -> str:
    """A path on this site to redirect to: ``target`` if it surely is one, else "/".

    Browsers drop tabs and line breaks anywhere in a URL, read a backslash as a
    slash and ``//host`` as another site, so ``/\t/evil.example`` or ``/\\evil``
    lead elsewhere. Anything with a control character or a backslash, anything
    not starting with exactly one slash, and anything that still parses with a
    scheme or a host is refused; spaces and non-ASCII characters are
    percent-encoded, so the header holds exactly what the browser will follow.
    """
    if not target or _CONTROL.search(target) or "\\" in target:
        return "/"
    if not target.startswith("/") or target.startswith("//"):
        return "/"
    encoded = quote(target, safe=_PRINTABLE_ASCII)
    parts = urlsplit(encoded)
    if parts.scheme or parts.netloc:
        return "/"
    return encoded


def sign_in_redirect(request: web.Request) -> web.HTTPSeeOther:
    """Send a visitor to the sign-in page, coming back here afterwards (for GETs)."""
    if request.method == "GET" and request.path_qs != "/":
        return web.HTTPSeeOther("/login?next=" + quote(request.path_qs, safe="/"))
    return web.HTTPSeeOther("/login")


async def check_csrf(request: web.Request) -> None:
    """Refuse cross-site requests and requests without this browser's CSRF token."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") == "cross-site":
        raise CsrfRefused()
    origin = request.headers.get("Origin")
    if origin is not None and (origin == "null" or urlsplit(origin).netloc != request.host):
        raise CsrfRefused()
    token: str | None = None
    if request.content_type == URLENCODED:
        token = (await form_text(request)).get(CSRF_FIELD)
    elif request.content_type == "multipart/form-data":
        reader = await open_form(request)
        part = await next_part(reader)
        if part is not None and part.name == CSRF_FIELD:
            token = await _small_text(part)
        request[FORM] = reader
    else:
        token = request.headers.get("X-CSRF-Token")
    if not csrf_matches(request.get(SECRET), token):
        raise CsrfRefused()


async def _small_text(part: BodyPartReader) -> str | None:
    data = await read_bytes(part, _MAX_TOKEN)
    return None if data is None else data.decode("ascii", errors="replace")


@web.middleware
async def portal_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Sessions, the sign-in gate, CSRF and headers for portal pages."""
    if is_machine_path(request.path):
        return await handler(request)
    if request.path.startswith(STATIC_PREFIX):
        response = await handler(request)
        secure_headers(request, response.headers, cache=STATIC_CACHE)
        return response
    portal = request.app[PORTAL]
    names = cookie_names(request)
    session_id = request.cookies.get(names.session)
    active = await portal.sessions.resolve(session_id) if session_id else None
    fresh_secret: str | None = None
    if active is not None and session_id is not None:
        method = active.row.method
        via = {"certificate": "portal-certificate", "security_key": "portal-security-key"}
        identity = replace(
            identity_of_person(active.person, via.get(method, "portal")),
            strong=method in STRONG_METHODS or active.row.step_up in STRONG_METHODS,
        )
        request[VIEWER] = Viewer(identity, active.person, session_id, active.row.method)
        request[SECRET] = session_id
    else:
        signin = request.cookies.get(names.signin)
        if not plausible_secret(signin):
            signin = fresh_secret = new_secret()
        assert signin is not None
        request[SECRET] = signin
    response = await _guarded(request, handler, active is not None)
    if not response.prepared:
        if fresh_secret is not None and names.signin not in response.cookies:
            set_cookie(request, response, names.signin, fresh_secret)
        if session_id and active is None and names.session not in response.cookies:
            clear_cookie(request, response, names.session)  # a stale or unknown id
    if not response.prepared:
        secure_headers(request, response.headers)
    return response


async def _guarded(request: web.Request, handler: Handler, signed_in: bool) -> web.StreamResponse:
    try:
        if not signed_in and request.path not in PUBLIC_PATHS:
            raise sign_in_redirect(request)
        if request.method not in SAFE_METHODS:
            await check_csrf(request)
        viewer = request.get(VIEWER)
        if (
            viewer is not None
            and viewer.person.must_change_password
            and request.path not in PASSWORD_PATHS
        ):
            raise web.HTTPSeeOther("/me/password")
        return await handler(request)
    except web.HTTPRedirection as redirect:  # answer it, so cookies and headers can be set
        return see_other(redirect.headers.get("Location", "/"), status=redirect.status)


def see_other(location: str, *, status: int = 303) -> web.Response:
    """A redirect to a path on this site (303 See Other after a form, by default).

    Every portal redirect goes through here, so none can lead off the site or
    carry a line break into the header, whatever went into ``location``.
    """
    return web.Response(status=status, headers={"Location": local_target(location)})


def viewer_of(request: web.Request) -> Viewer:
    """The signed-in person (the middleware guarantees one on non-public pages)."""
    viewer: Viewer | None = request.get(VIEWER)
    if viewer is None:
        raise sign_in_redirect(request)
    return viewer
