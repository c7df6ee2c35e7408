"""A log key on a token without EdDSA: checkpoints signed as C2SP note type 0x02 (ECDSA P-256).

The node's real SoftHSM token holds an ECDSA P-256 ledger key made before
``init`` (as ``init`` makes one on a token that lacks CKM_EDDSA); the served
checkpoints, ``ledger verify``, the in-service auditor and ``sekisho verify``
all work with it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.node_token import softhsm_layout, token_config
from gateway.tlog.merkle import leaf_hash
from gateway.tlog.note import SIG_ECDSA, parse_log_verifier_key, parse_note
from hsm import KeyAlgorithm, Token, provision_token
from tests.gateway.ledger.test_ledger_cli import (
    add_client,
    one_line,
    readiness,
    tree_size,
)
from tests.nodes import http_get, run_cli, running_node, wait_for

pytestmark = pytest.mark.slow  # subprocesses


async def make_ecdsa_ledger_key(data_dir: Path) -> None:
    settings = load_settings(environ={"SEKISHO_DATA": str(data_dir)})
    provision_token(softhsm_layout(settings), settings.hsm.token_label)
    token = await Token.open(token_config(settings))
    try:
        await token.generate_key(settings.keys.ledger, KeyAlgorithm.EC_P256)
    finally:
        await token.close()


ROOT = Path(__file__).resolve().parents[3]
_MAKE_KEY = (
    "import asyncio, sys; from pathlib import Path; "
    "from tests.gateway.ledger.test_ecdsa_log import make_ecdsa_ledger_key; "
    "asyncio.run(make_ecdsa_ledger_key(Path(sys.argv[1])))"
)


def leaf_hex(data_dir: Path, index: int) -> str:
    with sqlite3.connect(data_dir / "sekisho.sqlite3", timeout=10) as db:
        (data,) = db.execute("SELECT data FROM ledger_leaf WHERE idx = ?", (index,)).fetchone()
    return leaf_hash(bytes(data)).hex()


def test_ecdsa_checkpoints_verify_everywhere(data_dir: Path, tmp_path: Path) -> None:
    data_dir.mkdir(parents=True, mode=0o700)
    # In a process of its own: opening this node's token here would leave this test
    # worker's PKCS#11 module on the node's SoftHSM configuration, not the suite's.
    made = subprocess.run(
        [sys.executable, "-c", _MAKE_KEY, str(data_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    init = run_cli(["init"], data_dir)
    assert init.returncode == 0, init.stderr
    assert "key sekisho-ledger" not in init.stdout  # kept: it already exists
    reader = add_client(data_dir, "auditor-box", "ledger-read")
    scraper = add_client(data_dir, "prometheus", "metrics")  # /readyz details
    fast_audits = {"SEKISHO_LEDGER_AUDIT_SECONDS": "1", "SEKISHO_LEDGER_AUDIT_FULL_SECONDS": "0"}
    with running_node(data_dir, fast_audits) as base:
        key = json.loads(http_get(base + "/api/v1/ledger/key")[1])
        assert key["algorithm"] == "ECDSA P-256" and key["note_signature_type"] == SIG_ECDSA
        name, key_id, spki = parse_log_verifier_key(key["vkey"])
        assert key_id == hashlib.sha256(spki).digest()[:4]
        assert base64.b64decode(key["vkey"].split("+", 2)[2])[:1] == b"\x02"
        wait_for(lambda: tree_size(base) > 0)
        size = tree_size(base)
        note = parse_note(http_get(base + "/ledger/checkpoint")[1])
        (signature,) = note.signatures
        assert signature.name == name and signature.key_id == key_id
        assert signature.signature[0] == 0x30  # ASN.1 DER ECDSA-Sig-Value

        remote = run_cli(
            ["ledger", "verify", "--url", base, "--key", key["vkey"]],
            data_dir,
            {"SEKISHO_LEDGER_TOKEN": reader},
        )
        assert remote.returncode == 0, remote.stderr
        assert one_line(remote.stdout).startswith("ledger OK: ")
        wait_for(lambda: readiness(base, scraper)["audit"] == "intact")

        request = urllib.request.Request(  # noqa: S310 - loopback test URL
            f"{base}/api/v1/ledger/receipts/{size - 1}",
            headers={"Authorization": f"Bearer {reader}"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            receipt = response.read()
    receipt_file = tmp_path / "entry.tlog-proof"
    receipt_file.write_bytes(receipt)
    key_file = tmp_path / "log.vkey"
    key_file.write_text(key["vkey"] + "\n")
    leaf = leaf_hex(data_dir, size - 1)
    verified = run_cli(
        ["verify", str(receipt_file), "--key", str(key_file), "--leaf-hash", leaf], data_dir
    )
    assert verified.returncode == 0, verified.stderr
    assert one_line(verified.stdout).startswith(f"receipt OK: entry {size - 1} of ")
    other = run_cli(
        ["verify", str(receipt_file), "--key", str(key_file), "--leaf-hash", "00" * 32], data_dir
    )
    assert other.returncode == 1

    local = run_cli(["ledger", "verify"], data_dir)
    assert local.returncode == 0, local.stderr
    assert one_line(local.stdout).startswith("ledger OK: ")
