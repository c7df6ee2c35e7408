"""What the portal keeps on the application and on each request."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import MultipartReader, web

from gateway.accounts import Account
from gateway.auth.certificates import PersonCertificates
from gateway.auth.identity import Identity
from gateway.auth.security_keys import SecurityKeys
from gateway.auth.sessions import SessionStore
from gateway.auth.signin import SignInService
from gateway.oversight.verification import LedgerVerifier


@dataclass
class Portal:
    """The services the portal handlers use besides the gateway's own."""

    sessions: SessionStore
    sign_in: SignInService
    certificates: PersonCertificates
    security_keys: SecurityKeys
    verifier: LedgerVerifier
    assume_tls: bool = False
    static_versions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Viewer:
    """The signed-in person on this request."""

    identity: Identity
    person: Account
    session_id: str
    method: str

    @property
    def username(self) -> str:
        """The account name."""
        return self.person.username

    @property
    def display_name(self) -> str:
        """The name to greet them with."""
        return self.person.display_name or self.person.username

    @property
    def clearance(self) -> str:
        """Their clearance as a label: level and compartments."""
        parts = [self.person.level]
        if self.person.compartments:
            parts.append("/".join(sorted(self.person.compartments)))
        return "//".join(parts)

    def has_role(self, *roles: str) -> bool:
        """True when they hold any of ``roles``."""
        return bool(self.identity.roles.intersection(roles))


PORTAL = web.AppKey("portal", Portal)
VIEWER = web.RequestKey("portal_viewer", Viewer)
SECRET = web.RequestKey("portal_secret", str)
"""The browser's secret cookie value that the CSRF token of this request derives from."""
FORM = web.RequestKey("portal_form", MultipartReader)
"""A multipart body whose first part (the CSRF token) the middleware already read."""
WAITING = web.RequestKey("portal_approvals_waiting", int)
"""How many two-person requests by others the signed-in officer could decide (nav count)."""
