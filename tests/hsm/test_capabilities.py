"""The capability profile: which mechanism each Sekisho function gets, or why none."""

from __future__ import annotations

import pytest

from hsm import (
    Function,
    KekType,
    KeyAlgorithm,
    MechanismNotSupported,
    MechanismSupport,
    Token,
    choose_profile,
)

WRAP_UNWRAP = 0x20000 | 0x40000
SIGN, GEN_PAIR, GEN, DECRYPT, DERIVE = 0x800, 0x10000, 0x8000, 0x200, 0x80000

# What opencryptoki 3.8.1's software token reports (measured, see issue #15).
OPENCRYPTOKI = {
    "AES_KEY_GEN": MechanismSupport("AES_KEY_GEN", 16, 32, GEN),
    "RSA_PKCS_KEY_PAIR_GEN": MechanismSupport("RSA_PKCS_KEY_PAIR_GEN", 512, 4096, GEN_PAIR),
    "RSA_PKCS_OAEP": MechanismSupport("RSA_PKCS_OAEP", 1024, 4096, DECRYPT | WRAP_UNWRAP),
    "RSA_PKCS_PSS": MechanismSupport("RSA_PKCS_PSS", 1024, 4096, SIGN),
    "RSA_PKCS": MechanismSupport("RSA_PKCS", 512, 4096, SIGN | DECRYPT | WRAP_UNWRAP),
}
# What tpm2-pkcs11 on swtpm offers (issue #15): ECDSA P-256 and RSA, no EdDSA, no AES gen.
TPM = {
    "EC_KEY_PAIR_GEN": MechanismSupport("EC_KEY_PAIR_GEN", 256, 384, GEN_PAIR),
    "ECDSA": MechanismSupport("ECDSA", 256, 384, SIGN),
    "RSA_PKCS_KEY_PAIR_GEN": MechanismSupport("RSA_PKCS_KEY_PAIR_GEN", 1024, 3072, GEN_PAIR),
    "RSA_PKCS_OAEP": MechanismSupport("RSA_PKCS_OAEP", 1024, 3072, DECRYPT),
    "RSA_PKCS_PSS": MechanismSupport("RSA_PKCS_PSS", 1024, 3072, SIGN),
}


async def test_softhsm_gets_every_function(token: Token) -> None:
    profile = await token.profile()
    assert all(choice.possible for choice in profile.choices), profile.as_dicts()
    assert profile.choice(Function.CHECKPOINT).chosen.mechanism == "CKM_EDDSA"  # type: ignore[union-attr]
    kek = profile.choice(Function.KEK)
    assert kek.chosen is not None and kek.chosen.mechanism == "CKM_AES_KEY_WRAP_PAD"
    # SoftHSM also offers the other KEK types; those Sekisho cannot use yet say so.
    described = [o.describe() for o in kek.alternatives]
    assert "CKM_RSA_PKCS_OAEP (RSA-3072 OAEP SHA-256, unwrap on the token)" in described
    assert any("RFC 3394" in d and "not yet supported" in d for d in described)
    assert any("CKM_ECDH1_DERIVE" in d and "not yet" not in d for d in described)
    assert profile.choice(Function.WITNESS).possible
    checkpoint = profile.choice(Function.CHECKPOINT)
    assert [o.mechanism for o in checkpoint.alternatives] == ["CKM_ECDSA"]


def test_rsa_only_token_cannot_sign_checkpoints_and_says_why() -> None:
    profile = choose_profile(OPENCRYPTOKI)
    assert profile.choice(Function.NAMED_RSA).possible
    for function in (Function.CHECKPOINT, Function.WITNESS):
        assert not profile.choice(function).possible
    with pytest.raises(MechanismNotSupported) as caught:
        profile.require(Function.CHECKPOINT, "sekisho-ledger")
    message = caught.value.message
    assert "\n" not in message
    assert "checkpoint signing (key 'sekisho-ledger') is not possible on this token" in message
    assert "CKM_EDDSA" in message
    assert "CKM_EC_EDWARDS_KEY_PAIR_GEN is not offered" in message
    kek = profile.choice(Function.KEK)  # no AES key wrap: RSA-OAEP, unwrapping on the token
    assert kek.chosen is not None and kek.chosen.mechanism == "CKM_RSA_PKCS_OAEP"


