"""B1: token signing — the hsm async API, sign_many, and the HTTP signing API — against a raw
python-pkcs11 loop on the same token and a bare aiohttp handler (framework ceiling).

The raw loops (here and in bench/b1_tokens.py, which adds the rows per token) are the
only places outside hsm/ that import pkcs11: they are the baselines the token layer is
measured against, not product code.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

from bench.b1_tokens import B1Tokens, run_tokens
from bench.b5_small_docs import ceiling_server, init_node
from bench.common import Result
from bench.load import run_load
from bench.node import server_process, tree_cpu_seconds
from gateway.config import load_settings
from gateway.node_token import token_config
from hsm import SignRequest, Token, TokenConfig

CONCURRENCY = 64


def raw_loop_rate(config: TokenConfig, label: str, digests: list[bytes]) -> float:
    """Signatures per second from a plain python-pkcs11 loop (one session, one thread)."""
    import pkcs11
    from pkcs11 import Mechanism, ObjectClass

    if config.softhsm_conf:
        os.environ["SOFTHSM2_CONF"] = config.softhsm_conf
    lib = pkcs11.lib(config.module_path)
    token = lib.get_token(token_label=config.token_label)
    with token.open(user_pin=config.pin.reveal()) as session:
        key: Any = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        start = time.perf_counter()
        for digest in digests:
            key.sign(digest, mechanism=Mechanism.ECDSA)
        return len(digests) / (time.perf_counter() - start)


async def layer_rates(config: TokenConfig, label: str, digests: list[bytes]) -> tuple[float, float]:
    """(concurrent ``await sign`` rate, ``sign_many`` rate) through the hsm layer."""
    token = await Token.open(config)
    try:
        start = time.perf_counter()
        await asyncio.gather(*(token.sign_digest(label, d, encoding="raw") for d in digests))
        single = len(digests) / (time.perf_counter() - start)
        requests = [SignRequest(label, d, prehashed=True, encoding="raw") for d in digests]
        start = time.perf_counter()
        await token.sign_many(requests)
        batch = len(digests) / (time.perf_counter() - start)
    finally:
        await token.close()
    return single, batch


def http_rate(base: str, headers: dict[str, str], key: str, seconds: float, batch: int) -> float:
    """Signatures per second through POST /api/v1/sign (single, or the batch form)."""
    digest = base64.b64encode(hashlib.sha256(b"bench").digest()).decode()
    item: dict[str, object] = {"digest": digest}
    body: dict[str, object] = {"batch": [item] * batch} if batch > 1 else item
    load = run_load(
        [f"{base}/api/v1/sign/{key}"],
        {**headers, "Content-Type": "application/json"},
        CONCURRENCY,
        seconds,
        method="POST",
        body=json.dumps(body),
    )
    return load.rate * batch


def _round(config: TokenConfig, label: str, digests: list[bytes]) -> tuple[float, float, float]:
    """One (raw loop, concurrent await sign, sign_many) measurement."""
    raw = raw_loop_rate(config, label, digests)
    single, batch = asyncio.run(layer_rates(config, label, digests))
    return raw, single, batch


def run(quick: bool, tokens: B1Tokens | None = None) -> list[Result]:
    """Measure the token layer and the HTTP API, then each token of ``tokens``."""
    count = 500 if quick else 5000
    digests = [hashlib.sha256(str(i).encode()).digest() for i in range(count)]
    with tempfile.TemporaryDirectory(prefix="sekisho-b1-") as tmp:
        data_dir = Path(tmp) / "var"
        init_node(data_dir)
        settings = load_settings(environ={"SEKISHO_DATA": str(data_dir)})
        config = token_config(settings)
        label = settings.keys.signing
        # Alternate baseline and layer for a few rounds and keep the medians, so a
        # slow patch of this shared machine does not land on one side only.
        rounds = [_round(config, label, digests) for _ in range(1 if quick else 3)]
        raw, single, batch = (median(column) for column in zip(*rounds, strict=True))
        results = [
            Result(
                "B1",
                f"hsm sign_many, {count} ECDSA P-256 digests (median of rounds)",
                batch,
                "sig/s",
                {"raw python-pkcs11 loop": raw},
                "raw python-pkcs11 loop",
                ">= 0.8x raw loop",
                batch >= 0.8 * raw,
            ),
            Result(
                "B1",
                f"hsm await sign x{count} concurrent",
                single,
                "sig/s",
                {"raw python-pkcs11 loop": raw},
                "raw python-pkcs11 loop",
                "(informational)",
            ),
        ]
        results.extend(_http_results(data_dir, quick))
    chosen = tokens or B1Tokens.from_args(None, None, quick)
    results.extend(run_tokens(chosen.names, chosen.seconds))
    return results


def _http_results(data_dir: Path, quick: bool) -> list[Result]:
    from bench.b1_http import client_token

    seconds = 2.0 if quick else 10.0
    token, key = client_token(data_dir)
    headers = {"Authorization": f"Bearer {token}"}
    per_workers: dict[int, tuple[float, float]] = {}
    for workers in (1, 2):
        with server_process(data_dir, {"SEKISHO_HTTP_WORKERS": str(workers)}) as (base, pid):
            http_rate(base, headers, key, 0.5, 1)  # warm every worker
            cpu = tree_cpu_seconds(pid)
            started = time.perf_counter()
            rate = http_rate(base, headers, key, seconds, 1)
            elapsed = time.perf_counter() - started
            cpu_ms = (tree_cpu_seconds(pid) - cpu) * 1000 / max(1.0, rate * elapsed)
            per_workers[workers] = (rate, cpu_ms)
            if workers == 1:
                batch = http_rate(base, headers, key, max(seconds, 5.0), 100)  # a round takes ~2 s
    with ceiling_server(64) as ceiling_base:
        # The same client and request body against a handler that returns a constant.
        ceiling = http_rate(ceiling_base, {}, key, seconds, 1)
    (single, cpu_one), (double, cpu_two) = per_workers[1], per_workers[2]
    return [
        Result(
            "B1",
            f"POST /api/v1/sign single, {CONCURRENCY} concurrent clients, 1 worker "
            f"({cpu_one:.2f} ms server CPU per signature)",
            single,
            "sig/s",
            {"bare aiohttp handler": ceiling},
            "bare aiohttp handler",
            ">= 0.5x framework ceiling",
            single >= 0.5 * ceiling,
        ),
        Result(
            "B1",
            f"POST /api/v1/sign single, --workers 2 ({cpu_two:.2f} ms server CPU per signature; "
            "the load generator shares the 2 cores)",
            double,
            "sig/s",
            {"1 worker": single, "bare aiohttp handler": ceiling},
            "1 worker",
            ">= 1.3x 1 worker",
            double >= 1.3 * single,
        ),
        Result(
            "B1",
            f"POST /api/v1/sign batch of 100, {CONCURRENCY} concurrent clients",
            batch,
            "sig/s",
            {"bare aiohttp handler (req/s)": ceiling},
            None,
            "(informational)",
        ),
    ]
