"""``kill -9`` of the gateway at 20 random moments during a mixed stream, restarting each time.

A client process uploads, downloads and signs, writing each acknowledged (2xx)
operation to a file as it goes. After the last restart: every acknowledged
upload downloads and matches its anchored SHA-256, every listed document
downloads whole (no partial document is ever listed), every acknowledged
operation has its ledger entry, and ``sekisho ledger verify`` passes.
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.db.setup import close_database, open_database
from tests.gateway.faults.client import call, client_token, person_token
from tests.gateway.ledger_rows import ledger_entries
from tests.nodes import SEKISHO, free_port, http_get, node_env, run_cli, wait_for

pytestmark = pytest.mark.slow  # subprocesses or many cases: `./dev test -m "not slow"` skips it

KILLS = 20


def start_node(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [*SEKISHO, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=node_env(data_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if http_get(f"http://127.0.0.1:{port}/healthz", timeout=1)[0] == 200:
                return process
        except OSError:
            pass
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)


def read_acks(path: Path) -> tuple[dict[str, str], Counter[str], list[str]]:
    uploads: dict[str, str] = {}
    downloads: Counter[str] = Counter()
    signatures: list[str] = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["upload"] and len(parts) == 3:
            uploads[parts[1]] = parts[2]
        elif parts[:1] == ["download"] and len(parts) == 2:
            downloads[parts[1]] += 1
        elif parts[:1] == ["sign"] and len(parts) == 2:
            signatures.append(parts[1])
    return uploads, downloads, signatures


def enough_traffic(acks: Path) -> bool:
    """Ten uploads and a signature acknowledged: enough for the checks to mean something."""
    uploads, _, signatures = read_acks(acks)
    return len(uploads) >= 10 and bool(signatures)


def drive_kills(data_dir: Path, tmp_path: Path) -> tuple[dict[str, str], Counter[str], list[str]]:
    """Run the stream with the kills; check downloads and listing; the acknowledgements."""
    alice, drone = person_token(data_dir, "alice"), client_token(data_dir, "drone")
    port, log = free_port(), tmp_path / "serve.log"
    base = f"http://127.0.0.1:{port}"
    acks, stop = tmp_path / "acks.txt", tmp_path / "stop"
    rng = random.Random()
    node = start_node(data_dir, port, log)
    client = subprocess.Popen(
        [sys.executable, "-m", "tests.gateway.faults.mixed_client", base, alice, drone,
         str(acks), str(stop)],
        env=node_env(data_dir),
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.3, 3.0))
            assert client.poll() is None, client.stderr.read() if client.stderr else ""
            node.send_signal(signal.SIGKILL)
            node.wait()
            node = start_node(data_dir, port, log)
        wait_for(lambda: enough_traffic(acks), what="traffic after the last restart")
    finally:
        stop.touch()
        _, err = client.communicate(timeout=60)
    assert client.returncode == 0, err.decode()[-3000:]

    uploads, downloads, signatures = read_acks(acks)
    print(
        f"\n{KILLS} kills: {len(uploads)} uploads, {sum(downloads.values())} downloads, "
        f"{len(signatures)} signatures acknowledged"
    )
    assert enough_traffic(acks), "too little traffic to mean anything"
    try:
        for doc, digest in uploads.items():
            status, raw = call("GET", f"{base}/api/v1/documents/{doc}/content", alice)
            assert status == 200 and hashlib.sha256(raw).hexdigest() == digest, doc
        listed: list[str] = []
        while True:  # every page of the listing
            url = f"{base}/api/v1/documents?limit=100&offset={len(listed)}"
            status, raw = call("GET", url, alice)
            assert status == 200, raw
            page = [d["id"] for d in json.loads(raw)["documents"]]
            listed += page
            if len(page) < 100:
                break
        assert set(uploads) <= set(listed)
        for doc in set(listed) - set(uploads):  # answered 201 to nobody, yet whole
            status, raw = call("GET", f"{base}/api/v1/documents/{doc}/content", alice)
            assert status == 200, (doc, raw)
    finally:
        node.send_signal(signal.SIGINT)
        node.wait(timeout=30)

    node = start_node(data_dir, port, log)  # one more clean start integrates what is queued
    deadline = time.monotonic() + 60
    while b"sekisho_ledger_pending_entries 0" not in call("GET", base + "/metrics")[1]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    node.send_signal(signal.SIGINT)
    node.wait(timeout=30)

    return uploads, downloads, signatures


async def test_kill_9_during_a_mixed_stream_loses_nothing_acknowledged(
    data_dir: Path, tmp_path: Path
) -> None:
    assert run_cli(["init", "--demo"], data_dir).returncode == 0
    uploads, downloads, signatures = drive_kills(data_dir, tmp_path)
    verify = run_cli(["ledger", "verify"], data_dir)
    assert verify.returncode == 0 and "ledger OK" in verify.stdout, verify.stdout + verify.stderr
    print(verify.stdout.strip())
    await open_database(load_settings(environ={"SEKISHO_DATA": str(data_dir)}).database_url)
    try:
        registered = {e["document"]: e for e in await ledger_entries("document.registered")}
        for doc, digest in uploads.items():
            assert registered[doc]["plaintext_sha256"] == digest  # matches its anchor
        recorded: Counter[str] = Counter(
            e["document"]
            for e in await ledger_entries("document.accessed", action="content", outcome="granted")
        )
        for doc, count in downloads.items():
            assert recorded[doc] >= count, doc  # served downloads were recorded first
        issued = {e["digest"] for e in await ledger_entries("signature.issued")}
        assert set(signatures) <= issued
    finally:
        await close_database()
