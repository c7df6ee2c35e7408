"""Every token operation against a real SoftHSM token, checked with `cryptography`."""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from hsm import (
    CertificateRequest,
    KekType,
    KeyAlgorithm,
    OperationFailed,
    SignRequest,
    Token,
    TokenConfig,
    issue_certificate,
)

HASHES = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}


def fresh(prefix: str) -> str:
    """A unique key label so tests never collide on the shared token."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("hash_name", ["sha256", "sha384", "sha512"])
async def test_ecdsa_over_digest_der_and_raw(token: Token, hash_name: str) -> None:
    label = fresh("ec")
    await token.generate_key(label, KeyAlgorithm.EC_P256)
    public = await token.public_key(label)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    message = os.urandom(100)
    digest = hashlib.new(hash_name, message).digest()

    der = await token.sign_digest(label, digest, encoding="der")
    public.verify(der, message, ec.ECDSA(HASHES[hash_name]))

    raw = await token.sign_digest(label, digest, encoding="raw")
    assert len(raw) == 64
    r, s = decode_dss_signature(der)
    assert r > 0 and s > 0
    from hsm.signing import raw_to_der

    public.verify(raw_to_der(raw), message, ec.ECDSA(HASHES[hash_name]))


async def test_ecdsa_rejects_wrong_digest_length(token: Token) -> None:
    label = fresh("ec")
    await token.generate_key(label, KeyAlgorithm.EC_P256)
    with pytest.raises(OperationFailed, match="32 bytes"):
        await token.sign_digest(label, b"short")


async def test_ed25519_over_message(token: Token) -> None:
    label = fresh("ed")
    await token.generate_key(label, KeyAlgorithm.ED25519)
    public = await token.public_key(label)
    assert isinstance(public, ed25519.Ed25519PublicKey)
    message = b"checkpoint body\n"
    signature = await token.sign_message(label, message)
    assert len(signature) == 64
    public.verify(signature, message)
    with pytest.raises(OperationFailed, match="message itself"):
        await token.sign(SignRequest(label, hashlib.sha256(message).digest(), prehashed=True))


async def test_rsa_pss_where_offered(token: Token) -> None:
    status = await token.status()
    if "RSA_PKCS_PSS" not in status.mechanisms:
        pytest.skip("this token offers no RSA-PSS")
    label = fresh("rsa")
    await token.generate_key(label, KeyAlgorithm.RSA_3072)
    public = await token.public_key(label)
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.key_size == 3072
    message = b"custody hand-over"
    signature = await token.sign_message(label, message, hash_name="sha384")
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
    public.verify(signature, message, pss, hashes.SHA384())


async def test_public_key_as_spki_der(token: Token) -> None:
    label = fresh("ec")
    await token.generate_key(label, KeyAlgorithm.EC_P256)
    der = await token.public_key_der(label)
    loaded = serialization.load_der_public_key(der)
    assert isinstance(loaded, ec.EllipticCurvePublicKey)
    assert loaded.curve.name == "secp256r1"


async def test_wrap_unwrap_round_trip(token: Token) -> None:
    kek = fresh("kek")
    await token.generate_key(kek, KeyAlgorithm.AES_256)
    data_key = os.urandom(32)
    wrapped = await token.wrap_data_key(kek, data_key)
    assert data_key not in wrapped
    assert len(wrapped) == 40  # RFC 5649: 32 bytes + 8-byte integrity block
    assert await token.unwrap_data_key(kek, wrapped) == data_key


async def test_unwrap_of_changed_bytes_fails_cleanly(token: Token) -> None:
    kek = fresh("kek")
    await token.generate_key(kek, KeyAlgorithm.AES_256)
    wrapped = bytearray(await token.wrap_data_key(kek, os.urandom(32)))
    wrapped[5] ^= 1
    with pytest.raises(OperationFailed, match="does not unwrap"):
        await token.unwrap_data_key(kek, bytes(wrapped))


async def test_private_keys_and_kek_are_sensitive_and_not_extractable(token: Token) -> None:
    labels = {
        fresh("ec"): KeyAlgorithm.EC_P256,
        fresh("ed"): KeyAlgorithm.ED25519,
        fresh("kek"): KeyAlgorithm.AES_256,
    }
    for label, algorithm in labels.items():
        await token.generate_key(label, algorithm)
    listed = {(k.label, k.object_class): k for k in await token.list_keys()}
    for label, algorithm in labels.items():
        object_class = "secret" if algorithm is KeyAlgorithm.AES_256 else "private"
        info = listed[(label, object_class)]
        assert info.sensitive is True, label
        assert info.extractable is False, label
        assert info.algorithm is algorithm


async def test_generating_an_existing_label_is_refused(token: Token) -> None:
    label = fresh("ec")
    await token.generate_key(label, KeyAlgorithm.EC_P256)
    with pytest.raises(OperationFailed, match="already exists"):
        await token.generate_key(label, KeyAlgorithm.EC_P256)


async def test_certificates_issued_by_token_ca_verify_with_openssl(
    token: Token, tmp_path: Path
) -> None:
    ca, leaf, tsa = fresh("ca"), fresh("leaf"), fresh("tsa")
    for label in (ca, leaf, tsa):
        await token.generate_key(label, KeyAlgorithm.EC_P256)
    ca_der = await issue_certificate(
        token, CertificateRequest(ca, "Test CA", is_ca=True), ca_label=ca, ca_certificate=None
    )
    leaf_der = await issue_certificate(
        token, CertificateRequest(leaf, "Leaf"), ca_label=ca, ca_certificate=ca_der
    )
    tsa_der = await issue_certificate(
        token,
        CertificateRequest(tsa, "TSA", extended_key_usage=("time_stamping",)),
        ca_label=ca,
        ca_certificate=ca_der,
    )
    assert await token.certificate(leaf) == leaf_der
    paths = {}
    for name, der in (("ca", ca_der), ("leaf", leaf_der), ("tsa", tsa_der)):
        cert = x509.load_der_x509_certificate(der)
        paths[name] = tmp_path / f"{name}.pem"
        paths[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    result = subprocess.run(
        ["openssl", "verify", "-CAfile", paths["ca"], paths["leaf"], paths["tsa"]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    tsa_cert = x509.load_der_x509_certificate(tsa_der)
    eku = tsa_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical
    assert x509.oid.ExtendedKeyUsageOID.TIME_STAMPING in eku.value
    leaf_public = x509.load_der_x509_certificate(leaf_der).public_key()
    assert leaf_public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == await token.public_key_der(leaf)


async def test_sign_many_returns_per_item_results(token: Token) -> None:
    label = fresh("ec")
    await token.generate_key(label, KeyAlgorithm.EC_P256)
    good = hashlib.sha256(b"x").digest()
    results = await token.sign_many(
        [
            SignRequest(label, good, prehashed=True),
            SignRequest(label, b"bad", prehashed=True),
            SignRequest("no-such-key", good, prehashed=True),
        ]
    )
    public = await token.public_key(label)
    assert isinstance(results[0], bytes)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    public.verify(results[0], good, ec.ECDSA(Prehashed(hashes.SHA256())))
    assert isinstance(results[1], OperationFailed)
    from hsm import KeyNotFound

    assert isinstance(results[2], KeyNotFound)


async def test_destroy_key_removes_it(token: Token) -> None:
    label = fresh("kek")
    await token.generate_key(label, KeyAlgorithm.AES_256)
    assert await token.has_key(label)
    await token.destroy_key(label)
    assert not await token.has_key(label)


async def test_data_objects_are_replaced_whole_and_survive_a_new_session(
    token: Token, token_config: TokenConfig
) -> None:
    label = fresh("data")
    assert await token.read_data(label) == []
    await token.write_data(label, b"first")
    await token.write_data(label, b"second")
    assert await token.read_data(label) == [b"second"]
    other = await Token.open(token_config)
    try:
        assert await other.read_data(label) == [b"second"]  # on the token, not in the session
    finally:
        await other.close()
    await token.destroy_key(label)
    assert await token.read_data(label) == []


async def test_an_ecdh_kek_wraps_in_software_and_unwraps_on_the_token(token: Token) -> None:
    """Tokens with ECDH but no AES key wrap: a P-256 KEK whose private half only derives."""
    kek = fresh("kek-ecdh")
    await token.generate_kek(kek, KekType.ECDH_P256_HKDF_SHA256)
    assert await token.kek_type(kek) is KekType.ECDH_P256_HKDF_SHA256
    await token.check_kek(kek)
    data_key = os.urandom(32)
    wrapped = await token.wrap_data_key(kek, data_key)
    again = await token.wrap_data_key(kek, data_key)
    assert wrapped != again  # a fresh ephemeral key every time
    assert data_key not in wrapped and wrapped[0] == 0x01 and len(wrapped) == 1 + 65 + 40
    assert await token.unwrap_data_key(kek, wrapped) == data_key
    assert await token.unwrap_data_key(kek, again) == data_key
    [private] = [
        k for k in await token.list_keys() if k.label == kek and k.object_class == "private"
    ]
    assert private.sensitive and not private.extractable


async def test_a_changed_or_foreign_ecdh_wrap_is_refused_cleanly(token: Token) -> None:
    kek, other = fresh("kek-ecdh"), fresh("kek-ecdh")
    for label in (kek, other):
        await token.generate_kek(label, KekType.ECDH_P256_HKDF_SHA256)
    wrapped = await token.wrap_data_key(kek, os.urandom(32))
    other_point = (await token.wrap_data_key(other, os.urandom(32)))[1:66]
    changed = [
        wrapped[:-1] + bytes([wrapped[-1] ^ 1]),  # the wrap itself
        wrapped[:1] + other_point + wrapped[66:],  # a valid point of another exchange
        wrapped[:1] + b"\x04" + bytes(64) + wrapped[66:],  # not on the curve
        b"\x02" + wrapped[1:],  # unknown format
        wrapped[:50],  # cut short
    ]
    for blob in changed:
        with pytest.raises(OperationFailed, match="does not unwrap"):
            await token.unwrap_data_key(kek, blob)
    with pytest.raises(OperationFailed, match="does not unwrap"):
        await token.unwrap_data_key(other, wrapped)  # another KEK's blob
