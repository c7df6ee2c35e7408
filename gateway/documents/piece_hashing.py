"""A helper process that hashes stream pieces beside the reading thread.

Checking a download hashes every byte (SHA-256, the anchor's leaves), and in
one Python process that work stays on one core: hashing on a second thread
hands the GIL over at every piece, which cost more than it saved
(docs/performance.md). A helper is a separate process, so it hashes with no GIL
between it and the gateway: the reading thread copies some of a chunk's whole
pieces into a memory region both processes map, asks the helper for their leaf
hashes, hashes the other pieces itself meanwhile, and compares all of them with
the anchored leaves before any byte of the chunk is decrypted.

The helper only ever sees ciphertext and answers with hashes; the comparison is
the gateway's. It exits when its socket closes (the gateway stopped or died). If
it fails, the reading thread hashes the pieces itself: a download never fails
because of a helper.

Run as ``python -m gateway.documents.piece_hashing SOCKET_FD MEMORY_FD SIZE``
(the gateway starts it; nothing else should).
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

from gateway.tlog.merkle import HASH_SIZE, leaf_hash

_REQUEST = struct.Struct("<I")  # number of pieces; then one uint32 length per piece
_MAX_PIECES = 4096
HELPER_CAPACITY = 1024 * 1024
"""Bytes a helper hashes per request: the larger part of a 1 MiB chunk at most."""
START_RETRY_SECONDS = 60.0
"""After a helper failed to start, downloads hash alone this long before the next try."""

_log = logging.getLogger("sekisho.documents")


class HelperFailed(Exception):
    """The helper process could not answer."""


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        count = sock.recv_into(view[got:])
        if count == 0:
            raise EOFError
        got += count
    return bytes(buffer)


class PieceHashHelper:
    """One helper process and the memory it shares with the gateway (one user at a time)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        memory_fd = os.memfd_create("sekisho-pieces", os.MFD_CLOEXEC)
        ours, theirs = socket.socketpair()
        try:
            os.ftruncate(memory_fd, capacity)
            self._memory = mmap.mmap(memory_fd, capacity)
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-m",
                    __name__,
                    str(theirs.fileno()),
                    str(memory_fd),
                    str(capacity),
                ],
                pass_fds=(theirs.fileno(), memory_fd),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env={},  # no PIN or other secret of the gateway's environment
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
            os.close(memory_fd)
        self._socket = ours
        self._lengths: list[int] = []  # of the request not yet answered
        self.broken = False
        self.answered = 0  # pieces hashed so far

    @property
    def pid(self) -> int:
        """The helper's process id."""
        return self._process.pid

    @property
    def usable(self) -> bool:
        """True unless it failed or an answer is still unread (its user stopped half-way)."""
        return not self.broken and not self._lengths

    def send(self, pieces: Sequence[memoryview]) -> None:
        """Copy ``pieces`` into the shared memory and ask for their leaf hashes."""
        offset = 0
        for piece in pieces:
            self._memory[offset : offset + len(piece)] = piece
            offset += len(piece)
        lengths = [len(piece) for piece in pieces]
        request = _REQUEST.pack(len(lengths)) + struct.pack(f"<{len(lengths)}I", *lengths)
        try:
            self._socket.sendall(request)
        except OSError as exc:
            self.broken = True
            raise HelperFailed(str(exc)) from None
        self._lengths = lengths

    def receive(self) -> list[bytes]:
        """The leaf hashes of the pieces last sent, in order."""
        count = len(self._lengths)
        try:
            answer = _receive_exactly(self._socket, HASH_SIZE * count)
        except (OSError, EOFError) as exc:
            self.broken = True
            raise HelperFailed(str(exc) or "the helper went away") from None
        self._lengths = []
        self.answered += count
        return [answer[i * HASH_SIZE : (i + 1) * HASH_SIZE] for i in range(count)]

    def close(self) -> None:
        """Stop the helper (it exits when its socket closes) and unmap the memory."""
        self._socket.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=5)
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        with contextlib.suppress(BufferError):
            self._memory.close()