def test_an_rsa_only_token_gets_rsa_ca_tsa_and_signing_keys() -> None:
    """PKCS#1 v1.5 (CKM_RSA_PKCS over a DigestInfo) for certificates and time-stamps, so
    stock ``openssl ts -verify`` accepts them; RSA-PSS for the document signing key."""
    profile = choose_profile(OPENCRYPTOKI)
    for function in (Function.CA, Function.TIMESTAMP):
        chosen = profile.require(function, "k")
        assert (chosen.mechanism, chosen.algorithm) == ("CKM_RSA_PKCS", KeyAlgorithm.RSA_3072)
        assert "PKCS#1 v1.5" in chosen.name
    signing = profile.require(Function.SIGNING, "sekisho-sign")
    assert (signing.mechanism, signing.algorithm) == ("CKM_RSA_PKCS_PSS", KeyAlgorithm.RSA_3072)
    without_pkcs1 = {k: v for k, v in OPENCRYPTOKI.items() if k != "RSA_PKCS"}
    assert "CKM_RSA_PKCS is not offered" in choose_profile(without_pkcs1).choice(Function.CA).reason


def test_ecdsa_comes_before_rsa_for_ca_tsa_and_signing() -> None:
    both = {**TPM, "RSA_PKCS": MechanismSupport("RSA_PKCS", 1024, 3072, SIGN)}
    profile = choose_profile(both)
    for function in (Function.CA, Function.TIMESTAMP, Function.SIGNING):
        choice = profile.choice(function)
        assert choice.chosen is not None and choice.chosen.mechanism == "CKM_ECDSA"
        assert [o.algorithm for o in choice.alternatives] == [KeyAlgorithm.RSA_3072]


def test_a_token_without_eddsa_signs_checkpoints_with_ecdsa() -> None:
    profile = choose_profile(TPM)
    checkpoint = profile.choice(Function.CHECKPOINT)
    assert checkpoint.chosen is not None
    assert checkpoint.chosen.mechanism == "CKM_ECDSA"
    assert "type 0x02" in checkpoint.chosen.name
    assert profile.choice(Function.CA).chosen is not None
    assert profile.choice(Function.TIMESTAMP).chosen is not None
    assert not profile.choice(Function.NAMED_ED25519).possible


def test_flags_and_key_sizes_count() -> None:
    no_unwrap = {
        "AES_KEY_GEN": MechanismSupport("AES_KEY_GEN", 16, 32, GEN),
        "AES_KEY_WRAP_PAD": MechanismSupport("AES_KEY_WRAP_PAD", 16, 32, 0x20000),
        "RSA_PKCS_KEY_PAIR_GEN": MechanismSupport("RSA_PKCS_KEY_PAIR_GEN", 512, 2048, GEN_PAIR),
        "RSA_PKCS_PSS": MechanismSupport("RSA_PKCS_PSS", 512, 2048, SIGN),
    }
    profile = choose_profile(no_unwrap)
    kek = profile.choice(Function.KEK)
    assert "CKM_AES_KEY_WRAP_PAD is offered without unwrap" in kek.reason
    rsa = profile.choice(Function.NAMED_RSA)
    assert "CKM_RSA_PKCS_KEY_PAIR_GEN takes keys of 512-2048, not 3072" in rsa.reason


def test_aes_sizes_reported_in_bits_still_count() -> None:
    in_bits = {
        "AES_KEY_GEN": MechanismSupport("AES_KEY_GEN", 128, 256, GEN),
        "AES_KEY_WRAP_PAD": MechanismSupport("AES_KEY_WRAP_PAD", 128, 256, WRAP_UNWRAP),
    }
    assert choose_profile(in_bits).choice(Function.KEK).possible
    too_small = {**in_bits, "AES_KEY_GEN": MechanismSupport("AES_KEY_GEN", 16, 24, GEN)}
    kek = choose_profile(too_small).choice(Function.KEK)
    assert "CKM_AES_KEY_GEN takes keys of 16-24, not 32" in kek.reason


def test_a_token_with_ecdh_but_no_key_wrap_gets_an_ecdh_kek() -> None:
    ecdh_only = {
        "EC_KEY_PAIR_GEN": MechanismSupport("EC_KEY_PAIR_GEN", 256, 384, GEN_PAIR),
        "ECDSA": MechanismSupport("ECDSA", 256, 384, SIGN),
        "ECDH1_DERIVE": MechanismSupport("ECDH1_DERIVE", 256, 384, DERIVE),
    }
    kek = choose_profile(ecdh_only).choice(Function.KEK)
    assert kek.chosen is not None and kek.chosen.mechanism == "CKM_ECDH1_DERIVE"
    assert KekType.for_algorithm(kek.chosen.algorithm) is KekType.ECDH_P256_HKDF_SHA256
