"""``./dev sekisho ARGS`` runs the checkout's CLI as the README's commands are written."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

DEV = Path(__file__).resolve().parents[1] / "dev"


def test_dev_sekisho_passes_arguments_to_the_venv_cli_from_the_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(DEV, checkout / "dev")
    fake = checkout / ".venv" / "bin" / "sekisho"  # stands in for the installed entry point
    fake.write_text('#!/bin/sh\necho "cwd=$(pwd) args=$*"\n')
    fake.chmod(0o755)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [str(checkout / "dev"), "sekisho", "users", "add", "eve", "--name", "Eve Adams"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"cwd={checkout} args=users add eve --name Eve Adams"
