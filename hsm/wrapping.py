"""KEK types: how a data key is wrapped for a key-encryption key on the token.

``aes-key-wrap-pad``: an AES-256 secret key, CKM_AES_KEY_WRAP_PAD (RFC 5649) on
the token both ways. ``rsa-oaep-sha256``: an RSA-3072 key pair for tokens
without AES key wrap (a TPM): the data key is encrypted in software with the
public key (RSA-OAEP, SHA-256, MGF1-SHA-256, no label) and decrypted on the
token with CKM_RSA_PKCS_OAEP, so the private key never leaves it.
``ecdh-p256-hkdf-sha256``: a P-256 key pair for tokens with ECDH but neither:
the data key is wrapped in software under a key agreed between a fresh
ephemeral key and the KEK's public key (HKDF-SHA-256, then AES key wrap with
padding); unwrapping derives the same secret on the token (CKM_ECDH1_DERIVE),
so the private key never leaves it either.
"""

from __future__ import annotations

import enum

from cryptography.hazmat.primitives import keywrap, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pkcs11 import MGF, Mechanism

from hsm.key_templates import KeyAlgorithm

OAEP_PARAMS = (Mechanism.SHA256, MGF.SHA256, None)
"""CK_RSA_PKCS_OAEP_PARAMS as python-pkcs11 takes them: hash, MGF, no label."""


class KekType(enum.StrEnum):
    """How data keys are wrapped under one KEK (recorded per KEK version)."""

    AES_KEY_WRAP_PAD = "aes-key-wrap-pad"
    RSA_OAEP_SHA256 = "rsa-oaep-sha256"
    ECDH_P256_HKDF_SHA256 = "ecdh-p256-hkdf-sha256"

    @property
    def algorithm(self) -> KeyAlgorithm:
        """The token key the KEK is."""
        return KEK_ALGORITHMS[self]

    @classmethod
    def for_algorithm(cls, algorithm: KeyAlgorithm) -> KekType:
        """The KEK type of a token key algorithm (AES-256 or RSA-3072)."""
        for kek_type, kek_algorithm in KEK_ALGORITHMS.items():
            if kek_algorithm is algorithm:
                return kek_type
        raise ValueError(f"no KEK type uses {algorithm.value} keys")


KEK_ALGORITHMS = {
    KekType.AES_KEY_WRAP_PAD: KeyAlgorithm.AES_256,
    KekType.RSA_OAEP_SHA256: KeyAlgorithm.RSA_3072,
    KekType.ECDH_P256_HKDF_SHA256: KeyAlgorithm.EC_P256,
}


def oaep_encrypt(public_key: rsa.RSAPublicKey, data_key: bytes) -> bytes:
    """Wrap a data key in software with the KEK's public key (RSA-OAEP SHA-256)."""
    return public_key.encrypt(
        data_key, padding.OAEP(mgf=padding.MGF1(SHA256()), algorithm=SHA256(), label=None)
    )


ECDH_FORMAT = 0x01
"""First byte of an ECDH-wrapped data key: format 1 = point (65 bytes) || RFC 5649 wrap."""
POINT_LENGTH = 65  # an uncompressed P-256 point
HKDF_INFO = b"sekisho kek ecdh-p256-hkdf-sha256 v1"


def _kek_from_secret(shared: bytes, ephemeral_point: bytes, kek_point: bytes) -> bytes:
    """The AES-256 key both sides derive: HKDF-SHA-256 over the ECDH secret, bound to
    both public points (so a blob cannot be replayed under another KEK)."""
    info = HKDF_INFO + ephemeral_point + kek_point
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=info).derive(shared)


def _point(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def ecdh_wrap(kek_public: ec.EllipticCurvePublicKey, data_key: bytes) -> bytes:
    """Wrap a data key in software for the KEK's P-256 public key (a fresh ephemeral key
    each time)."""
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    ephemeral_point = _point(ephemeral.public_key())
    shared = ephemeral.exchange(ec.ECDH(), kek_public)
    key = _kek_from_secret(shared, ephemeral_point, _point(kek_public))
    return bytes([ECDH_FORMAT]) + ephemeral_point + keywrap.aes_key_wrap_with_padding(key, data_key)


def ecdh_parts(wrapped: bytes) -> tuple[bytes, bytes]:
    """(ephemeral point, RFC 5649 wrap) of an ECDH-wrapped data key; ValueError if malformed."""
    if len(wrapped) < 1 + POINT_LENGTH + 16 or wrapped[0] != ECDH_FORMAT:
        raise ValueError("not an ECDH-wrapped data key of format 1")
    point = wrapped[1 : 1 + POINT_LENGTH]
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)  # on the curve
    return point, wrapped[1 + POINT_LENGTH :]


def ecdh_unwrap(
    shared: bytes, ephemeral_point: bytes, kek_public: ec.EllipticCurvePublicKey, wrap: bytes
) -> bytes:
    """The data key, from the secret the token derived; InvalidUnwrap if anything changed."""
    key = _kek_from_secret(shared, ephemeral_point, _point(kek_public))
    return keywrap.aes_key_unwrap_with_padding(key, wrap)
