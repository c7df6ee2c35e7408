"""A TPM 2.0 through tpm2-pkcs11 (ECDSA P-256 and RSA, no EdDSA, no key wrap)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.ledger.checkpoint_signer import CheckpointSigner
from gateway.tlog.checkpoint import Checkpoint, open_signed_checkpoint
from gateway.tlog.merkle import EMPTY_ROOT
from gateway.tlog.note import SIG_ECDSA, NoteVerificationError, parse_log_verifier_key
from hsm import (
    KeyAlgorithm,
    KeyNotFound,
    MechanismNotSupported,
    Token,
    TokenConfig,
    TokenRemoved,
    read_pin,
    verify_signature,
)
from hsm.refresh import REFRESH_GAP_SECONDS, REFRESH_SECONDS
from hsm.token import REINIT_RETRY_SECONDS
from tests.gateway.faults.client import call, person_token, upload_url
from tests.nodes import http_get, run_cli, running_node, wait_for
from tests.tokens.tpm import TpmToken

pytestmark = pytest.mark.slow  # starts a software TPM and its resource manager

ORIGIN = "example.test/tpm-log"


def _env(tpm: TpmToken) -> dict[str, str]:
    return {"SEKISHO_HSM_URI": tpm.uri, "SEKISHO_HSM_PIN_FILE": str(tpm.pin_file)}


def test_status_shows_the_tpm_profile(tpm: TpmToken, data_dir: Path) -> None:
    """(init, serving, KEK rotation and removal on a TPM: tests/tokens/test_tpm_node.py)"""
    shown = run_cli(["hsm", "status"], data_dir, _env(tpm))
    assert shown.returncode == 0, shown.stderr
    rows = {line.split("  ")[0]: line for line in shown.stdout.splitlines()}
    assert "CKM_ECDSA (ECDSA P-256, signed-note type 0x02)" in rows["checkpoint signing"]
    assert "CKM_RSA_PKCS_OAEP (RSA-3072 OAEP SHA-256" in rows["KEK wrap/unwrap"]
    assert "CKM_EC_EDWARDS_KEY_PAIR_GEN is not offered" in rows["witness cosigning"]


async def test_a_tpm_key_signs_checkpoints_as_note_type_0x02(tpm: TpmToken) -> None:
    config = TokenConfig.from_uri(tpm.uri, read_pin(pin_file=tpm.pin_file))
    token = await Token.open(config)
    label = f"ledger-{os.getpid()}"
    try:
        await token.generate_key(label, KeyAlgorithm.EC_P256)
        signer = await CheckpointSigner.create(token, label, ORIGIN)
        assert signer.sig_type == SIG_ECDSA
        name, key_id, spki = parse_log_verifier_key(signer.verifier_key)
        assert (name, key_id, spki) == (ORIGIN, signer.key_id, signer.public_key)
        note = await signer.sign(Checkpoint(ORIGIN, 0, EMPTY_ROOT))
        checkpoint, _ = open_signed_checkpoint(note, ORIGIN, ORIGIN, spki)
        assert checkpoint.size == 0
        with pytest.raises(NoteVerificationError):
            open_signed_checkpoint(note.replace("\n0\n", "\n1\n"), ORIGIN, ORIGIN, spki)
        with pytest.raises(MechanismNotSupported) as caught:
            await token.generate_key(f"ed-{os.getpid()}", KeyAlgorithm.ED25519)
        assert "CKM_EC_EDWARDS_KEY_PAIR_GEN" in caught.value.message
    finally:
        await token.destroy_key(label)
        await token.close()


async def test_a_key_made_by_another_process_is_found_without_reopening(tpm: TpmToken) -> None:
    """tpm2-pkcs11 lists objects when the module loads: a missing label re-reads them, rationed."""
    token = await Token.open(TokenConfig.from_uri(tpm.uri, read_pin(pin_file=tpm.pin_file)))
    label = f"late-{os.getpid()}"
    try:
        tpm.add_key_elsewhere(label)  # after this process loaded the module and logged in
        # Another test on this worker may have just used the module's refresh (at most
        # one a second): the key is found once the rationing lets the module re-read.
        deadline = time.monotonic() + REFRESH_GAP_SECONDS + 30
        while True:
            try:
                public = await token.public_key(label)
                break
            except KeyNotFound:
                assert time.monotonic() < deadline, "the key made elsewhere was never found"
                await asyncio.sleep(0.2)
        assert isinstance(public, ec.EllipticCurvePublicKey)
        signature = await token.sign_message(label, b"found without a restart")
        assert verify_signature(public, signature, b"found without a restart", hash_name="sha256")

        absent = f"absent-{os.getpid()}"
        before, started = token._module.refreshes, time.monotonic()
        for _ in range(20):
            with pytest.raises(KeyNotFound):
                await token.public_key(absent)
        elapsed = time.monotonic() - started
        assert token._module.refreshes - before <= 1 + int(elapsed / REFRESH_SECONDS)
        assert await token.public_key(label) == public  # the token still works between
    finally:
        await token.destroy_key(label)
        await token.close()


async def test_a_tpm_that_goes_away_is_tried_again_at_most_once_a_second(tpm: TpmToken) -> None:
    """Each failed C_Initialize writes ERROR lines to stderr: requests meanwhile answer
    TokenRemoved without one; the token is used again once it is back."""
    token = await Token.open(TokenConfig.from_uri(tpm.uri, read_pin(pin_file=tpm.pin_file)))
    label = f"away-{os.getpid()}"
    module = token._module
    try:
        await token.generate_key(label, KeyAlgorithm.EC_P256)
        tpm.resource_manager.stop()
        try:
            before, started = module.failed_inits, time.monotonic()
            for _ in range(30):
                with pytest.raises(TokenRemoved) as caught:
                    await token.sign_message(label, b"while away")
                assert f"label {tpm.label!r}" in caught.value.message
            elapsed = time.monotonic() - started
            tried = module.failed_inits - before
            assert 1 <= tried <= 1 + int(elapsed / REINIT_RETRY_SECONDS)
        finally:
            tpm.resource_manager.start()
            tpm.resource_manager.wait_ready()

        async def signs() -> bool:
            try:
                await token.sign_message(label, b"back")
            except TokenRemoved:
                return False
            return True

        deadline = time.monotonic() + 60
        while not await signs():
            assert time.monotonic() < deadline, "the token did not come back"
            await asyncio.sleep(0.1)
    finally:
        await token.destroy_key(label)
        await token.close()


def test_witness_init_says_cosigning_needs_ed25519(tpm: TpmToken, data_dir: Path) -> None:
    env = {**_env(tpm), "SEKISHO_WITNESS_NAME": "w.test"}
    result = run_cli(["witness", "init"], data_dir, env)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sekisho: error: "), result.stderr
    assert "witness cosigning (key 'sekisho-witness') is not possible on this token" in lines[0]
    assert "CKM_EDDSA" in lines[0]


def test_witness_key_placed_on_a_tpm_says_cosigning_needs_ed25519(
    tpm: TpmToken, data_dir: Path
) -> None:
    """The node's own token (embedded SoftHSM) has EdDSA; the witness key's token does not."""
    env = {
        "SEKISHO_HSM_KEYS_WITNESS": f"{tpm.uri}&pin-source=file:{tpm.pin_file}",
        "SEKISHO_WITNESS_NAME": "w.test",
    }
    result = run_cli(["witness", "init"], data_dir, env)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sekisho: error: "), result.stderr
    assert (
        f"witness cosigning (key 'sekisho-witness') is not possible on the token with label "
        f"{tpm.label!r}" in lines[0]
    )
    assert "CKM_EDDSA" in lines[0]


def test_log_key_on_a_tpm_and_the_kek_on_softhsm(tpm: TpmToken, data_dir: Path) -> None:
    """The issue's case: the log key on a TPM, everything else (KEK included) on the node's
    SoftHSM token. Each key is made with what its own token offers."""
    env = {
        "SEKISHO_KEYS_LEDGER": "placed-ledger",  # its own label: the TPM store is per session
        "SEKISHO_HSM_KEYS_LEDGER": f"{tpm.uri}&pin-source=file:{tpm.pin_file}",
    }
    init = run_cli(["init", "--demo"], data_dir, env, timeout=600)
    assert init.returncode == 0, init.stderr
    assert "key placed-ledger (ec-p256, CKM_ECDSA)" in init.stdout  # the TPM has no EdDSA
    assert "key sekisho-kek (aes-256, CKM_AES_KEY_WRAP_PAD)" in init.stdout  # SoftHSM's
    keys = json.loads(run_cli(["hsm", "keys", "--json"], data_dir, env).stdout)
    # (The TPM's store is per session: it may also hold the other TPM tests' keys.)
    held = {(k["label"], k["token_label"]) for k in keys if k["class"] in {"private", "secret"}}
    assert ("placed-ledger", tpm.label) in held and ("placed-ledger", "sekisho") not in held
    assert {("sekisho-kek", "sekisho"), ("sekisho-ca", "sekisho")} <= held

    alice = person_token(data_dir, "alice", env)
    secret = b"log key on the TPM, data keys under SoftHSM\n" * 50
    with running_node(data_dir, env) as base:
        key = json.loads(http_get(base + "/api/v1/ledger/key")[1])
        assert key["algorithm"] == "ECDSA P-256"
        status, raw = call("POST", upload_url(base, "split"), alice, secret)
        assert status == 201, raw
        doc = json.loads(raw)["id"]
        status, raw = call("GET", f"{base}/api/v1/documents/{doc}/content", alice)
        assert (status, raw) == (200, secret), raw[:300]
        wait_for(lambda: http_get(base + "/ledger/checkpoint")[0] == 200)
    verified = run_cli(["ledger", "verify"], data_dir, env)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("ledger OK: ")
