"""Checkpoint signing on the token: a C2SP signed note line of type 0x01 or 0x02.

The log key's type decides: Ed25519 (CKM_EDDSA) signs type 0x01 lines; an
ECDSA P-256 key (CKM_ECDSA, for tokens without EdDSA) signs type 0x02 lines
as transparency-dev/witness defines them (DER signature over SHA-256 of the
note text, key ID from the SPKI DER).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.tlog.checkpoint import Checkpoint
from gateway.tlog.note import (
    SIG_ECDSA,
    Note,
    format_note,
    log_key_id,
    log_key_type,
    note_signing_message,
    signature_for,
    verifier_key,
)
from hsm import Token

ALGORITHM_NAMES = {0x01: "Ed25519", SIG_ECDSA: "ECDSA P-256"}


class CheckpointSigner:
    """Signs checkpoint texts with the log key; the note key name is the origin.

    ``public_key`` is 32 raw bytes (Ed25519) or the SPKI DER (ECDSA).
    """

    def __init__(self, token: Token, key_label: str, origin: str, public_key: bytes) -> None:
        self._token = token
        self._label = key_label
        self.origin = origin
        self.public_key = public_key
        self.sig_type = log_key_type(public_key)
        self.key_id = log_key_id(origin, public_key)

    @classmethod
    async def create(cls, token: Token, key_label: str, origin: str) -> CheckpointSigner:
        """Read the log public key from the token."""
        public = await token.public_key(key_label)
        if isinstance(public, ed25519.Ed25519PublicKey):
            raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        elif isinstance(public, ec.EllipticCurvePublicKey) and isinstance(
            public.curve, ec.SECP256R1
        ):
            raw = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        else:
            raise TypeError(f"the ledger key {key_label!r} is neither Ed25519 nor ECDSA P-256")
        return cls(token, key_label, origin, raw)

    @property
    def algorithm(self) -> str:
        """``Ed25519`` or ``ECDSA P-256``."""
        return ALGORITHM_NAMES[self.sig_type]

    @property
    def verifier_key(self) -> str:
        """The vkey string verifiers configure (``name+keyid+base64(type || key)``)."""
        return verifier_key(self.origin, self.public_key, sig_type=self.sig_type)

    async def sign(self, checkpoint: Checkpoint) -> str:
        """The signed note text for a checkpoint."""
        text = checkpoint.to_text()
        message = note_signing_message(text)
        if self.sig_type == SIG_ECDSA:
            signature = await self._token.sign_message(
                self._label, message, encoding="der", urgent=True
            )
        else:
            signature = await self._token.sign_message(self._label, message, urgent=True)
        note = Note(
            text, [signature_for(self.origin, self.key_id, signature, sig_type=self.sig_type)]
        )
        return format_note(note)
