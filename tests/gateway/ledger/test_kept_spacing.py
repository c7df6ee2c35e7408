"""The checkpoint kept on the token is written at most once per ``KEEP_INTERVAL``.

A token write is slow (SoftHSM stores the object durably) and shares the token
with checkpoint signing, which every ledgered read waits for; checkpoints that
come one at a time, each after the previous write ended, must still be spaced.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any, cast

import pytest

from gateway.ledger import service as service_module
from gateway.ledger.rollback import TokenCheckpoint
from gateway.ledger.service import LedgerService
from gateway.ledger.store import StoredCheckpoint


class RecordingKeeper:
    """Stands in for the token: records each write's time and size."""

    def __init__(self) -> None:
        self.writes: list[tuple[float, int]] = []

    async def write(self, checkpoint: StoredCheckpoint) -> None:
        self.writes.append((time.monotonic(), checkpoint.size))


class NoStore:
    async def enqueue(self, entries: Any) -> list[int]:
        raise AssertionError("nothing is appended here")


def ledger_with(keeper: RecordingKeeper) -> LedgerService:
    unused = cast(Any, None)
    store = cast(Any, NoStore())
    return LedgerService(store, unused, unused, node="n", kept=cast(TokenCheckpoint, keeper))


async def test_checkpoints_one_at_a_time_are_kept_spaced_and_the_newest_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service_module, "KEEP_INTERVAL", 0.2)
    keeper = RecordingKeeper()
    ledger = ledger_with(keeper)
    started = time.monotonic()
    for size in range(1, 41):  # a checkpoint every 20 ms, each after the last write ended
        ledger._keep(StoredCheckpoint(size=size, root=b"\0" * 32, note=""))
        await asyncio.sleep(0.02)
    await ledger._flush_kept()
    elapsed = time.monotonic() - started

    times = [at for at, _ in keeper.writes]
    assert all(b - a >= 0.2 - 1e-3 for a, b in itertools.pairwise(times))
    assert len(times) <= elapsed / 0.2 + 1
    assert keeper.writes[-1][1] == 40  # the newest checkpoint is kept in the end
