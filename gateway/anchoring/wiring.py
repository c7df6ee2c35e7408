"""Build the anchoring service for a node (or the CLI) from its settings."""

from __future__ import annotations

from collections.abc import Callable

from gateway.anchoring.service import Anchoring
from gateway.anchoring.tsa import TrustedTsa
from gateway.anchoring.tsa_client import HttpTsaTransport
from gateway.config import Settings
from gateway.ledger.queued import EntryRecorder
from gateway.ledger.store import LedgerStore


def trusted_tsas(settings: Settings) -> list[TrustedTsa]:
    """The configured TSAs with their certificates loaded (ConfigError if one is unusable)."""
    return [TrustedTsa.from_endpoint(endpoint) for endpoint in settings.anchoring.tsas]


def build_anchoring(
    settings: Settings,
    store: LedgerStore,
    recorder: EntryRecorder,
    is_leader: Callable[[], bool] = lambda: True,
) -> tuple[Anchoring, HttpTsaTransport]:
    """The anchoring service and its transport (start the transport in the event loop)."""
    transport = HttpTsaTransport(settings.anchoring.timeout_ms / 1000)
    anchoring = Anchoring(
        store,
        recorder,
        trusted_tsas(settings),
        transport,
        settings.anchoring,
        is_leader=is_leader,
    )
    return anchoring, transport
