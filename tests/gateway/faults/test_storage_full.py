"""Blob storage full: the upload is refused with 507 ``storage_full`` and nothing is left behind.

The blob directory is a 2 MiB tmpfs the test mounts itself (root only; skipped
with the reason otherwise): no blob, no document row, no ``document.registered``
entry, and a small upload still succeeds afterwards.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import build_app
from gateway.auth.principals import Principal
from gateway.auth.tokens import issue_token
from gateway.bootstrap import initialise
from gateway.documents.models import Document, DocumentVersion
from hsm import TokenConfig
from tests.gateway.app_fixtures import AppNode, node_settings
from tests.gateway.ledger_rows import ledger_entries

pytestmark = pytest.mark.slow  # subprocesses or many cases: `./dev test -m "not slow"` skips it

SIZE = "2m"


def mount_tmpfs(path: Path) -> str | None:
    """Mount a small tmpfs at ``path``; the reason when that is not permitted."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return "mounting a small filesystem needs root"
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return None if result.returncode == 0 else f"cannot mount tmpfs: {result.stderr.strip()}"


@pytest.fixture
async def small_node(
    tmp_path: Path,
    token_config: TokenConfig,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[..., Awaitable[TestClient]],  # type: ignore[type-arg]
) -> AsyncIterator[AppNode]:
    """An in-process node whose blob store lives on a 2 MiB filesystem."""
    monkeypatch.setenv("SEKISHO_HSM_PIN", token_config.pin.reveal())
    settings = node_settings(tmp_path / "var", token_config)
    reason = mount_tmpfs(settings.blob_dir)
    if reason is not None:
        pytest.skip(reason)
    try:
        await initialise(settings)
        client = await aiohttp_client(build_app(settings))
        yield AppNode(client, settings)
        await client.close()
    finally:
        subprocess.run(["umount", "-l", str(settings.blob_dir)], check=False)


def blob_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def test_a_full_store_refuses_the_upload_and_keeps_nothing(small_node: AppNode) -> None:
    person = await Principal.create(
        username="alice", level="SECRET", nationality="USA", roles=["reader", "uploader"]
    )
    headers = {"Authorization": f"Bearer {await issue_token(principal=person)}"}
    url = "/api/v1/documents?title=big&label=SECRET&filename=big.bin"

    response = await small_node.client.post(url, data=os.urandom(3 * 1024 * 1024), headers=headers)
    assert response.status == 507, await response.text()
    body = await response.json()
    assert body["error"] == "storage_full" and "nothing was stored" in body["message"]
    assert blob_files(small_node.settings.blob_dir) == []  # no blob, no temporary
    assert await Document.all().count() == 0 and await DocumentVersion.all().count() == 0
    assert await ledger_entries("document.registered") == []

    small = "/api/v1/documents?title=small&label=SECRET&filename=small.txt"
    response = await small_node.client.post(small, data=b"fits", headers=headers)
    assert response.status == 201, await response.text()
    assert len(await ledger_entries("document.registered")) == 1
    print(f"\nstore {SIZE}: 3 MiB upload -> 507 storage_full, nothing kept; 4 bytes -> 201")
