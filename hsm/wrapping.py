"""KEK types: how a data key is wrapped for a key-encryption key on the token.

``aes-key-wrap-pad``: an AES-256 secret key, CKM_AES_KEY_WRAP_PAD (RFC 5649) on
the token both ways. ``rsa-oaep-sha256``: an RSA-3072 key pair for tokens
without AES key wrap (a TPM): the data key is encrypted in software with the
public key (RSA-OAEP, SHA-256, MGF1-SHA-256, no label) and decrypted on the
token with CKM_RSA_PKCS_OAEP, so the private key never leaves it.
"""

from __future__ import annotations

import enum

from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.hashes import SHA256
from pkcs11 import MGF, Mechanism

from hsm.key_templates import KeyAlgorithm

OAEP_PARAMS = (Mechanism.SHA256, MGF.SHA256, None)
"""CK_RSA_PKCS_OAEP_PARAMS as python-pkcs11 takes them: hash, MGF, no label."""


class KekType(enum.StrEnum):
    """How data keys are wrapped under one KEK (recorded per KEK version)."""

    AES_KEY_WRAP_PAD = "aes-key-wrap-pad"
    RSA_OAEP_SHA256 = "rsa-oaep-sha256"

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
}


def oaep_encrypt(public_key: rsa.RSAPublicKey, data_key: bytes) -> bytes:
    """Wrap a data key in software with the KEK's public key (RSA-OAEP SHA-256)."""
    return public_key.encrypt(
        data_key, padding.OAEP(mgf=padding.MGF1(SHA256()), algorithm=SHA256(), label=None)
    )
