"""Rendering pages: the shared context, classification banners and label colours."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from gateway.app_keys import POLICY, SETTINGS
from gateway.policy.labels import Label, LabelError, LevelScheme, format_label, highest, parse_label
from web.portal.app_keys import PORTAL, SECRET, VIEWER, WAITING, Viewer
from web.portal.security import csrf_for, secure_headers

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
LEVEL_CLASSES = {
    "UNCLASSIFIED": "unclassified",
    "CONFIDENTIAL": "confidential",
    "SECRET": "secret",
    "TOP SECRET": "top-secret",
}


def level_class(label_text: str) -> str:
    """The CSS class for a label's level: conventional colours for the usual four."""
    level = " ".join(label_text.split("//", 1)[0].upper().split())
    return "lvl-" + LEVEL_CLASSES.get(level, "other")


def scheme_of(app: web.Application) -> LevelScheme:
    """The node's level scheme."""
    return app[POLICY].scheme


def banner_label(scheme: LevelScheme, labels: Iterable[str]) -> str:
    """The highest of the labels shown on a page (the lowest level when none are)."""
    parsed: list[Label] = []
    for text in labels:
        try:
            parsed.append(parse_label(text, scheme))
        except LabelError:
            continue
    try:
        return format_label(highest(parsed, scheme))
    except LabelError:  # REL TO lists with no nation in common: show level and compartments
        bare = [Label(p.level, p.compartments) for p in parsed]
        return format_label(highest(bare, scheme))


def static_versions() -> dict[str, str]:
    """A short content hash per static file, for cache-busting URLs."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        for path in sorted(STATIC_DIR.iterdir())
        if path.is_file()
    }


def _when(value: datetime | str | None) -> str:
    """A time as ``2026-01-31 12:00:00 UTC``."""
    if value is None:
        return ""
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    assert isinstance(moment, datetime)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


REASONS = {
    "granted": "\u2014",  # nothing to explain on a granted row
    "level": "level too low",
    "compartments": "missing compartment",
    "releasability": "not releasable to them",
    "not_found": "no such document",
    "malformed_id": "malformed id",
    "no_such_version": "no such version",
    "role": "role does not allow it",
    "not_a_person": "not a person",
    "label_unreadable": "label unreadable",
    "not_found_or_not_permitted": "not found or not permitted",
    "own_request": "own request: needs another officer",
    "expired": "not approved in time",
}


def reason_text(code: str) -> str:
    """A decision's reason code in words (``results_3`` is "3 results")."""
    digits = code[8:]
    if code.startswith("results_") and digits.isascii() and digits.isdigit() and len(digits) < 10:
        count = int(digits)
        return f"{count} result" + ("" if count == 1 else "s")
    return REASONS.get(code, code.replace("_", " "))


def _size(value: int | None) -> str:
    if value is None:
        return ""
    size = float(value)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{value} bytes"


def setup_templates(app: web.Application) -> None:
    """The Jinja2 environment: our templates, autoescaping everywhere, strict undefined."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["size"] = _size
    env.filters["level_class"] = level_class
    env.filters["reason"] = reason_text
    env.filters["short"] = lambda value: str(value or "")[:8]


def nav_items(viewer: Viewer | None, path: str, waiting: int = 0) -> list[dict[str, Any]]:
    """Navigation for the viewer's roles; the current section marked."""
    if viewer is None:
        return []
    items = [("/documents", "Documents"), ("/me/history", "My activity")]
    items.append(("/me/security", "My security"))
    if viewer.has_role("uploader", "admin"):
        items.insert(1, ("/upload", "Upload"))
    if viewer.has_role("officer", "auditor", "admin"):
        items += [
            ("/officer/trail", "Access trail"),
            ("/officer/alerts", "Alerts"),
            ("/officer/activity", "Activity"),
            ("/officer/custody", "Custody"),
            ("/officer/ledger", "Ledger"),
            ("/officer/oversight", "Oversight log"),
        ]
    if viewer.has_role("officer", "admin"):
        items += [("/approvals", "Approvals")]
    if viewer.has_role("admin"):
        items += [("/admin/people", "People"), ("/admin/clients", "API clients")]
        items += [("/admin/keys", "Keys")]
    return [
        {
            "href": href,
            "text": text,
            "current": path == href or path.startswith(href + "/"),
            "count": waiting if href == "/approvals" else 0,
        }
        for href, text in items
    ]


def page(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    *,
    labels: Iterable[str] = (),
    status: int = 200,
) -> web.Response:
    """Render a portal page with the banner for the labels it shows."""
    viewer = request.get(VIEWER)
    secret = request.get(SECRET)
    portal = request.app.get(PORTAL)
    versions = portal.static_versions if portal is not None else {}
    banner = banner_label(scheme_of(request.app), labels)
    base: dict[str, Any] = {
        "viewer": viewer,
        "csrf": csrf_for(secret) if secret else "",
        "nav": nav_items(viewer, request.path, request.get(WAITING, 0)),
        "banner": banner,
        "banner_class": level_class(banner),
        "static": lambda name: f"/static/{name}?v={versions.get(name, '0')}",
        "node": request.app[SETTINGS].node.name,
        "path": request.path,
    }
    text = aiohttp_jinja2.render_string(template, request, base | context)
    response = web.Response(text=text, status=status, content_type="text/html", charset="utf-8")
    secure_headers(request, response.headers)
    return response
