"""The witness's checks, in the spec's order, without processes or storage."""

from __future__ import annotations

import pytest

from gateway.http.errors import format_status
from gateway.tlog.checkpoint import Checkpoint
from gateway.tlog.errors import FormatError
from gateway.tlog.merkle import EMPTY_ROOT, root_from_leaves
from gateway.tlog.note import parse_log_verifier_key
from gateway.tlog.witness_protocol import (
    AddCheckpointRequest,
    WitnessRequestError,
    format_add_checkpoint,
)
from gateway.witness.core import (
    BadLogSignature,
    Inconsistent,
    LogRecord,
    ProofRejected,
    SizeConflict,
    UnknownLog,
    UnprovableCheckpoint,
    check_submission,
    parse_submission,
)
from tests.gateway.witness.softlog import EcdsaSoftLog, SoftLog

LOG = SoftLog("example.test/log")


def held(size: int, *, note: str | None = None, log: SoftLog = LOG) -> LogRecord:
    root = root_from_leaves(log.leaves[:size]) if size else EMPTY_ROOT
    return LogRecord(1, log.origin, log.origin, log.public_key, size, root, note)


def check(record: LogRecord | None, body: bytes) -> None:
    check_submission(record, parse_submission(body))


def test_first_checkpoint_and_extensions_pass() -> None:
    check(held(0), LOG.request(0, 10))
    check(held(10), LOG.request(10, 200))
    check(held(10), LOG.request(10, 10))  # the same checkpoint again


def test_unknown_origin_is_404() -> None:
    with pytest.raises(UnknownLog) as caught:
        check(None, LOG.request(0, 5))
    assert caught.value.status == 404


def test_other_key_is_403() -> None:
    impostor = SoftLog(LOG.origin)
    with pytest.raises(BadLogSignature) as caught:
        check(held(0), impostor.request(0, 5))
    assert caught.value.status == 403


def test_a_log_with_an_ecdsa_key_is_witnessed_and_an_ed25519_impostor_refused() -> None:
    log = EcdsaSoftLog("example.test/ecdsa-log")
    assert parse_log_verifier_key(log.vkey)[::2] == (log.origin, log.public_key)  # as stored
    check(held(0, log=log), log.request(0, 10))
    check(held(10, log=log), log.request(10, 200))
    with pytest.raises(BadLogSignature):
        check(held(0, log=log), EcdsaSoftLog(log.origin).request(0, 5))
    with pytest.raises(BadLogSignature):
        check(held(0, log=log), SoftLog(log.origin).request(0, 5))


def test_old_size_above_checkpoint_is_400() -> None:
    with pytest.raises(WitnessRequestError) as caught:
        check(held(10), LOG.request(10, 20).replace(b"old 10\n", b"old 30\n", 1))
    assert format_status(caught.value) == 400


def test_stale_old_size_is_409_with_the_held_size() -> None:
    with pytest.raises(SizeConflict) as caught:
        check(held(20), LOG.request(10, 30))
    assert caught.value.status == 409
    assert caught.value.size == 20


def test_bad_proof_is_422_with_evidence_but_no_alarm() -> None:
    with pytest.raises(ProofRejected) as caught:
        check(held(10), LOG.request(10, 20, proof=[bytes(32)] * 3))
    assert caught.value.status == 422
    assert caught.value.evidence is not None
    assert caught.value.evidence.kind == "proof_rejected"
    assert not caught.value.evidence.alarm


def test_inconsistent_extension_is_422() -> None:
    forged = LOG.forged_leaves(3)
    with pytest.raises(ProofRejected):
        check(held(10), LOG.request(10, 20, leaves=forged))


def test_proof_from_zero_must_be_empty() -> None:
    with pytest.raises(ProofRejected) as caught:
        check(held(0), LOG.request(0, 20, proof=[bytes(32)]))
    assert caught.value.evidence is None  # nothing held to contradict


def test_empty_tree_must_have_the_empty_root() -> None:
    note = LOG.sign(Checkpoint(LOG.origin, 0, bytes(32)))
    body = format_add_checkpoint(AddCheckpointRequest(0, [], note)).encode()
    with pytest.raises(UnprovableCheckpoint):
        check(held(0), body)


def test_two_roots_for_one_size_is_a_split_view() -> None:
    genuine = LOG.note(10)
    forged = LOG.forged_leaves(3)
    with pytest.raises(Inconsistent) as caught:
        check(held(10, note=genuine), LOG.request(10, 10, leaves=forged))
    exc = caught.value
    assert exc.status == 409
    assert exc.size == 10
    assert exc.evidence.kind == "split_view"
    assert exc.evidence.alarm
    assert exc.evidence.held_note == genuine
    assert exc.evidence.presented_note == LOG.note(10, forged)


def test_same_size_with_a_proof_is_422() -> None:
    with pytest.raises(UnprovableCheckpoint):
        check(held(10), LOG.request(10, 10, proof=[bytes(32)]))


def test_evidence_fingerprint_is_stable_and_distinct() -> None:
    forged = LOG.forged_leaves(3)
    fingerprints = set()
    for leaves in (forged, LOG.forged_leaves(4)):
        for _ in range(2):
            with pytest.raises(Inconsistent) as caught:
                check(held(10), LOG.request(10, 10, leaves=leaves))
            fingerprints.add(caught.value.evidence.fingerprint)
    assert len(fingerprints) == 2


@pytest.mark.parametrize(
    "body",
    [b"", b"garbage", b"old 1\n\n", b"old x\n\nfoo\n", b"\xff\xfe", b"old 0\nAAAA\n\nnote\n"],
)
def test_malformed_bodies_are_400(body: bytes) -> None:
    with pytest.raises(FormatError) as caught:
        parse_submission(body)
    assert format_status(caught.value) == 400
