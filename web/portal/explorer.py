"""The API explorer at ``/api/docs``: Swagger UI rendering ``/api/openapi.json``.

Swagger UI comes from the ``swagger-ui-py`` package (its bundled ``static``
files); only the two files the page uses are served, from this origin, under
``/static/swagger-ui/``. The page has no inline script: its initializer is
``/static/explorer.js``. It is public, like the document it shows; requests
sent from it carry only the bearer token typed into its Authorize dialog.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import aiohttp_jinja2
from aiohttp import web

from gateway.http.openapi import EXPLORER_PATH, OPENAPI_PATH
from web.portal.app_keys import PORTAL

routes = web.RouteTableDef()
ASSETS_PREFIX = "/static/swagger-ui/"
ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js"})
# Swagger UI sets a few style attributes from script (CSSOM, allowed by style-src 'self'),
# and its stylesheet draws icons as data: SVG images.
EXPLORER_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def swagger_ui_dir() -> Path:
    """The ``static`` folder of the installed ``swagger_ui`` package (not imported)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def swagger_ui_version() -> str:
    """The installed swagger-ui-py version (cache-busts the asset URLs)."""
    return importlib.metadata.version("swagger-ui-py")


@routes.get(EXPLORER_PATH)
async def explorer(request: web.Request) -> web.Response:
    """The explorer page (no inline script or style)."""
    portal = request.app.get(PORTAL)
    versions = portal.static_versions if portal is not None else {}
    bundle = swagger_ui_version()
    context = {
        "spec": OPENAPI_PATH,
        "css": f"{ASSETS_PREFIX}swagger-ui.css?v={bundle}",
        "bundle": f"{ASSETS_PREFIX}swagger-ui-bundle.js?v={bundle}",
        "init": f"/static/explorer.js?v={versions.get('explorer.js', '0')}",
        "own_css": f"/static/explorer.css?v={versions.get('explorer.css', '0')}",
        "favicon": f"/static/favicon.svg?v={versions.get('favicon.svg', '0')}",
    }
    text = aiohttp_jinja2.render_string("explorer.html", request, context)
    response = web.Response(text=text, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = EXPLORER_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.get(ASSETS_PREFIX + "{name}")
async def asset(request: web.Request) -> web.FileResponse:
    """One of the Swagger UI files the explorer uses (404 for anything else)."""
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return web.FileResponse(swagger_ui_dir() / name)
