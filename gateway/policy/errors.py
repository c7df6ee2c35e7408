"""The policy package's errors (4xx: they are always about the caller's input or settings)."""

from __future__ import annotations

from gateway.errors import BadRequest


class LabelError(BadRequest):
    """A label, clearance or level scheme is malformed or unknown."""

    code = "invalid_label"
