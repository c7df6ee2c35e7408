"""Which paths are for machines (JSON and plain resources) and which are the portal's pages."""

from __future__ import annotations

MACHINE_PREFIXES = ("/api/", "/ledger/", "/healthz", "/readyz", "/metrics")


def is_machine_path(path: str) -> bool:
    """True for the API, ledger resources, health and metrics; False for portal pages."""
    return path == "/api" or path.startswith(MACHINE_PREFIXES)
