"""The one middleware that turns errors into HTTP answers (JSON, never a traceback).

A page renderer registered under :data:`ERROR_PAGE` (the portal's) may answer
instead, for the paths it serves; it returns None for the rest (the API).
"""

from __future__ import annotations

import http
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.db.outage import causes, is_database_busy, is_database_outage, is_refused_value
from gateway.errors import InvalidParameter, SekishoError, TooManyRequests
from gateway.tlog.errors import FormatError
from gateway.tlog.merkle import MissingHashError
from gateway.tlog.witness_protocol import WitnessResponseError
from hsm import HsmError

log = logging.getLogger("sekisho.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorPage = Callable[[web.Request, int, str, str], web.Response | None]
"""(request, status, code, message) -> an error page, or None for the JSON answer."""
ERROR_PAGE: web.AppKey[ErrorPage] = web.AppKey("error_page")


def error_body(
    status: int, code: str, message: str, *, parameter: str | None = None
) -> web.Response:
    """A JSON error response (naming the offending parameter, when there is one)."""
    body = {"error": code, "message": message}
    if parameter is not None:
        body["parameter"] = parameter
    return web.json_response(body, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map SekishoError to its status, token errors to 503, anything else to a bare 500."""
    try:
        return await handler(request)
    except SekishoError as exc:
        if exc.status >= 500:
            log.warning("request failed: %s %s: %s", request.method, request.path, exc.message)
        parameter = exc.parameter if isinstance(exc, InvalidParameter) else None
        response = _answer(request, exc.status, exc.code, exc.message, parameter=parameter)
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except FormatError as exc:
        status = format_status(exc)
        if status >= 500:
            log.warning("request failed: %s %s: %s", request.method, request.path, exc.message)
        return _answer(request, status, exc.code, exc.message)
    except HsmError as exc:
        log.warning("token unavailable: %s %s: %s", request.method, request.path, exc.message)
        return _answer(request, 503, exc.code, f"the hardware token is unavailable: {exc.message}")
    except web.HTTPException as exc:
        if exc.empty_body or exc.status < 400:
            raise
        return _answer(request, exc.status, _code_for(exc.status), _message_for(exc))
    except Exception as exc:
        if is_database_outage(exc):
            log.warning("database unavailable: %s %s: %r", request.method, request.path, exc)
            message = "the database is unavailable; try again shortly"
            return _answer(request, 503, "database_unavailable", message)
        if is_refused_value(exc):
            # the class only: the driver's message quotes the value, which may be a secret
            log.warning("value refused: %s %s: %s", request.method, request.path, _kinds(exc))
            message = "a value in the request cannot be stored or looked up as given"
            return _answer(request, 400, "bad_value", message)
        if is_database_busy(exc):
            log.warning("database busy: %s %s: %r", request.method, request.path, exc)
            message = "the database is busy; try again shortly"
            return _answer(request, 503, "database_busy", message)
        log.exception("unhandled error: %s %s", request.method, request.path)
        return _answer(
            request, 500, "internal_error", "an internal error occurred; it has been logged"
        )


def _kinds(exc: BaseException) -> str:
    """The exception's class and its causes' classes, without their messages."""
    return " <- ".join(type(seen).__name__ for seen in causes(exc))


def format_status(exc: FormatError) -> int:
    """The HTTP status of a format error: the caller's bytes (400) unless the fault is ours."""
    if isinstance(exc, MissingHashError):
        return 500
    if isinstance(exc, WitnessResponseError):
        return 502
    return 400


def _answer(
    request: web.Request, status: int, code: str, message: str, *, parameter: str | None = None
) -> web.Response:
    page = request.app.get(ERROR_PAGE)
    if page is not None:
        try:
            rendered = page(request, status, code, message)
        except Exception:  # a broken page must not hide the error: answer in JSON
            log.exception("error page failed: %s %s", request.method, request.path)
            rendered = None
        if rendered is not None:
            return rendered
    return error_body(status, code, message, parameter=parameter)


ROUTER_MESSAGES = {
    404: "there is nothing at this address",
    405: "this address does not accept that method",
}


def _message_for(exc: web.HTTPException) -> str:
    """Our own sentence instead of aiohttp's bare status phrase ("Not Found")."""
    try:
        phrase = http.HTTPStatus(exc.status).phrase
    except ValueError:
        phrase = ""
    if exc.reason == phrase:
        return ROUTER_MESSAGES.get(exc.status, exc.reason)
    return exc.reason


def _code_for(status: int) -> str:
    return {
        400: "bad_request",
        401: "unauthorised",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
        415: "unsupported_media_type",
        429: "rate_limited",
    }.get(status, "http_error")
