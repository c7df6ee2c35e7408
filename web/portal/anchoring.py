"""How the portal describes a checkpoint's witnessing (one place that reads the witness set)."""

from __future__ import annotations

from aiohttp import web

from gateway.app_keys import LEDGER, SETTINGS
from gateway.ledger.store import StoredCheckpoint
from gateway.oversight.witnesses import CosignatureSummary, cosignature_summary
from gateway.tlog.note import SIG_ED25519_COSIGNATURE, NoteError, parse_verifier_key


def configured_witnesses(app: web.Application) -> tuple[tuple[str, ...], int]:
    """The cosigner key names of the configured witnesses (``ledger.witnesses``) and the quorum.

    Cosignature lines on a note carry the witness's key name (from its vkey),
    which is what the summary matches against.
    """
    settings = app[SETTINGS]
    names: list[str] = []
    for endpoint in settings.ledger.witnesses:
        try:
            key_name, _, _ = parse_verifier_key(endpoint.vkey, sig_type=SIG_ED25519_COSIGNATURE)
        except NoteError:  # validated at start-up; never show a broken entry as a witness
            continue
        names.append(key_name)
    return tuple(names), settings.witness_quorum if names else 0


def cosigning(app: web.Application, checkpoint: StoredCheckpoint) -> CosignatureSummary:
    """Who co-signed ``checkpoint``, against the configured witnesses."""
    names, quorum = configured_witnesses(app)
    return cosignature_summary(checkpoint.note, app[LEDGER].signer.origin, names, quorum)
