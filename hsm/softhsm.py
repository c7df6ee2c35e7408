"""Provision a SoftHSM token under a data directory (for the embedded default).

SoftHSM's own tool only takes PINs on its command line, and python-pkcs11 has
no ``C_InitToken``, so the token is initialised by a small child process
(:mod:`hsm._init_token`) that calls the module through ctypes and reads the
PINs from its standard input. PINs never appear in any process's argv.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from hsm.config import find_softhsm_module
from hsm.errors import HsmConfigError, ModuleMissing, OperationFailed


@dataclass(frozen=True)
class SoftHsmLayout:
    """Where a data directory keeps its SoftHSM configuration, tokens and PINs."""

    root: Path

    @property
    def conf(self) -> Path:
        """The SOFTHSM2_CONF file."""
        return self.root / "softhsm2.conf"

    @property
    def tokens(self) -> Path:
        """The token directory."""
        return self.root / "tokens"

    @property
    def user_pin_file(self) -> Path:
        """The user PIN, readable only by the service account."""
        return self.root / "user.pin"

    @property
    def so_pin_file(self) -> Path:
        """The security-officer PIN, needed only to reset a locked user PIN."""
        return self.root / "so.pin"


def write_conf(layout: SoftHsmLayout) -> None:
    """Write a SoftHSM configuration pointing at the layout's token directory."""
    layout.tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
    layout.conf.write_text(
        f"directories.tokendir = {layout.tokens}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n",
        encoding="utf-8",
    )


def _write_secret(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")


def provision_token(layout: SoftHsmLayout, label: str, module_path: str | None = None) -> None:
    """Create the configuration, PIN files and an initialised token with ``label``."""
    module = module_path or find_softhsm_module()
    if module is None:
        raise ModuleMissing(
            "SoftHSM is not installed (apt-get install softhsm2) "
            "and no PKCS#11 module is configured"
        )
    layout.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_conf(layout)
    if not layout.user_pin_file.exists():
        _write_secret(layout.user_pin_file, secrets.token_hex(16))
    if not layout.so_pin_file.exists():
        _write_secret(layout.so_pin_file, secrets.token_hex(16))
    user_pin = layout.user_pin_file.read_text(encoding="utf-8").strip()
    so_pin = layout.so_pin_file.read_text(encoding="utf-8").strip()
    init_token(module, layout.conf, label, so_pin=so_pin, user_pin=user_pin)


def init_token(module: str, conf: Path, label: str, *, so_pin: str, user_pin: str) -> None:
    """Initialise a free SoftHSM slot as a token named ``label`` (PINs via stdin)."""
    if len(label.encode()) > 32:
        raise HsmConfigError("a token label is at most 32 bytes")
    env = dict(os.environ, SOFTHSM2_CONF=str(conf))
    request = json.dumps({"module": module, "label": label, "so_pin": so_pin, "user_pin": user_pin})
    completed = subprocess.run(
        [sys.executable, "-m", "hsm._init_token"],
        input=request,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    if completed.returncode != 0:
        detail = completed.stderr.strip().splitlines()[-1:] or ["unknown error"]
        raise OperationFailed(f"could not initialise the SoftHSM token: {detail[0]}")
