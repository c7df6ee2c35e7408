"""Typed keys for what the composition root stores on the aiohttp application."""

from __future__ import annotations

from aiohttp import web

from gateway.accounts.service import AccountService
from gateway.anchoring.service import Anchoring
from gateway.config import Settings
from gateway.documents.catalogue import DocumentCatalogue
from gateway.ledger.audit.auditor import LedgerAuditor
from gateway.ledger.service import LedgerService
from gateway.ledger.witnessing import Witnessing
from gateway.policy.pdp import PolicyDecisionPoint
from gateway.signing.wiring import SigningApi
from gateway.trail.service import TrailService
from hsm import Token

SETTINGS = web.AppKey("settings", Settings)
TOKEN = web.AppKey("token", Token)
LEDGER = web.AppKey("ledger", LedgerService)
DOCUMENTS = web.AppKey("documents", DocumentCatalogue)
AUDITOR = web.AppKey("auditor", LedgerAuditor)
SIGNING = web.AppKey("signing", SigningApi)
WITNESSING = web.AppKey("witnessing", Witnessing)
POLICY = web.AppKey("policy", PolicyDecisionPoint)
"""The one policy decision point: documents, accounts and the portal ask it."""
ACCOUNTS = web.AppKey("accounts", AccountService)
TRAIL = web.AppKey("trail", TrailService)
ANCHORING = web.AppKey("anchoring", Anchoring)
"""Public anchoring at external TSAs (present on every node; acts only while sequencing)."""
