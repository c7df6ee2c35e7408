"""``sekisho verify RECEIPT``: one line for every outcome, never a traceback."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.tlog.checkpoint import Checkpoint
from gateway.tlog.merkle import Frontier, inclusion_proof_from_leaves, leaf_hash
from gateway.tlog.note import verifier_key
from gateway.tlog.receipt import Receipt, format_receipt
from tests.gateway.ledger.test_audit import ORIGIN, SoftSigner, entries

INDEX = 6


@pytest.fixture
async def files(tmp_path: Path) -> dict[str, Path]:
    """A valid receipt for entry 6 of a 10-entry log, its entry, the key and a stranger's key."""
    signer = SoftSigner()
    data = entries(10, "r")
    hashes = [leaf_hash(d) for d in data]
    frontier = Frontier()
    frontier.extend(hashes)
    note = await signer.sign(Checkpoint(ORIGIN, 10, frontier.root()))
    receipt = format_receipt(Receipt(INDEX, inclusion_proof_from_leaves(INDEX, hashes), note))
    paths = {
        "receipt": tmp_path / "entry.tlog-proof",
        "entry": tmp_path / "entry.json",
        "other-entry": tmp_path / "other.json",
        "key": tmp_path / "log.vkey",
        "stranger": tmp_path / "stranger.vkey",
    }
    paths["receipt"].write_text(receipt)
    paths["entry"].write_bytes(data[INDEX])
    paths["other-entry"].write_bytes(data[INDEX + 1])
    paths["key"].write_text(verifier_key(ORIGIN, signer.public) + "\n")
    paths["stranger"].write_text(verifier_key(ORIGIN, SoftSigner().public))
    return paths


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """Run the CLI in-process; returns the status and the one line it printed."""
    status = main(["verify", *(str(a) for a in args)])
    out, err = capsys.readouterr()
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert len(lines) == 1, out + err
    assert "Traceback" not in out + err
    return status, out.strip(), err.strip()


def test_valid_receipts(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, files["receipt"], "--key", files["key"], "--entry", files["entry"])
    assert status == 0 and out.startswith(f"receipt OK: entry {INDEX} of {ORIGIN} (tree size 10)")
    digest = leaf_hash(files["entry"].read_bytes()).hex()
    status, out, _ = run(capsys, files["receipt"], "--key", files["key"], "--leaf-hash", digest)
    assert status == 0 and out.startswith("receipt OK:")
    inline_key = files["key"].read_text().strip()
    status, out, _ = run(capsys, files["receipt"], "--key", inline_key)
    assert status == 0 and out.startswith("receipt signature OK:") and "--entry" in out


def test_receipts_that_do_not_verify(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    receipt, key = files["receipt"], files["key"]
    status, out, _ = run(capsys, receipt, "--key", key, "--entry", files["other-entry"])
    assert status == 1 and out.startswith("receipt INVALID: ")
    status, out, _ = run(capsys, receipt, "--key", files["stranger"], "--entry", files["entry"])
    assert status == 1 and out.startswith("receipt INVALID: ") and "signature" in out

    lines = receipt.read_text().split("\n")
    lines[2] = base64.b64encode(bytes(32)).decode()  # a wrong sibling hash
    receipt.write_text("\n".join(lines))
    status, out, _ = run(capsys, receipt, "--key", key, "--entry", files["entry"])
    assert status == 1 and out.startswith("receipt INVALID: ")
    del lines[2]  # a proof of the wrong length fails even without the entry
    receipt.write_text("\n".join(lines))
    status, out, _ = run(capsys, receipt, "--key", key)
    assert status == 1 and out.startswith("receipt INVALID: ") and "too few" in out


@pytest.mark.parametrize(
    ("receipt_text", "fragment"),
    [
        ("hello\n", "no empty line"),
        ("c2sp.org/tlog-proof@v1\nindex 1\nnot-base64!\n\nx\n", "not valid base64"),
        ("c2sp.org/tlog-proof@v2\nindex 1\n\nx\n", "must start with the line"),
        (b"\xff\xfe\n\n", "not valid UTF-8"),
    ],
)
def test_malformed_receipts_are_one_line_errors(
    files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    receipt_text: str | bytes,
    fragment: str,
) -> None:
    path = files["receipt"]
    if isinstance(receipt_text, bytes):
        path.write_bytes(receipt_text)
    else:
        path.write_text(receipt_text)
    status, _, err = run(capsys, path, "--key", files["key"])
    assert status == 1 and err.startswith("sekisho: error: ") and fragment in err, err


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("nonsense", "neither a key file nor a verifier key"),
        ("a+b+c", "8 hexadecimal digits"),
        ("name+00000000+AAAA", "verifier key material"),
        ("FILE:garbage", "three parts"),
    ],
)
def test_malformed_keys_are_one_line_errors(
    files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    key: str,
    fragment: str,
    tmp_path: Path,
) -> None:
    if key.startswith("FILE:"):
        (tmp_path / "bad.vkey").write_text(key.removeprefix("FILE:"))
        key = str(tmp_path / "bad.vkey")
    status, _, err = run(capsys, files["receipt"], "--key", key)
    assert status == 1 and err.startswith("sekisho: error: ") and fragment in err, err


def test_missing_files_and_bad_hashes(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, files["receipt"].with_name("absent"), "--key", files["key"])
    assert status == 1 and "does not exist" in err
    status, _, err = run(capsys, files["receipt"], "--key", files["key"], "--entry", "/nonexistent")
    assert status == 1 and "entry file /nonexistent does not exist" in err
    status, _, err = run(capsys, files["receipt"], "--key", files["key"], "--leaf-hash", "zz")
    assert status == 1 and "--leaf-hash" in err
