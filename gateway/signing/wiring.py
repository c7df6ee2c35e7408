"""Build the signing API's services for a node."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.auth.ratelimit import RateLimiter
from gateway.config import Settings
from gateway.ledger.service import LedgerService
from gateway.signing.anchors import AnchorService
from gateway.signing.named_keys import KeyRegistry
from gateway.signing.service import SigningService
from hsm import Token


@dataclass(frozen=True)
class SigningApi:
    """What the signing routes use."""

    registry: KeyRegistry
    signing: SigningService
    anchors: AnchorService
    limiter: RateLimiter
    max_batch: int


def build_signing(settings: Settings, token: Token, ledger: LedgerService) -> SigningApi:
    """Key registry, signing and anchoring services and the per-process rate limiter."""
    registry = KeyRegistry(token, settings.keys.ca)
    signing = SigningService(
        registry,
        ledger,
        tsa_key=settings.signing.tsa_key,
        tsa_policy=settings.signing.tsa_policy,
    )
    return SigningApi(
        registry=registry,
        signing=signing,
        anchors=AnchorService(ledger),
        limiter=RateLimiter(share=settings.http.workers or 1),  # the supervisor sets workers
        max_batch=settings.signing.max_batch,
    )
