"""The one error hierarchy of the gateway; the HTTP middleware maps it to status codes."""

from __future__ import annotations


class SekishoError(Exception):
    """Base of every error the gateway raises on purpose.

    ``status`` is the HTTP status the API answers with, ``code`` a stable
    machine-readable identifier, and the message is meant for a person.
    """

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class BrokenStream(SekishoError):
    """A response body failed after bytes may have left (the download loop aborts the
    connection, so the client sees a truncated response, never a complete-looking one)."""

    status = 503
    code = "broken_stream"


class BadRequest(SekishoError):
    """The caller sent something malformed or out of range."""

    status = 400
    code = "bad_request"


class InvalidParameter(BadRequest):
    """A path or query parameter is missing, repeated or malformed; ``parameter`` names it."""

    code = "invalid_parameter"

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class NotFound(SekishoError):
    """The thing does not exist, or the caller may not know it exists."""

    status = 404
    code = "not_found"


class Forbidden(SekishoError):
    """The caller is known but not allowed to do this."""

    status = 403
    code = "forbidden"


class Conflict(SekishoError):
    """The request conflicts with the current state."""

    status = 409
    code = "conflict"


class Unavailable(SekishoError):
    """A dependency (token, database, ledger) cannot serve right now."""

    status = 503
    code = "unavailable"


class TooLarge(SekishoError):
    """The request body is larger than this endpoint accepts."""

    status = 413
    code = "too_large"


class UnsupportedMediaType(SekishoError):
    """The request body has the wrong Content-Type."""

    status = 415
    code = "unsupported_media_type"


class ConfigError(SekishoError):
    """A setting is missing or invalid; the message names the setting."""

    status = 500
    code = "config_error"


class TooManyRequests(SekishoError):
    """The caller exceeded its rate limit; ``retry_after`` is in whole seconds."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class LedgerRolledBack(Unavailable):
    """The database ledger is shorter than, or differs from, the checkpoint kept on the token."""

    code = "ledger_rolled_back"
