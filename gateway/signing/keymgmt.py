"""Creating and rotating named keys: token key pair, CA-issued certificate, registry, ledger.

Each step is resumable. A version row is written ``pending`` first (its token
label reserved), then the key pair and certificate are made on the token if
missing, then in one database transaction the ledger entry is queued and the
version becomes active (and the previous one retired). A crash at any point
leaves a pending row that the next ``create``/``rotate`` of that key finishes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)
from tortoise.exceptions import IntegrityError

from gateway.config import Settings
from gateway.db.transaction import transaction
from gateway.errors import BadRequest, Conflict
from gateway.ledger.transactional import NodeLedger, queue_entry
from gateway.signing.models import SigningKey, SigningKeyVersion
from gateway.signing.named_keys import (
    PURPOSES,
    SIGNING_ALGORITHMS,
    KeyVersion,
    named_key,
    note_key_change,
)
from hsm import CertificateRequest, KeyAlgorithm, Token, issue_certificate

KEY_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
RSA_MECHANISMS = {"sign": ("RSA_PKCS_PSS", "RSA-PSS"), "timestamp": ("RSA_PKCS", "RSA PKCS#1 v1.5")}
"""What an RSA key of each purpose signs with: PSS, or PKCS#1 v1.5 for openssl ts -verify."""


class Recorder(Protocol):
    """Anything that durably records a typed ledger entry."""

    async def record(self, entry_type: str, /, **fields: Any) -> object:
        """Build and queue one entry; raise when it cannot."""
        ...


@dataclass(frozen=True)
class InitialKey:
    """A token key ``init`` made under a fixed label, registered as version 1 of ``name``."""

    name: str
    label: str
    algorithm: KeyAlgorithm
    purpose: str
    certificate: bytes


def version_label(name: str, version: int) -> str:
    """The token label of a version: ``sign-<name>-v<n>``."""
    return f"sign-{name}-v{version}"


def check_key_name(name: str) -> str:
    """A key name: lower-case letter first, then letters, digits and hyphens (max 32)."""
    if not KEY_NAME.fullmatch(name):
        raise BadRequest(
            f"key name {name!r} must be 1-32 characters of a-z, 0-9 and '-', "
            "starting with a letter",
            code="bad_key_name",
        )
    return name


def check_algorithm(value: str) -> KeyAlgorithm:
    """One of the signing algorithms (not the AES key-encryption key)."""
    try:
        algorithm = KeyAlgorithm(value)
    except ValueError:
        algorithm = KeyAlgorithm.AES_256
    if algorithm not in SIGNING_ALGORITHMS:
        names = ", ".join(a.value for a in SIGNING_ALGORITHMS)
        raise BadRequest(f"algorithm must be one of {names}", code="bad_algorithm")
    return algorithm


def check_purpose(value: str) -> str:
    """``sign`` or ``timestamp``."""
    if value not in PURPOSES:
        raise BadRequest("purpose must be 'sign' or 'timestamp'", code="bad_purpose")
    return value


def _fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