class PieceHashHelpers:
    """Helpers lent to one download at a time.

    Nothing is started until a download asks: the first ask starts a helper on a
    thread of its own and is answered None (that download hashes alone), later
    ones get it while it is idle. At most ``count`` run; a broken one is stopped
    (on a thread: never on the caller's event loop) when given back and started
    again on a later ask. A start that fails is not tried again for
    ``retry_seconds``: downloads ask at every chunk, and must not start a process each.
    """

    def __init__(
        self,
        count: int,
        capacity: int = HELPER_CAPACITY,
        start: Callable[[int], PieceHashHelper] = PieceHashHelper,
        retry_seconds: float = START_RETRY_SECONDS,
    ) -> None:
        self._count = count
        self._capacity = capacity
        self._start = start
        self._retry_seconds = retry_seconds
        self._idle: list[PieceHashHelper] = []
        self._running = 0  # started or starting, idle or lent
        self._lock = threading.Lock()
        self._closed = False
        self._next_start = 0.0  # monotonic time before which no start is tried

    def lend(self) -> PieceHashHelper | None:
        """An idle helper, or None (and one starting for later, if fewer than ``count`` run)."""
        with self._lock:
            if self._closed:
                return None
            if self._idle:
                return self._idle.pop()
            if self._running >= self._count or time.monotonic() < self._next_start:
                return None
            self._running += 1
        threading.Thread(target=self._start_one, name="sekisho-helper-start", daemon=True).start()
        return None

    def _start_one(self) -> None:
        try:
            helper = self._start(self._capacity)
        except Exception as exc:  # any failure: counted out, and not retried at once
            _log.warning(
                "a piece-hashing helper did not start (next try in %.0f s): %s",
                self._retry_seconds,
                exc,
            )
            with self._lock:
                self._running -= 1
                self._next_start = time.monotonic() + self._retry_seconds
            return
        self.give_back(helper)

    def give_back(self, helper: PieceHashHelper) -> None:
        """Return a helper after use; a broken one (or any, once closed) is stopped."""
        with self._lock:
            keep = helper.usable and not self._closed
            if keep:
                self._idle.append(helper)
            else:
                self._running -= 1
        if not keep:
            if helper.broken:
                _log.warning("a piece-hashing helper failed; its download was checked without it")
            # close() may wait for the process: not on the event loop that gives it back
            threading.Thread(target=helper.close, name="sekisho-helper-stop", daemon=True).start()

    def close(self) -> None:
        """Stop the idle helpers; one lent out or still starting stops when it comes back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._running -= len(idle)
        for helper in idle:
            helper.close()

    @property
    def running(self) -> int:
        """Helpers started or starting and not yet stopped."""
        with self._lock:
            return self._running


def _serve(sock: socket.socket, memory: memoryview) -> None:
    """Answer requests until the socket closes."""
    while True:
        try:
            (count,) = _REQUEST.unpack(_receive_exactly(sock, _REQUEST.size))
            if count > _MAX_PIECES:
                return
            lengths = struct.unpack(f"<{count}I", _receive_exactly(sock, 4 * count))
        except (EOFError, OSError):
            return
        answer = bytearray()
        offset = 0
        for length in lengths:
            if offset + length > len(memory):
                return
            answer += leaf_hash(memory[offset : offset + length])
            offset += length
        sock.sendall(answer)


def main(argv: Sequence[str]) -> int:
    """The helper's entry point: SOCKET_FD MEMORY_FD SIZE."""
    socket_fd, memory_fd, size = (int(value) for value in argv)
    sock = socket.socket(fileno=socket_fd)
    memory = mmap.mmap(memory_fd, size, prot=mmap.PROT_READ)
    os.close(memory_fd)
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        _serve(sock, memoryview(memory))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
