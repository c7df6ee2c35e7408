"""The caller of a request: a person (with a clearance) or an API client (with scopes)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.errors import Forbidden, SekishoError

PERSON_ROLES = ("reader", "uploader", "officer", "auditor", "admin")
CLIENT_SCOPES = ("sign", "verify", "cms", "timestamp", "anchor", "ledger-read", "metrics")


class StepUpRequired(Forbidden):
    """Content at this level needs a security-key (or client-certificate) sign-in first."""

    code = "step_up_required"


class Unauthenticated(SekishoError):
    """No valid credentials were presented."""

    status = 401
    code = "unauthenticated"


@dataclass(frozen=True)
class Identity:
    """An authenticated caller."""

    kind: str  # "person" or "client"
    name: str
    principal_id: int | None = None
    client_id: int | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    scopes: frozenset[str] = field(default_factory=frozenset)
    keys: frozenset[str] = field(default_factory=frozenset)
    level: str = ""
    compartments: frozenset[str] = field(default_factory=frozenset)
    nationality: str = ""
    rate_per_minute: int = 0
    via: str = "token"
    strong: bool = False  # signed in or stepped up with a security key or client certificate

    @property
    def is_person(self) -> bool:
        """True for people (portal users or personal API tokens)."""
        return self.kind == "person"

    @property
    def actor(self) -> str:
        """How ledger entries name this caller."""
        return f"{self.kind}:{self.name}"

    def require_role(self, *roles: str) -> None:
        """Forbidden unless the person holds one of ``roles``."""
        if not self.is_person or not self.roles.intersection(roles):
            raise Forbidden(f"this needs the {' or '.join(roles)} role")

    def require_scope(self, scope: str) -> None:
        """Forbidden unless the client holds ``scope``."""
        if self.kind != "client" or scope not in self.scopes:
            raise Forbidden(f"this API client lacks the {scope!r} scope")

    def require_key(self, key: str) -> None:
        """Forbidden unless the client may use token key ``key``."""
        if key not in self.keys:
            raise Forbidden(f"this API client may not use the key {key!r}")
