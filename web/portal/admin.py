"""Administrators' pages for people (create, clearance, roles, disable, unlock, certificates).

API clients are in :mod:`web.portal.admin_clients`, keys in :mod:`web.portal.admin_keys`.
Every change goes through the gateway's services, which check and ledger it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from gateway.accounts import Account
from gateway.accounts.rules import split_list
from gateway.accounts.service import AccountChanges, AccountService, Actor, NewAccount
from gateway.app_keys import ACCOUNTS
from gateway.auth.certificates import CertificateActor
from gateway.auth.identity import PERSON_ROLES
from gateway.errors import SekishoError
from gateway.http.params import MAX_INT32, path_int
from web.portal.app_keys import PORTAL, Viewer
from web.portal.auth import source_of
from web.portal.inputs import form_text
from web.portal.render import page, scheme_of
from web.portal.security import see_other, viewer_of

routes = web.RouteTableDef()


def admin(request: web.Request) -> Viewer:
    """The signed-in administrator (403 for anyone else)."""
    viewer = viewer_of(request)
    viewer.identity.require_role("admin")
    return viewer


def _accounts(request: web.Request, viewer: Viewer) -> tuple[AccountService, Actor]:
    return request.app[ACCOUNTS], Actor(viewer.identity.actor, source_of(request))


def _people_context(
    request: web.Request, people: Sequence[Account], **extra: Any
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "title": "People",
        "people": people,
        "levels": scheme_of(request.app).levels,
        "roles": PERSON_ROLES,
        "error": "",
        "form": {
            "username": "",
            "display_name": "",
            "level": "",
            "compartments": "",
            "nationality": "",
            "roles": ["reader"],
        },
        "created": None,
        "password": "",
    }
    return context | extra


@routes.get("/admin/people")
async def people(request: web.Request) -> web.Response:
    """Every account, and the form to create one."""
    viewer = admin(request)
    service, _ = _accounts(request, viewer)
    return page(request, "people.html", _people_context(request, await service.list_accounts()))


@routes.post("/admin/people")
async def create_person(request: web.Request) -> web.Response:
    """Create an account; its one-time password is shown on this response only."""
    viewer = admin(request)
    service, actor = _accounts(request, viewer)
    form = await form_text(request)
    roles = [str(r) for r in form.getall("roles", [])]
    text = {
        name: str(form.get(name, "")).strip()
        for name in ("username", "display_name", "level", "compartments", "nationality")
    }
    values: dict[str, Any] = {**text, "roles": roles}
    new = NewAccount(
        username=text["username"],
        level=text["level"],
        compartments=tuple(split_list(text["compartments"])),
        nationality=text["nationality"],
        roles=tuple(roles),
        display_name=text["display_name"],
    )
    try:
        person, password = await service.create(new, actor)
    except SekishoError as exc:
        if exc.status >= 500:
            raise
        context = _people_context(
            request, await service.list_accounts(), error=exc.message, form=values
        )
        return page(request, "people.html", context, status=exc.status)
    context = _people_context(
        request, await service.list_accounts(), created=person, password=password
    )
    return page(request, "people.html", context, status=201)


async def _person_page(
    request: web.Request, viewer: Viewer, username: str, *, error: str = "", status: int = 200
) -> web.Response:
    service, _ = _accounts(request, viewer)
    person = await service.get(username)
    context = {
        "title": person.display_name or person.username,
        "person": person,
        "levels": scheme_of(request.app).levels,
        "roles": PERSON_ROLES,
        "certificates": await request.app[PORTAL].certificates.of(person),
        "keys": await request.app[PORTAL].security_keys.of(person),
        "error": error,
        "saved": request.query.get("saved", ""),
        "is_self": person.id == viewer.person.id,
        "locked_until": await service.locked_until(username),
    }
    return page(request, "person.html", context, status=status)


@routes.get("/admin/people/{username}")
async def person(request: web.Request) -> web.Response:
    """One account: clearance, roles, status and sign-in certificates."""
    viewer = admin(request)
    return await _person_page(request, viewer, request.match_info["username"])


@routes.post("/admin/people/{username}")
async def update_person(request: web.Request) -> web.Response:
    """Change name, clearance and roles."""
    viewer = admin(request)
    service, actor = _accounts(request, viewer)
    username = request.match_info["username"]
    form = await form_text(request)
    changes = AccountChanges(
        display_name=str(form.get("display_name", "")),
        level=str(form.get("level", "")),
        compartments=tuple(split_list(str(form.get("compartments", "")))),
        nationality=str(form.get("nationality", "")),
        roles=tuple(str(r) for r in form.getall("roles", [])),
    )
    try:
        _, changed = await service.update(username, changes, actor)
    except SekishoError as exc:
        if exc.status >= 500 or exc.status == 404:
            raise
        return await _person_page(request, viewer, username, error=exc.message, status=exc.status)
    saved = "changed" if changed else "unchanged"
    return see_other(f"/admin/people/{username}?saved={saved}")


@routes.post("/admin/people/{username}/disable")
async def disable_person(request: web.Request) -> web.Response:
    """Disable an account: its sessions and tokens stop working at once."""
    return await _set_disabled(request, True)


@routes.post("/admin/people/{username}/enable")
async def enable_person(request: web.Request) -> web.Response:
    """Enable a disabled account."""
    return await _set_disabled(request, False)


async def _set_disabled(request: web.Request, disabled: bool) -> web.Response:
    viewer = admin(request)
    service, actor = _accounts(request, viewer)
    username = request.match_info["username"]
    try:
        await service.set_disabled(username, disabled, actor)  # ends sessions and tokens
    except SekishoError as exc:
        if exc.status >= 500 or exc.status == 404:
            raise
        return await _person_page(request, viewer, username, error=exc.message, status=exc.status)
    return see_other(f"/admin/people/{username}?saved={'disabled' if disabled else 'enabled'}")


@routes.post("/admin/people/{username}/unlock")
async def unlock_person(request: web.Request) -> web.Response:
    """End the account's sign-in lock-out now (ledgered; nothing written if not locked)."""
    viewer = admin(request)
    service, actor = _accounts(request, viewer)
    username = request.match_info["username"]
    _, changed = await service.unlock(username, actor)
    return see_other(f"/admin/people/{username}?saved={'unlocked' if changed else 'not_locked'}")


