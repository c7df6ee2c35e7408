"""RFC 3161 time-stamp requests and responses, with RFC 5816 ESSCertIDv2."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from asn1crypto import cms, core, tsp, x509
from cryptography import x509 as cx509
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.errors import BadRequest, ConfigError
from gateway.signing._signed_data import (
    DIGEST_SIZES,
    build_signed_data,
    default_hash,
    load_certificate,
)
from gateway.signing.message_signer import MessageSigner

TimestampFailure = Literal[
    "badAlg",
    "badRequest",
    "badDataFormat",
    "timeNotAvailable",
    "unacceptedPolicy",
    "unacceptedExtension",
    "addInfoNotAvailable",
    "systemFailure",
]
"""PKIFailureInfo names as RFC 3161 section 2.4.2 spells them."""

_FAILURE_BITS: dict[TimestampFailure, str] = {
    "badAlg": "bad_alg",
    "badRequest": "bad_request",
    "badDataFormat": "bad_data_format",
    "timeNotAvailable": "time_not_available",
    "unacceptedPolicy": "unaccepted_policy",
    "unacceptedExtension": "unaccepted_extensions",
    "addInfoNotAvailable": "add_info_not_available",
    "systemFailure": "system_failure",
}
MAX_REQUEST_SIZE = 16 * 1024
"""Larger bodies are refused before parsing; a real TimeStampReq is a few hundred bytes."""
_MAX_SERIAL = 1 << 160  # RFC 3161 section 2.4.2: up to 160 bits


class _TimeStampResp(core.Sequence):  # type: ignore[misc]
    """TimeStampResp with the token OPTIONAL, as RFC 3161 has it (asn1crypto requires it)."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


class TimestampRequestError(BadRequest):
    """A TimeStampReq the TSA refuses; ``failure`` names the PKIFailureInfo bit.

    The HTTP handler answers ``rejection_response(exc.failure, exc.message)``
    (see :meth:`response`) with ``application/timestamp-reply``.
    """

    code = "timestamp_request_rejected"

    def __init__(self, failure: TimestampFailure, message: str):
        super().__init__(message)
        self.failure: TimestampFailure = failure

    def response(self) -> bytes:
        """The DER TimeStampResp rejecting the request."""
        return rejection_response(self.failure, self.message)


@dataclass(frozen=True)
class TimeStampRequest:
    """A parsed, checked TimeStampReq (version 1, no extensions)."""

    hash_name: str
    digest: bytes
    policy: str | None
    nonce: int | None
    cert_req: bool
    message_imprint: bytes = field(repr=False)
    """The MessageImprint as received (re-encoded in DER), echoed into TSTInfo."""


def parse_timestamp_request(der: bytes) -> TimeStampRequest:
    """Decode and check a DER TimeStampReq; raises :class:`TimestampRequestError`."""
    request = _decode_request(der)
    if request["version"].native != "v1":
        raise TimestampRequestError("badRequest", "only TimeStampReq version 1 is supported")
    if request["extensions"].native is not None:
        raise TimestampRequestError("unacceptedExtension", "request extensions are not supported")
    imprint = request["message_imprint"]
    hash_name = _imprint_hash(imprint["hash_algorithm"])
    digest = _imprint_digest(hash_name, imprint["hashed_message"].native)
    policy = request["req_policy"]
    return TimeStampRequest(
        hash_name=hash_name,
        digest=digest,
        policy=None if policy.native is None else policy.dotted,
        nonce=request["nonce"].native,
        cert_req=bool(request["cert_req"].native),
        message_imprint=imprint.dump(force=True),
    )


def _decode_request(der: bytes) -> Any:
    """Fully decode the DER, mapping every decoding failure to badDataFormat."""
    if len(der) > MAX_REQUEST_SIZE:
        raise TimestampRequestError("badDataFormat", "the request is too large")
    try:
        request = tsp.TimeStampReq.load(der, strict=True)
        _ = request.native  # asn1crypto parses lazily: force the whole tree now
    except Exception as exc:  # asn1crypto raises many kinds on hostile input
        raise TimestampRequestError(
            "badDataFormat", "the request is not a DER TimeStampReq"
        ) from exc
    return request


def _imprint_hash(algorithm: Any) -> str:
    """The messageImprint hash name: SHA-256/384/512 only.

    asn1crypto already refuses SHA-2 parameters other than absent or NULL while
    decoding, so those requests end as badDataFormat.
    """
    name = algorithm["algorithm"].native
    if name not in DIGEST_SIZES:
        raise TimestampRequestError(
            "badAlg",
            f"hash algorithm {name} is not accepted; use sha256, sha384 or sha512",
        )
    return str(name)


