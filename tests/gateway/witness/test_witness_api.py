"""Three witness processes: the spec's answers to bad input, and a split view caught by all."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.tlog.checkpoint import verify_cosignature
from gateway.tlog.note import SIG_ED25519_COSIGNATURE, parse_note, parse_verifier_key
from gateway.tlog.witness_protocol import (
    MAX_ADD_CHECKPOINT_BODY,
    parse_add_checkpoint_response,
)
from tests.cluster import Process, make_witnesses, start_all, witness_vkey
from tests.gateway.witness.softlog import SoftLog
from tests.nodes import http_get


@pytest.fixture(scope="module")
def witnesses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Process]]:
    """Three running witnesses, shared by this module's tests (each test its own log)."""
    root: Path = tmp_path_factory.mktemp("witnesses")
    started = make_witnesses(root, 3)
    try:
        start_all(*started)
        yield started
    finally:
        for witness in started:
            witness.stop()


def post(witness: Process, body: bytes, path: str = "/add-checkpoint") -> tuple[int, str, bytes]:
    request = urllib.request.Request(witness.url + path, data=body, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status), response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.headers["Content-Type"], exc.read()


def register(witnesses: list[Process], log: SoftLog) -> None:
    for witness in witnesses:
        done = witness.cli("witness", "add-log", log.origin, log.vkey)
        assert done.returncode == 0, done.stderr


def cosign(witness: Process, log: SoftLog, body: bytes, size: int) -> None:
    status, _, answer = post(witness, body)
    assert status == 200, answer
    name, _, public = parse_verifier_key(witness_vkey(witness), sig_type=SIG_ED25519_COSIGNATURE)
    lines = parse_add_checkpoint_response(answer)
    verify_cosignature(lines, parse_note(log.note(size)).text, name, public)


def status(witness: Process) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(http_get(witness.url + "/status")[1])
    return result


def test_bad_input_gets_the_spec_status_codes_never_500(witnesses: list[Process]) -> None:
    log = SoftLog("example.test/bad-input")
    register(witnesses, log)
    witness = witnesses[0]
    cosign(witness, log, log.request(0, 10), 10)
    stranger = SoftLog("example.test/unknown")
    impostor = SoftLog(log.origin)
    proof_lines = (b"A" * 43 + b"=\n") * 64
    cases: list[tuple[str, bytes, int]] = [
        ("empty body", b"", 400),
        ("garbage", b"hello witness", 400),
        ("not UTF-8", b"old 0\n\n\xff\xfe\n", 400),
        ("no checkpoint", b"old 10\n\n", 400),
        ("leading zero", log.request(10, 20).replace(b"old 10", b"old 010", 1), 400),
        ("oversize proof", b"old 10\n" + proof_lines + b"\n" + log.note(20).encode(), 400),
        ("old above size", log.request(10, 20).replace(b"old 10", b"old 25", 1), 400),
        ("too large", b"old 0\n\n" + b"x" * (MAX_ADD_CHECKPOINT_BODY + 1), 413),
        ("unknown origin", stranger.request(0, 5), 404),
        ("signed by another key", impostor.request(10, 20), 403),
        ("bad proof", log.request(10, 20, proof=[bytes(32)] * 5), 422),
        ("proof from zero", log.request(0, 20, proof=[bytes(32)]), 409),
    ]
    for what, body, expected in cases:
        code, content_type, answer = post(witness, body)
        assert code == expected, (what, code, answer)
        assert content_type.startswith("text/"), what
    code, content_type, answer = post(witness, log.request(0, 20))
    assert (code, content_type, answer) == (409, "text/x.tlog.size", b"10\n")
    code, _, _ = post(witness, b"", path="/add-checkpoint/extra")
    assert code == 404
    assert http_get(witness.url + "/add-checkpoint")[0] == 405
    metrics = http_get(witness.url + "/metrics")[1].decode()
    assert 'sekisho_witness_add_checkpoint_responses{code="500"}' not in metrics
    assert "sekisho_witness_alarm 0" in metrics
    # Still working after all that.
    cosign(witness, log, log.request(10, 30), 30)


def test_two_checkpoints_for_one_size_every_witness_refuses_and_keeps_evidence(
    witnesses: list[Process],
) -> None:
    log = SoftLog("example.test/split")
    register(witnesses, log)
    forged = log.forged_leaves(7)
    genuine_note, forged_note = log.note(50), log.note(50, forged)
    assert genuine_note != forged_note
    for witness in witnesses:
        cosign(witness, log, log.request(0, 50), 50)
        code, content_type, answer = post(witness, log.request(50, 50, leaves=forged))
        assert (code, content_type, answer) == (409, "text/x.tlog.size", b"50\n")
        view = status(witness)
        assert view["alarm"] is True
        [evidence] = [e for e in view["evidence"] if e["origin"] == log.origin]
        assert evidence["kind"] == "split_view"
        assert evidence["held_checkpoint"] == genuine_note
        assert evidence["presented_checkpoint"] == forged_note
        metrics = http_get(witness.url + "/metrics")[1].decode()
        assert "sekisho_witness_alarm 1" in metrics
        assert 'sekisho_witness_evidence{kind="split_view"} 1' in metrics
        # The same forgery again is refused again, and kept once.
        assert post(witness, log.request(50, 50, leaves=forged))[0] == 409
        assert status(witness)["evidence_counts"]["split_view"] == 1
        # An extension of the forged history cannot be proven consistent: 422, evidence.
        assert post(witness, log.request(50, 80, leaves=forged))[0] == 422
        kinds = {e["kind"] for e in status(witness)["evidence"] if e["origin"] == log.origin}
        assert kinds == {"split_view", "proof_rejected"}
        # The genuine history still extends.
        cosign(witness, log, log.request(50, 80), 80)
        [record] = [entry for entry in status(witness)["logs"] if entry["origin"] == log.origin]
        assert record["size"] == 80
    done = witnesses[0].cli("witness", "status")
    assert done.returncode == 1  # an alarm is held
    assert "ALARM" in done.stdout


def test_the_witness_names_no_server_software(witnesses: list[Process]) -> None:
    """A witness's answers, its refusals included, say ``Server: Sekisho`` and no releases."""
    witness = witnesses[0]
    for request in (
        urllib.request.Request(witness.url + "/healthz"),  # noqa: S310
        urllib.request.Request(witness.url + "/add-checkpoint", data=b"x", method="POST"),  # noqa: S310
    ):
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                server = response.headers["Server"]
        except urllib.error.HTTPError as exc:
            server = exc.headers["Server"]
        assert server == "Sekisho", (request.full_url, server)
