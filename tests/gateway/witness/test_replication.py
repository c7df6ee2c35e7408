"""Three witness processes, quorum 2: finality, a witness down, and its catch-up."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from gateway.tlog.note import SIG_ED25519_COSIGNATURE, parse_note, parse_verifier_key
from gateway.tlog.receipt import LeafHash, parse_receipt, verify_receipt
from tests.cluster import (
    Process,
    add_anchor_client,
    add_client,
    anchor_many,
    make_gateway,
    make_witnesses,
    start_all,
    stopped_at_exit,
    witness_log,
    witness_vkey,
    witnesses_setting,
)
from tests.nodes import http_get, run_cli, wait_for


def finality(gateway: Process, token: str | None = None) -> dict[str, Any]:
    """The log's finality; with a watcher's ``token``, the witnesses' error texts too."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    result: dict[str, Any] = gateway.get_json("/api/v1/ledger/witnesses", headers)
    return result


def final_at_least(gateway: Process, size: int) -> dict[str, Any] | None:
    state = finality(gateway)
    return state if (state["final_size"] or 0) >= size else None


def latest_size(gateway: Process) -> int:
    return int(gateway.get_json("/api/v1/ledger/checkpoint")["size"])


def witness_entry(state: dict[str, Any], name: str) -> dict[str, Any]:
    return next(w for w in state["witnesses"] if w["name"] == name)


def check_receipt(
    gateway: Process, index: int, leaf: str, witnesses: list[Process], tmp_path: Path
) -> int:
    """Verify a receipt offline with the quorum (library and CLI); its checkpoint size."""
    status, body = http_get(f"{gateway.url}/api/v1/ledger/receipts/{index}")
    assert status == 200, body
    key = gateway.get_json("/api/v1/ledger/key")
    _, _, log_public = parse_verifier_key(key["vkey"])
    cosigners = []
    for witness in witnesses:
        vkey = witness_vkey(witness)
        name, _, public = parse_verifier_key(vkey, sig_type=SIG_ED25519_COSIGNATURE)
        cosigners.append((name, public))
    checkpoint = verify_receipt(
        parse_receipt(body),
        LeafHash(bytes.fromhex(leaf)),
        key["name"],
        log_public,
        key["origin"],
        witnesses=cosigners,
        quorum=2,
    )
    path = tmp_path / f"receipt-{index}.txt"
    path.write_bytes(body)
    args = ["verify", str(path), "--key", key["vkey"], "--leaf-hash", leaf, "--quorum", "2"]
    for witness in witnesses:
        args += ["--witness", witness_vkey(witness)]
    done = run_cli(args, tmp_path / "offline")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cosigned by a quorum of 2 witnesses" in done.stdout
    others = ["--witness", witnesses[0].vkey]
    done = run_cli([*args[:6], *others, "--quorum", "2"], tmp_path / "offline")
    assert done.returncode == 1, done.stdout  # one witness cannot make a quorum of two
    return checkpoint.size


@pytest.mark.slow
def test_three_witnesses_quorum_two_down_and_catching_up(tmp_path: Path) -> None:
    witnesses = make_witnesses(tmp_path, 3)
    start_all(*witnesses)
    gateway = make_gateway(
        tmp_path,
        "gateway",
        {"SEKISHO_LEDGER_WITNESSES": witnesses_setting(witnesses), "SEKISHO_LEDGER_QUORUM": "2"},
    )
    token = add_anchor_client(gateway)
    watcher = add_client(gateway, "prometheus", "metrics")
    with stopped_at_exit(gateway, *witnesses):
        gateway.start()
        witness_log(witnesses, gateway)

        # All three up: checkpoints become final, receipts carry a quorum of cosignatures.
        links = asyncio.run(anchor_many(gateway.url, token, 200, "a", wait=True))
        size = latest_size(gateway)
        state = wait_for(lambda: final_at_least(gateway, size), what="a final checkpoint")
        assert state["quorum"] == 2
        last = max(links, key=lambda link: int(link["index"]))
        assert check_receipt(gateway, last["index"], last["leaf_hash"], witnesses, tmp_path) >= size
        note = parse_note(http_get(gateway.url + "/ledger/checkpoint")[1])
        assert len(note.signatures) >= 3  # the log and at least a quorum of witnesses

        # Co-signing latency one entry at a time: sequenced -> quorum reached, measured by
        # the sequencing process for each checkpoint.
        samples = []
        for n in range(20):
            [link] = asyncio.run(anchor_many(gateway.url, token, 1, f"l{n}", wait=True))
            state = wait_for(partial(final_at_least, gateway, link["index"] + 1), what="final")
            samples.append(state["cosigning_latency"]["last_ms"])
        samples.sort()
        print(
            f"co-signing latency, one entry at a time: p50 {samples[10]} ms, max {samples[-1]} ms"
        )
        assert all(sample >= 0 for sample in samples)  # measured for every checkpoint

        # One witness down: still final.
        witnesses[2].stop()
        asyncio.run(anchor_many(gateway.url, token, 300, "b"))
        size = latest_size(gateway)
        wait_for(lambda: final_at_least(gateway, size), what="final without w3")
        down = wait_for(
            lambda: witness_entry(finality(gateway, watcher), "w3")["last_error"],
            what="w3's error",
        )
        assert "cannot reach" in down

        # 1,000 more entries while it is down, then back: it catches up with one proof.
        asyncio.run(anchor_many(gateway.url, token, 1000, "c"))
        size = latest_size(gateway)
        witnesses[2].start()
        wait_for(
            lambda: witness_entry(finality(gateway), "w3")["size"] >= size, what="w3 to cosign"
        )
        state = finality(gateway, watcher)
        assert witness_entry(state, "w3")["last_error"] is None
        metrics = http_get(witnesses[2].url + "/metrics")[1].decode()
        assert 'sekisho_witness_add_checkpoint_responses{code="200"}' in metrics
        assert 'code="409"' not in metrics and 'code="422"' not in metrics
        print("co-signing latency over the whole test:", state["cosigning_latency"])
