"""Build the ledger service for a node from its settings and token."""

from __future__ import annotations

from gateway.config import Settings
from gateway.http.client_tls import client_ssl_context
from gateway.ledger.checkpoint_signer import CheckpointSigner
from gateway.ledger.doorbell import Doorbell
from gateway.ledger.leadership import FileLeadership, Leadership, PostgresLeadership, lock_key
from gateway.ledger.rollback import TokenCheckpoint
from gateway.ledger.service import LedgerService
from gateway.ledger.store import TortoiseLedgerStore
from gateway.ledger.witness_client import HttpWitnessTransport
from gateway.ledger.witnessing import Witnessing, configured_witnesses
from hsm import Token


def leadership_for(settings: Settings) -> Leadership:
    """Advisory lock on PostgreSQL, a file lock beside an SQLite database."""
    url = settings.database_url
    if url.startswith("sqlite://"):
        return FileLeadership(settings.data_dir / "sequencer.lock")
    return PostgresLeadership(url, lock_key(settings.ledger_origin))


async def build_ledger(settings: Settings, token: Token) -> LedgerService:
    """A ledger service (not yet started) for this node."""
    signer = await CheckpointSigner.create(token, settings.keys.ledger, settings.ledger_origin)
    return LedgerService(
        TortoiseLedgerStore(),
        signer,
        leadership_for(settings),
        node=settings.node.name,
        batch_size=settings.ledger.batch_size,
        batch_ms=settings.ledger.batch_ms,
        kept=TokenCheckpoint(token, settings.ledger_origin),
        bell=Doorbell(settings.database_url),
    )


def build_witnessing(settings: Settings, ledger: LedgerService) -> Witnessing | None:
    """The witness coordinator for the configured witnesses, or None without any.

    Its transport is not started; start it (and the coordinator) in the event loop.
    """
    if not settings.ledger.witnesses:
        return None
    ssl_context = client_ssl_context(settings.ledger.witness_tls_ca, "ledger.witness_tls_ca")
    transport = HttpWitnessTransport(settings.ledger.witness_timeout_ms / 1000, ssl_context)
    return Witnessing(ledger, configured_witnesses(settings), settings.witness_quorum, transport)
