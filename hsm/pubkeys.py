"""Turn token public-key attributes into SubjectPublicKeyInfo (worker-thread code)."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from pkcs11 import Attribute, KeyType

from hsm.errors import OperationFailed


def public_key_of(obj: Any) -> PublicKeyTypes:
    """The public key of a token public-key object as a ``cryptography`` key."""
    key_type = obj.key_type
    if key_type == KeyType.RSA:
        modulus = int.from_bytes(obj[Attribute.MODULUS], "big")
        exponent = int.from_bytes(obj[Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(exponent, modulus).public_key()
    point = _unwrap_octet_string(bytes(obj[Attribute.EC_POINT]))
    if key_type == KeyType.EC_EDWARDS:
        return ed25519.Ed25519PublicKey.from_public_bytes(point)
    if key_type == KeyType.EC:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    raise OperationFailed(f"unsupported public key type {key_type!r}")


def spki_der(key: PublicKeyTypes) -> bytes:
    """DER SubjectPublicKeyInfo."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _unwrap_octet_string(value: bytes) -> bytes:
    """EC_POINT is a DER OCTET STRING on most tokens; accept the raw point too."""
    if len(value) in (32, 65):  # a raw Ed25519 key or uncompressed P-256 point
        return value
    if len(value) >= 2 and value[0] == 0x04:
        length = value[1]
        if length < 0x80 and len(value) == length + 2:
            return value[2:]
        if length == 0x81 and len(value) >= 3 and len(value) == value[2] + 3:
            return value[3:]
    return value
