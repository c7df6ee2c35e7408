"""A throw-away Ceph RADOS Gateway for the S3 rows of B4 and B5 (deploy/ceph-s3.sh)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from bench.node import free_port

SCRIPT = Path(__file__).resolve().parent.parent / "deploy" / "ceph-s3.sh"


def available() -> bool:
    """True when Debian's Ceph packages are installed."""
    return all(shutil.which(tool) for tool in ("ceph-mon", "ceph-osd", "radosgw"))


@contextlib.contextmanager
def ceph_s3() -> Iterator[dict[str, str]]:
    """Start a private RADOS Gateway; yield the node settings and credentials for a new bucket."""
    with tempfile.TemporaryDirectory(prefix="sekisho-ceph-") as where:
        ports = {"CEPH_MON_PORT": str(free_port()), "CEPH_RGW_PORT": str(free_port())}
        started = subprocess.run(
            ["bash", str(SCRIPT), "start", where],
            env={**os.environ, **ports},
            capture_output=True,
            text=True,
            timeout=180,
            check=True,
        )
        try:
            env = {}
            for line in started.stdout.splitlines():
                name, _, value = line.removeprefix("export ").partition("=")
                env[name] = value
            env["SEKISHO_BLOBS_S3_BUCKET"] = f"bench-{uuid.uuid4().hex[:12]}"
            yield env
        finally:
            subprocess.run(["bash", str(SCRIPT), "stop", where], timeout=60, check=False)
