"""``sekisho keys rotate-kek`` / ``remove-kek`` as real processes, including kill -9 mid-run."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.config import Settings, load_settings
from gateway.db.setup import close_database, open_database
from gateway.documents.kek import version_label
from gateway.documents.models import DocumentVersion, KekVersion
from hsm import Token, TokenConfig
from tests.gateway.documents.kek_rows import check_keys, seed_versions
from tests.gateway.ledger_rows import ledger_entries
from tests.gateway.test_cli import assert_one_line_error
from tests.nodes import SEKISHO, node_env, run_cli

pytestmark = pytest.mark.slow  # subprocesses or many cases: `./dev test -m "not slow"` skips it

ROWS = 3000


@pytest.fixture
async def node(
    data_dir: Path, token_config: TokenConfig, token: Token
) -> AsyncIterator[tuple[dict[str, str], Settings]]:
    """A node initialised by the CLI on the session token, with a KEK label of its own."""
    kek = f"kek-{uuid.uuid4().hex[:10]}"
    env = {
        "SEKISHO_HSM_MODULE": token_config.module_path,
        "SEKISHO_HSM_TOKEN_LABEL": token_config.token_label or "",
        "SEKISHO_HSM_PIN": token_config.pin.reveal(),
        "SEKISHO_KEYS_KEK": kek,
    }
    result = run_cli(["init"], data_dir, env)
    assert result.returncode == 0, result.stderr
    assert f"KEK version 1 ({kek})" in result.stdout
    settings = load_settings(environ={"SEKISHO_DATA": str(data_dir), "SEKISHO_KEYS_KEK": kek})
    try:
        yield env, settings
    finally:
        for version in range(1, 4):
            await token.destroy_key(version_label(kek, version))


async def test_rotation_survives_kill_9_and_remove_kek_waits_for_it(
    node: tuple[dict[str, str], Settings], token: Token, data_dir: Path
) -> None:
    env, settings = node
    await open_database(settings.database_url)
    try:
        keys = await seed_versions(token, settings.keys.kek, ROWS)
    finally:
        await close_database()

    process = await asyncio.create_subprocess_exec(
        *SEKISHO,
        "keys",
        "rotate-kek",
        "--batch",
        "10",
        env=node_env(data_dir, env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    moved = await wait_for_progress(settings, process)
    process.send_signal(signal.SIGKILL)
    await process.wait()
    assert 0 < moved < ROWS, "the rotation ended before it could be interrupted"

    await open_database(settings.database_url)
    try:
        counts = await check_keys(token, keys)  # nothing lost, even mid-batch
        assert counts[1] + counts[2] == ROWS and counts[2] >= moved
    finally:
        await close_database()

    refused = run_cli(["keys", "remove-kek", "--version", "1"], data_dir, env)
    assert refused.returncode == 1
    assert_one_line_error(refused.stderr, "KEK version 1; run 'sekisho keys rotate-kek'")

    resumed = run_cli(["keys", "rotate-kek"], data_dir, env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed rotation of {settings.keys.kek} to version 2" in resumed.stdout
    assert "every data key is under the new version" in resumed.stdout
    assert resumed.stderr == ""  # no progress bar without a terminal

    status = json.loads(run_cli(["keys", "kek-status", "--json"], data_dir, env).stdout)
    assert [(s["version"], s["status"], s["rows"]) for s in status] == [
        (1, "retiring", 0),
        (2, "active", ROWS),
    ]
    too_soon = run_cli(["keys", "remove-kek", "--version", "1"], data_dir, env)
    assert too_soon.returncode == 1
    assert_one_line_error(too_soon.stderr, "may still be committing")
    await open_database(settings.database_url)
    try:
        await KekVersion.filter(version=2).update(
            created_at=datetime.now(UTC) - timedelta(minutes=5)
        )
    finally:
        await close_database()

    removed = run_cli(["keys", "remove-kek", "--version", "1"], data_dir, env)
    assert removed.returncode == 0, removed.stderr
    assert f"destroyed KEK version 1 ({settings.keys.kek})" in removed.stdout
    listed = json.loads(run_cli(["hsm", "keys", "--json"], data_dir, env).stdout)
    labels = {k["label"] for k in listed}  # a fresh process: this one caches key handles
    assert settings.keys.kek not in labels and version_label(settings.keys.kek, 2) in labels
    active = run_cli(["keys", "remove-kek", "--version", "2"], data_dir, env)
    assert_one_line_error(active.stderr, "KEK version 2 is active")

    await open_database(settings.database_url)
    try:
        assert await check_keys(token, keys) == {2: ROWS}
        assert len(await ledger_entries("key.rotated", key=settings.keys.kek)) == 1
        assert len(await ledger_entries("key.removed", key=settings.keys.kek)) == 1
    finally:
        await close_database()


async def wait_for_progress(settings: Settings, process: asyncio.subprocess.Process) -> int:
    """Poll until a few batches are rewrapped; returns how many rows had moved."""
    await open_database(settings.database_url)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            moved = await DocumentVersion.filter(kek_version=2).count()
            if moved >= 200 or process.returncode is not None:
                return moved
            await asyncio.sleep(0.01)
        raise AssertionError("the rotation made no progress")
    finally:
        await close_database()


def test_rotate_kek_before_init_is_one_line(data_dir: Path) -> None:
    result = run_cli(["keys", "rotate-kek"], data_dir)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "no initialised node")


def test_remove_kek_needs_a_version(data_dir: Path) -> None:
    result = run_cli(["keys", "remove-kek", "--version", "0"], data_dir)
    assert result.returncode == 2
    assert "must be at least 1" in result.stderr
