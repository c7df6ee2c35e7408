"""A process that starts while another one rewrites the token's store still opens it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from hsm import SoftHsmLayout, provision_token

OPEN_ONE_TOKEN = """
import sys
from hsm import Token, TokenConfig, find_softhsm_module, read_pin
config = TokenConfig(
    module_path=find_softhsm_module(),
    pin=read_pin(pin_file=sys.argv[1]),
    token_label="startup",
    softhsm_conf=sys.argv[2],
)
print("opening", flush=True)
Token.open_sync(config)
print("opened", flush=True)
"""


def test_a_token_whose_store_is_mid_write_at_start_is_opened_once_it_reads_whole(
    tmp_path: Path,
) -> None:
    """SoftHSM skips a token whose token.object does not read whole at C_Initialize (as while
    another process rewrites it); the opening process looks again instead of failing."""
    layout = SoftHsmLayout(tmp_path / "softhsm")
    provision_token(layout, "startup")
    token_object = next(layout.tokens.rglob("token.object"))
    whole = token_object.read_bytes()
    token_object.write_bytes(whole[: len(whole) // 2])

    child = subprocess.Popen(
        [sys.executable, "-c", OPEN_ONE_TOKEN, str(layout.user_pin_file), str(layout.conf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "opening"
    time.sleep(0.5)  # the first attempt meets the half-written store
    token_object.write_bytes(whole)
    out, err = child.communicate(timeout=60)

    assert child.returncode == 0, err
    assert out.strip() == "opened"
