"""CMS SignedData with one SignerInfo, shared by the CMS and RFC 3161 builders.

The private key never comes here: the DER of the signed attributes goes to a
:class:`MessageSigner`, and the signature it returns is checked against the
signer's certificate before it is released.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from asn1crypto import algos, cms, core, tsp, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from gateway.errors import ConfigError, Unavailable
from gateway.signing.message_signer import KeyAlgorithm, MessageSigner, rsa_padding
from hsm.verify import verify_signature

DIGEST_SIZES: dict[str, int] = {"sha256": 32, "sha384": 48, "sha512": 64}
ED25519_HASH = "sha512"  # RFC 8419 section 3.1: Ed25519 SignerInfos digest with SHA-512
ID_DATA = "1.2.840.113549.1.7.1"


def default_hash(algorithm: KeyAlgorithm) -> str:
    """The digest a SignerInfo uses for this key type unless told otherwise."""
    return ED25519_HASH if algorithm == "ed25519" else "sha256"


def digest_algorithm(hash_name: str) -> Any:
    """A SHA-2 AlgorithmIdentifier with absent parameters, as RFC 5754 section 2 asks."""
    oid = algos.DigestAlgorithmId(hash_name).dump()
    return algos.DigestAlgorithm.load(b"\x30" + bytes([len(oid)]) + oid)


def signature_algorithm(algorithm: KeyAlgorithm, hash_name: str) -> Any:
    """The SignerInfo signatureAlgorithm for a key type and digest."""
    if algorithm == "ecdsa-p256":
        return algos.SignedDigestAlgorithm({"algorithm": f"{hash_name}_ecdsa"})
    if algorithm == "ed25519":
        return algos.SignedDigestAlgorithm({"algorithm": "ed25519"})
    if algorithm == "rsa-pss":
        return algos.SignedDigestAlgorithm(
            {"algorithm": "rsassa_pss", "parameters": _pss_parameters(hash_name)}
        )
    if algorithm == "rsa-pkcs1":
        # sha<N>WithRSAEncryption with NULL parameters (RFC 5754 section 3.2).
        return algos.SignedDigestAlgorithm(
            {"algorithm": f"{hash_name}_rsa", "parameters": core.Null()}
        )
    raise ConfigError(f"signer algorithm {algorithm!r} is not supported")


def _pss_parameters(hash_name: str) -> Any:
    """RSASSA-PSS-params: the hash, MGF1 with the same hash, salt as long as the hash."""
    return algos.RSASSAPSSParams(
        {
            "hash_algorithm": digest_algorithm(hash_name),
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": digest_algorithm(hash_name)},
            "salt_length": DIGEST_SIZES[hash_name],
        }
    )


def cms_time(moment: datetime) -> Any:
    """A CMS Time: UTCTime for 1950-2049, else GeneralizedTime (RFC 5652 section 11.3)."""
    utc = moment.astimezone(UTC).replace(microsecond=0)
    kind = "utc_time" if 1950 <= utc.year <= 2049 else "generalized_time"
    return cms.Time(name=kind, value=utc)


def _signing_certificate_v2(certificate: Any, der: bytes) -> Any:
    """ESS SigningCertificateV2 (RFC 5035) naming the certificate by SHA-256 and issuerSerial."""
    issuer = x509.GeneralName(name="directory_name", value=certificate.issuer)
    cert_id = tsp.ESSCertIDv2(
        {
            "cert_hash": hashlib.sha256(der).digest(),
            "issuer_serial": {"issuer": [issuer], "serial_number": certificate.serial_number},
        }
    )
    return tsp.SigningCertificateV2({"certs": [cert_id]})


def _attribute(kind: str, value: Any) -> Any:
    """One single-valued CMS attribute."""
    return cms.CMSAttribute({"type": kind, "values": [value]})


def signed_attributes(
    *, content_type: str, message_digest: bytes, signing_time: datetime, certificate: bytes
) -> Any:
    """contentType, messageDigest, signingTime and signingCertificateV2, as a DER SET."""
    parsed = load_certificate(certificate)
    return cms.CMSAttributes(
        [
            _attribute("content_type", content_type),
            _attribute("message_digest", message_digest),
            _attribute("signing_time", cms_time(signing_time)),
            _attribute("signing_certificate_v2", _signing_certificate_v2(parsed, certificate)),
        ]
    )


def load_certificate(der: bytes) -> Any:
    """Parse a DER certificate, or fail with a configuration error."""
    try:
        certificate = x509.Certificate.load(der, strict=True)
        _ = certificate.native  # asn1crypto parses lazily: force the whole tree now
    except ValueError as exc:
        raise ConfigError(f"signer certificate is not DER X.509: {exc}") from exc
    return certificate


def signer_public_key(algorithm: KeyAlgorithm, certificate: bytes) -> PublicKeyTypes:
    """The certificate's public key, checked to be of the signer's key type."""
    try:
        key = cx509.load_der_x509_certificate(certificate).public_key()
    except ValueError as exc:
        raise ConfigError(f"signer certificate is not DER X.509: {exc}") from exc
    if not _key_matches(algorithm, key):
        raise ConfigError(f"signer certificate does not hold an {algorithm} public key")
    return key


def _key_matches(algorithm: KeyAlgorithm, key: PublicKeyTypes) -> bool:
    """True when ``key`` is of the kind ``algorithm`` names."""
    if algorithm == "ecdsa-p256":
        return isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    if algorithm == "ed25519":
        return isinstance(key, ed25519.Ed25519PublicKey)
    return algorithm in ("rsa-pss", "rsa-pkcs1") and isinstance(key, rsa.RSAPublicKey)


async def _signature(signer: MessageSigner, message: bytes, hash_name: str) -> bytes:
    """Ask the signer, and refuse a signature that does not verify (token fault or wrong key)."""
    public_key = signer_public_key(signer.algorithm, signer.certificate)
    signature = await signer.sign(message, hash_name)
    padding = rsa_padding(signer.algorithm)
    if not verify_signature(
        public_key, signature, message, hash_name=hash_name, rsa_padding=padding
    ):
        raise Unavailable("the signing key returned a signature its certificate does not verify")
    return signature


def _signer_info(signer: MessageSigner, attributes: Any, hash_name: str, signature: bytes) -> Any:
    """A version 1 SignerInfo identifying the certificate by issuer and serial number."""
    certificate = load_certificate(signer.certificate)
    sid = cms.SignerIdentifier(
        name="issuer_and_serial_number",
        value={"issuer": certificate.issuer, "serial_number": certificate.serial_number},
    )
    return cms.SignerInfo(
        {
            "version": "v1",
            "sid": sid,
            "digest_algorithm": digest_algorithm(hash_name),
            "signed_attrs": attributes,
            "signature_algorithm": signature_algorithm(signer.algorithm, hash_name),
            "signature": signature,
        }
    )


def _certificate_set(signer: MessageSigner) -> list[Any]:
    """The signer certificate followed by its chain."""
    return [
        cms.CertificateChoices(name="certificate", value=load_certificate(der))
        for der in (signer.certificate, *signer.chain)
    ]


async def build_signed_data(
    signer: MessageSigner,
    *,
    hash_name: str,
    content_type: str,
    message_digest: bytes,
    signing_time: datetime,
    content: bytes | None = None,
    include_certificates: bool = True,
) -> bytes:
    """DER ContentInfo(SignedData) with one SignerInfo; detached when ``content`` is None.

    ``content_type`` is the eContentType (a name asn1crypto knows or a dotted OID)
    and ``message_digest`` the ``hash_name`` digest of the content.
    """
    attributes = signed_attributes(
        content_type=content_type,
        message_digest=message_digest,
        signing_time=signing_time,
        certificate=signer.certificate,
    )
    signature = await _signature(signer, attributes.dump(), hash_name)
    encap: dict[str, Any] = {"content_type": content_type}
    if content is not None:
        encap["content"] = core.ParsableOctetString(content)
    is_data = cms.ContentType(content_type).dotted == ID_DATA
    signed_data: dict[str, Any] = {
        # RFC 5652 section 5.1: v1 for id-data with v1 SignerInfos only, v3 otherwise.
        "version": "v1" if is_data else "v3",
        "digest_algorithms": [digest_algorithm(hash_name)],
        "encap_content_info": encap,
        "signer_infos": [_signer_info(signer, attributes, hash_name, signature)],
    }
    if include_certificates:
        signed_data["certificates"] = _certificate_set(signer)
    content_info = cms.ContentInfo(
        {"content_type": "signed_data", "content": cms.SignedData(signed_data)}
    )
    der: bytes = content_info.dump()
    return der
