"""Administrators' pages for signing-API clients: add, change and revoke them, and issue and
revoke their bearer tokens. Every change goes through :class:`ClientService`, the service the
CLI uses, with its checks and its ``client.changed`` ledger entries; a new token is shown on
the page answering the POST only."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.app_keys import LEDGER, SIGNING
from gateway.auth.identity import CLIENT_SCOPES
from gateway.errors import BadRequest, InvalidParameter, NotFound, SekishoError
from gateway.http.params import MAX_INT32, parse_int
from gateway.signing.clients import (
    ClientService,
    ClientSpec,
    ClientView,
    certificate_fingerprint,
    split_names,
)
from web.portal.admin import admin
from web.portal.app_keys import Viewer
from web.portal.auth import source_of
from web.portal.inputs import FormText, form_text
from web.portal.render import page
from web.portal.security import see_other

routes = web.RouteTableDef()
Form = FormText
MAX_RATE_TEXT = 12
SAVED = {
    "changed": "Changes saved and ledgered.",
    "unchanged": "Nothing changed.",
    "token_revoked": "Token revoked; calls with it are refused from now on.",
    "revoked": "Client revoked with all its tokens.",
}


def _service(request: web.Request, viewer: Viewer) -> ClientService:
    return ClientService(
        request.app[LEDGER], actor=viewer.identity.actor, source=source_of(request)
    )


async def _sign_keys(request: web.Request) -> list[str]:
    """Names of the signing (not time-stamping) keys a client may be allowed to use."""
    return [k.name for k in await request.app[SIGNING].registry.all() if k.purpose == "sign"]


def _rate(form: Form) -> int | None:
    text = str(form.get("rate", "")).strip()
    if not text:
        return None
    try:  # the shared strict parser: ASCII digits only ("²" passes isdigit, not int)
        return parse_int("rate", text, high=MAX_INT32)
    except InvalidParameter:
        raise BadRequest(
            "The rate is a whole number of requests per minute (0: unlimited)."
        ) from None


def _fingerprint(form: Form) -> str | None:
    """The certificate field: PEM or SHA-256; empty keeps (or sets none), remove clears."""
    if form.get("remove_certificate"):
        return ""
    text = str(form.get("certificate", "")).strip()
    if not text:
        return None
    if "-----BEGIN" in text:
        return certificate_fingerprint(text.encode("utf-8", errors="replace"))
    return text


def _spec(form: Form) -> ClientSpec:
    """The client as the form describes it (the service checks every value)."""
    return ClientSpec(
        scopes=tuple(str(s) for s in form.getall("scopes", [])),
        keys=tuple(str(k) for k in form.getall("keys", [])),
        rate_per_minute=_rate(form),
        cert_fingerprint=_fingerprint(form),
        chain_writers=split_names([str(form.get("chain_writers", ""))]),
    )


def _form_values(form: Form | None) -> dict[str, Any]:
    if form is None:
        return {
            "name": "",
            "scopes": [],
            "keys": [],
            "rate": "600",
            "chain_writers": "",
            "cert": "",
        }
    return {
        "name": str(form.get("name", "")).strip(),
        "scopes": [str(s) for s in form.getall("scopes", [])],
        "keys": [str(k) for k in form.getall("keys", [])],
        "rate": str(form.get("rate", ""))[:MAX_RATE_TEXT],
        "chain_writers": str(form.get("chain_writers", "")),
        "cert": str(form.get("certificate", "")),
    }


async def _list_page(
    request: web.Request,
    viewer: Viewer,
    *,
    form: Form | None = None,
    error: str = "",
    created: tuple[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    context = {
        "title": "API clients",
        "clients": await _service(request, viewer).all(),
        "scopes": CLIENT_SCOPES,
        "sign_keys": await _sign_keys(request),
        "form": _form_values(form),
        "error": error,
        "created": created,
        "saved": SAVED.get(request.query.get("saved", ""), ""),
        "revoked": request.query.get("revoked", ""),
    }
    return page(request, "clients.html", context, status=status)


@routes.get("/admin/clients")
async def clients(request: web.Request) -> web.Response:
    """API clients: scopes, keys, rate, certificate, live tokens; and the form to add one."""
    return await _list_page(request, admin(request))


@routes.post("/admin/clients")
async def add_client(request: web.Request) -> web.Response:
    """Add a client; its first bearer token is shown on this response only."""
    viewer = admin(request)
    form = await form_text(request)
    try:
        client, token = await _service(request, viewer).add(
            str(form.get("name", "")).strip(), _spec(form)
        )
    except SekishoError as exc:
        if exc.status >= 500:
            raise
        return await _list_page(request, viewer, form=form, error=exc.message, status=exc.status)
    return await _list_page(request, viewer, created=(client.name, token), status=201)


async def _view(request: web.Request, viewer: Viewer, name: str) -> ClientView:
    for view in await _service(request, viewer).all():
        if view.client.name == name:
            return view
    raise NotFound(f"no API client named {name!r}")


async def _client_page(
    request: web.Request,
    viewer: Viewer,
    name: str,
    *,
    error: str = "",
    token: str = "",
    form: Form | None = None,
    status: int = 200,
) -> web.Response:
    view = await _view(request, viewer, name)
    client = view.client
    values = (
        _form_values(form)
        if form is not None
        else {
            "scopes": list(client.scopes),
            "keys": list(client.keys),
            "rate": str(client.rate_per_minute),
            "chain_writers": ", ".join(client.chain_writers),
            "cert": "",
        }
    )
    context = {
        "title": f"API client {client.name}",
        "view": view,
        "client": client,
        "scopes": CLIENT_SCOPES,
        "sign_keys": sorted({*await _sign_keys(request), *client.keys}),
        "form": values,
        "error": error,
        "token": token,
        "saved": SAVED.get(request.query.get("saved", ""), ""),
    }
    return page(request, "client.html", context, status=status)


@routes.get("/admin/clients/{name}")
async def client(request: web.Request) -> web.Response:
    """One client: its settings, its live tokens, and the forms to change them."""
    viewer = admin(request)
    return await _client_page(request, viewer, request.match_info["name"])


@routes.post("/admin/clients/{name}")
async def change_client(request: web.Request) -> web.Response:
    """Change scopes, keys, rate, chain writers or certificate."""
    viewer = admin(request)
    name = request.match_info["name"]
    await _view(request, viewer, name)
    form = await form_text(request)
    try:
        _, changed = await _service(request, viewer).update(name, _spec(form))
    except SekishoError as exc:
        if exc.status >= 500:
            raise
        return await _client_page(
            request, viewer, name, error=exc.message, form=form, status=exc.status
        )
    return see_other(f"/admin/clients/{name}?saved={'changed' if changed else 'unchanged'}")


@routes.post("/admin/clients/{name}/tokens")
async def issue_token(request: web.Request) -> web.Response:
    """Issue another bearer token; shown on this response only, never again."""
    viewer = admin(request)
    name = request.match_info["name"]
    await _view(request, viewer, name)
    form = await form_text(request)
    try:
        token = await _service(request, viewer).issue_token(name, str(form.get("label", "")))
    except SekishoError as exc:
        if exc.status >= 500:
            raise
        return await _client_page(request, viewer, name, error=exc.message, status=exc.status)
    return await _client_page(request, viewer, name, token=token, status=201)


@routes.post("/admin/clients/{name}/tokens/{prefix}/revoke")
async def revoke_token(request: web.Request) -> web.Response:
    """Revoke one token of a client, by its prefix."""
    viewer = admin(request)
    name = request.match_info["name"]
    await _view(request, viewer, name)
    try:
        await _service(request, viewer).revoke_token(name, request.match_info["prefix"])
    except SekishoError as exc:
        if exc.status >= 500:
            raise
        return await _client_page(request, viewer, name, error=exc.message, status=exc.status)
    return see_other(f"/admin/clients/{name}?saved=token_revoked")


@routes.post("/admin/clients/{name}/revoke")
async def revoke_client(request: web.Request) -> web.Response:
    """Revoke a client and all its tokens."""
    viewer = admin(request)
    name = request.match_info["name"]
    await _view(request, viewer, name)
    await _service(request, viewer).revoke(name)
    return see_other(f"/admin/clients?revoked={name}")
