"""The signing-key interface the CMS and timestamp builders use; the key stays on a token."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from hsm import RsaPadding

KeyAlgorithm = Literal["ecdsa-p256", "ed25519", "rsa-pss", "rsa-pkcs1"]


def rsa_padding(algorithm: KeyAlgorithm) -> RsaPadding:
    """The RSA signature scheme an algorithm name stands for (PSS unless ``rsa-pkcs1``)."""
    return "pkcs1v15" if algorithm == "rsa-pkcs1" else "pss"


class MessageSigner(Protocol):
    """A private key held elsewhere (a PKCS#11 token), with its certificate.

    ``sign(message, hash_name)`` returns, by ``algorithm``:

    * ``ecdsa-p256``: a DER ECDSA-Sig-Value over ``hash_name(message)``;
    * ``ed25519``: the 64-byte pure Ed25519 signature of ``message``
      (``hash_name`` is ignored);
    * ``rsa-pss``: an RSASSA-PSS signature over ``hash_name(message)`` with
      MGF1 on the same hash and a salt as long as the hash;
    * ``rsa-pkcs1``: an RSASSA-PKCS1-v1_5 signature over ``hash_name(message)``
      (what stock ``openssl ts -verify`` accepts from an RSA TSA).
    """

    @property
    def algorithm(self) -> KeyAlgorithm:
        """The key algorithm."""
        ...

    @property
    def certificate(self) -> bytes:
        """DER X.509 certificate of the signing key."""
        ...

    @property
    def chain(self) -> Sequence[bytes]:
        """DER issuer (CA) certificates, nearest first; may be empty."""
        ...

    async def sign(self, message: bytes, hash_name: str) -> bytes:
        """Sign ``message`` as described in the class docstring."""
        ...
