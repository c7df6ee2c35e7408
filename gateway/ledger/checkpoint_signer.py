"""Checkpoint signing on the token: C2SP signed note with an Ed25519 (type 0x01) line."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.tlog.checkpoint import Checkpoint
from gateway.tlog.note import (
    Note,
    ed25519_key_id,
    format_note,
    note_signing_message,
    signature_for,
    verifier_key,
)
from hsm import Token


class CheckpointSigner:
    """Signs checkpoint texts with the log key; the note key name is the origin."""

    def __init__(self, token: Token, key_label: str, origin: str, public_key: bytes) -> None:
        self._token = token
        self._label = key_label
        self.origin = origin
        self.public_key = public_key
        self.key_id = ed25519_key_id(origin, public_key)

    @classmethod
    async def create(cls, token: Token, key_label: str, origin: str) -> CheckpointSigner:
        """Read the log public key from the token."""
        public = await token.public_key(key_label)
        if not isinstance(public, ed25519.Ed25519PublicKey):
            raise TypeError(f"the ledger key {key_label!r} is not an Ed25519 key")
        raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return cls(token, key_label, origin, raw)

    @property
    def verifier_key(self) -> str:
        """The vkey string verifiers configure (``name+keyid+base64``)."""
        return verifier_key(self.origin, self.public_key)

    async def sign(self, checkpoint: Checkpoint) -> str:
        """The signed note text for a checkpoint."""
        text = checkpoint.to_text()
        signature = await self._token.sign_message(self._label, note_signing_message(text))
        return format_note(Note(text, [signature_for(self.origin, self.key_id, signature)]))
