"""What a valid account looks like: username, name, clearance and roles.

Clearance parts are checked with :mod:`gateway.policy.labels` against the
node's level scheme, and returned in canonical form (upper case, sorted).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gateway.auth.identity import PERSON_ROLES
from gateway.errors import BadRequest
from gateway.policy.labels import LabelError, LevelScheme

USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MAX_DISPLAY_NAME = 128
MAX_TOKEN_LABEL = 64
DEFAULT_ROLES = ("reader",)


class AccountError(BadRequest):
    """An account field is malformed or out of range."""

    code = "invalid_account"


def check_username(username: str) -> str:
    """A username: 1-64 of a-z 0-9 . _ -, starting with a letter or digit."""
    if not isinstance(username, str) or not USERNAME_RE.fullmatch(username):
        raise AccountError(
            f"invalid username {username!r}: use 1-64 lower-case letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    return username


def check_display_name(name: str) -> str:
    """A display name: printable, at most 128 characters, outer spaces removed."""
    if not isinstance(name, str):
        raise AccountError("the name must be a string")
    name = name.strip()
    if len(name) > MAX_DISPLAY_NAME or not name.isprintable():
        raise AccountError(f"the name must be printable and at most {MAX_DISPLAY_NAME} characters")
    return name


def check_token_label(label: str) -> str:
    """A token label: printable, at most 64 characters."""
    if not isinstance(label, str) or len(label) > MAX_TOKEN_LABEL or not label.isprintable():
        raise AccountError(f"a token label is printable and at most {MAX_TOKEN_LABEL} characters")
    return label.strip()


def check_level(scheme: LevelScheme, level: str) -> str:
    """The canonical spelling of a level of this node's scheme."""
    if not isinstance(level, str):
        raise AccountError("the level must be a string")
    try:
        return scheme.canonical_level(level)
    except LabelError as exc:
        known = ", ".join(scheme.levels)
        raise AccountError(f"{exc.message} (levels: {known})") from None


def check_compartments(scheme: LevelScheme, names: Iterable[str]) -> list[str]:
    """Compartment names, upper case, sorted, without duplicates."""
    folded = [_fold("compartment", name) for name in names]
    if len(set(folded)) != len(folded):
        raise AccountError("a compartment is listed twice")
    try:
        for name in folded:
            scheme.check_compartment(name)
    except LabelError as exc:
        raise AccountError(exc.message) from None
    return sorted(folded)


def check_nationality(scheme: LevelScheme, nationality: str) -> str:
    """An ISO 3166-1 alpha-3 code in upper case, or "" for none (never a coalition)."""
    code = _fold("nationality", nationality)
    try:
        return scheme.nations.nationality(code)
    except LabelError as exc:
        raise AccountError(f"nationality: {exc.message}") from None


def check_roles(roles: Iterable[str]) -> list[str]:
    """A non-empty subset of the person roles, sorted."""
    chosen = [_fold("role", role).lower() for role in roles]
    unknown = sorted(set(chosen) - set(PERSON_ROLES))
    if unknown:
        raise AccountError(
            f"unknown role(s) {', '.join(unknown)} (roles: {', '.join(PERSON_ROLES)})"
        )
    if not chosen:
        raise AccountError(f"give at least one role ({', '.join(PERSON_ROLES)})")
    return sorted(set(chosen))


def split_list(text: str) -> list[str]:
    """``"a, b"`` as ``["a", "b"]``; an empty string is an empty list."""
    return [part.strip() for part in text.split(",") if part.strip()]


def _fold(kind: str, value: str) -> str:
    if not isinstance(value, str):
        raise AccountError(f"each {kind} must be a string")
    return value.strip().upper()
