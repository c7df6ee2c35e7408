"""Admin API bodies for accounts: the pydantic models validate the requests and build
the responses, and are their OpenAPI schemas. Values that depend on the node (levels,
compartments, nations) are checked by :mod:`gateway.accounts.rules` in the service, as
for the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal, get_args

from pydantic import Field

from gateway.accounts import Account
from gateway.accounts.rules import MAX_DISPLAY_NAME, USERNAME_RE, AccountError
from gateway.accounts.service import AccountChanges, NewAccount, account_view
from gateway.http.models import BodyModel, ResponseModel

Role = Literal["reader", "uploader", "officer", "auditor", "admin"]
_LIST = "must be a list of strings"
_ROLES = f"roles must be a list of: {', '.join(get_args(Role))}"


class _Editable(BodyModel):
    """The fields an administrator may set; ``None`` or absent leaves one as it is."""

    UNKNOWN_CODE: ClassVar[str] = AccountError.code
    FIELD_ERRORS: ClassVar[Mapping[str, tuple[str, str]]] = {
        "display_name": (
            AccountError.code,
            f"the name must be printable and at most {MAX_DISPLAY_NAME} characters",
        ),
        "level": (AccountError.code, "level must be a string"),
        "compartments": (AccountError.code, f"compartments {_LIST}"),
        "nationality": (AccountError.code, "nationality must be a string"),
        "roles": (AccountError.code, _ROLES),
    }

    display_name: Annotated[str, Field(max_length=MAX_DISPLAY_NAME)] | None = None
    level: str | None = Field(None, examples=["SECRET"])
    compartments: list[str] | None = None
    nationality: str | None = Field(
        None, description="ISO 3166-1 alpha-3, or empty", examples=["FRA"]
    )
    roles: list[Role] | None = None


class NewAccountBody(_Editable):
    """A new account: ``username`` and ``level`` required; roles default to reader."""

    MISSING: ClassVar[tuple[str, str] | None] = (
        AccountError.code,
        "username and level are required",
    )
    FIELD_ERRORS: ClassVar[Mapping[str, tuple[str, str]]] = {
        **_Editable.FIELD_ERRORS,
        "username": (
            AccountError.code,
            "invalid username: use 1-64 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        ),
    }

    username: Annotated[str, Field(pattern=f"^{USERNAME_RE.pattern}$")]
    level: str = Field(examples=["SECRET"])

    def new_account(self) -> NewAccount:
        """What the service creates."""
        return NewAccount(
            username=self.username,
            level=self.level,
            compartments=tuple(self.compartments or ()),
            nationality=self.nationality or "",
            roles=tuple(self.roles) if self.roles else NewAccount.roles,
            display_name=self.display_name or "",
        )


class AccountChangesBody(_Editable):
    """Fields to change; only those given change."""

    def changes(self) -> AccountChanges:
        """What the service applies."""
        return AccountChanges(
            display_name=self.display_name,
            level=self.level,
            compartments=None if self.compartments is None else tuple(self.compartments),
            nationality=self.nationality,
            roles=None if self.roles is None else tuple(self.roles),
        )


# ----- responses ---------------------------------------------------------------------

Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class AccountView(ResponseModel):
    """An account as the admin API shows it (never its password hash)."""

    username: str
    display_name: str
    level: str
    compartments: list[str]
    nationality: str = Field(description="ISO 3166-1 alpha-3, or empty")
    roles: list[Role]
    disabled: bool
    must_change_password: bool
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, person: Account) -> AccountView:
        """The view of ``person`` (:func:`gateway.accounts.service.account_view`)."""
        return cls.model_validate(account_view(person))


class AccountList(ResponseModel):
    """Every account."""

    users: list[AccountView]


class CreatedAccount(ResponseModel):
    """A new account and its one-time password (in this response only)."""

    user: AccountView
    one_time_password: str


class UpdatedAccount(ResponseModel):
    """The account after a change, and the names of the fields that changed."""

    user: AccountView
    changed: list[str]


class SwitchedAccount(ResponseModel):
    """The account after enabling or disabling it, and whether that changed anything."""

    user: AccountView
    changed: bool
