"""Document tests run on the shared in-process gateway (tests/gateway/app_fixtures.py),
with people whose clearance the tests choose."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from gateway.auth.principals import Principal
from gateway.auth.tokens import issue_token
from tests.gateway.app_fixtures import AppNode, app_node

Gateway = AppNode
MakePerson = Callable[..., Awaitable[dict[str, str]]]
__all__ = ["Gateway", "MakePerson", "app_node"]


@pytest.fixture
def gateway(app_node: AppNode) -> AppNode:
    """The in-process node under test."""
    return app_node


@pytest.fixture
def make_person(app_node: AppNode) -> MakePerson:
    """Create a person with a clearance and return a personal token's Authorization header."""

    async def make(
        username: str,
        level: str,
        compartments: tuple[str, ...] = (),
        nationality: str = "USA",
        roles: tuple[str, ...] = ("reader", "uploader"),
    ) -> dict[str, str]:
        person = await Principal.create(
            username=username,
            level=level,
            compartments=list(compartments),
            nationality=nationality,
            roles=list(roles),
        )
        return {"Authorization": f"Bearer {await issue_token(principal=person)}"}

    return make
