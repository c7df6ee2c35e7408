"""The token thread's queue: the ledger's urgent work (checkpoints, cosignatures) goes
before ordinary work waiting, such as signing API batches, without losing or reordering
that work."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from hsm.worker import TokenThread


def job(name: str, done: list[str], *, hold: threading.Event | None = None) -> Callable[[], str]:
    """A call that notes its name when it runs (after ``hold`` is set, if given)."""

    def run() -> str:
        if hold is not None:
            hold.wait(10)
        done.append(name)
        return name

    return run


async def test_urgent_work_queued_mid_batch_runs_after_the_current_call_only() -> None:
    thread = TokenThread("test-token")
    done: list[str] = []
    started, hold = threading.Event(), threading.Event()

    def first() -> str:
        started.set()
        return job("first", done, hold=hold)()

    ordinary = [asyncio.ensure_future(thread.run(first))] + [
        asyncio.ensure_future(thread.run(job(f"batch-{n}", done))) for n in range(5)
    ]
    assert await asyncio.to_thread(started.wait, 10)  # the batch is being worked through
    urgent = asyncio.ensure_future(thread.run(job("checkpoint", done), urgent=True))
    later = asyncio.ensure_future(thread.run(job("later", done)))
    await asyncio.sleep(0)  # both calls are queued (their first steps run) before release
    hold.set()

    answers = await asyncio.gather(*ordinary, urgent, later)

    assert done == ["first", "checkpoint", *(f"batch-{n}" for n in range(5)), "later"]
    assert answers == ["first", *(f"batch-{n}" for n in range(5)), "checkpoint", "later"]
    thread.close()


async def test_failures_reach_their_own_callers_on_both_lanes() -> None:
    thread = TokenThread("test-token")

    def fails() -> str:
        raise ValueError("token said no")

    results = await asyncio.gather(
        thread.run(fails),
        thread.run(fails, urgent=True),
        thread.run(lambda: "fine"),
        thread.run(lambda: "fine too", urgent=True),
        return_exceptions=True,
    )

    assert [type(r) if isinstance(r, BaseException) else r for r in results] == [
        ValueError,
        ValueError,
        "fine",
        "fine too",
    ]
    thread.close()
    with pytest.raises(RuntimeError, match="closed"):
        await thread.run(lambda: "late", urgent=True)
