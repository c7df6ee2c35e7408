"""opencryptoki's software token (RSA/AES, no EC, no AES key wrap): what Sekisho says and does."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from hsm import (
    Function,
    KekType,
    KeyAlgorithm,
    MechanismNotSupported,
    OperationFailed,
    Token,
    TokenConfig,
    read_pin,
)
from tests.nodes import run_cli
from tests.tokens.opencryptoki import OpencryptokiToken

pytestmark = pytest.mark.slow  # starts a daemon and runs the CLI


def _env(ock: OpencryptokiToken) -> dict[str, str]:
    return {"SEKISHO_HSM_URI": ock.uri, "SEKISHO_HSM_PIN_FILE": str(ock.pin_file)}


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("sekisho: error:"), stderr
    return lines[0]


def test_status_prints_the_capability_profile(
    opencryptoki: OpencryptokiToken, data_dir: Path
) -> None:
    result = run_cli(["hsm", "status"], data_dir, _env(opencryptoki))
    assert result.returncode == 0, result.stderr
    rows = {line.split("  ")[0]: line for line in result.stdout.splitlines()}
    assert "not possible on this token" in rows["checkpoint signing"]
    assert "CKM_EC_EDWARDS_KEY_PAIR_GEN is not offered" in rows["checkpoint signing"]
    assert "CKM_RSA_PKCS_PSS (RSA-3072 PSS)" in rows["named key rsa-pss"]
    assert "CKM_RSA_PKCS_OAEP (RSA-3072 OAEP SHA-256" in rows["KEK wrap/unwrap"]
    profile = json.loads(run_cli(["hsm", "status", "--json"], data_dir, _env(opencryptoki)).stdout)
    by_function = {row["function"]: row for row in profile["profile"]}
    assert by_function["named key rsa-pss"]["mechanism"] == "CKM_RSA_PKCS_PSS"
    assert by_function["checkpoint signing"]["mechanism"] is None


def test_init_refuses_in_one_line_before_creating_any_key(
    opencryptoki: OpencryptokiToken, data_dir: Path
) -> None:
    result = run_cli(["init"], data_dir, _env(opencryptoki))
    assert result.returncode != 0
    line = _one_line(result.stderr)
    impossible = "is not possible on this token: it needs"
    assert f"checkpoint signing (key 'sekisho-ledger') {impossible} CKM_EDDSA" in line
    assert "KEK wrap/unwrap" not in line  # RSA-OAEP: possible on this token
    assert "CA/CMS certificates" not in line  # RSA PKCS#1 v1.5
    assert "timestamping" not in line and "document signing" not in line
    keys = json.loads(run_cli(["hsm", "keys", "--json"], data_dir, _env(opencryptoki)).stdout)
    assert not [k for k in keys if k["label"].startswith("sekisho-")]


def test_module_error_with_the_daemon_stopped_says_why(opencryptoki: OpencryptokiToken) -> None:
    if not opencryptoki.stopped_error:
        pytest.skip("pkcsslotd was already running before this test run")
    line = _one_line(opencryptoki.stopped_error)
    assert "could not be loaded" in line
    assert "pkcsslotd" in line
    assert not line.rstrip().endswith(":")
    assert "()" not in line


async def test_rsa_keys_sign_and_ec_keys_fail_naming_key_and_mechanism(
    opencryptoki: OpencryptokiToken,
) -> None:
    config = TokenConfig.from_uri(opencryptoki.uri, read_pin(pin_file=opencryptoki.pin_file))
    token = await Token.open(config)
    label = f"rsa-{os.getpid()}"
    try:
        await token.generate_key(label, KeyAlgorithm.RSA_3072)
        public = await token.public_key(label)
        assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 3072
        await token.self_test(label)
        with pytest.raises(MechanismNotSupported) as caught:
            await token.generate_key(f"ec-{os.getpid()}", KeyAlgorithm.EC_P256)
        assert f"generating key 'ec-{os.getpid()}' (ec-p256)" in caught.value.message
        assert "CKM_EC_KEY_PAIR_GEN" in caught.value.message
    finally:
        await token.destroy_key(label)
        await token.close()


async def test_an_rsa_oaep_kek_wraps_in_software_and_unwraps_on_the_token(
    opencryptoki: OpencryptokiToken,
) -> None:
    config = TokenConfig.from_uri(opencryptoki.uri, read_pin(pin_file=opencryptoki.pin_file))
    token = await Token.open(config)
    label = f"kek-{os.getpid()}"
    try:
        profile = await token.profile()
        kek = profile.require(Function.KEK, label)
        assert kek.mechanism == "CKM_RSA_PKCS_OAEP"
        await token.generate_kek(label, KekType.for_algorithm(kek.algorithm))
        assert await token.kek_type(label) is KekType.RSA_OAEP_SHA256
        await token.check_kek(label)
        data_key = os.urandom(32)
        wrapped = await token.wrap_data_key(label, data_key)
        assert await token.unwrap_data_key(label, wrapped) == data_key
        with pytest.raises(OperationFailed, match="does not unwrap"):
            await token.unwrap_data_key(label, wrapped[:-1] + bytes([wrapped[-1] ^ 1]))
    finally:
        await token.destroy_key(label)
        await token.close()
