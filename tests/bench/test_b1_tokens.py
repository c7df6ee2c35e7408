"""B1's rows per token: produced for SoftHSM next to the raw loop, skipped rows for tokens that
cannot start (behaviour only: nothing is timed here)."""

from __future__ import annotations

import contextlib
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import b1_tokens
from bench.common import table
from hsm import TokenConfig
from tests.tokens import TokenUnavailable

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.slow  # a subprocess makes a SoftHSM token and RSA-3072 keys
def test_softhsm_rows_stand_next_to_the_raw_loop() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.b1_tokens", "--tokens", "softhsm", "--seconds", "0.05"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| B1 | SoftHSM: ")]
    kinds = ("ECDSA P-256 signatures", "RSA-3072 PSS signatures", "data-key unwraps (aes-key-")
    assert len(rows) == len(kinds), result.stdout
    for kind, row in zip(kinds, rows, strict=True):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[1].startswith(f"SoftHSM: {kind}") and "through hsm" in cells[1], row
        assert not math.isnan(float(cells[2].split()[0].replace(",", ""))), row
        assert cells[3].startswith("raw python-pkcs11 loop: "), row
        assert cells[4].endswith("x raw python-pkcs11 loop"), row


def test_a_token_that_cannot_start_is_a_skipped_row_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    @contextlib.contextmanager
    def missing(root: Path) -> Iterator[TokenConfig]:
        raise TokenUnavailable("swtpm is missing: apt-get install the TPM packages")
        yield

    monkeypatch.setitem(b1_tokens.STARTERS, "tpm", missing)
    (row,) = b1_tokens.run_tokens(["tpm"], 0.01)
    assert row.bench == "B1"
    assert math.isnan(row.value)
    assert row.what.startswith("TPM 2.0 (swtpm, tpm2-pkcs11): skipped"), row.what
    assert "swtpm is missing" in row.what, row.what
    assert f"| {row.what} | - | - | - |" in table([row])


def test_an_unknown_token_name_is_refused_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "B1", "--quick", "--tokens", "softhsm,yubikey"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "bench: unknown token(s) ['yubikey']; choose from "
        "['softhsm', 'opencryptoki', 'tpm'] or none"
    ]
    assert result.stdout == ""
