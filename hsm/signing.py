"""Signature requests and the mechanism choice for each key type (worker-thread code)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from asn1crypto import algos, core
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import MGF, KeyType, Mechanism

from hsm.errors import MechanismNotSupported, OperationFailed

DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}
_PSS_PARAMS = {
    "sha256": (Mechanism.SHA256, MGF.SHA256, 32),
    "sha384": (Mechanism.SHA384, MGF.SHA384, 48),
    "sha512": (Mechanism.SHA512, MGF.SHA512, 64),
}
RsaPadding = Literal["pss", "pkcs1v15"]


@dataclass(frozen=True)
class SignRequest:
    """One signature to make.

    ``payload`` is a digest when ``prehashed`` is true, else the message. Ed25519
    always signs the message itself. ``encoding`` picks DER or raw r||s for ECDSA;
    ``rsa_padding`` picks RSASSA-PSS (salt as long as the hash) or PKCS#1 v1.5 for RSA.
    """

    label: str
    payload: bytes
    hash_name: str = "sha256"
    prehashed: bool = False
    encoding: Literal["der", "raw"] = "der"
    rsa_padding: RsaPadding = "pss"


def digest_of(request: SignRequest) -> bytes:
    """The digest to sign, checking a precomputed digest's length."""
    size = DIGEST_SIZES.get(request.hash_name)
    if size is None:
        raise OperationFailed(
            f"unsupported hash {request.hash_name!r}; use sha256, sha384 or sha512"
        )
    if request.prehashed:
        if len(request.payload) != size:
            raise OperationFailed(
                f"a {request.hash_name} digest is {size} bytes, got {len(request.payload)}"
            )
        return request.payload
    return hashlib.new(request.hash_name, request.payload).digest()


def sign_with(private_key: Any, request: SignRequest) -> bytes:
    """Sign with a token private key, choosing the mechanism from its type."""
    key_type = private_key.key_type
    if key_type == KeyType.EC_EDWARDS:
        if request.prehashed:
            raise OperationFailed("Ed25519 signs the message itself, not a digest")
        return bytes(private_key.sign(request.payload, mechanism=Mechanism.EDDSA))
    digest = digest_of(request)
    if key_type == KeyType.EC:
        raw = bytes(private_key.sign(digest, mechanism=Mechanism.ECDSA))
        return raw if request.encoding == "raw" else raw_to_der(raw)
    if key_type == KeyType.RSA:
        if request.rsa_padding == "pkcs1v15":
            # CKM_RSA_PKCS over the DigestInfo: opencryptoki 3.8 has no CKM_SHA256_RSA_PKCS,
            # and it signs precomputed digests as well.
            return bytes(
                private_key.sign(
                    digest_info(request.hash_name, digest), mechanism=Mechanism.RSA_PKCS
                )
            )
        return bytes(
            private_key.sign(
                digest,
                mechanism=Mechanism.RSA_PKCS_PSS,
                mechanism_param=_PSS_PARAMS[request.hash_name],
            )
        )
    raise MechanismNotSupported(f"no signing mechanism for key type {key_type!r}")


def signing_mechanism(private_key: Any, request: SignRequest) -> str:
    """The PKCS#11 mechanism name :func:`sign_with` uses for this key and request."""
    key_type = private_key.key_type
    if key_type == KeyType.EC_EDWARDS:
        return "EDDSA"
    if key_type == KeyType.EC:
        return "ECDSA"
    if key_type == KeyType.RSA:
        return "RSA_PKCS" if request.rsa_padding == "pkcs1v15" else "RSA_PKCS_PSS"
    return f"unknown for key type {key_type!r}"


def digest_info(hash_name: str, digest: bytes) -> bytes:
    """The DER DigestInfo (RFC 8017 section 9.2) that PKCS#1 v1.5 signs; NULL parameters."""
    info = algos.DigestInfo(
        {"digest_algorithm": {"algorithm": hash_name, "parameters": core.Null()}, "digest": digest}
    )
    der: bytes = info.dump()
    return der


def raw_to_der(raw: bytes) -> bytes:
    """ECDSA r||s to a DER ECDSA-Sig-Value."""
    half = len(raw) // 2
    return encode_dss_signature(
        int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
    )