class KeyManager:
    """Makes and rotates named keys on one token, recording each change in the ledger."""

    def __init__(
        self, token: Token, ledger: NodeLedger, *, ca_label: str, node: str, actor: str
    ) -> None:
        self._token = token
        self._ledger = ledger
        self._ca_label = ca_label
        self._node = node
        self._actor = actor

    async def create(self, name: str, algorithm: KeyAlgorithm, purpose: str) -> KeyVersion:
        """A new named key with version 1 (or finish one a crash left pending)."""
        check_key_name(name)
        check_purpose(purpose)
        await self._check_mechanism(algorithm, name, purpose)
        key = await SigningKey.get_or_none(name=name)
        if key is None:
            try:
                async with transaction():
                    key = await SigningKey.create(
                        name=name, algorithm=algorithm.value, purpose=purpose
                    )
                    await self._reserve(key, 1)
            except IntegrityError:
                raise Conflict(f"key {name!r} already exists", code="key_exists") from None
        rows = await SigningKeyVersion.filter(key_id=key.id)
        if [(r.version, r.status) for r in rows] != [(1, "pending")]:
            raise Conflict(
                f"key {name!r} already exists; use 'sekisho keys rotate {name}'",
                code="key_exists",
            )
        return await self._complete(key, rows[0])

    async def rotate(self, name: str) -> KeyVersion:
        """Make a new version active and retire the old one (which still verifies)."""
        # A name no key can have (longer than the column: the ORM's ValidationError, a 500)
        # is looked up no further.
        key = await SigningKey.get_or_none(name=name) if KEY_NAME.fullmatch(name) else None
        if key is None:
            raise BadRequest(f"no signing key named {name!r}", code="no_such_key")
        pending = await SigningKeyVersion.get_or_none(key_id=key.id, status="pending")
        if pending is None:
            last = await SigningKeyVersion.filter(key_id=key.id).order_by("-version").first()
            number = (last.version if last else 0) + 1
            try:
                pending = await self._reserve(key, number)
            except IntegrityError:
                raise Conflict(
                    f"key {name!r} is being rotated by someone else; try again",
                    code="rotation_in_progress",
                ) from None
        return await self._complete(key, pending)

    async def _check_mechanism(self, algorithm: KeyAlgorithm, name: str, purpose: str) -> None:
        if algorithm is KeyAlgorithm.RSA_3072:
            # The token the key's versions live on ([[hsm.named_keys]]), else the default.
            status = await self._token.owner(version_label(name, 1)).status()
            mechanism, scheme = RSA_MECHANISMS[purpose]
            if mechanism not in status.mechanisms:
                raise BadRequest(
                    f"this token does not offer {scheme} (CKM_{mechanism}); use ec-p256 or ed25519",
                    code="mechanism_not_supported",
                )

    async def _reserve(self, key: SigningKey, number: int) -> SigningKeyVersion:
        label = version_label(key.name, number)
        if await self._token.has_key(label):
            raise Conflict(
                f"the token already holds a key labelled {label!r} that the registry does not "
                "know; remove it or choose another key name",
                code="label_taken",
            )
        return await SigningKeyVersion.create(
            key_id=key.id, version=number, label=label, status="pending"
        )

    async def _complete(self, key: SigningKey, pending: SigningKeyVersion) -> KeyVersion:
        algorithm = KeyAlgorithm(key.algorithm)
        certificate = await self._materialise(key, pending, algorithm)
        spki = _fingerprint(await self._token.public_key_der(pending.label))
        previous = await SigningKeyVersion.get_or_none(key_id=key.id, status="active")
        async with transaction():
            await queue_entry(
                self._ledger,
                "key.registered",
                key=key.name,
                version=pending.version,
                label=pending.label,
                algorithm=algorithm.value,
                purpose=key.purpose,
                spki_sha256=spki,
                certificate_sha256=_fingerprint(certificate),
                actor=self._actor,
            )
            now = datetime.now(UTC)
            if previous is not None:
                await queue_entry(
                    self._ledger,
                    "key.rotated",
                    key=key.name,
                    old_version=previous.version,
                    new_version=pending.version,
                    algorithm=algorithm.value,
                    actor=self._actor,
                    spki_sha256=spki,
                )
                await SigningKeyVersion.filter(id=previous.id).update(
                    status="retired", retired_at=now
                )
            await SigningKeyVersion.filter(id=pending.id).update(
                status="active", certificate=certificate, spki_sha256=spki, activated_at=now
            )
        note_key_change()
        rows = await SigningKeyVersion.filter(key_id=key.id)
        return named_key(key, rows).version(pending.version)

    async def _materialise(
        self, key: SigningKey, pending: SigningKeyVersion, algorithm: KeyAlgorithm
    ) -> bytes:
        """The version's key pair and certificate on the token, made if missing."""
        label = pending.label
        if not await self._token.has_key(label):
            await self._token.generate_key(label, algorithm)
        existing = await self._token.certificate(label)
        if existing is not None:
            return existing
        ca_certificate = await self._token.certificate(self._ca_label)
        if ca_certificate is None:
            raise Conflict(
                f"the token has no CA certificate {self._ca_label!r}; run 'sekisho init'",
                code="no_ca",
            )
        usage = ("time_stamping",) if key.purpose == "timestamp" else ()
        request = CertificateRequest(
            label,
            f"Sekisho {key.purpose} key {key.name} v{pending.version} ({self._node})",
            extended_key_usage=usage,
        )
        return await issue_certificate(
            self._token, request, ca_label=self._ca_label, ca_certificate=ca_certificate
        )


async def register_initial(
    keys: list[InitialKey], recorder: Recorder, *, actor: str = "init"
) -> list[str]:
    """Register keys ``init`` made as version 1 of their names; skip names already known."""
    created: list[str] = []
    for initial in keys:
        if await SigningKey.exists(name=initial.name):
            continue
        spki = _fingerprint(_spki_of(initial.certificate))
        async with transaction():
            key = await SigningKey.create(
                name=initial.name, algorithm=initial.algorithm.value, purpose=initial.purpose
            )
            await SigningKeyVersion.create(
                key_id=key.id,
                version=1,
                label=initial.label,
                status="active",
                certificate=initial.certificate,
                spki_sha256=spki,
                activated_at=datetime.now(UTC),
            )
            await recorder.record(
                "key.registered",
                key=initial.name,
                version=1,
                label=initial.label,
                algorithm=initial.algorithm.value,
                purpose=initial.purpose,
                spki_sha256=spki,
                certificate_sha256=_fingerprint(initial.certificate),
                actor=actor,
            )
        created.append(f"signing key {initial.name!r} ({initial.purpose}, {initial.label})")
    return created


def _spki_of(certificate: bytes) -> bytes:
    """SubjectPublicKeyInfo DER from a certificate."""
    public = x509.load_der_x509_certificate(certificate).public_key()
    return public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


async def initial_keys(token: Token, settings: Settings) -> list[InitialKey]:
    """The named keys ``init`` provides: ``default`` (signing) and the TSA key."""
    plan = (
        ("default", settings.keys.signing, "sign"),
        (settings.signing.tsa_key, settings.keys.tsa, "timestamp"),
    )
    found: list[InitialKey] = []
    for name, label, purpose in plan:
        certificate = await token.certificate(label)
        if certificate is None or not await token.has_key(label):
            continue
        algorithm = algorithm_of_spki(await token.public_key_der(label))
        found.append(InitialKey(name, label, algorithm, purpose, certificate))
    return found


def algorithm_of_spki(spki: bytes) -> KeyAlgorithm:
    """Which signing algorithm a SubjectPublicKeyInfo is."""
    public = load_der_public_key(spki)
    if isinstance(public, ed25519.Ed25519PublicKey):
        return KeyAlgorithm.ED25519
    if isinstance(public, rsa.RSAPublicKey):
        return KeyAlgorithm.RSA_3072
    return KeyAlgorithm.EC_P256
