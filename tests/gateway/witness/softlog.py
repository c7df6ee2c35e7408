"""A log in software for witness tests: an Ed25519 key, leaves, signed checkpoints, requests."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.tlog.checkpoint import Checkpoint
from gateway.tlog.merkle import consistency_proof_from_leaves, leaf_hash, root_from_leaves
from gateway.tlog.note import (
    SIG_ECDSA,
    Note,
    ecdsa_key_id,
    ed25519_key_id,
    format_note,
    sign_note_text,
    signature_for,
    verifier_key,
)
from gateway.tlog.witness_protocol import AddCheckpointRequest, format_add_checkpoint


@dataclass
class SoftLog:
    """A log whose checkpoints a test signs at will (including forged ones)."""

    origin: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    leaves: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.leaves:
            self.leaves = [leaf_hash(f"{self.origin} entry {n}".encode()) for n in range(300)]

    @property
    def public_key(self) -> bytes:
        return self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def vkey(self) -> str:
        return verifier_key(self.origin, self.public_key)

    def note(self, size: int, leaves: list[bytes] | None = None) -> str:
        """A checkpoint of the first ``size`` leaves, signed by the log key."""
        tree = self.leaves if leaves is None else leaves
        return self.sign(Checkpoint(self.origin, size, root_from_leaves(tree[:size])))

    def sign(self, checkpoint: Checkpoint) -> str:
        """Any checkpoint, signed by the log key."""
        key_id = ed25519_key_id(self.origin, self.public_key)
        signature = sign_note_text(checkpoint.to_text(), self.origin, key_id, self.key.sign)
        return format_note(Note(checkpoint.to_text(), [signature]))

    def request(
        self,
        old: int,
        size: int,
        *,
        leaves: list[bytes] | None = None,
        proof: list[bytes] | None = None,
    ) -> bytes:
        """An add-checkpoint body from ``old`` to ``size`` (proof computed unless given)."""
        tree = self.leaves if leaves is None else leaves
        if proof is None:
            proof = consistency_proof_from_leaves(old, tree[:size])
        body = format_add_checkpoint(AddCheckpointRequest(old, proof, self.note(size, tree)))
        return body.encode()

    def forged_leaves(self, at: int) -> list[bytes]:
        """Another history: the same leaves except the one at ``at``."""
        forged = list(self.leaves)
        forged[at] = leaf_hash(b"rewritten history")
        return forged


@dataclass
class EcdsaSoftLog(SoftLog):
    """The same, with an ECDSA P-256 log key (signed-note type 0x02, as a TPM-held key)."""

    ec_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def public_key(self) -> bytes:
        return self.ec_key.public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def vkey(self) -> str:
        return verifier_key(self.origin, self.public_key, sig_type=SIG_ECDSA)

    def sign(self, checkpoint: Checkpoint) -> str:
        text = checkpoint.to_text()
        der = self.ec_key.sign(text.encode(), ec.ECDSA(SHA256()))
        signature = signature_for(
            self.origin, ecdsa_key_id(self.public_key), der, sig_type=SIG_ECDSA
        )
        return format_note(Note(text, [signature]))
