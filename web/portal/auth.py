"""Sign-in (password or certificate; security keys: web.portal.security_keys), sign-out,
the dashboard and changing one's password."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from gateway.accounts import Account
from gateway.app_keys import AUDITOR, DOCUMENTS, LEDGER
from gateway.auth.signin import LockedOut, SignedIn, SignInFailed
from gateway.documents.catalogue import DocumentCatalogue
from gateway.errors import BadRequest
from gateway.http.auth import client_address, client_certificate_fingerprint
from gateway.oversight import alerts
from gateway.oversight.activity import decisions_since
from web.portal.app_keys import PORTAL, VIEWER, Viewer
from web.portal.inputs import form_text
from web.portal.render import page
from web.portal.security import (
    clear_cookie,
    cookie_names,
    local_target,
    see_other,
    set_cookie,
    viewer_of,
)

routes = web.RouteTableDef()


source_of = client_address
"""The client address as recorded in the ledger (the API's helper, one definition)."""


async def _certificate_person(request: web.Request) -> Account | None:
    fingerprint = client_certificate_fingerprint(request)
    if fingerprint is None:
        return None
    return await request.app[PORTAL].sign_in.person_for_certificate(fingerprint)


async def _login_page(
    request: web.Request,
    *,
    error: str = "",
    username: str = "",
    status: int = 200,
    notice: str = "",
) -> web.Response:
    target = local_target(request.query.get("next"))
    if request.method == "POST":
        form = await form_text(request)
        target = local_target(str(form.get("next", "/")))
    context = {
        "error": error,
        "notice": notice,
        "username": username,
        "next": target,
        "certificate_person": await _certificate_person(request),
        "title": "Sign in",
    }
    return page(request, "login.html", context, status=status)


@routes.get("/login")
async def login_form(request: web.Request) -> web.Response:
    """The sign-in page (the dashboard if already signed in)."""
    if request.get(VIEWER) is not None:
        return see_other("/")
    notice = "You have signed out." if request.query.get("signed_out") == "1" else ""
    return await _login_page(request, notice=notice)


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    """Check the password; on success a new session and back to where they were going."""
    form = await form_text(request)
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    service = request.app[PORTAL].sign_in
    try:
        signed_in = await service.with_password(username, password, source_of(request))
    except LockedOut as exc:
        response = await _login_page(request, error=exc.message, username=username, status=429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except SignInFailed as exc:
        return await _login_page(request, error=exc.message, username=username, status=401)
    return await start_session(request, signed_in, local_target(str(form.get("next", "/"))))


@routes.post("/login/certificate")
async def login_certificate(request: web.Request) -> web.Response:
    """Sign in with the TLS client certificate this connection presented."""
    fingerprint = client_certificate_fingerprint(request)
    if fingerprint is None:
        return await _login_page(
            request, error="Your browser did not present a client certificate.", status=400
        )
    try:
        signed_in = await request.app[PORTAL].sign_in.with_certificate(
            fingerprint, source_of(request)
        )
    except LockedOut as exc:
        response = await _login_page(request, error=exc.message, status=429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except SignInFailed as exc:
        return await _login_page(request, error=exc.message, status=401)
    form = await form_text(request)
    return await start_session(request, signed_in, local_target(str(form.get("next", "/"))))


async def start_session(request: web.Request, signed_in: SignedIn, target: str) -> web.Response:
    """The redirect that sets the new session's cookie (the old session, if any, ends)."""
    portal = request.app[PORTAL]
    previous: Viewer | None = request.get(VIEWER)
    if previous is not None:  # renewed, not added to: the old id stops working
        await portal.sessions.end(previous.session_id)
    await portal.sessions.purge_expired()
    names = cookie_names(request)
    if signed_in.person.must_change_password:
        target = "/me/password"
    response = see_other(target)
    set_cookie(request, response, names.session, signed_in.session_id)
    clear_cookie(request, response, names.signin)
    return response


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    """End the session and forget the cookie."""
    viewer = viewer_of(request)
    await request.app[PORTAL].sessions.end(viewer.session_id)
    response = see_other("/login?signed_out=1")
    clear_cookie(request, response, cookie_names(request).session)
    return response


@routes.get("/")
async def dashboard(request: web.Request) -> web.Response:
    """What matters to this person now."""
    viewer = viewer_of(request)
    catalogue: DocumentCatalogue = request.app[DOCUMENTS]
    recent = await catalogue.search(viewer.identity, source=source_of(request), limit=5)
    context: dict[str, object] = {"title": "Overview", "recent": recent, "alert_count": None}
    if viewer.has_role("officer", "auditor", "admin"):
        now = datetime.now(UTC)
        auditor = request.app.get(AUDITOR)
        found = await alerts.collect(
            request.app[LEDGER],
            auditor.status if auditor is not None else None,
            since=now - timedelta(hours=24),
            now=now,
        )
        context["alert_count"] = found.count
        context["ledger_size"] = (await request.app[LEDGER].latest()).size
        context["decisions"] = await decisions_since(now - timedelta(hours=24))
    return page(request, "dashboard.html", context, labels=[d["label"] for d in recent])


@routes.get("/me/password")
async def password_form(request: web.Request) -> web.Response:
    """The form to change one's own password."""
    viewer = viewer_of(request)
    return _password_page(request, viewer)


def _password_page(
    request: web.Request, viewer: Viewer, *, error: str = "", status: int = 200
) -> web.Response:
    context = {
        "title": "Change your password",
        "error": error,
        "forced": viewer.person.must_change_password,
        "changed": request.query.get("changed") == "1",
        "username": viewer.person.username,
    }
    return page(request, "password.html", context, status=status)


@routes.post("/me/password")
async def change_password(request: web.Request) -> web.Response:
    """Change one's own password; other sessions of the account end."""
    viewer = viewer_of(request)
    form = await form_text(request)
    try:
        await request.app[PORTAL].sign_in.change_password(
            viewer.person,
            str(form.get("current", "")),
            str(form.get("new", "")),
            str(form.get("repeat", "")),
            source=source_of(request),
            keep=viewer.session_id,
        )
    except LockedOut as exc:
        response = _password_page(request, viewer, error=exc.message, status=429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except BadRequest as exc:
        return _password_page(request, viewer, error=exc.message, status=400)
    return see_other("/me/password?changed=1")