@routes.post("/admin/people/{username}/certificates")
async def add_certificate(request: web.Request) -> web.Response:
    """Register a TLS client certificate (PEM or SHA-256 fingerprint) for sign-in."""
    viewer = admin(request)
    service, _ = _accounts(request, viewer)
    username = request.match_info["username"]
    person = await service.get(username)
    form = await form_text(request)
    actor = CertificateActor(viewer.identity.actor, source_of(request))
    try:
        await request.app[PORTAL].certificates.add(
            person, str(form.get("certificate", "")), str(form.get("label", "")), actor
        )
    except SekishoError as exc:
        if exc.status >= 500:
            raise
        return await _person_page(request, viewer, username, error=exc.message, status=exc.status)
    return see_other(f"/admin/people/{username}?saved=certificate")


@routes.post("/admin/people/{username}/certificates/{id:[0-9]+}/remove")
async def remove_certificate(request: web.Request) -> web.Response:
    """Remove a sign-in certificate."""
    viewer = admin(request)
    service, _ = _accounts(request, viewer)
    username = request.match_info["username"]
    person = await service.get(username)
    actor = CertificateActor(viewer.identity.actor, source_of(request))
    certificate = path_int(request.match_info, "id", high=MAX_INT32)
    await request.app[PORTAL].certificates.remove(person, certificate, actor)
    return see_other(f"/admin/people/{username}?saved=certificate_removed")
