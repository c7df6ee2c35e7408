"""X.509 certificates for token keys, signed by the token-held CA key.

asn1crypto builds the to-be-signed certificate; the CA key on the token signs
its SHA-256 digest: ECDSA P-256 (ecdsa-with-SHA256) or, on RSA-only tokens,
RSA PKCS#1 v1.5 (sha256WithRSAEncryption, NULL parameters as RFC 4055 asks).
Certificates are kept on the token as certificate objects with the same label
as their key.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import algos, core
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from hsm.errors import OperationFailed
from hsm.signing import SignRequest
from hsm.token import Token

_UTC_TIME_LIMIT = datetime(2050, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class CertificateRequest:
    """What the certificate for one token key should say."""

    key_label: str
    common_name: str
    organization: str = "Sekisho"
    is_ca: bool = False
    extended_key_usage: tuple[str, ...] = ()
    validity: timedelta = timedelta(days=3 * 365)
    extra_key_usage: frozenset[str] = field(default_factory=frozenset)


def _time(value: datetime) -> asn1_x509.Time:
    kind = "utc_time" if value < _UTC_TIME_LIMIT else "general_time"
    return asn1_x509.Time({kind: value})


def _key_id(spki: asn1_keys.PublicKeyInfo) -> bytes:
    return hashlib.sha1(spki["public_key"].contents[1:]).digest()  # noqa: S324 - RFC 5280 key id


def _extensions(
    request: CertificateRequest, subject_key_id: bytes, issuer_key_id: bytes
) -> list[dict[str, object]]:
    if request.is_ca:
        usage = {"key_cert_sign", "crl_sign", "digital_signature"}
    else:
        usage = {"digital_signature", "non_repudiation"} | set(request.extra_key_usage)
    extensions: list[dict[str, object]] = [
        {"extn_id": "basic_constraints", "critical": True, "extn_value": {"ca": request.is_ca}},
        {"extn_id": "key_usage", "critical": True, "extn_value": usage},
        {"extn_id": "key_identifier", "critical": False, "extn_value": subject_key_id},
        {
            "extn_id": "authority_key_identifier",
            "critical": False,
            "extn_value": {"key_identifier": issuer_key_id},
        },
    ]
    if request.extended_key_usage:
        extensions.append(
            {
                "extn_id": "extended_key_usage",
                # RFC 3161 requires timeStamping to be the only, critical, EKU of a TSA.
                "critical": "time_stamping" in request.extended_key_usage,
                "extn_value": list(request.extended_key_usage),
            }
        )
    return extensions


async def _signature_scheme(token: Token, ca_label: str) -> tuple[Any, SignRequest]:
    """The CA key's signatureAlgorithm and the request (without payload) that makes it."""
    public = await token.public_key(ca_label)
    if isinstance(public, ec.EllipticCurvePublicKey):
        identifier = algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})
        return identifier, SignRequest(ca_label, b"", prehashed=True, encoding="der")
    if isinstance(public, rsa.RSAPublicKey):
        identifier = algos.SignedDigestAlgorithm(
            {"algorithm": "sha256_rsa", "parameters": core.Null()}
        )
        return identifier, SignRequest(ca_label, b"", prehashed=True, rsa_padding="pkcs1v15")
    raise OperationFailed(f"the CA key {ca_label!r} is neither ECDSA P-256 nor RSA")


async def issue_certificate(
    token: Token,
    request: CertificateRequest,
    *,
    ca_label: str,
    ca_certificate: bytes | None,
    now: datetime | None = None,
) -> bytes:
    """Issue (and store on the token) a certificate for ``request.key_label``.

    With ``ca_certificate`` None the certificate is self-signed by the CA key,
    which must then be the key being certified.
    """
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    algorithm, request_template = await _signature_scheme(token, ca_label)
    spki = asn1_keys.PublicKeyInfo.load(await token.public_key_der(request.key_label))
    subject = asn1_x509.Name.build(
        {"common_name": request.common_name, "organization_name": request.organization}
    )
    if ca_certificate is None:
        if request.key_label != ca_label:
            raise ValueError("only the CA key may have a self-signed certificate")
        issuer, issuer_key_id = subject, _key_id(spki)
    else:
        ca = asn1_x509.Certificate.load(ca_certificate)
        issuer, issuer_key_id = ca.subject, _key_id(ca.public_key)
    tbs = asn1_x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": secrets.randbits(127) | (1 << 126),
            "signature": algorithm,
            "issuer": issuer,
            "validity": {
                "not_before": _time(now - timedelta(minutes=5)),
                "not_after": _time(now + request.validity),
            },
            "subject": subject,
            "subject_public_key_info": spki,
            "extensions": _extensions(request, _key_id(spki), issuer_key_id),
        }
    )
    digest = hashlib.sha256(tbs.dump()).digest()
    signature = await token.sign(replace(request_template, payload=digest))
    certificate = asn1_x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": algorithm,
            "signature_value": signature,
        }
    )
    der: bytes = certificate.dump()
    await token.store_certificate(request.key_label, der, subject.dump())
    return der
