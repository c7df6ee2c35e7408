"""A served node on opencryptoki's software token: the KEK (RSA-OAEP), the CA and the TSA
(RSA PKCS#1 v1.5) and the named signing keys (RSA-PSS) there, the log key on SoftHSM.

opencryptoki 3.8's soft token has no EC and no EdDSA, so the log key cannot live on it:
``[hsm.keys] ledger`` (``SEKISHO_HSM_KEYS_LEDGER``) places it on a SoftHSM token made
for this module. One node is started for the module. Its key labels carry this process's
id: the opencryptoki store is machine-wide, and xdist may run this module's tests on two
workers (each then has its own node).

The test that stops ``pkcsslotd`` holds an exclusive lock that every other opencryptoki
test holds shared (tests/tokens/opencryptoki.py), so it never stops the daemon under
another test, on any worker.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from asn1crypto import cms, tsp

from hsm import SoftHsmLayout, find_softhsm_module, provision_token
from tests.gateway.faults.client import call, call_json, client_token, person_token, upload_url
from tests.gateway.faults.test_token_removal import sign_body
from tests.gateway.signing.checks import openssl
from tests.nodes import http_get, run_cli, running_node, wait_for
from tests.tokens.opencryptoki import OpencryptokiToken, daemon_stopped, in_use

# A served node, RSA key generation, the CLI and openssl. The group keeps the module on one
# worker (one node): ./dev test runs xdist with --dist loadgroup. Under --dist load it is ignored
# and a second worker that gets some of these tests starts its own node (labels differ).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("opencryptoki-node")]

SHA256_RSA_NULL = bytes.fromhex("300d06092a864886f70d01010b0500")


@dataclass(frozen=True)
class OckNode:
    """The running node, its settings and what the tests need to call it."""

    base: str
    data_dir: Path
    env: dict[str, str]
    labels: dict[str, str]
    init_output: str
    alice: str
    client: str
    ock: OpencryptokiToken


@pytest.fixture(scope="module")
def ock_node(
    opencryptoki_daemon: OpencryptokiToken, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OckNode]:
    """``init --demo`` and ``serve`` once: opencryptoki the default token, the log on SoftHSM."""
    root = tmp_path_factory.mktemp("ock-node")
    data_dir = root / "var"
    module = find_softhsm_module()
    assert module is not None
    layout = SoftHsmLayout(root / "softhsm")
    provision_token(layout, "ock-log")
    labels = {role: f"ock-{role}-{os.getpid()}" for role in ("ca", "kek", "signing", "tsa")}
    env = {
        "SEKISHO_HSM_URI": opencryptoki_daemon.uri,
        "SEKISHO_HSM_PIN_FILE": str(opencryptoki_daemon.pin_file),
        "SEKISHO_HSM_KEYS_LEDGER": (
            f"pkcs11:token=ock-log?module-path={module}&pin-source=file:{layout.user_pin_file}"
        ),
        "SOFTHSM2_CONF": str(layout.conf),
        "SEKISHO_DOCUMENTS_KEY_CACHE_SECONDS": "0",  # every download unwraps on the token
        **{f"SEKISHO_KEYS_{role.upper()}": label for role, label in labels.items()},
    }
    with contextlib.ExitStack() as stack:
        # Every process that loads the module starts under the shared lock; once started,
        # the node does not need pkcsslotd any more (docs/decisions.md, "Token quirks").
        with in_use(opencryptoki_daemon):
            init = run_cli(["init", "--demo"], data_dir, env, timeout=600)
            assert init.returncode == 0, init.stdout + init.stderr
            alice = person_token(data_dir, "alice", env)
            client = client_token(data_dir, "ock-client", "sign,verify,cms,timestamp,anchor", env)
            base = stack.enter_context(running_node(data_dir, env, ready_timeout=120))
        yield OckNode(base, data_dir, env, labels, init.stdout, alice, client, opencryptoki_daemon)


@pytest.fixture
def node(ock_node: OckNode) -> Iterator[OckNode]:
    """The module's node for one test, holding the daemon like other opencryptoki tests."""
    with in_use(ock_node.ock):
        yield ock_node


def _upload(node: OckNode, title: str, body: bytes) -> str:
    status, raw = call("POST", upload_url(node.base, title), node.alice, body)
    assert status == 201, raw
    return str(json.loads(raw)["id"])


def _content(node: OckNode, doc: str) -> tuple[int, bytes]:
    return call("GET", f"{node.base}/api/v1/documents/{doc}/content", node.alice)


def test_init_puts_each_key_where_its_token_can_hold_it(node: OckNode) -> None:
    out, labels = node.init_output, node.labels
    assert f"key {labels['kek']} (rsa-3072, CKM_RSA_PKCS_OAEP)" in out
    assert f"key {labels['ca']} (rsa-3072, CKM_RSA_PKCS)" in out
    assert f"key {labels['tsa']} (rsa-3072, CKM_RSA_PKCS)" in out
    assert f"key {labels['signing']} (rsa-3072, CKM_RSA_PKCS_PSS)" in out
    assert "key sekisho-ledger (ed25519, CKM_EDDSA)" in out  # on SoftHSM
    keys = run_cli(["hsm", "keys", "--json"], node.data_dir, node.env)
    assert keys.returncode == 0, keys.stderr
    where = {
        (k["label"], k["class"]): k["token_label"]
        for k in json.loads(keys.stdout)
        if k["class"] == "private"
    }
    assert where[("sekisho-ledger", "private")] == "ock-log"
    for label in labels.values():
        assert where[(label, "private")] == node.ock.label


