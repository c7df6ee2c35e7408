"""Who may read the log's entries (the JSON entries and the tlog-tiles entry bundles).

Checkpoints, hash tiles, proofs, the log key and receipts are public: witnesses
and receipt holders need nothing else. Entries are served to people holding
one of :data:`ENTRY_READER_ROLES` and to API clients holding the
:data:`LEDGER_READ_SCOPE` (registered mirrors), unless the operator set
``ledger.public_entries``. Every route that serves entry contents (or openings
of them) asks :func:`require_entry_access`, so the rule lives here only.
"""

from __future__ import annotations

from gateway.auth.identity import Identity, Unauthenticated
from gateway.errors import Forbidden

ENTRY_READER_ROLES = frozenset({"officer", "auditor", "admin"})
"""People who may read every entry."""
LEDGER_READ_SCOPE = "ledger-read"
"""The API-client scope of a registered mirror (or any other machine reader of entries)."""


class EntriesNeedCredential(Unauthenticated):
    """An anonymous request for entries while the log does not serve them publicly."""

    code = "entries_need_credential"


class EntriesForbidden(Forbidden):
    """An authenticated caller who is neither an officer, an auditor, an admin nor a mirror."""

    code = "entries_forbidden"


def may_read_entries(identity: Identity | None, *, public: bool = False) -> bool:
    """True when ``identity`` may read entries (anyone may when ``public``)."""
    if public:
        return True
    if identity is None:
        return False
    if identity.is_person:
        return bool(identity.roles & ENTRY_READER_ROLES)
    return identity.kind == "client" and LEDGER_READ_SCOPE in identity.scopes


def may_open(identity: Identity, fields: dict[str, object]) -> bool:
    """Who may see an entry's opening: entry readers among people (officers, auditors,
    admins) any; a person the entries about their own actions (``actor`` is them).

    Mirrors (``ledger-read`` clients) replicate commitments, never openings.
    """
    if not identity.is_person:
        return False
    if identity.roles & ENTRY_READER_ROLES:
        return True
    return fields.get("actor") == identity.actor


HIDDEN_IN_OWN_REFUSALS = frozenset({"reason", "version"})
"""What a person's opening of their own refusal about a document leaves out."""


def hidden_fields(identity: Identity, fields: dict[str, object]) -> frozenset[str]:
    """The fields of an entry ``identity`` may open (:func:`may_open`) but not see.

    Entry readers see every field. A person opening a refusal of their own about a
    document sees it without the reason and the version, as their trail shows it
    (gateway/trail/own_view.py): ``level`` against ``not_found``, or a version
    number, would tell a hidden document from an id that never existed.
    """
    if not identity.is_person or identity.roles & ENTRY_READER_ROLES:
        return frozenset()
    if fields.get("outcome") in (None, "granted") or fields.get("document") is None:
        return frozenset()
    return HIDDEN_IN_OWN_REFUSALS


def require_entry_access(identity: Identity | None, *, public: bool = False) -> None:
    """Raise 401 (no credential) or 403 (a credential without the right) unless allowed."""
    if may_read_entries(identity, public=public):
        return
    if identity is None:
        raise EntriesNeedCredential(
            "ledger entries are served to officers, auditors and registered mirrors only: "
            "send 'Authorization: Bearer <token>'"
        )
    raise EntriesForbidden(
        "this credential may not read ledger entries (it needs the officer, auditor or admin "
        f"role, or the {LEDGER_READ_SCOPE!r} scope)"
    )