def _imprint_digest(hash_name: str, digest: bytes) -> bytes:
    """The hashedMessage, which must be as long as ``hash_name`` output."""
    expected = DIGEST_SIZES[hash_name]
    if len(digest) != expected:
        raise TimestampRequestError(
            "badDataFormat", f"a {hash_name} message imprint is {expected} bytes, got {len(digest)}"
        )
    return digest


def rejection_response(failure: TimestampFailure, text: str) -> bytes:
    """DER TimeStampResp with status rejection, ``text`` as statusString, one failInfo bit."""
    status = tsp.PKIStatusInfo(
        {
            "status": "rejection",
            "status_string": [text],
            "fail_info": tsp.PKIFailureInfo({_FAILURE_BITS[failure]}),
        }
    )
    der: bytes = _TimeStampResp({"status": status}).dump()
    return der


async def build_timestamp_response(
    request: TimeStampRequest,
    signer: MessageSigner,
    *,
    policy_oid: str,
    serial: int,
    gen_time: datetime | None = None,
    accuracy_seconds: int | None = 1,
    include_tsa_name: bool = False,
) -> bytes:
    """DER TimeStampResp granting ``request``, or rejecting it for a policy we do not offer.

    ``serial`` must be unique per token (the caller allocates it). With
    ``include_tsa_name`` TSTInfo names the TSA by its certificate subject.
    The signer's certificate must have only the critical timeStamping EKU.
    """
    if request.policy is not None and request.policy != policy_oid:
        return rejection_response(
            "unacceptedPolicy", f"policy {request.policy} is not offered; use {policy_oid}"
        )
    _check_tsa_certificate(signer.certificate)
    moment = _gen_time(gen_time)
    fields = _tst_fields(request, policy_oid, _checked_serial(serial), moment)
    if accuracy_seconds is not None:
        fields["accuracy"] = _accuracy(accuracy_seconds)
    if include_tsa_name:
        fields["tsa"] = _tsa_name(signer.certificate)
    token = await _sign_tst_info(signer, tsp.TSTInfo(fields).dump(), moment, request.cert_req)
    response = _TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token})
    der: bytes = response.dump()
    return der


def _tst_fields(
    request: TimeStampRequest, policy_oid: str, serial: int, gen_time: datetime
) -> dict[str, Any]:
    """TSTInfo version 1 fields: policy, echoed imprint and nonce, serial, time, no ordering."""
    fields: dict[str, Any] = {
        "version": "v1",
        "policy": policy_oid,
        "message_imprint": tsp.MessageImprint.load(request.message_imprint),
        "serial_number": serial,
        "gen_time": core.GeneralizedTime(gen_time),
        "ordering": False,
    }
    if request.nonce is not None:
        fields["nonce"] = request.nonce
    return fields


def _tsa_name(certificate: bytes) -> Any:
    """The TSA's certificate subject as a directoryName (RFC 3161 section 2.4.2)."""
    subject = load_certificate(certificate).subject
    return x509.GeneralName(name="directory_name", value=subject)


async def _sign_tst_info(
    signer: MessageSigner, tst_info: bytes, gen_time: datetime, with_certificates: bool
) -> Any:
    """The timeStampToken: SignedData encapsulating the DER TSTInfo."""
    hash_name = default_hash(signer.algorithm)
    token = await build_signed_data(
        signer,
        hash_name=hash_name,
        content_type="tst_info",
        message_digest=hashlib.new(hash_name, tst_info).digest(),
        signing_time=gen_time,
        content=tst_info,
        include_certificates=with_certificates,
    )
    return cms.ContentInfo.load(token)


def _accuracy(seconds: int) -> Any:
    """Accuracy of whole seconds."""
    if seconds < 1:
        raise ValueError("accuracy_seconds must be at least 1, or None to omit accuracy")
    return tsp.Accuracy({"seconds": seconds})


def _gen_time(gen_time: datetime | None) -> datetime:
    """genTime in UTC, now by default; naive datetimes are refused."""
    if gen_time is None:
        return datetime.now(UTC)
    if gen_time.tzinfo is None or gen_time.utcoffset() is None:
        raise ValueError("gen_time must be timezone-aware")
    return gen_time.astimezone(UTC)


def _checked_serial(serial: int) -> int:
    """A positive serial of at most 160 bits."""
    if not 0 < serial < _MAX_SERIAL:
        raise ValueError("serial must be a positive integer of at most 160 bits")
    return serial


def _check_tsa_certificate(der: bytes) -> None:
    """RFC 3161 section 2.3: one critical extendedKeyUsage, exactly id-kp-timeStamping."""
    try:
        certificate = cx509.load_der_x509_certificate(der)
        eku = certificate.extensions.get_extension_for_class(cx509.ExtendedKeyUsage)
    except (ValueError, cx509.ExtensionNotFound) as exc:
        raise ConfigError("TSA certificate lacks the timeStamping extended key usage") from exc
    if not eku.critical or list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise ConfigError("TSA certificate must have only the critical timeStamping key usage")
