"""Administrators' pages: people (create, clearance, roles, disable, certificates), API clients,
keys and certificates. Every change goes through the gateway's services, which ledger it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from gateway.accounts import Account
from gateway.accounts.rules import split_list
from gateway.accounts.service import AccountChanges, AccountService, Actor, NewAccount
from gateway.app_keys import ACCOUNTS, LEDGER, SETTINGS, SIGNING, TOKEN
from gateway.auth.certificates import CertificateActor
from gateway.auth.identity import PERSON_ROLES
from gateway.documents.kek import kek_states
from gateway.errors import SekishoError
from gateway.http.params import MAX_INT32, path_int
from gateway.node_token import token_inventory
from gateway.signing.clients import ClientService
from web.portal.app_keys import PORTAL, Viewer
from web.portal.auth import source_of
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


def _people_context(request: web.Request, people: list[Account], **extra: Any) -> dict[str, Any]:
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
    form = await request.post()
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
    form = await request.post()
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


@routes.post("/admin/people/{username}/certificates")
async def add_certificate(request: web.Request) -> web.Response:
    """Register a TLS client certificate (PEM or SHA-256 fingerprint) for sign-in."""
    viewer = admin(request)
    service, _ = _accounts(request, viewer)
    username = request.match_info["username"]
    person = await service.get(username)
    form = await request.post()
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


def _clients(request: web.Request, viewer: Viewer) -> ClientService:
    return ClientService(
        request.app[LEDGER], actor=viewer.identity.actor, source=source_of(request)
    )


@routes.get("/admin/clients")
async def clients(request: web.Request) -> web.Response:
    """API clients: scopes, keys, rate, certificate, live tokens."""
    viewer = admin(request)
    views = await _clients(request, viewer).all()
    context = {"title": "API clients", "clients": views, "revoked": request.query.get("revoked")}
    return page(request, "clients.html", context)


@routes.post("/admin/clients/{name}/revoke")
async def revoke_client(request: web.Request) -> web.Response:
    """Revoke a client and all its tokens."""
    viewer = admin(request)
    name = request.match_info["name"]
    await _clients(request, viewer).revoke(name)
    return see_other(f"/admin/clients?revoked={name}")


@dataclass(frozen=True)
class CertificateView:
    """What an administrator checks about a certificate."""

    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    sha256: str


def certificate_view(der: bytes) -> CertificateView | None:
    """Subject, issuer, validity and fingerprint of a DER certificate (None if unreadable)."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    return CertificateView(
        subject=_common_name(cert.subject),
        issuer=_common_name(cert.issuer),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
    )


def _common_name(name: x509.Name) -> str:
    found = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(found[0].value) if found else name.rfc4514_string()


@routes.get("/admin/keys")
async def keys(request: web.Request) -> web.Response:
    """The token, its keys, KEK versions and the signing keys with their certificates."""
    admin(request)
    settings = request.app[SETTINGS]
    token = request.app[TOKEN]
    inventory = await token_inventory(token, settings.keys.ca)
    context: dict[str, Any] = {
        "title": "Keys and certificates",
        "token_error": inventory.error,
        "status": inventory.status,
        "token_keys": inventory.keys,
    }
    ca = inventory.ca_certificate
    context["ca"] = certificate_view(ca) if ca else None
    context["keks"] = await kek_states(settings)
    named = await request.app[SIGNING].registry.all()
    context["signing_keys"] = [
        {"key": key, "versions": [(v, certificate_view(v.certificate)) for v in key.versions]}
        for key in named
    ]
    return page(request, "keys.html", context)
