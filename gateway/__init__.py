"""Sekisho gateway: domain logic, HTTP API, ledger, storage, CLI and app composition."""

__version__ = "0.1.0"
