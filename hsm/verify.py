"""Software verification of token signatures (public keys only)."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from hsm.signing import RsaPadding

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def verify_signature(
    public_key: PublicKeyTypes,
    signature: bytes,
    payload: bytes,
    *,
    hash_name: str = "sha256",
    prehashed: bool = False,
    rsa_padding: RsaPadding = "pss",
) -> bool:
    """True when ``signature`` (DER for ECDSA; RSA with ``rsa_padding``) is valid over
    ``payload``."""
    hash_cls = _HASHES.get(hash_name)
    if hash_cls is None:
        return False
    algorithm: hashes.HashAlgorithm | utils.Prehashed = (
        utils.Prehashed(hash_cls()) if prehashed else hash_cls()
    )
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, payload)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, payload, ec.ECDSA(algorithm))
        elif isinstance(public_key, rsa.RSAPublicKey):
            scheme: padding.AsymmetricPadding = (
                padding.PKCS1v15()
                if rsa_padding == "pkcs1v15"
                else padding.PSS(mgf=padding.MGF1(hash_cls()), salt_length=hash_cls().digest_size)
            )
            public_key.verify(signature, payload, scheme, algorithm)
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True
