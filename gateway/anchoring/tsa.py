"""RFC 3161 as a client: the TimeStampReq over a checkpoint note, and checking the reply.

Requests are built with asn1crypto; replies are checked with ``rfc3161-client``
(status, signature, certificate chain to the configured CA certificates at the
token's genTime, the timeStamping key usage, nonce, policy, message imprint).
Nothing here does I/O beyond reading the configured certificate file.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from rfc3161_client import VerificationError, VerifierBuilder, decode_timestamp_response

from gateway.config import TsaEndpoint
from gateway.errors import ConfigError, SekishoError

_MAX_CERT_FILE = 1 << 20


class AnchorError(SekishoError):
    """A TSA's reply that is not a valid time-stamp over what was asked."""

    code = "anchor_invalid"
    status = 502


@dataclass(frozen=True)
class TrustedTsa:
    """A configured TSA with the certificates its replies must verify against."""

    name: str
    url: str
    hash_name: str
    policy: str | None
    token_file: str
    roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...]
    tsa_certificate: x509.Certificate | None

    @classmethod
    def from_endpoint(cls, endpoint: TsaEndpoint) -> TrustedTsa:
        """Load the TSA's certificate file; ConfigError naming the setting if unusable."""
        where = f"setting anchoring.tsas: TSA {endpoint.name!r}"
        path = Path(endpoint.certs)
        try:
            if path.stat().st_size > _MAX_CERT_FILE:
                raise ConfigError(f"{where}: certs file {path} is too large")
            certificates = x509.load_pem_x509_certificates(path.read_bytes())
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read certs file {path}: {exc.strerror}") from None
        except ValueError:
            raise ConfigError(f"{where}: certs file {path} holds no PEM certificate") from None
        roots = tuple(c for c in certificates if c.issuer == c.subject)
        if not roots:
            raise ConfigError(f"{where}: certs file {path} holds no CA (self-signed) certificate")
        leaves = [c for c in certificates if c.issuer != c.subject and _is_tsa(c)]
        return cls(
            name=endpoint.name,
            url=endpoint.url,
            hash_name=endpoint.hash,
            policy=endpoint.policy or None,
            token_file=endpoint.token_file,
            roots=roots,
            intermediates=tuple(
                c for c in certificates if c.issuer != c.subject and not _is_tsa(c)
            ),
            tsa_certificate=leaves[0] if len(leaves) == 1 else None,
        )


def _is_tsa(certificate: x509.Certificate) -> bool:
    try:
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.TIME_STAMPING in eku.value


@dataclass(frozen=True)
class TimestampQuery:
    """A DER TimeStampReq and the nonce it carries."""

    der: bytes
    nonce: int


def timestamp_query(message: bytes, tsa: TrustedTsa) -> TimestampQuery:
    """A version 1 TimeStampReq over ``message`` with a fresh 64-bit nonce, asking for certs."""
    nonce = secrets.randbits(63) | (1 << 62)  # positive, and never short
    fields: dict[str, object] = {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": {"algorithm": tsa.hash_name},
            "hashed_message": hashlib.new(tsa.hash_name, message).digest(),
        },
        "nonce": nonce,
        "cert_req": True,
    }
    if tsa.policy is not None:
        fields["req_policy"] = tsa.policy
    return TimestampQuery(tsp.TimeStampReq(fields).dump(), nonce)


@dataclass(frozen=True)
class VerifiedReply:
    """What a valid reply says: when, and the SHA-256 of the reply as stored."""

    gen_time: datetime
    token_sha256: str
    serial: int


def verify_reply(
    reply: bytes, message: bytes, tsa: TrustedTsa, nonce: int | None = None
) -> VerifiedReply:
    """Check a DER TimeStampResp over ``message`` against ``tsa``; AnchorError if it fails."""
    try:
        return _verify(reply, message, tsa, nonce)
    except AnchorError:
        raise
    except Exception as exc:  # the Rust decoder raises ValueError and others on bad input
        raise AnchorError(f"TSA {tsa.name}: the reply is not a valid TimeStampResp") from exc


def _verify(reply: bytes, message: bytes, tsa: TrustedTsa, nonce: int | None) -> VerifiedReply:
    response = decode_timestamp_response(_der_certificate_set(reply))
    if response.status not in (0, 1):  # granted, grantedWithMods
        text = "; ".join(response.status_string)[:200]
        raise AnchorError(f"TSA {tsa.name} refused the request (status {response.status}) {text}")
    info = response.tst_info
    expected = hashlib.new(tsa.hash_name, message).digest()
    if info.message_imprint.message != expected:
        raise AnchorError(f"TSA {tsa.name}: the token's message imprint is not the checkpoint's")
    builder = VerifierBuilder(
        roots=list(tsa.roots),
        intermediates=list(tsa.intermediates),
        tsa_certificate=tsa.tsa_certificate,
        nonce=nonce,
        policy_id=x509.ObjectIdentifier(tsa.policy) if tsa.policy else None,
    )
    try:
        builder.build().verify(response, expected)
    except (VerificationError, ValueError) as exc:
        reason = str(exc).split(": ErrorStack", 1)[0][:200]
        raise AnchorError(f"TSA {tsa.name}: the token does not verify: {reason}") from None
    return VerifiedReply(
        gen_time=info.gen_time.astimezone(UTC),
        token_sha256=hashlib.sha256(reply).hexdigest(),
        serial=info.serial_number,
    )


def _der_certificate_set(reply: bytes) -> bytes:
    """The reply with its SignedData certificates in DER (sorted) SET OF order.

    OpenSSL's own TSA, among others, lists the certificates in chain order, which
    a strict DER decoder refuses. The certificates are not covered by the
    signature; everything else is kept byte for byte.
    """
    try:
        response = tsp.TimeStampResp.load(reply)
        token = response["time_stamp_token"]
        if token.native is None:
            return reply
        signed = token["content"]
        certificates = signed["certificates"]
        if len(certificates) < 2:
            return reply
        signed["certificates"] = cms.CertificateSet(list(certificates))
        der: bytes = response.dump()
    except (ValueError, TypeError, KeyError):
        return reply  # let the strict decoder say what is wrong
    return der
