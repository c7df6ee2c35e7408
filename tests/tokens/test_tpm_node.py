"""A whole node on a TPM 2.0 (swtpm, tpm2-abrmd, tpm2-pkcs11): every key on the TPM.

One node for the module: ``init`` puts the log key, the KEK, the CA, the TSA key
and the named ECDSA key on the TPM token; the tests then read and write through
it, rotate the KEK while it runs, check its signatures with independent
verifiers, and take the TPM away and give it back while it runs.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hsm.token import REINIT_RETRY_SECONDS
from tests.gateway.faults.client import call, client_token, person_token, upload_url
from tests.gateway.ledger.test_ecdsa_log import leaf_hex
from tests.gateway.ledger.test_ledger_cli import one_line, tree_size
from tests.gateway.signing.checks import openssl
from tests.nodes import http_get, run_cli, running_node, wait_for
from tests.tokens.tpm import TpmToken

# A software TPM, its resource manager and one real node for the module: the group keeps
# the module on one worker under ./dev test (--dist loadgroup), so the node starts once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("tpm-node")]

# Labels of their own: the TPM store lives for the test session and other TPM tests
# make keys with the default labels on it.
LABELS = {"LEDGER": "e2e-ledger", "KEK": "e2e-kek", "CA": "e2e-ca", "SIGNING": "e2e-sign"}
LABELS["TSA"] = "e2e-tsa"
STAMPED = b"inspection report 7, seal intact\n"


@dataclass(frozen=True)
class TpmNode:
    """The running node: base URL, data directory, settings, and the callers' tokens."""

    base: str
    data_dir: Path
    env: dict[str, str]
    init: subprocess.CompletedProcess[str]
    alice: str
    client: str
    admin: str  # may watch the node: /readyz details


@pytest.fixture(scope="module")
def tpm_node(tpm: TpmToken, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TpmNode]:
    """``init --demo`` with every key on the TPM, then ``serve`` for the whole module."""
    data_dir = tmp_path_factory.mktemp("tpm-node") / "var"
    env = {
        "SEKISHO_HSM_URI": tpm.uri,
        "SEKISHO_HSM_PIN_FILE": str(tpm.pin_file),
        # Every read unwraps its data key on the token (no cached keys hide the TPM).
        "SEKISHO_DOCUMENTS_KEY_CACHE_SECONDS": "0",
        **{f"SEKISHO_KEYS_{role}": label for role, label in LABELS.items()},
    }
    init = run_cli(["init", "--demo"], data_dir, env, timeout=600)
    assert init.returncode == 0, init.stderr
    alice = person_token(data_dir, "alice", env)
    client = client_token(data_dir, "tpm-client", "cms,timestamp,ledger-read", env)
    admin = person_token(data_dir, "admin", env)
    with running_node(data_dir, env, ready_timeout=120) as base:
        yield TpmNode(base, data_dir, env, init, alice, client, admin)


def upload(node: TpmNode, content: bytes, title: str) -> str:
    """Upload a document as alice; its id."""
    status, raw = call("POST", upload_url(node.base, title), node.alice, content)
    assert status == 201, raw
    return str(json.loads(raw)["id"])


def download(node: TpmNode, doc: str) -> tuple[int, bytes]:
    """Read a document's content as alice."""
    return call("GET", f"{node.base}/api/v1/documents/{doc}/content", node.alice)


def cms(node: TpmNode, data: bytes) -> tuple[int, bytes]:
    """A CMS signature with the named ECDSA key ``default``."""
    body = json.dumps({"data": base64.b64encode(data).decode()}).encode()
    url = f"{node.base}/api/v1/cms/default"
    return call("POST", url, node.client, body, content_type="application/json")


def test_init_puts_every_key_on_the_tpm(tpm_node: TpmNode) -> None:
    created = tpm_node.init.stdout
    assert "key e2e-ledger (ec-p256, CKM_ECDSA)" in created  # no EdDSA: note type 0x02
    assert "key e2e-kek (rsa-3072, CKM_RSA_PKCS_OAEP)" in created  # no AES key wrap
    assert "key e2e-ca (ec-p256, CKM_ECDSA)" in created
    assert "key e2e-sign (ec-p256, CKM_ECDSA)" in created
    assert "key e2e-tsa (ec-p256, CKM_ECDSA)" in created
    assert "signing key 'default' (sign, e2e-sign)" in created
    # Key pairs are made with tpm2-pkcs11's paired template at once: no refused attempt.
    assert "attr mismatch" not in tpm_node.init.stderr, tpm_node.init.stderr
    status, raw = http_get(tpm_node.base + "/api/v1/ledger/key")
    assert status == 200, raw
    assert json.loads(raw)["algorithm"] == "ECDSA P-256"


def test_documents_stay_readable_across_a_kek_rotation_while_running(tpm_node: TpmNode) -> None:
    before = b"route card, convoy 12, under the first KEK\n" * 40
    doc = upload(tpm_node, before, "before-rotation")
    assert download(tpm_node, doc) == (200, before)

    # Another process makes e2e-kek-v2 on the TPM and rewraps every data key under it;
    # the running node must find the new key (tpm2-pkcs11 listed its objects at start).
    rotated = run_cli(["keys", "rotate-kek"], tpm_node.data_dir, tpm_node.env, timeout=600)
    assert rotated.returncode == 0, rotated.stderr
    assert "to version 2 (e2e-kek-v2)" in rotated.stdout
    status, raw = download(tpm_node, doc)
    assert (status, raw) == (200, before), raw[:300]

    after = b"route card, convoy 13, under the rotated KEK\n" * 40
    new_doc = upload(tpm_node, after, "after-rotation")
    assert download(tpm_node, new_doc) == (200, after)
    with sqlite3.connect(tpm_node.data_dir / "sekisho.sqlite3", timeout=10) as db:
        labels = {label for (label,) in db.execute("SELECT kek_label FROM document_version")}
    assert labels == {"e2e-kek-v2"}  # the rewrapped one and the new one


