"""Shared fixtures: a real SoftHSM token in a temporary directory, PostgreSQL when reachable."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hsm import SoftHsmLayout, Token, TokenConfig, find_softhsm_module, provision_token, read_pin
from tests.s3server import s3_server  # noqa: F401 - a session fixture for every test

TOKEN_LABEL = "sekisho-test"


def in_ci() -> bool:
    """True when running under .ci/run (CI=true)."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def softhsm_layout(tmp_path_factory: pytest.TempPathFactory) -> SoftHsmLayout:
    """A SoftHSM configuration and initialised token for the whole test session."""
    if find_softhsm_module() is None:
        pytest.fail("SoftHSM is not installed: apt-get install softhsm2 (./dev test does)")
    layout = SoftHsmLayout(tmp_path_factory.mktemp("softhsm"))
    provision_token(layout, TOKEN_LABEL)
    # In-process gateways in tests use this token through a configured module.
    os.environ["SOFTHSM2_CONF"] = str(layout.conf)
    return layout


@pytest.fixture(scope="session")
def token_config(softhsm_layout: SoftHsmLayout) -> TokenConfig:
    """How to open the session's test token."""
    module = find_softhsm_module()
    assert module is not None
    return TokenConfig(
        module_path=module,
        pin=read_pin(pin_file=softhsm_layout.user_pin_file),
        token_label=TOKEN_LABEL,
        softhsm_conf=str(softhsm_layout.conf),
    )


@pytest.fixture
async def token(token_config: TokenConfig) -> AsyncIterator[Token]:
    """A logged-in token for one test."""
    opened = await Token.open(token_config)
    yield opened
    await opened.close()


def _postgres_reachable(host: str = "127.0.0.1", port: int = 5432) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The base URL of a reachable PostgreSQL server, or a skip (a failure in CI)."""
    url = os.environ.get("SEKISHO_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432")
    host_port = url.split("@")[-1].split("/")[0]
    host, _, port = host_port.partition(":")
    if not _postgres_reachable(host, int(port or 5432)):
        message = f"PostgreSQL is not reachable at {host_port} (set SEKISHO_TEST_POSTGRES)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty data directory for one node."""
    path = tmp_path / "var"
    return path


def _admin_sql(postgres_server: str, *statements: tuple[str, ...]) -> None:
    """Run admin statements on the ``postgres`` database in a private event loop.

    A private loop in a worker thread lets sync and async fixtures alike use it.
    """
    import asyncio
    import concurrent.futures

    import asyncpg

    dsn = postgres_server.replace("postgres://", "postgresql://", 1) + "/postgres"

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            for statement, *args in statements:
                await conn.execute(statement, *args)
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@pytest.fixture
def pg_database_url(postgres_server: str) -> Iterator[str]:
    """A throwaway PostgreSQL database for one test, dropped afterwards."""
    import uuid

    name = f"sekisho_test_{uuid.uuid4().hex[:12]}"
    _admin_sql(postgres_server, (f'CREATE DATABASE "{name}"',))
    yield f"{postgres_server}/{name}"
    _admin_sql(
        postgres_server,
        ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name),
        (f'DROP DATABASE IF EXISTS "{name}"',),
    )
