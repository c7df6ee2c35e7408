"""A real node: officers read the trail with personal tokens issued by ``sekisho users token``."""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.db.setup import close_database, open_database
from gateway.documents.models import AccessEvent
from tests.nodes import run_cli, running_node

pytestmark = pytest.mark.slow  # subprocesses or many cases: `./dev test -m "not slow"` skips it


def get(url: str, token: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status), dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), dict(exc.headers), exc.read()


def token_for(data_dir: Path, username: str) -> str:
    result = run_cli(["users", "token", username], data_dir)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[-1]


async def test_officer_reads_and_exports_the_trail_of_a_running_node(data_dir: Path) -> None:
    assert run_cli(["init", "--demo"], data_dir).returncode == 0
    olivia, bob = token_for(data_dir, "olivia"), token_for(data_dir, "bob")
    await open_database(load_settings(environ={"SEKISHO_DATA": str(data_dir)}).database_url)
    try:
        for n, outcome in enumerate(["granted", "denied", "denied"]):
            await AccessEvent.create(
                actor="person:alice",
                action="download",
                outcome=outcome,
                reason="granted" if outcome == "granted" else "level",
                source="192.0.2.1",
                node="sekisho-1",
                ledger_queue_id=900_000 + n,
            )
    finally:
        await close_database()

    with running_node(data_dir) as base:
        status, _, body = get(f"{base}/api/v1/trail?outcome=denied&limit=1", olivia)
        assert status == 200, body
        page = json.loads(body)
        assert len(page["events"]) == 1 and page["next_cursor"] is not None
        assert page["events"][0]["reason"] == "level"
        assert page["events"][0]["ledger_index"] is None  # never integrated: stays unknown

        status, headers, body = get(f"{base}/api/v1/trail?format=csv", olivia)
        assert status == 200
        assert "attachment" in headers["Content-Disposition"]
        assert len(list(csv.reader(io.StringIO(body.decode())))) == 4

        status, _, body = get(f"{base}/api/v1/trail", bob)
        assert status == 403
        assert json.loads(body)["error"] == "forbidden"
