"""A private, throwaway PostgreSQL cluster that a test may stop and restart at will.

The shared server on 127.0.0.1:5432 is never restarted by tests; this cluster
lives in a temporary directory, listens on a free loopback port and is removed
afterwards. As root, the cluster runs as the ``postgres`` system user (the
server refuses to run as root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.nodes import free_port


@dataclass
class PrivatePostgres:
    """A running private cluster."""

    bin_dir: Path
    data: Path
    port: int
    run_as: list[str]

    @property
    def url(self) -> str:
        """The URL of its ``sekisho`` database."""
        return f"postgres://postgres@127.0.0.1:{self.port}/sekisho"

    def ctl(self, *args: str) -> None:
        """Run ``pg_ctl`` on the cluster."""
        subprocess.run(
            [*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-w", *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        """Start the server (waits until it accepts connections)."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
        self.ctl("-o", options, "-l", str(self.data / "server.log"), "start")

    def stop(self) -> None:
        """Stop the server, disconnecting every client at once."""
        self.ctl("-m", "fast", "stop")


def postgres_bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are, or None when PostgreSQL is not installed."""
    candidates = [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    candidates += [Path(p).resolve().parent for p in (shutil.which("initdb"),) if p]
    for directory in candidates:
        if all((directory / tool).exists() for tool in ("initdb", "pg_ctl", "createdb")):
            return directory
    return None


def _runner() -> tuple[list[str], int | None]:
    if os.geteuid() != 0:
        return [], None
    return ["runuser", "-u", "postgres", "--"], pwd.getpwnam("postgres").pw_uid


@contextlib.contextmanager
def private_postgres(bin_dir: Path) -> Iterator[PrivatePostgres]:
    """Create, start and finally remove a private cluster with a ``sekisho`` database."""
    run_as, uid = _runner()
    root = Path(tempfile.mkdtemp(prefix="sekisho-pg-"))
    data = root / "data"
    if uid is not None:
        os.chown(root, uid, -1)
    cluster = PrivatePostgres(bin_dir, data, free_port(), run_as)
    try:
        subprocess.run(
            [*run_as, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        cluster.start()
        subprocess.run(
            [*run_as, str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(cluster.port),
             "-U", "postgres", "sekisho"],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip
        yield cluster
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
