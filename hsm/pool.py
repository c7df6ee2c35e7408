"""An optional pool of worker processes, each loading the module and logging in itself.

Within one process every PKCS#11 call goes through one thread (see
:mod:`hsm.worker`). To use more cores, a pool spreads batches of signatures
over worker processes; each worker opens its own session with the same
configuration, so no module is ever shared between threads.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from hsm.config import TokenConfig
from hsm.errors import HsmError
from hsm.signing import SignRequest

_worker_config: TokenConfig | None = None
_worker_token: object | None = None


def _start_worker(config: TokenConfig) -> None:
    """Worker initialiser: remember the configuration (log-in happens on first use,
    so a wrong PIN surfaces as a typed error instead of a broken pool)."""
    global _worker_config
    _worker_config = config


def _sign_batch(requests: Sequence[SignRequest]) -> list[bytes | HsmError]:
    from hsm.token import Token

    global _worker_token
    if _worker_token is None:
        assert _worker_config is not None, "worker not initialised"
        _worker_token = Token.open_sync(_worker_config)
    token = _worker_token
    assert isinstance(token, Token)
    results: list[bytes | HsmError] = []
    for request in requests:
        try:
            results.append(token.sign_sync(request))
        except HsmError as exc:
            results.append(exc)
    return results


class TokenPool:
    """Signs on ``workers`` processes; use as an async context manager."""

    def __init__(self, config: TokenConfig, workers: int = 2) -> None:
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self._config = config
        self._workers = workers
        self._executor: ProcessPoolExecutor | None = None

    async def __aenter__(self) -> TokenPool:
        context = multiprocessing.get_context("spawn")
        self._executor = ProcessPoolExecutor(
            self._workers, mp_context=context, initializer=_start_worker, initargs=(self._config,)
        )
        # Log every worker in now so a bad PIN or missing token fails here, not later.
        try:
            await asyncio.gather(*(self.sign_many([]) for _ in range(self._workers)))
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    async def sign_many(self, requests: Sequence[SignRequest]) -> list[bytes | HsmError]:
        """Sign a batch, split evenly across the workers; per-item errors are returned."""
        if self._executor is None:
            raise RuntimeError("the pool is not started")
        loop = asyncio.get_running_loop()
        if not requests:
            return await loop.run_in_executor(self._executor, _sign_batch, [])
        size = -(-len(requests) // self._workers)
        chunks = [list(requests[i : i + size]) for i in range(0, len(requests), size)]
        parts = await asyncio.gather(
            *(loop.run_in_executor(self._executor, _sign_batch, chunk) for chunk in chunks)
        )
        return [result for part in parts for result in part]
