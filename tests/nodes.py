"""Run ``sekisho`` as a real process for end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

SEKISHO = [sys.executable, "-m", "gateway.cli.main"]


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def node_env(data_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a node with its own data directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEKISHO_")}
    env["SEKISHO_DATA"] = str(data_dir)
    env["SEKISHO_HTTP_WORKERS"] = "1"  # one process unless a test asks for more
    env.update(extra or {})
    return env


def run_cli(
    args: list[str], data_dir: Path, extra: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run one CLI command to completion."""
    return subprocess.run(
        [*SEKISHO, *args],
        env=node_env(data_dir, extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def run_cli_beside(
    args: list[str], data_dir: Path, extra: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one CLI command on a thread, so the test's in-process node keeps running meanwhile.

    A node whose event loop waits for the command cannot finish a write it began, so a
    command that writes the same database would wait for its writer lock.
    """
    return await asyncio.to_thread(run_cli, args, data_dir, extra)


WAIT_SECONDS = 60.0
"""How long a test waits for a condition by default: generous, a loaded CI machine is slow."""


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = WAIT_SECONDS,
    what: str = "the condition",
    interval: float = 0.1,
) -> Any:
    """Poll until ``predicate()`` is truthy and return its value.

    A predicate that fails with ``OSError`` (a node too busy to answer a poll in
    time, a connection refused while it restarts) is tried again until the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


async def until(
    predicate: Callable[[], Awaitable[object]], what: str, seconds: float = WAIT_SECONDS
) -> None:
    """:func:`wait_for` inside an event loop: await ``predicate()`` until it is truthy."""
    deadline = time.monotonic() + seconds
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
        await asyncio.sleep(0.02)


def http_get(
    url: str, timeout: float = 30, headers: Mapping[str, str] | None = None
) -> tuple[int, bytes]:
    """GET a URL; returns status and body, including for 4xx/5xx."""
    request = urllib.request.Request(url, headers=dict(headers or {}))  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback test URL
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


@contextlib.contextmanager
def running_node(
    data_dir: Path, extra: Mapping[str, str] | None = None, *, ready_timeout: float = 60
) -> Iterator[str]:
    """Start ``sekisho serve`` and yield its base URL once /healthz answers."""
    with running_node_process(data_dir, extra, ready_timeout=ready_timeout) as (base, _):
        yield base


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set size (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


@contextlib.contextmanager
def running_node_process(
    data_dir: Path, extra: Mapping[str, str] | None = None, *, ready_timeout: float = 60
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start ``sekisho serve``; yield its base URL and process once /healthz answers."""
    port = free_port()
    log_path = data_dir.parent / f"serve-{port}.log"
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*SEKISHO, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=node_env(data_dir, extra),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"node exited early: {log_path.read_text()}")
            try:
                status, _ = http_get(base + "/healthz", timeout=1)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"node did not come up: {log_path.read_text()}")
            time.sleep(0.1)
        yield base, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
