"""A throw-away Ceph RADOS Gateway for the tests: started once per test session (per xdist worker).

It runs deploy/ceph-s3.sh, the same script operators and the local cluster use. Without the Ceph
packages the S3 tests skip with the reason; under CI that is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "deploy" / "ceph-s3.sh"
NEEDED = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool")


@dataclass(frozen=True)
class S3Server:
    """Endpoint and credentials of the running gateway (the `export` lines of the script)."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str

    def environ(self, bucket: str) -> dict[str, str]:
        """Settings and credentials for a node whose blobs live in ``bucket``."""
        return {
            "SEKISHO_BLOBS_BACKEND": "s3",
            "SEKISHO_BLOBS_S3_ENDPOINT": self.endpoint,
            "SEKISHO_BLOBS_S3_BUCKET": bucket,
            "SEKISHO_BLOBS_S3_REGION": self.region,
            "SEKISHO_BLOBS_S3_PATH_STYLE": "true",
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _parse(exports: str) -> dict[str, str]:
    values = {}
    for line in exports.splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line.removeprefix("export ").partition("=")
            values[name] = value
    return values


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One RADOS Gateway for the whole session, stopped at its end."""
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing:
        message = f"Ceph is not installed ({', '.join(missing)} missing; ./dev test installs it)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    where = tmp_path_factory.mktemp("ceph")
    env = dict(os.environ, CEPH_MON_PORT=str(_free_port()), CEPH_RGW_PORT=str(_free_port()))
    started = subprocess.run(
        ["bash", str(SCRIPT), "start", str(where)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    try:
        if started.returncode != 0:
            pytest.fail(f"the Ceph S3 gateway did not start: {started.stderr.strip()[-2000:]}")
        values = _parse(started.stdout)
        yield S3Server(
            endpoint=values["SEKISHO_BLOBS_S3_ENDPOINT"],
            access_key=values["AWS_ACCESS_KEY_ID"],
            secret_key=values["AWS_SECRET_ACCESS_KEY"],
            region=values["SEKISHO_BLOBS_S3_REGION"],
        )
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(where)], timeout=60, check=False)
