"""The one error base of the pure formats: bytes that do not parse or do not verify.

Format errors carry a stable ``code`` and a message for a person, never an HTTP
status: the gateway's error middleware decides what a caller is answered.
"""

from __future__ import annotations


class FormatError(Exception):
    """Malformed, inconsistent or unverifiable transparency-log data."""

    code: str = "invalid_format"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
