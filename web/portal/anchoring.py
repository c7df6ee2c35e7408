"""How the portal describes a checkpoint's witnessing, from the ledger's own witness set."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from gateway.app_keys import LEDGER, SETTINGS, WITNESSING
from gateway.ledger.witnessing import witness_keys
from gateway.oversight.witnesses import CosignatureSummary, cosignature_summary


class SignedCheckpoint(Protocol):
    """Anything carrying a checkpoint's signed note."""

    @property
    def note(self) -> str: ...


def configured_witnesses(app: web.Application) -> tuple[tuple[str, ...], int]:
    """The cosigner key names of the configured witnesses (``ledger.witnesses``) and the quorum.

    Cosignature lines on a note carry the witness's key name (from its vkey),
    which is what the summary matches against. The keys are parsed where the
    ledger parses them (:func:`gateway.ledger.witnessing.configured_witnesses`).
    """
    keys, quorum = witness_keys(app.get(WITNESSING), app[SETTINGS])
    names = tuple(key.key_name for key in keys)
    return names, quorum if names else 0


def cosigning(app: web.Application, checkpoint: SignedCheckpoint) -> CosignatureSummary:
    """Who co-signed ``checkpoint``, against the configured witnesses."""
    names, quorum = configured_witnesses(app)
    return cosignature_summary(checkpoint.note, app[LEDGER].signer.origin, names, quorum)
