"""Security keys in the portal: sign-in, step-up, and registering and removing keys.

Each ceremony is two JSON requests made by /static/webauthn.js (CSRF token in
the X-CSRF-Token header): one for the options (which hands this browser a
one-time challenge), one with the key's answer. Removal is a plain form. People
manage their own keys on /me/security; administrators a person's keys on the
person page (the person's key plugged into the administrator's computer).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote, urlsplit

from aiohttp import web

from gateway.accounts import Account
from gateway.app_keys import ACCOUNTS
from gateway.auth.security_keys import MAX_CREDENTIAL_JSON, KeyActor, SecurityKeys
from gateway.auth.signin import LockedOut, SignInFailed
from gateway.errors import (
    BadRequest,
    SekishoError,
    TooLarge,
    TooManyRequests,
    UnsupportedMediaType,
)
from gateway.http.bodies import BodyModel, read_model
from gateway.http.params import MAX_INT32, path_int
from web.portal.admin import admin
from web.portal.app_keys import PORTAL, SECRET, VIEWER, Viewer
from web.portal.auth import source_of, start_session
from web.portal.render import page
from web.portal.security import local_target, see_other, uses_tls, viewer_of

routes = web.RouteTableDef()
SAVED = {"registered": "Security key registered.", "removed": "Security key removed."}


def _keys(request: web.Request) -> SecurityKeys:
    return request.app[PORTAL].security_keys


def _secret(request: web.Request) -> str:
    secret: str | None = request.get(SECRET)
    assert secret is not None  # the middleware sets one on every portal request
    return secret


def _origins(request: web.Request) -> list[str]:
    scheme = "https" if uses_tls(request) else "http"
    return _keys(request).relying_party.origins_for(scheme, request.host)


M = TypeVar("M", bound=BodyModel)
NO_ANSWER = ("bad_credential", "The security key's answer is missing.")


class OptionsBody(BodyModel):
    """What the page posts for a challenge: the name the person gave a new key."""

    name: str = ""


class AnswerBody(BodyModel):
    """What the page posts with the key's answer, and where to go afterwards."""

    credential: dict[str, Any]
    next: str = "/"
    MISSING: ClassVar[tuple[str, str] | None] = NO_ANSWER
    FIELD_ERRORS: ClassVar[dict[str, tuple[str, str]]] = {
        "credential": NO_ANSWER,
        "next": ("bad_next", "Where to go next must be text."),
    }


async def _body(request: web.Request, model: type[M]) -> M:
    """The posted JSON object (at most MAX_CREDENTIAL_JSON bytes) as ``model``.

    The API's reader and body models; every refusal is a BadRequest here: the
    pages' script shows its message.
    """
    try:
        return await read_model(request, model, MAX_CREDENTIAL_JSON)
    except (TooLarge, UnsupportedMediaType) as exc:
        raise BadRequest(exc.message, code=exc.code) from None


def _credential(body: AnswerBody) -> str:
    return json.dumps(body.credential)


def _json_error(exc: SekishoError) -> web.Response:
    response = web.json_response({"error": exc.code, "message": exc.message}, status=exc.status)
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _options(text: str) -> web.Response:
    return web.Response(text=text, content_type="application/json")


def _unusable_here(request: web.Request) -> BadRequest | None:
    if _origins(request):
        return None
    rp_id = _keys(request).relying_party.rp_id
    return BadRequest(
        f"Security keys work only at this portal's address ({rp_id}); open the portal there.",
        code="wrong_origin",
    )


# ----- sign-in ---------------------------------------------------------------------


@routes.post("/login/security-key/options")
async def sign_in_options(request: web.Request) -> web.Response:
    """A challenge for username-less sign-in with any registered key."""
    unusable = _unusable_here(request)
    if unusable is not None:
        return _json_error(unusable)
    try:
        return _options(await _keys(request).assertion_options(_secret(request), "sign_in"))
    except TooManyRequests as exc:
        return _json_error(exc)


@routes.post("/login/security-key")
async def sign_in(request: web.Request) -> web.Response:
    """Check the key's answer; on success a new session, and where to go next."""
    try:
        body = await _body(request, AnswerBody)
        credential = _credential(body)
        signed_in = await request.app[PORTAL].sign_in.with_security_key(
            credential, _secret(request), _origins(request), source_of(request)
        )
    except (BadRequest, SignInFailed, LockedOut) as exc:
        return _json_error(exc)
    target = local_target(body.next or "/")
    redirect = await start_session(request, signed_in, target)
    response = web.json_response({"redirect": redirect.headers["Location"]})
    for cookie in redirect.cookies.values():
        response.cookies[cookie.key] = cookie
    return response


# ----- step-up ---------------------------------------------------------------------


def step_up_page(request: web.Request, target: str, *, status: int = 200) -> web.Response:
    """The prompt to confirm with a security key before content is served."""
    viewer: Viewer | None = request.get(VIEWER)
    context = {
        "title": "Confirm with your security key",
        "next": local_target(target),
        "has_keys": viewer is not None,
    }
    return page(request, "step_up.html", context, status=status)


