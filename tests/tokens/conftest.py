"""Session fixtures for tokens other than SoftHSM (started once per test session).

A token that cannot run here (:class:`TokenUnavailable`) skips its tests, and fails them in CI.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NoReturn

import pytest

from tests.conftest import in_ci
from tests.tokens import TokenUnavailable
from tests.tokens.opencryptoki import OpencryptokiToken, in_use, opencryptoki_token
from tests.tokens.tpm import TpmToken, tpm_token


def _unavailable(exc: TokenUnavailable) -> NoReturn:
    if in_ci():
        pytest.fail(str(exc))
    pytest.skip(str(exc))


@pytest.fixture(scope="session")
def opencryptoki_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpencryptokiToken]:
    """opencryptoki's software token behind a running pkcsslotd (shared by xdist workers)."""
    # With xdist every worker has its own base temp under one shared parent.
    shared = tmp_path_factory.getbasetemp().parent / "tokens-shared"
    with contextlib.ExitStack() as stack:
        try:
            token = stack.enter_context(opencryptoki_token(shared))
        except TokenUnavailable as exc:
            _unavailable(exc)
        yield token


@pytest.fixture
def opencryptoki(opencryptoki_daemon: OpencryptokiToken) -> Iterator[OpencryptokiToken]:
    """The soft token for one test, which the daemon is not stopped under (a shared lock)."""
    with in_use(opencryptoki_daemon) as token:
        yield token


@pytest.fixture(scope="session")
def tpm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TpmToken]:
    """A software TPM 2.0 behind tpm2-abrmd and tpm2-pkcs11 (one per xdist worker)."""
    with contextlib.ExitStack() as stack:
        try:
            token = stack.enter_context(tpm_token(tmp_path_factory.mktemp("tpm")))
        except TokenUnavailable as exc:
            _unavailable(exc)
        yield token
