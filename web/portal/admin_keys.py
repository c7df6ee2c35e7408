"""Administrators' page for keys and certificates: the token, its CA, the key-encryption keys
and the named signing keys, with forms to create a named key and to rotate one. Both go
through :class:`KeyManager`, as ``sekisho keys create`` and ``rotate`` do, with the same checks
and the same ``key.registered`` / ``key.rotated`` ledger entries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from gateway.app_keys import LEDGER, SETTINGS, SIGNING, TOKEN
from gateway.documents.kek import kek_states
from gateway.errors import SekishoError
from gateway.node_token import token_inventory
from gateway.signing.keymgmt import KEY_NAME, KeyManager, check_algorithm, check_purpose
from gateway.signing.named_keys import PURPOSES, SIGNING_ALGORITHMS
from web.portal.admin import admin
from web.portal.app_keys import Viewer
from web.portal.inputs import form_text
from web.portal.render import page
from web.portal.security import see_other

routes = web.RouteTableDef()
MAX_NAME = 64


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


def _manager(request: web.Request, viewer: Viewer) -> KeyManager:
    settings = request.app[SETTINGS]
    return KeyManager(
        request.app[TOKEN],
        request.app[LEDGER],
        ca_label=settings.keys.ca,
        node=settings.node.name,
        actor=viewer.identity.actor,
    )


async def _keys_page(
    request: web.Request,
    *,
    error: str = "",
    form: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    settings = request.app[SETTINGS]
    inventory = await token_inventory(request.app[TOKEN], settings.keys.ca)
    context: dict[str, Any] = {
        "title": "Keys and certificates",
        "token_error": inventory.error,
        "status": inventory.status,
        "token_keys": inventory.keys,
        "algorithms": [a.value for a in SIGNING_ALGORITHMS],
        "purposes": PURPOSES,
        "form": form or {"name": "", "algorithm": SIGNING_ALGORITHMS[0].value, "purpose": "sign"},
        "error": error,
        "done": _done_message(request.query),
    }
    ca = inventory.ca_certificate
    context["ca"] = certificate_view(ca) if ca else None
    context["keks"] = await kek_states(settings)
    named = await request.app[SIGNING].registry.all()
    context["signing_keys"] = [
        {"key": key, "versions": [(v, certificate_view(v.certificate)) for v in key.versions]}
        for key in named
    ]
    return page(request, "keys.html", context, status=status)


def _done_message(query: Any) -> str:
    name = str(query.get("key", ""))
    version = str(query.get("version", ""))
    if not KEY_NAME.fullmatch(name) or not version.isdigit() or len(version) > 9:
        return ""  # only what this page's own redirect can say
    if query.get("created"):
        return f"Signing key {name} created (version {version}); the change is ledgered."
    if query.get("rotated"):
        return (
            f"Signing key {name} rotated to version {version}; earlier versions are retired: "
            "they no longer sign but still verify."
        )
    return ""


@routes.get("/admin/keys")
async def keys(request: web.Request) -> web.Response:
    """The token, its keys, KEK versions and the signing keys with their certificates."""
    admin(request)
    return await _keys_page(request)


@routes.post("/admin/keys")
async def create_key(request: web.Request) -> web.Response:
    """Create a named signing key (version 1) on the token."""
    viewer = admin(request)
    form = await form_text(request)
    values = {
        name: str(form.get(name, "")).strip()[:MAX_NAME]
        for name in ("name", "algorithm", "purpose")
    }
    try:
        algorithm = check_algorithm(values["algorithm"])
        purpose = check_purpose(values["purpose"])
        version = await _manager(request, viewer).create(values["name"], algorithm, purpose)
    except SekishoError as exc:
        if exc.status >= 500:
            raise
        return await _keys_page(request, error=exc.message, form=values, status=exc.status)
    request.app[SIGNING].registry.forget()
    return see_other(f"/admin/keys?created=1&key={version.name}&version={version.version}")


@routes.post("/admin/keys/{name}/rotate")
async def rotate_key(request: web.Request) -> web.Response:
    """Make a new version of a named key active; the old one is retired but verifies."""
    viewer = admin(request)
    try:
        version = await _manager(request, viewer).rotate(request.match_info["name"])
    except SekishoError as exc:
        if exc.status >= 500:
            raise
        return await _keys_page(request, error=exc.message, status=exc.status)
    request.app[SIGNING].registry.forget()
    return see_other(f"/admin/keys?rotated=1&key={version.name}&version={version.version}")
