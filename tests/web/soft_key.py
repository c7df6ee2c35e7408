"""A software FIDO2 authenticator (P-256, "none" attestation) for server-side tests.

It builds the same bytes a security key and the browser would (authenticator data,
client data, attestation object, assertion signature), so the server's py_webauthn
verification runs for real; the browser flows use Chromium's virtual authenticator.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec


def b64(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SoftKey:
    """One discoverable credential on a pretend security key."""

    def __init__(self, *, user_verified: bool = True) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.sign_count = 0
        self.user_verified = user_verified
        self.user_handle = b""

    def _cose(self) -> bytes:
        numbers = self.private.public_key().public_numbers()
        x, y = numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")
        key = {1: 2, 3: -7, -1: 1, -2: x, -3: y}  # COSE EC2, ES256, P-256
        return cbor2.dumps(key)

    def _auth_data(self, rp_id: str, attested: bool) -> bytes:
        flags = 0x01 | (0x04 if self.user_verified else 0) | (0x40 if attested else 0)
        self.sign_count += 1
        data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags])
        data += self.sign_count.to_bytes(4, "big")
        if attested:
            data += bytes(16) + len(self.credential_id).to_bytes(2, "big") + self.credential_id
            data += self._cose()
        return data

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str) -> bytes:
        body = {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}
        return json.dumps(body).encode()

    def create(self, options: dict[str, Any], origin: str, *, rp_id: str = "") -> dict[str, Any]:
        """The registration credential for ``options`` (as the browser would post it)."""
        self.user_handle = base64.urlsafe_b64decode(options["user"]["id"] + "==")
        rp = rp_id or options["rp"]["id"]
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        attestation = cbor2.dumps(
            {"fmt": "none", "attStmt": {}, "authData": self._auth_data(rp, attested=True)}
        )
        return {
            "id": b64(self.credential_id),
            "rawId": b64(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data),
                "attestationObject": b64(attestation),
                "transports": ["usb"],
            },
            "clientExtensionResults": {},
        }

    def get(self, options: dict[str, Any], origin: str, *, rp_id: str = "") -> dict[str, Any]:
        """The assertion for ``options`` signed by this key."""
        rp = rp_id or options["rpId"]
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        auth_data = self._auth_data(rp, attested=False)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.private.sign(signed, ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64(self.credential_id),
            "rawId": b64(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data),
                "authenticatorData": b64(auth_data),
                "signature": b64(signature),
                "userHandle": b64(self.user_handle),
            },
            "clientExtensionResults": {},
        }