def step_up_target(request: web.Request) -> str:
    """Where to continue after a step-up asked for by this request."""
    if request.method == "GET":
        return request.path_qs
    referer = urlsplit(request.headers.get("Referer", ""))
    if referer.netloc == request.host and referer.path:
        return referer.path + (f"?{referer.query}" if referer.query else "")
    return "/documents"


@routes.get("/step-up")
async def step_up_form(request: web.Request) -> web.Response:
    """The step-up prompt on its own (``next`` says where to go afterwards)."""
    viewer_of(request)
    return step_up_page(request, request.query.get("next", "/"))


@routes.post("/step-up/options")
async def step_up_options(request: web.Request) -> web.Response:
    """A challenge for one of the signed-in person's own keys."""
    viewer = viewer_of(request)
    unusable = _unusable_here(request)
    if unusable is not None:
        return _json_error(unusable)
    keys = _keys(request)
    if not await keys.of(viewer.person):
        return _json_error(
            BadRequest(
                "You have no security key yet: register one under Security first.",
                code="no_security_key",
            )
        )
    try:
        return _options(await keys.assertion_options(_secret(request), "step_up", viewer.person))
    except TooManyRequests as exc:
        return _json_error(exc)


@routes.post("/step-up")
async def step_up(request: web.Request) -> web.Response:
    """Check the key's answer; the session counts as signed in with a key from now on."""
    viewer = viewer_of(request)
    try:
        body = await _body(request, AnswerBody)
        await request.app[PORTAL].sign_in.step_up(
            viewer.person,
            viewer.session_id,
            _credential(body),
            _secret(request),
            _origins(request),
            source_of(request),
        )
    except (BadRequest, SignInFailed, LockedOut) as exc:
        return _json_error(exc)
    return web.json_response({"redirect": local_target(body.next or "/")})


# ----- one's own keys --------------------------------------------------------------


@routes.get("/me/security")
async def my_security(request: web.Request) -> web.Response:
    """One's security keys: list, add, remove."""
    viewer = viewer_of(request)
    context = {
        "title": "Security keys",
        "keys": await _keys(request).of(viewer.person),
        "saved": SAVED.get(request.query.get("saved", ""), ""),
        "base": "/me/security/keys",
        "strong": viewer.identity.strong,
    }
    return page(request, "security.html", context)


@routes.post("/me/security/keys/options")
async def my_key_options(request: web.Request) -> web.Response:
    """Registration options for a new key of one's own."""
    return await _registration_options(request, viewer_of(request).person)


@routes.post("/me/security/keys")
async def my_key(request: web.Request) -> web.Response:
    """Register the key that answered."""
    viewer = viewer_of(request)
    return await _register(request, viewer, viewer.person, "/me/security?saved=registered")


@routes.post("/me/security/keys/{id:[0-9]+}/remove")
async def remove_my_key(request: web.Request) -> web.Response:
    """Remove one of one's keys."""
    viewer = viewer_of(request)
    await _remove(request, viewer, viewer.person)
    return see_other("/me/security?saved=removed")


# ----- administrators --------------------------------------------------------------


async def _person(request: web.Request) -> Account:
    return await request.app[ACCOUNTS].get(request.match_info["username"])


@routes.post("/admin/people/{username}/security-keys/options")
async def person_key_options(request: web.Request) -> web.Response:
    """Registration options for a key of the person (administrators)."""
    admin(request)
    return await _registration_options(request, await _person(request))


@routes.post("/admin/people/{username}/security-keys")
async def person_key(request: web.Request) -> web.Response:
    """Register the key that answered to the person (administrators)."""
    viewer = admin(request)
    person = await _person(request)
    target = f"/admin/people/{quote(person.username)}?saved=key"
    return await _register(request, viewer, person, target)


@routes.post("/admin/people/{username}/security-keys/{id:[0-9]+}/remove")
async def remove_person_key(request: web.Request) -> web.Response:
    """Remove a person's key (administrators)."""
    viewer = admin(request)
    person = await _person(request)
    await _remove(request, viewer, person)
    return see_other(f"/admin/people/{quote(person.username)}?saved=key_removed")


# ----- shared ----------------------------------------------------------------------


async def _registration_options(request: web.Request, person: Account) -> web.Response:
    try:
        unusable = _unusable_here(request)
        if unusable is not None:
            raise unusable
        body = await _body(request, OptionsBody)
        return _options(
            await _keys(request).registration_options(person, body.name, _secret(request))
        )
    except (BadRequest, TooManyRequests) as exc:
        return _json_error(exc)


async def _register(
    request: web.Request, viewer: Viewer, person: Account, target: str
) -> web.Response:
    actor = KeyActor(viewer.identity.actor, source_of(request))
    try:
        body = await _body(request, AnswerBody)
        await _keys(request).register(
            person, _credential(body), _secret(request), _origins(request), actor
        )
    except SekishoError as exc:
        if exc.status >= 500:
            raise
        return _json_error(exc)
    return web.json_response({"redirect": local_target(target)})


async def _remove(request: web.Request, viewer: Viewer, person: Account) -> None:
    actor = KeyActor(viewer.identity.actor, source_of(request))
    key_id = path_int(request.match_info, "id", high=MAX_INT32)
    await _keys(request).remove(person, key_id, actor)
