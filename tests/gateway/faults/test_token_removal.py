"""The token goes away under a running ``sekisho serve`` (SoftHSM directory moved), then returns.

Requests that need the token get 503 with a JSON body naming the problem,
``/readyz`` turns false, no document bytes are served and no document is
registered meanwhile, and service resumes by itself once the directory returns.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.db.setup import close_database, open_database
from gateway.documents.models import Document
from tests.gateway.faults.client import call, call_json, client_token, person_token, upload_url
from tests.gateway.ledger_rows import ledger_entries
from tests.nodes import run_cli, running_node

pytestmark = pytest.mark.slow  # subprocesses or many cases: `./dev test -m "not slow"` skips it


def sign_body() -> dict[str, str]:
    import base64

    return {"digest": base64.b64encode(hashlib.sha256(b"x").digest()).decode(), "hash": "sha256"}


def wait_ready(
    base: str, want: bool, seconds: float = 30, token: str | None = None
) -> dict[str, object]:
    """The /readyz body once it says ``want``; its details with a watcher's ``token``."""
    deadline = time.monotonic() + seconds
    while True:
        status, body = call_json("GET", base + "/readyz", token)
        if (status == 200) == want:
            assert isinstance(body, dict)
            return body
        assert time.monotonic() < deadline, f"readyz stayed {status}: {body}"
        time.sleep(0.2)


def drive_outage(data_dir: Path) -> str:
    """Serve, move the token away and back; the id of the document uploaded before."""
    alice, drone = person_token(data_dir, "alice"), client_token(data_dir, "drone")
    admin = person_token(data_dir, "admin")  # may watch the node: /readyz details
    tokens = data_dir / "hsm" / "tokens"
    away = data_dir.parent / "tokens-away"
    secret = b"convoy plan before the outage\n" * 100

    with running_node(data_dir) as base:
        status, raw = call("POST", upload_url(base, "before"), alice, secret)
        assert status == 201, raw
        doc = json.loads(raw)["id"]
        wait_ready(base, True)

        tokens.rename(away)  # the token "unplugged"
        try:
            body = wait_ready(base, False, token=admin)
            checks = body["checks"]
            assert isinstance(checks, dict)
            assert checks["token"]["ok"] is False and "went away" in checks["token"]["error"]
            assert checks["database"]["ok"] is True
            status, anonymous = call_json("GET", base + "/readyz")  # a load balancer
            assert status == 503, anonymous
            assert anonymous["checks"]["token"] == {"ok": False}, anonymous
            assert "went away" not in json.dumps(anonymous)
            for _ in range(3):  # repeatedly, so the reconnect path is exercised too
                status, raw = call("GET", f"{base}/api/v1/documents/{doc}/content", alice)
                assert status == 503 and secret[:20] not in raw
                error = json.loads(raw)
                assert error["error"] == "hsm_token_removed"
                assert "hardware token is unavailable" in error["message"]
                status, raw = call("POST", upload_url(base, "during"), alice, b"during outage")
                assert status == 503 and json.loads(raw)["error"] == "hsm_token_removed"
                status, error = call_json("POST", f"{base}/api/v1/sign/default", drone, sign_body())
                assert status == 503 and error["error"] == "hsm_token_removed", error
                # Public reads that need no token keep answering.
                assert call("GET", base + "/ledger/checkpoint")[0] == 200
                assert call("GET", base + "/healthz")[0] == 200
                time.sleep(0.3)
        finally:
            away.rename(tokens)  # plugged back in

        wait_ready(base, True)  # by itself: no restart
        status, raw = call("GET", f"{base}/api/v1/documents/{doc}/content", alice)
        assert status == 200 and raw == secret
        status, raw = call("POST", upload_url(base, "after"), alice, b"after the outage")
        assert status == 201, raw
        status, signed = call_json("POST", f"{base}/api/v1/sign/default", drone, sign_body())
        assert status == 200, signed
        # The sequencer resumed too: everything queued meanwhile is integrated.
        deadline = time.monotonic() + 30
        while True:
            status, text = call("GET", base + "/metrics")
            if b"sekisho_ledger_pending_entries 0" in text:
                break
            assert time.monotonic() < deadline, text
            time.sleep(0.2)
    return str(doc)


async def test_token_directory_moved_away_and_back(data_dir: Path) -> None:
    assert run_cli(["init", "--demo"], data_dir).returncode == 0
    doc = drive_outage(data_dir)
    verify = run_cli(["ledger", "verify"], data_dir)
    assert verify.returncode == 0 and "ledger OK" in verify.stdout, verify.stdout + verify.stderr
    await open_database(load_settings(environ={"SEKISHO_DATA": str(data_dir)}).database_url)
    try:
        titles = sorted(str(t) for t in await Document.all().values_list("title", flat=True))
        assert titles == ["after", "before"]  # nothing registered during the outage
        registered = await ledger_entries("document.registered")
        assert len(registered) == 2
        decided = await ledger_entries("document.accessed", action="content", document=doc)
        # Four content requests (three refused with 503, one served): each decision recorded.
        assert len(decided) == 4
        assert len(await ledger_entries("signature.issued")) == 1
    finally:
        await close_database()
