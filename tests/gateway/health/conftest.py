"""In-process gateway fixtures (see tests/gateway/app_fixtures.py)."""

from tests.gateway.app_fixtures import app_node, make_person

__all__ = ["app_node", "make_person"]
