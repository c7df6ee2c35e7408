"""The soak runs end to end in quick mode: no 5xx and one ledger entry per acknowledged operation.

Nothing is timed here and the RSS figure is only reported in quick mode.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # subprocesses or many cases: `./dev test -m "not slow"` skips it


def test_the_quick_soak_passes_with_no_5xx_and_a_matching_ledger() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-4000:]
    assert "  5xx responses: 0 -> pass" in out, out
    assert "  ledger one entry per acknowledged operation: match -> pass" in out, out
    assert "  ledger verify: OK -> pass" in out, out
    lines = out.splitlines()
    first = lines.index("| ledger kind | acked | entries | verdict |") + 2
    ledger_rows = lines[first : first + 8]  # seven kinds and "other entries"
    assert all(line.endswith("| match |") for line in ledger_rows), out
    assert "SOAK PASSED" in out
