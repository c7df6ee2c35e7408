"""The read-only account type the services hand out (re-exported by gateway.accounts).

:class:`Account` is the type in which the services (accounts, sign-in,
certificates, sessions) hand a person to their callers: the fields a caller may
read, and nothing to query or save with. The portal reads those fields and
passes the account back to the services; the type checker keeps it from
touching the database row behind it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Account(Protocol):
    """A person's account, read-only."""

    @property
    def id(self) -> int:
        """The account's number."""
        ...

    @property
    def username(self) -> str:
        """The sign-in name."""
        ...

    @property
    def display_name(self) -> str:
        """The name shown to others."""
        ...

    @property
    def must_change_password(self) -> bool:
        """Whether the next sign-in must choose a new password."""
        ...

    @property
    def level(self) -> str:
        """The clearance level."""
        ...

    @property
    def compartments(self) -> list[str]:
        """The compartments the person is read into."""
        ...

    @property
    def nationality(self) -> str:
        """Three-letter nationality code ('' for none)."""
        ...

    @property
    def roles(self) -> list[str]:
        """Roles: reader, uploader, officer, auditor, admin."""
        ...

    @property
    def disabled(self) -> bool:
        """Whether the account may sign in."""
        ...

    @property
    def created_at(self) -> datetime:
        """When the account was made."""
        ...

    @property
    def updated_at(self) -> datetime:
        """When the account last changed."""
        ...
