"""The benchmarks run end to end in quick mode, so their code cannot rot (nothing is timed here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocesses or many cases: `./dev test -m "not slow"` skips it


def test_every_benchmark_runs_in_quick_mode(tmp_path: Path) -> None:
    report = tmp_path / "performance.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(report)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for bench_id in ("B1", "B2", "B3", "B4", "B5", "B6", "B7"):
        rows = [line for line in result.stdout.splitlines() if line.startswith(f"| {bench_id} |")]
        assert rows, f"{bench_id} produced no row"
        assert not any("failed:" in row or "not run:" in row for row in rows), rows
    assert "| B2 |" in report.read_text()
