"""A signing-API client for B1, registered with the real CLI (unlimited rate)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def client_token(
    data_dir: Path, extra: dict[str, str] | None = None, scopes: str = "sign"
) -> tuple[str, str]:
    """(bearer token, key name) of a fresh API client allowed to sign with ``default``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEKISHO_")}
    env.update({"SEKISHO_DATA": str(data_dir), **(extra or {})})
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli.main",
            "clients",
            "add",
            "bench",
            "--scopes",
            scopes,
            "--keys",
            "default",
            "--rate",
            "0",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    token = next(word for word in out.split() if word.startswith("sks_"))
    return token, "default"
