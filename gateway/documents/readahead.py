"""A reading thread that stays a few chunks ahead of the event loop.

A large download has three stages: read a chunk, check and decrypt it (a
thread; hashlib and AES-GCM release the GIL), and send it (the event loop). When the loop
submitted each next read itself, the reading thread sat idle from the moment it
handed a chunk over until the loop woke up and asked for the next one. Here one
thread per stream reads on by itself, up to ``depth`` chunks ahead, and hands
each chunk to the loop as it is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, Callable

_END = object()


async def read_ahead(
    next_chunk: Callable[[], bytes],
    is_done: Callable[[], bool],
    depth: int,
) -> AsyncGenerator[bytes, None]:
    """Yield chunks from ``next_chunk`` (run on a thread of its own) until ``is_done()``.

    At most ``depth`` chunks wait unread; an exception from ``next_chunk`` is raised
    here in order. Leaving early stops the thread and waits for it.
    """
    loop = asyncio.get_running_loop()
    ready: asyncio.Queue[object] = asyncio.Queue()
    room = threading.Semaphore(depth)
    stopping = threading.Event()
    finished = loop.create_future()

    def hand_over(item: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
            loop.call_soon_threadsafe(ready.put_nowait, item)

    def produce() -> None:
        try:
            while True:
                room.acquire()
                if stopping.is_set():
                    return
                hand_over(next_chunk())
                if is_done():
                    hand_over(_END)
                    return
        except BaseException as exc:  # handed to the reader, raised there
            hand_over(exc)
        finally:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, finished)

    thread = threading.Thread(target=produce, name="sekisho-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = await ready.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            room.release()
            assert isinstance(item, bytes)
            yield item
    finally:
        stopping.set()
        room.release()
        await asyncio.shield(finished)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
