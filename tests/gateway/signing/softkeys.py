"""Software keys and a test PKI for the signing tests (never used by the package)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.signing.message_signer import KeyAlgorithm

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
ALGORITHMS: tuple[KeyAlgorithm, ...] = ("ecdsa-p256", "ed25519", "rsa-pss")
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


@dataclass
class SoftwareSigner:
    """A :class:`gateway.signing.message_signer.MessageSigner` backed by an in-memory key."""

    algorithm: KeyAlgorithm
    key: PrivateKey
    certificate: bytes
    chain: Sequence[bytes] = ()
    calls: list[tuple[bytes, str]] = field(default_factory=list)

    async def sign(self, message: bytes, hash_name: str) -> bytes:
        """Sign as the MessageSigner contract says for this key type."""
        self.calls.append((message, hash_name))
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(message)
        digest = _HASHES[hash_name]
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return self.key.sign(message, ec.ECDSA(digest))
        pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=padding.PSS.DIGEST_LENGTH)
        return self.key.sign(message, pss, digest)


def new_key(algorithm: KeyAlgorithm) -> PrivateKey:
    """A fresh private key of the given kind."""
    if algorithm == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    """O=Sekisho Test, CN=common_name."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sekisho Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: str,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey,
) -> x509.CertificateBuilder:
    """A one-year certificate builder with subject and authority key identifiers."""
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


@dataclass(frozen=True)
class Authority:
    """A CA key and its certificate."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def der(self) -> bytes:
        """The certificate in DER."""
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        """The certificate in PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def _ca_usage() -> x509.KeyUsage:
    """keyCertSign and cRLSign."""
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _signing_usage() -> x509.KeyUsage:
    """digitalSignature and nonRepudiation."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def root_ca() -> Authority:
    """A self-signed P-256 root."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder("Sekisho Test Root", _name("Sekisho Test Root"), key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, cert)


def intermediate_ca(root: Authority) -> Authority:
    """A P-256 intermediate under ``root``."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder("Sekisho Test Issuing CA", root.certificate.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(_authority_key_id(root), critical=False)
        .sign(root.key, hashes.SHA256())
    )
    return Authority(key, cert)


def _authority_key_id(issuer: Authority) -> x509.AuthorityKeyIdentifier:
    """AKI pointing at ``issuer``'s key."""
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())


def leaf_signer(
    algorithm: KeyAlgorithm,
    issuer: Authority,
    *,
    timestamping: bool = False,
    key: PrivateKey | None = None,
    chain: Sequence[bytes] | None = None,
) -> SoftwareSigner:
    """A signer with an end-entity certificate from ``issuer``.

    With ``timestamping`` the certificate carries the critical id-kp-timeStamping
    extended key usage that RFC 3161 section 2.3 requires of a TSA.
    """
    key = key or new_key(algorithm)
    role = "TSA" if timestamping else "Document Signer"
    builder = (
        _builder(f"Sekisho {role} {algorithm}", issuer.certificate.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_signing_usage(), critical=True)
        .add_extension(_authority_key_id(issuer), critical=False)
    )
    if timestamping:
        eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING])
        builder = builder.add_extension(eku, critical=True)
    cert = builder.sign(issuer.key, hashes.SHA256())
    der = cert.public_bytes(serialization.Encoding.DER)
    return SoftwareSigner(algorithm, key, der, (issuer.der,) if chain is None else chain)
