"""The witness's cosigning key on its token: tlog-cosignature/v1 with Ed25519 (type 0x04)."""

from __future__ import annotations

import time

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.tlog.checkpoint import cosignature_message, format_cosignature
from gateway.tlog.note import (
    SIG_ED25519_COSIGNATURE,
    Signature,
    cosignature_key_id,
    verifier_key,
)
from hsm import Token


class Cosigner:
    """Cosigns checkpoint texts with the token key ``label`` under the key name ``name``."""

    def __init__(self, token: Token, label: str, name: str, public_key: bytes) -> None:
        self._token = token
        self._label = label
        self.name = name
        self.public_key = public_key
        self.key_id = cosignature_key_id(name, public_key)

    @classmethod
    async def create(cls, token: Token, label: str, name: str) -> Cosigner:
        """Read the public key of the witness key from the token."""
        public = await token.public_key(label)
        if not isinstance(public, ed25519.Ed25519PublicKey):
            raise TypeError(f"the witness key {label!r} is not an Ed25519 key")
        return cls(token, label, name, public.public_bytes(Encoding.Raw, PublicFormat.Raw))

    @property
    def vkey(self) -> str:
        """The cosigner verifier key logs configure (type 0x04)."""
        return verifier_key(self.name, self.public_key, sig_type=SIG_ED25519_COSIGNATURE)

    async def cosign(self, checkpoint_text: str, timestamp: int | None = None) -> Signature:
        """A timestamped cosignature line for the checkpoint text."""
        when = int(time.time()) if timestamp is None else timestamp
        message = cosignature_message(checkpoint_text, when)
        signature = await self._token.sign_message(self._label, message, urgent=True)
        return format_cosignature(self.name, self.key_id, when, signature)
