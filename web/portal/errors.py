"""Friendly error pages for portal paths (the API keeps its JSON errors)."""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.auth.identity import StepUpRequired
from gateway.http.paths import is_machine_path
from web.portal.render import page
from web.portal.security_keys import step_up_page, step_up_target

log = logging.getLogger("sekisho.portal")

TITLES = {
    400: "That request could not be understood",
    401: "Please sign in",
    403: "You are not allowed to do this",
    404: "Not found",
    405: "That action is not available here",
    409: "That conflicts with the current state",
    410: "This version was destroyed",
    413: "That file is too large",
    416: "That range is not available",
    429: "Too many attempts",
    500: "Something went wrong on our side",
    503: "The service is temporarily unavailable",
}
HINTS = {
    400: "Check what you entered and try again.",
    403: "If you think you should have access, ask your security officer.",
    404: (
        "The page or document does not exist, or your clearance does not cover it. "
        "Every attempt is recorded."
    ),
    429: "Wait a while, then try again.",
    500: "The error has been logged. Try again; if it persists, tell your administrator.",
    503: (
        "A part of the service (the database, the hardware token or the ledger) does not "
        "answer right now. Nothing was served. Try again in a minute."
    ),
}
GENERIC = {
    500: "An internal error occurred.",
}


def error_page(request: web.Request, status: int, code: str, message: str) -> web.Response | None:
    """An HTML error page for portal paths; None for machine paths (JSON there)."""
    if is_machine_path(request.path):
        return None
    if code == StepUpRequired.code:  # a prompt, not a dead end: confirm, then continue
        return step_up_page(request, step_up_target(request), status=status)
    title = TITLES.get(status, "Something went wrong")
    context = {
        "status": status,
        "title": title,
        "message": GENERIC.get(status, message),
        "hint": HINTS.get(status, ""),
        "code": code,
    }
    return page(request, "error.html", context, status=status)
