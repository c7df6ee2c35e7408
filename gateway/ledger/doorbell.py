"""A doorbell that wakes the sequencing process when another process queued entries.

Entries appended by a process that does not sequence (another ``--workers``
process, a second gateway on the same machine) wait in the database until the
sequencer looks. Without a signal it looks every :data:`IDLE_WAIT` seconds,
which an upload that waits for its ledger index felt as up to 50 ms. The
sequencer listens on a Linux abstract Unix datagram socket named after the
database; a process that queued entries sends it an empty datagram.

The datagram carries nothing: a ring only makes the sequencer look at the
queue now instead of at its next poll. Anyone on the machine who can reach
the name can ring; the worst a flood does is make the sequencer look often,
which its batching (``ledger.batch_ms``) already spaces. Processes on other
machines do not reach it and fall back to the poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

IDLE_WAIT = 0.05
"""Seconds the sequencer waits between looks at the queue when nobody rings."""
_DRAIN_AT_ONCE = 256


class Doorbell:
    """Ring (any process) or listen (the sequencer) for entries queued by others."""

    def __init__(self, database_url: str) -> None:
        digest = hashlib.sha256(_without_credentials(database_url).encode()).hexdigest()[:32]
        self._address = f"\0sekisho-ledger-{digest}"
        self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sender.setblocking(False)
        self._listener: socket.socket | None = None

    def ring(self) -> None:
        """Tell the sequencer, if it listens on this machine, that entries are queued."""
        with contextlib.suppress(OSError):  # nobody listening, or its queue full: it polls
            self._sender.sendto(b"", self._address)

    def listen(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` on every ring (no-op while listening or while the name is taken)."""
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        listener.setblocking(False)
        try:
            listener.bind(self._address)
        except OSError:  # an earlier sequencer on this machine has not let go yet
            listener.close()
            return
        self._listener = listener
        asyncio.get_running_loop().add_reader(listener.fileno(), self._drain, wake)

    def _drain(self, wake: Callable[[], None]) -> None:
        if self._listener is None:
            return
        with contextlib.suppress(OSError):
            for _ in range(_DRAIN_AT_ONCE):  # bounded: a flood cannot hold the loop
                self._listener.recv(1)
        wake()

    def stop_listening(self) -> None:
        """Stop listening and free the name for the next sequencer."""
        if self._listener is not None:
            asyncio.get_running_loop().remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None

    def close(self) -> None:
        """Stop listening and close the sending socket."""
        self.stop_listening()
        self._sender.close()


def _without_credentials(database_url: str) -> str:
    """The URL without user and password: socket names are listed in /proc/net/unix."""
    parts = urlsplit(database_url)
    host = parts.hostname or ""
    try:
        netloc = f"{host}:{parts.port}" if parts.port else host
    except ValueError:  # not a port number: the connection fails later with its own message
        netloc = host
    return urlunsplit(parts._replace(netloc=netloc))
