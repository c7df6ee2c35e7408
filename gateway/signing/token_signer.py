"""The :class:`~gateway.signing.message_signer.MessageSigner` of a key version held on the token."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.signing.message_signer import KeyAlgorithm, rsa_padding
from gateway.signing.named_keys import KeyVersion
from hsm import SignRequest, Token


@dataclass(frozen=True)
class TokenMessageSigner:
    """Signs with one key version's token key; carries its certificate and the CA's."""

    token: Token
    key: KeyVersion
    chain: Sequence[bytes]

    @property
    def algorithm(self) -> KeyAlgorithm:
        """The CMS algorithm name of the key."""
        return self.key.cms_algorithm

    @property
    def certificate(self) -> bytes:
        """DER certificate of the key version."""
        return self.key.certificate

    async def sign(self, message: bytes, hash_name: str) -> bytes:
        """DER ECDSA or RSA (PSS or PKCS#1 v1.5, by :attr:`algorithm`) over
        ``hash_name(message)``, or pure Ed25519 of ``message``."""
        request = SignRequest(
            self.key.label,
            message,
            hash_name=hash_name,
            encoding="der",
            rsa_padding=rsa_padding(self.algorithm),
        )
        return await self.token.sign(request)
