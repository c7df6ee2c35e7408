"""Typed keys for what the composition root stores on the aiohttp application."""

from __future__ import annotations

from aiohttp import web

from gateway.accounts.service import AccountService
from gateway.anchoring.service import Anchoring
from gateway.config import Settings
from gateway.custody.wiring import CustodyApi
from gateway.documents.catalogue import DocumentCatalogue
from gateway.ledger.audit.auditor import LedgerAuditor
from gateway.ledger.service import LedgerService
from gateway.ledger.witnessing import Witnessing
from gateway.oversight.log import OversightLog
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
CUSTODY = web.AppKey("custody", CustodyApi)
WITNESSING = web.AppKey("witnessing", Witnessing)
POLICY = web.AppKey("policy", PolicyDecisionPoint)
"""The one policy decision point: documents, accounts and the portal ask it."""
ACCOUNTS = web.AppKey("accounts", AccountService)
TRAIL = web.AppKey("trail", TrailService)
OVERSIGHT = web.AppKey("oversight", OversightLog)
"""Who looked at the trail, alerts, activity and the ledger (officers, auditors)."""
ANCHORING = web.AppKey("anchoring", Anchoring)
"""Public anchoring at external TSAs (present on every node; acts only while sequencing)."""
