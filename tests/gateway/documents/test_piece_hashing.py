"""Hashing helpers: part of each chunk's pieces hashed in another process, the verdict here."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.documents.piece_hashing import PieceHashHelper, PieceHashHelpers
from gateway.documents.segment_anchor import AnchorMismatch, PieceHasher, PieceVerifier
from gateway.documents.stream_aead import StreamEncryptor
from gateway.errors import ConfigError

SEGMENT = 64 * 1024
KEY = bytes(range(32))


def sealed_stream(plain: bytes) -> tuple[bytes, list[bytes]]:
    """A stream of ``plain`` and its anchored leaves."""
    encryptor = StreamEncryptor(KEY, b"ad", SEGMENT)
    stream = encryptor.header() + encryptor.update(plain) + encryptor.finalize()
    hasher = PieceHasher(SEGMENT)
    hasher.update(stream)
    return stream, hasher.finish()


PLAIN = bytes(range(256)) * (100 * SEGMENT // 256)  # a hundred segments, 6.25 MiB
STREAM, LEAVES = sealed_stream(PLAIN)


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def verify(stream: bytes, helpers: PieceHashHelpers | None, chunk_size: int = 1024 * 1024) -> None:
    """Feed ``stream`` to a verifier that borrows from ``helpers``; raises on a refusal."""
    verifier = PieceVerifier(LEAVES, SEGMENT, len(STREAM), 0, len(LEAVES) - 1, helpers)
    try:
        for chunk in chunks(stream, chunk_size):
            verifier.update(chunk)
        verifier.finish()
    finally:
        verifier.release()


def wait_for_idle_helper(pool: PieceHashHelpers) -> PieceHashHelper:
    """Ask ``pool`` until a helper has started and is idle; the caller gives it back."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        helper = pool.lend()
        if helper is not None:
            return helper
        time.sleep(0.02)
    raise AssertionError("no helper started within 30 s")


@dataclass
class Started:
    pool: PieceHashHelpers
    helper: PieceHashHelper


def started_pool(start: Callable[[int], PieceHashHelper] = PieceHashHelper) -> Started:
    """A pool of one helper, started and idle."""
    pool = PieceHashHelpers(1, start=start)
    helper = wait_for_idle_helper(pool)
    pool.give_back(helper)
    return Started(pool, helper)


@pytest.fixture
def started() -> Iterator[Started]:
    pool = started_pool()
    yield pool
    pool.pool.close()


@pytest.mark.parametrize("chunk_size", [1024 * 1024, 300_001, 5 * (SEGMENT + 16) + 7])
def test_a_good_stream_passes_in_any_chunking_with_the_helper_doing_part(
    started: Started, chunk_size: int
) -> None:
    verify(STREAM, started.pool, chunk_size)
    assert started.helper.answered > len(LEAVES) // 4  # the helper really hashed a share
    assert started.pool.lend() is started.helper  # given back, usable
    started.pool.give_back(started.helper)


@pytest.mark.parametrize("segment", [0, 3, 12, 35, 99])  # helper's and this side's shares
def test_a_changed_segment_is_refused_in_the_chunk_that_completes_it(
    started: Started, segment: int
) -> None:
    changed = bytearray(STREAM)
    changed[16 + segment * (SEGMENT + 16) + 100] ^= 0x01
    with pytest.raises(AnchorMismatch, match=f"segment {segment} does not match"):
        verify(bytes(changed), started.pool)
    with pytest.raises(AnchorMismatch, match=f"segment {segment} does not match"):
        verify(bytes(changed), None)
    # the refusal comes in the chunk holding the piece's last byte, never later
    last_byte = 16 + (segment + 1) * (SEGMENT + 16) - 1
    verifier = PieceVerifier(LEAVES, SEGMENT, len(STREAM), 0, len(LEAVES) - 1, started.pool)
    refused_at = None
    for number, chunk in enumerate(chunks(bytes(changed), 1024 * 1024)):
        try:
            verifier.update(chunk)
        except AnchorMismatch:
            refused_at = number
            break
    verifier.release()
    assert refused_at == last_byte // (1024 * 1024)
    assert started.helper.answered > 0
    assert started.helper.usable  # a refusal leaves no answer unread


def test_a_helper_that_dies_half_way_leaves_the_check_to_this_side(
    started: Started, caplog: pytest.LogCaptureFixture
) -> None:
    verifier = PieceVerifier(LEAVES, SEGMENT, len(STREAM), 0, len(LEAVES) - 1, started.pool)
    parts = list(chunks(STREAM, 1024 * 1024))
    verifier.update(parts[0])
    assert started.helper.answered > 0
    os.kill(started.helper.pid, 9)
    for part in parts[1:]:
        verifier.update(part)
    verifier.finish()
    verifier.release()
    assert started.helper.broken
    assert started.pool.running == 0  # stopped when given back; a later ask starts another
    assert "helper failed" in caplog.text  # one warning for the operator, no stack trace
    changed = bytearray(STREAM)
    changed[-200] ^= 0x01
    with pytest.raises(AnchorMismatch):
        verify(bytes(changed), started.pool)