def test_upload_download_and_kek_rotation(node: OckNode) -> None:
    secret = b"convoy plan under an opencryptoki RSA-OAEP KEK\n" * 40
    doc = _upload(node, "before-rotation", secret)
    assert _content(node, doc) == (200, secret)
    rotated = run_cli(["keys", "rotate-kek"], node.data_dir, node.env, timeout=300)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    # opencryptoki shares new token objects between processes: no restart needed.
    assert _content(node, doc) == (200, secret)  # now under <kek>-v2
    later = _upload(node, "after-rotation", b"after")
    assert _content(node, later) == (200, b"after")


def test_checkpoint_and_receipt_verify(node: OckNode, tmp_path: Path) -> None:
    doc = _upload(node, "receipted", b"a document with a receipt")
    status, anchor = call_json("GET", f"{node.base}/api/v1/documents/{doc}/anchor", node.alice)
    assert status == 200, anchor
    key = json.loads(http_get(node.base + "/api/v1/ledger/key")[1])
    receipt, entry = tmp_path / "receipt.txt", tmp_path / "entry.json"
    receipt.write_text(anchor["receipt"])
    entry.write_text(anchor["entry"])
    verified = run_cli(
        ["verify", str(receipt), "--key", key["vkey"], "--entry", str(entry)], tmp_path / "x"
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "receipt OK" in verified.stdout
    wait_for(lambda: http_get(node.base + "/ledger/checkpoint")[0] == 200)
    ledger = run_cli(["ledger", "verify"], node.data_dir, node.env)
    assert ledger.returncode == 0, ledger.stdout + ledger.stderr
    assert ledger.stdout.startswith("ledger OK: ")


def test_cms_and_timestamp_verified_by_openssl(node: OckNode, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    status, pem = http_get(node.base + "/api/v1/ca.pem")
    assert status == 200
    ca.write_bytes(pem)
    data = tmp_path / "data.bin"
    data.write_bytes(b"signed with an RSA key on opencryptoki\n")
    body = json.dumps({"data": base64.b64encode(data.read_bytes()).decode()}).encode()
    status, signature = call(
        "POST", f"{node.base}/api/v1/cms/default", node.client, body,
        content_type="application/json",
    )  # fmt: skip
    assert status == 200, signature
    (tmp_path / "sig.p7s").write_bytes(signature)
    verified = openssl(
        "cms", "-verify", "-binary", "-inform", "DER", "-in", tmp_path / "sig.p7s",
        "-content", data, "-CAfile", ca, "-purpose", "any", "-out", "/dev/null",
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    signer = cms.ContentInfo.load(signature)["content"]["signer_infos"][0]
    assert signer["signature_algorithm"]["algorithm"].native == "rsassa_pss"

    query, reply = tmp_path / "q.tsq", tmp_path / "r.tsr"
    made = openssl("ts", "-query", "-data", data, "-sha256", "-cert", "-out", query)
    assert made.returncode == 0, made.stderr
    status, answer = call(
        "POST", f"{node.base}/api/v1/timestamp", node.client, query.read_bytes(),
        content_type="application/timestamp-query",
    )  # fmt: skip
    assert status == 200, answer
    reply.write_bytes(answer)
    checked = openssl("ts", "-verify", "-in", reply, "-queryfile", query, "-CAfile", ca)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    token = tsp.TimeStampResp.load(answer)["time_stamp_token"]["content"]
    assert token["signer_infos"][0]["signature_algorithm"].dump() == SHA256_RSA_NULL


def test_pkcsslotd_stopped_mid_run(ock_node: OckNode) -> None:
    node = ock_node  # not the `node` fixture: this test takes the daemon lock exclusively
    secret = b"read while pkcsslotd is down\n"
    doc = _upload(node, "daemon", secret)
    with daemon_stopped(node.ock):
        status = run_cli(["hsm", "status"], node.data_dir, node.env)
        lines = [line for line in status.stderr.splitlines() if line.strip()]
        assert status.returncode != 0 and len(lines) == 1, status.stderr
        assert "could not be loaded" in lines[0] and "pkcsslotd" in lines[0]
        assert _content(node, doc) == (200, secret)
        during = _upload(node, "during", b"during")
        assert _content(node, during) == (200, b"during")
        status_code, signed = call_json(
            "POST", f"{node.base}/api/v1/sign/default", node.client, sign_body()
        )
        assert status_code == 200, signed
    status = run_cli(["hsm", "status"], node.data_dir, node.env)
    assert status.returncode == 0, status.stderr
    assert _content(node, doc) == (200, secret)
