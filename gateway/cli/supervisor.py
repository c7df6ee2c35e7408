"""``sekisho serve --workers N``: N worker processes on one port, one supervisor.

The supervisor binds the port itself (so "serving on" is printed only once the
port is ours), with one listening socket per worker slot (SO_REUSEPORT: the
kernel spreads connections evenly), then starts N copies of ``sekisho serve``,
each accepting on its slot's socket; a replacement inherits the same socket.
Each worker is a whole gateway process: its own token session, database pool,
caches and event loop. Exactly one of them sequences the ledger (the leadership
lock: an advisory lock on PostgreSQL, a flock beside the SQLite database).

Signals: SIGINT/SIGTERM stop every worker gracefully (they finish their
requests), then the supervisor exits; SIGHUP restarts the workers one at a time,
each replacement accepting before its predecessor is stopped. A worker that
dies is replaced (at most once a second per slot, so a crash loop does not spin).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from gateway.errors import ConfigError

READY = b"R"
ALL_READY = "every worker accepts"
"""Printed once all the first workers are ready (benchmarks wait for it)."""
STOP_GRACE_SECONDS = 30.0
START_TIMEOUT_SECONDS = 120.0
RESPAWN_INTERVAL_SECONDS = 1.0


def listening_socket(host: str, port: int, *, shared_port: bool = False) -> socket.socket:
    """Bind and listen; a port in use or a bad address is a one-line ConfigError.

    ``shared_port`` sets SO_REUSEPORT, so that more sockets can listen on the same port.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    except UnicodeError:  # a name IDNA cannot encode (a label over 63 characters)
        raise ConfigError(f"cannot listen on {host}:{port}: not a valid host name") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """One listening socket per worker slot, all on one port (SO_REUSEPORT).

    The kernel spreads new connections evenly over the sockets. With one socket
    that every worker accepted on, a burst of connections went to whichever
    worker woke first and stayed there (keep-alive): 60 of 64 clients on one
    worker was seen, the other worker idle. The supervisor keeps every socket
    open, so a slot's connections wait in its queue while its worker is replaced.
    A port another process listens on is refused, as without SO_REUSEPORT.
    """
    # SO_REUSEPORT would also let us join a port that another process of this user
    # already listens on with it (an old node still running), splitting its clients
    # with us: claim the port alone first, so a port in use is an error as before
    with listening_socket(host, port) as claim:
        bound_port = claim.getsockname()[1]  # port 0 chose one: every socket joins it
    sockets: list[socket.socket] = []
    try:
        sockets += [listening_socket(host, bound_port, shared_port=True) for _ in range(count)]
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


@dataclass
class _Worker:
    slot: int
    process: subprocess.Popen[bytes]
    ready_fd: int
    started: float = field(default_factory=time.monotonic)


class Supervisor:
    """Starts, watches and replaces the worker processes, one per listening socket."""

    def __init__(self, sockets: list[socket.socket], argv: list[str]) -> None:
        self._sockets = sockets
        self._count = len(sockets)
        self._argv = argv  # the worker's command line, without the fd options
        self._workers: dict[int, _Worker] = {}
        self._stopping = False
        self._reload = False
        self._last_spawn: dict[int, float] = {}

    def _spawn(self, slot: int) -> _Worker:
        read_end, write_end = os.pipe()
        fd = self._sockets[slot].fileno()
        command = [*self._argv, "--listen-fd", str(fd), "--ready-fd", str(write_end)]
        env = dict(os.environ, SEKISHO_WORKER_SLOT=str(slot))
        process = subprocess.Popen(command, pass_fds=(fd, write_end), env=env)
        os.close(write_end)
        self._last_spawn[slot] = time.monotonic()
        return _Worker(slot, process, read_end)

    def _wait_ready(self, worker: _Worker) -> bool:
        """True once the worker accepts; False if it exited or timed out first."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline and not self._stopping:
            readable, _, _ = select.select([worker.ready_fd], [], [], 0.2)
            if readable:
                return os.read(worker.ready_fd, 1) == READY
            if worker.process.poll() is not None:
                return False
        return False

    def _stop_worker(self, worker: _Worker, *, grace: float = STOP_GRACE_SECONDS) -> None:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGINT)  # aiohttp's graceful shutdown
            try:
                worker.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        with contextlib.suppress(OSError):
            os.close(worker.ready_fd)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGHUP:
            self._reload = True
        else:
            self._stopping = True

    def run(self) -> int:
        """Supervise until SIGINT/SIGTERM; returns the exit status."""
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        for slot in range(self._count):
            worker = self._spawn(slot)
            self._workers[slot] = worker
            if not self._wait_ready(worker) and not self._stopping:
                self._stop_all()
                print("sekisho: error: a worker did not start; see its log above", file=sys.stderr)
                return 1
        print(f"sekisho: {ALL_READY} ({self._count})", flush=True)
        while not self._stopping:
            if self._reload:
                self._reload = False
                self._rolling_restart()
            self._replace_dead()
            time.sleep(0.2)
        self._stop_all()
        return 0

    def _replace_dead(self) -> None:
        for slot, worker in list(self._workers.items()):
            if worker.process.poll() is None:
                continue
            if time.monotonic() - self._last_spawn.get(slot, 0.0) < RESPAWN_INTERVAL_SECONDS:
                continue
            print(
                f"sekisho: worker {slot} (pid {worker.process.pid}) exited with "
                f"{worker.process.returncode}; starting a new one",
                file=sys.stderr,
                flush=True,
            )
            with contextlib.suppress(OSError):
                os.close(worker.ready_fd)
            replacement = self._spawn(slot)
            self._workers[slot] = replacement
            self._wait_ready(replacement)

    def _rolling_restart(self) -> None:
        for slot, old in list(self._workers.items()):
            if self._stopping:
                return
            replacement = self._spawn(slot)
            if self._wait_ready(replacement):
                self._workers[slot] = replacement
                self._stop_worker(old)
            else:  # keep the old one serving; the new code or settings do not start
                self._stop_worker(replacement, grace=1.0)
                print(f"sekisho: error: restart of worker {slot} failed", file=sys.stderr)

    def _stop_all(self) -> None:
        for worker in self._workers.values():
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGINT)
        for worker in self._workers.values():
            self._stop_worker(worker)
        for sock in self._sockets:
            sock.close()