def test_checkpoints_and_receipts_verify(tpm_node: TpmNode, tmp_path: Path) -> None:
    base, data_dir = tpm_node.base, tpm_node.data_dir
    key = json.loads(http_get(base + "/api/v1/ledger/key")[1])
    wait_for(lambda: tree_size(base) > 0)
    size = tree_size(base)
    reader = {"SEKISHO_LEDGER_TOKEN": tpm_node.client, **tpm_node.env}
    remote = run_cli(["ledger", "verify", "--url", base, "--key", key["vkey"]], data_dir, reader)
    assert remote.returncode == 0, remote.stderr
    assert one_line(remote.stdout).startswith("ledger OK: ")

    status, receipt = call("GET", f"{base}/api/v1/ledger/receipts/{size - 1}", tpm_node.client)
    assert status == 200, receipt
    receipt_file, key_file = tmp_path / "entry.tlog-proof", tmp_path / "log.vkey"
    receipt_file.write_bytes(receipt)
    key_file.write_text(key["vkey"] + "\n")
    leaf = leaf_hex(data_dir, size - 1)
    command = ["verify", str(receipt_file), "--key", str(key_file), "--leaf-hash", leaf]
    verified = run_cli(command, data_dir, tpm_node.env)
    assert verified.returncode == 0, verified.stderr
    assert one_line(verified.stdout).startswith(f"receipt OK: entry {size - 1} of ")


def test_cms_and_timestamps_verify_with_openssl(tpm_node: TpmNode, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    status, pem = http_get(tpm_node.base + "/api/v1/ca.pem")
    assert status == 200, pem
    ca.write_bytes(pem)

    status, signature = cms(tpm_node, STAMPED)
    assert status == 200, signature
    sig, data = tmp_path / "sig.p7s", tmp_path / "data.bin"
    sig.write_bytes(signature)
    data.write_bytes(STAMPED)
    verified = openssl(
        "cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-content", data,
        "-CAfile", ca, "-out", "/dev/null",
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr

    query, reply = tmp_path / "query.tsq", tmp_path / "reply.tsr"
    made = openssl("ts", "-query", "-data", data, "-sha256", "-cert", "-out", query)
    assert made.returncode == 0, made.stderr
    status, answer = call(
        "POST",
        tpm_node.base + "/api/v1/timestamp",
        tpm_node.client,
        query.read_bytes(),
        content_type="application/timestamp-query",
    )
    assert status == 200, answer
    reply.write_bytes(answer)
    stamped = openssl("ts", "-verify", "-in", reply, "-data", data, "-CAfile", ca)
    assert stamped.returncode == 0, stamped.stdout + stamped.stderr
    assert "Verification: OK" in stamped.stdout


def test_the_tpm_going_away_and_coming_back_while_running(tpm: TpmToken, tpm_node: TpmNode) -> None:
    content = b"kept readable across a resource-manager restart\n" * 40
    doc = upload(tpm_node, content, "removal")
    port = tpm_node.base.rsplit(":", 1)[1]
    log_path = tpm_node.data_dir.parent / f"serve-{port}.log"
    mark, started = log_path.stat().st_size, time.monotonic()
    answers: list[tuple[int, bytes]] = []
    tpm.resource_manager.stop()
    try:
        answers += [download(tpm_node, doc) for _ in range(10)]
        readyz = tpm_node.base + "/readyz"
        answers += [cms(tpm_node, STAMPED), call("GET", readyz, tpm_node.admin, timeout=30)]
    finally:
        tpm.resource_manager.start()
        tpm.resource_manager.wait_ready()
    elapsed = time.monotonic() - started
    for status, raw in answers:
        assert status == 503, raw[:300]
    for _, raw in answers[:-1]:
        body = json.loads(raw)
        assert body["error"] == "hsm_token_removed", body
        assert f"label {tpm.label!r}" in body["message"], body
    token_check = json.loads(answers[-1][1])["checks"]["token"]
    assert token_check["ok"] is False and f"label {tpm.label!r}" in token_check["error"]
    # tpm2-pkcs11 writes this (among other ERROR lines) for each failed C_Initialize:
    # twelve requests, yet the node tried again at most once a second.
    failed = log_path.read_bytes()[mark:].count(b"Getting tokens from esysdb backend failed")
    assert 1 <= failed <= 1 + int(elapsed / REINIT_RETRY_SECONDS)

    # Served again without restarting the node.
    wait_for(lambda: download(tpm_node, doc)[0] == 200)
    assert download(tpm_node, doc) == (200, content)
    status, signature = cms(tpm_node, STAMPED)
    assert status == 200, signature
    wait_for(lambda: http_get(tpm_node.base + "/readyz", timeout=30)[0] == 200)
    log = log_path.read_text(errors="replace")
    assert "unhandled error" not in log  # every failure was a typed 503, never a 500
