"""Typed keys for what the witness composition root stores on its aiohttp application."""

from __future__ import annotations

from aiohttp import web

from gateway.config import Settings
from gateway.witness.runner import MirrorRunner
from gateway.witness.service import WitnessService

SETTINGS = web.AppKey("witness_settings", Settings)
SERVICE = web.AppKey("witness_service", WitnessService)
MIRRORS = web.AppKey("witness_mirrors", MirrorRunner)


class ResponseCounts:
    """add-checkpoint answers by HTTP status since start, for /metrics."""

    def __init__(self) -> None:
        self.by_status: dict[int, int] = {}

    def add(self, status: int) -> None:
        """Count one answer."""
        self.by_status[status] = self.by_status.get(status, 0) + 1


REQUESTS = web.AppKey("witness_requests", ResponseCounts)
