"""The optional worker-process pool: each worker logs in itself; results are valid and ordered."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from hsm import KeyAlgorithm, KeyNotFound, Secret, SignRequest, Token, TokenConfig, WrongPin
from hsm.pool import TokenPool


async def test_pool_signs_batches_across_processes(token: Token, token_config: TokenConfig) -> None:
    label = "pool-ec"
    if not await token.has_key(label):
        await token.generate_key(label, KeyAlgorithm.EC_P256)
    public = await token.public_key(label)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    digests = [hashlib.sha256(str(i).encode()).digest() for i in range(300)]
    requests = [SignRequest(label, d, prehashed=True) for d in digests]
    requests.append(SignRequest("pool-missing", digests[0], prehashed=True))
    async with TokenPool(token_config, workers=2) as pool:
        results = await pool.sign_many(requests)
    assert len(results) == 301
    for digest, signature in zip(digests, results[:300], strict=True):
        assert isinstance(signature, bytes)
        public.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    assert isinstance(results[300], KeyNotFound)


async def test_pool_with_a_wrong_pin_fails_at_start(token_config: TokenConfig) -> None:
    bad = TokenConfig(
        module_path=token_config.module_path,
        pin=Secret("wrong"),
        token_label=token_config.token_label,
        softhsm_conf=token_config.softhsm_conf,
    )
    with pytest.raises(WrongPin):
        async with TokenPool(bad, workers=1):
            pass
