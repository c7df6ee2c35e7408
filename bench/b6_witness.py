"""B6: witnessing. A witness's add-checkpoint round trip against a bare round trip to the
same server, and the co-signing latency (sequenced -> quorum of 2 of 3 witness processes)
against the sequencing latency alone, one entry at a time on loopback."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bench.common import Result, median, percentile
from bench.node import free_port, server_process
from gateway.tlog.checkpoint import Checkpoint
from gateway.tlog.merkle import consistency_proof_from_leaves, leaf_hash, root_from_leaves
from gateway.tlog.note import Note, ed25519_key_id, format_note, sign_note_text, verifier_key
from gateway.tlog.witness_protocol import AddCheckpointRequest, format_add_checkpoint

CLI = [sys.executable, "-m", "gateway.cli.main"]


def _env(data_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEKISHO_")}
    env.update({"SEKISHO_DATA": str(data_dir), **(extra or {})})
    return env


def _cli(data_dir: Path, *args: str, extra: dict[str, str] | None = None) -> str:
    return subprocess.run(
        [*CLI, *args], env=_env(data_dir, extra), capture_output=True, text=True, check=True
    ).stdout


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        return json.load(response)


@contextlib.contextmanager
def witness_process(data_dir: Path, name: str) -> Iterator[tuple[str, str]]:
    """An initialised witness serving on a free port: (base URL, its vkey)."""
    extra = {"SEKISHO_WITNESS_NAME": name}
    out = _cli(data_dir, "witness", "init", extra=extra)
    vkey = next(ln for ln in out.splitlines() if ln.startswith("witness vkey: ")).split()[-1]
    port = free_port()
    log = open(data_dir.parent / f"{name}.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [*CLI, "witness", "serve", "--port", str(port)],
        env=_env(data_dir, extra),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(base + "/healthz", timeout=1),  # noqa: S310
            ):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"witness did not start; see {log.name}")
            time.sleep(0.05)
        yield base, vkey
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


async def _round_trips(base: str, data_dir: Path, count: int) -> tuple[list[float], list[float]]:
    """add-checkpoint round trips (ms) for a software log growing by one entry each time,
    and bare GET /healthz round trips to the same server."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    origin = "bench.example/b6"
    _cli(data_dir, "witness", "add-log", origin, verifier_key(origin, public))
    key_id = ed25519_key_id(origin, public)
    leaves: list[bytes] = []
    cosign, bare = [], []
    async with aiohttp.ClientSession() as session:
        for n in range(count):
            leaves.append(leaf_hash(b"entry %d" % n))
            text = Checkpoint(origin, len(leaves), root_from_leaves(leaves)).to_text()
            note = format_note(Note(text, [sign_note_text(text, origin, key_id, key.sign)]))
            proof = consistency_proof_from_leaves(n, leaves)
            body = format_add_checkpoint(AddCheckpointRequest(n, proof, note))
            start = time.perf_counter()
            async with session.post(base + "/add-checkpoint", data=body) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"add-checkpoint answered {response.status}")
            cosign.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            async with session.get(base + "/healthz") as response:
                await response.read()
            bare.append((time.perf_counter() - start) * 1000)
    return cosign, bare


async def _anchor_latencies(base: str, token: str, count: int) -> tuple[list[float], list[float]]:
    """Per entry: anchor -> integrated (ms, client side) and sequenced -> quorum (ms, as the
    sequencer measured it)."""
    headers = {"Authorization": f"Bearer {token}"}
    sequencing, cosigning = [], []
    async with aiohttp.ClientSession(headers=headers) as session:
        for n in range(count):
            digest = base64.b64encode(hashlib.sha256(b"b6-%d" % n).digest()).decode()
            body = {"subject": f"b6-{n}", "kind": "bench.item", "digest": digest}
            start = time.perf_counter()
            async with session.post(base + "/api/v1/anchors?wait=true", json=body) as response:
                link = await response.json()
            sequencing.append((time.perf_counter() - start) * 1000)
            while True:
                async with session.get(base + "/api/v1/ledger/witnesses") as response:
                    state = await response.json()
                if (state["final_size"] or 0) > link["index"]:
                    break
                await asyncio.sleep(0.005)
            cosigning.append(float(state["cosigning_latency"]["last_ms"]))
    return sequencing, cosigning


def _anchor_client(data_dir: Path, extra: dict[str, str]) -> str:
    out = _cli(data_dir, "clients", "add", "b6", "--scopes", "anchor", "--rate", "0", extra=extra)
    return next(word for word in out.split() if word.startswith("sks_"))


def run(quick: bool) -> list[Result]:
    """Median milliseconds: one add-checkpoint; sequenced -> final with 2 of 3 witnesses."""
    trips = 30 if quick else 500
    entries = 10 if quick else 200
    with tempfile.TemporaryDirectory(prefix="sekisho-b6-") as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        witnesses = [
            (root / f"w{n}", *stack.enter_context(witness_process(root / f"w{n}", f"w{n}.b6")))
            for n in (1, 2, 3)
        ]
        cosign, bare = asyncio.run(_round_trips(witnesses[0][1], witnesses[0][0], trips))
        setting = json.dumps([{"url": url, "vkey": vkey} for _, url, vkey in witnesses])
        extra = {
            "SEKISHO_LEDGER_WITNESSES": setting,
            "SEKISHO_LEDGER_QUORUM": "2",
            "SEKISHO_LEDGER_BATCH_MS": "2",
            "SEKISHO_LEDGER_AUDIT_SECONDS": "0",
        }
        gateway = root / "gateway"
        _cli(gateway, "init", extra=extra)
        token = _anchor_client(gateway, extra)
        base, _ = stack.enter_context(server_process(gateway, extra))
        key = _get_json(base + "/api/v1/ledger/key")
        for data_dir, _, _ in witnesses:
            _cli(data_dir, "witness", "add-log", key["origin"], key["vkey"], "--url", base)
        sequencing, cosigning = asyncio.run(_anchor_latencies(base, token, entries))
    round_trip = median(cosign)
    return [
        Result(
            "B6",
            f"witness add-checkpoint round trip ({trips} sequential, median)",
            round_trip,
            "ms",
            {"GET /healthz, same server": median(bare)},
            "GET /healthz, same server",
            "< 20 ms",
            round_trip < 20,
            "lower is better",
        ),
        Result(
            "B6",
            f"co-signing latency, sequenced -> quorum 2 of 3 witnesses ({entries} entries, median; "
            f"p95 {percentile(cosigning, 0.95):.1f} ms)",
            median(cosigning),
            "ms",
            {"anchor -> integrated": median(sequencing), "one witness round trip": round_trip},
            "one witness round trip",
            "< 50 ms",
            median(cosigning) < 50,
            "lower is better",
        ),
    ]
