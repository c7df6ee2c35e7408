"""``sekisho ledger anchor`` and ``ledger verify`` with two real TSAs that are not this node:
OpenSSL's ``openssl ts -reply`` and a second Sekisho node's ``/api/v1/timestamp``."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.cluster import Process, make_gateway, stopped_at_exit
from tests.nodes import free_port, http_get, run_cli, wait_for
from tests.tsa_server import OPENSSL, OpensslTsa

pytestmark = pytest.mark.slow  # real processes


def timestamp_client(node: Process, path: Path) -> None:
    """Register a client of the node's time-stamping API; its token goes to ``path``."""
    done = node.cli("clients", "add", "anchorer", "--scopes", "timestamp", "--rate", "0")
    assert done.returncode == 0, done.stderr
    token = next(ln for ln in done.stdout.splitlines() if "bearer token" in ln).rsplit(" ", 1)[1]
    path.write_text(token + "\n")
    path.chmod(0o600)


def anchored_sizes(node: Process) -> list[int]:
    """The checkpoint sizes the node lists as anchored."""
    listing = node.get_json("/api/v1/ledger/anchors")
    return [int(a["size"]) for a in listing["anchors"]]


def test_the_cli_anchors_at_openssl_and_at_another_sekisho_node_and_verify_lists_both(
    tmp_path: Path, openssl_tsa: OpensslTsa
) -> None:
    tsa_node = make_gateway(tmp_path, "tsa-node")
    token_file = tmp_path / "tsa-token"
    timestamp_client(tsa_node, token_file)
    node = make_gateway(tmp_path, "main")
    with stopped_at_exit(tsa_node, node):
        tsa_node.start()
        status, ca = http_get(tsa_node.url + "/api/v1/ca.pem")
        assert status == 200
        (tmp_path / "sekisho-ca.pem").write_bytes(ca)
        sekisho_tsa = {
            "name": "sekisho-b",
            "url": tsa_node.url + "/api/v1/timestamp",
            "certs": str(tmp_path / "sekisho-ca.pem"),
            "token_file": str(token_file),
            "hash": "sha384",
        }
        node.extra["SEKISHO_ANCHORING_TSAS"] = json.dumps([openssl_tsa.setting(), sekisho_tsa])
        node.extra["SEKISHO_ANCHORING_INTERVAL_SECONDS"] = "0"
        node.start()

        done = node.cli("ledger", "anchor")
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        assert [ln.split(":")[0] for ln in lines] == [
            "anchored at openssl",
            "anchored at sekisho-b",
        ], done.stdout
        assert wait_for(lambda: len(anchored_sizes(node)) == 2, what="both anchorings listed")

        done = node.cli("ledger", "verify")
        assert done.returncode == 0, done.stdout + done.stderr
        anchors = [ln for ln in done.stdout.splitlines() if ln.startswith("anchor ")]
        assert len(anchors) == 2
        for tsa in ("openssl", "sekisho-b"):
            [line] = [ln for ln in anchors if f" at {tsa}, " in ln]
            assert line.endswith("token OK; tree consistent"), line
        assert "anchorings OK: 2 anchorings verified" in done.stdout

        # anyone can re-check the downloaded token with stock OpenSSL
        [anchor] = [
            a for a in node.get_json("/api/v1/ledger/anchors")["anchors"] if a["tsa"] == "sekisho-b"
        ]
        reply, note = tmp_path / "anchor.tsr", tmp_path / "checkpoint.note"
        reply.write_bytes(http_get(node.url + anchor["reply"])[1])
        note.write_bytes(http_get(node.url + anchor["checkpoint"])[1])
        check = subprocess.run(
            [str(OPENSSL), "ts", "-verify", "-in", reply, "-data", note,
             "-CAfile", tmp_path / "sekisho-ca.pem"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert "Verification: OK" in check.stdout, check.stdout + check.stderr

        # again: nothing new but the anchoring records themselves
        done = node.cli("ledger", "anchor")
        assert done.returncode == 0, done.stderr
        assert all(ln.startswith("already anchored at ") for ln in done.stdout.splitlines())

        # an unreachable TSA: one line per TSA, exit 1, no traceback
        dead = {
            "name": "down",
            "url": f"http://127.0.0.1:{free_port()}/",
            "certs": str(openssl_tsa.ca),
        }
        done = anchor_with_only(node, dead)
        assert done.returncode == 1
        assert re.fullmatch(
            r"anchoring FAILED at down: TSA down: cannot reach \S+: .+\n", done.stdout
        )
        assert "Traceback" not in done.stderr

    # a tampered token is reported by ledger verify (node stopped, database edited)
    with sqlite3.connect(node.data_dir / "sekisho.sqlite3") as db:
        (reply_bytes,) = db.execute(
            "SELECT reply FROM ledger_anchor WHERE tsa = 'openssl'"
        ).fetchone()
        flipped = bytearray(reply_bytes)
        flipped[-5] ^= 0x01  # inside the signature
        db.execute("UPDATE ledger_anchor SET reply = ? WHERE tsa = 'openssl'", (bytes(flipped),))
    done = node.cli("ledger", "verify")
    assert done.returncode == 1, done.stdout
    [line] = [ln for ln in done.stdout.splitlines() if " at openssl, " in ln]
    assert "token DOES NOT VERIFY" in line and line.endswith("tree consistent")
    assert "anchorings NOT OK: 1 of 2 anchorings fail" in done.stdout


def anchor_with_only(node: Process, tsa: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``ledger anchor`` with only ``tsa`` configured."""
    extra = {**node.extra, "SEKISHO_ANCHORING_TSAS": json.dumps([tsa])}
    extra["SEKISHO_ANCHORING_TIMEOUT_MS"] = "1000"
    return run_cli(["ledger", "anchor"], node.data_dir, extra)