def test_a_verifier_released_before_its_reading_thread_stops_borrows_no_more(
    started: Started,
) -> None:
    """A cancelled download gives its helper back while its thread may still read."""
    verifier = PieceVerifier(LEAVES, SEGMENT, len(STREAM), 0, len(LEAVES) - 1, started.pool)
    parts = list(chunks(STREAM, 1024 * 1024))
    verifier.update(parts[0])
    hashed = started.helper.answered
    assert hashed > 0
    verifier.release()
    for part in parts[1:]:  # the thread finishing its chunks after the release
        verifier.update(part)
    verifier.finish()
    assert started.helper.answered == hashed  # not used again, not borrowed anew
    assert started.pool.lend() is started.helper  # back in the pool, idle and usable
    started.pool.give_back(started.helper)


class _LyingHelper(PieceHashHelper):
    """Answers every request with wrong hashes."""

    def receive(self) -> list[bytes]:
        return [bytes(32) for _ in super().receive()]


def test_a_helper_that_answers_wrong_hashes_cannot_refuse_a_good_stream() -> None:
    liar = started_pool(_LyingHelper)
    try:
        verify(STREAM, liar.pool)
        assert liar.helper.answered > 0
        changed = bytearray(STREAM)
        changed[16 + 3 * (SEGMENT + 16)] ^= 0x01
        with pytest.raises(AnchorMismatch, match="segment 3 does not match"):
            verify(bytes(changed), liar.pool)
    finally:
        liar.pool.close()


def test_helpers_start_on_demand_see_no_environment_and_stop_with_the_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEKISHO_TOKEN_PIN", "1234")  # as a gateway's environment would hold
    pool = PieceHashHelpers(1)
    assert pool.lend() is None  # the first ask starts one and hashes alone
    helper = wait_for_idle_helper(pool)
    assert pool.lend() is None  # one at most, and it is out on loan
    assert Path(f"/proc/{helper.pid}/environ").read_bytes() == b""
    pool.give_back(helper)
    verify(STREAM, pool)
    assert helper.answered > 0
    pool.close()
    assert pool.running == 0
    assert helper._process.returncode == 0  # it left when its socket closed, not killed
    assert pool.lend() is None


def test_a_helper_given_back_with_an_unread_answer_is_stopped_and_replaced() -> None:
    pool = PieceHashHelpers(1)
    pool.lend()
    helper = wait_for_idle_helper(pool)
    helper.send([memoryview(STREAM[:1000])])  # its user stopped before reading the answer
    assert not helper.usable
    pool.give_back(helper)
    assert pool.running == 0
    assert helper._process.wait(timeout=30) == 0  # left when its socket closed, not killed
    replacement = wait_for_idle_helper(pool)
    assert replacement is not helper
    pool.give_back(replacement)
    pool.close()


@pytest.mark.parametrize(("value", "helpers"), [("0", 0), ("3", 3), ("17", None), ("-1", None)])
def test_the_number_of_helpers_is_a_setting_with_bounds(value: str, helpers: int | None) -> None:
    environ = {"SEKISHO_DOCUMENTS_HASHING_HELPERS": value}
    if helpers is None:
        with pytest.raises(ConfigError, match=r"documents\.hashing_helpers"):
            load_settings(environ=environ)
    else:
        assert load_settings(environ=environ).documents.hashing_helpers == helpers


def test_helpers_leave_when_their_gateway_process_is_killed(tmp_path: Path) -> None:
    script = (
        "import time\n"
        "from gateway.documents.piece_hashing import PieceHashHelper\n"
        "helpers = [PieceHashHelper(4096) for _ in range(2)]\n"
        "print(*(helper.pid for helper in helpers), flush=True)\n"
        "time.sleep(120)\n"
    )
    gateway = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert gateway.stdout is not None
    pids = [int(pid) for pid in gateway.stdout.readline().split()]
    assert len(pids) == 2 and all(alive(pid) for pid in pids)
    gateway.kill()
    gateway.wait()
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in pids)


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped has left)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.parametrize("failure", [OSError("no such interpreter"), RuntimeError("odd")])
def test_a_helper_that_cannot_start_is_not_tried_again_at_every_chunk(failure: Exception) -> None:
    """Downloads ask the pool at every chunk; a start that fails is counted out (whatever
    it raised) and not tried again before the retry time, so a broken interpreter costs
    one failed start per retry period, not one process start per chunk."""
    attempts: list[int] = []

    def fails(capacity: int) -> PieceHashHelper:
        attempts.append(capacity)
        raise failure

    pool = PieceHashHelpers(1, start=fails, retry_seconds=3600)
    assert pool.lend() is None
    deadline = time.monotonic() + 30
    while pool.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.running == 0
    for _ in range(50):  # fifty more chunks of downloads
        assert pool.lend() is None
    assert len(attempts) == 1
    verify(STREAM, pool)  # downloads are checked without it

    retrying = PieceHashHelpers(1, start=fails, retry_seconds=0)
    retrying.lend()
    while retrying.running and time.monotonic() < deadline:
        time.sleep(0.01)
    retrying.lend()  # the retry time passed: one more try
    while retrying.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(attempts) == 3
