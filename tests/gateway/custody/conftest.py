"""Custody tests use the signing API's in-process node (tests/gateway/signing/api_node.py)."""

from __future__ import annotations

from tests.gateway.signing.api_node import node

__all__ = ["node"]
