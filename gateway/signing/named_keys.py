"""Named signing keys and their versions, as the API and the services see them.

A named key (``default``, ``tsa``, ``drone-footage``) has versions; each version
is one token key pair with its own certificate issued by the token CA. Exactly
one version is active (it signs); retired versions still verify.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.errors import Conflict, Forbidden, NotFound, Unavailable
from gateway.signing.message_signer import KeyAlgorithm as CmsAlgorithm
from gateway.signing.models import SigningKey, SigningKeyVersion
from gateway.ttlcache import TtlCache
from hsm import KeyAlgorithm, Token

PURPOSES = ("sign", "timestamp")
SIGNING_ALGORITHMS = (KeyAlgorithm.EC_P256, KeyAlgorithm.ED25519, KeyAlgorithm.RSA_3072)
_CMS_ALGORITHM: dict[KeyAlgorithm, CmsAlgorithm] = {
    KeyAlgorithm.EC_P256: "ecdsa-p256",
    KeyAlgorithm.ED25519: "ed25519",
    KeyAlgorithm.RSA_3072: "rsa-pss",
}


class KeyPurposeError(Forbidden):
    """A key was asked to do what its purpose excludes (a TSA key signing digests)."""

    code = "wrong_key_purpose"


def pem(der: bytes, kind: str = "CERTIFICATE") -> str:
    """PEM text of DER bytes."""
    body = base64.encodebytes(der).decode("ascii").replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {kind}-----\n" + "\n".join(lines) + f"\n-----END {kind}-----\n"


@functools.lru_cache(maxsize=512)
def _public_key(certificate: bytes) -> PublicKeyTypes:
    return x509.load_der_x509_certificate(certificate).public_key()


CACHE_SECONDS = 2.0
_generation = [0]


def note_key_change() -> None:
    """Invalidate every registry cache in this process (a key was created or rotated)."""
    _generation[0] += 1


@dataclass(frozen=True)
class KeyVersion:
    """One version of a named key."""

    name: str
    version: int
    label: str
    algorithm: KeyAlgorithm
    purpose: str
    status: str
    certificate: bytes
    created_at: datetime
    retired_at: datetime | None

    @property
    def cms_algorithm(self) -> CmsAlgorithm:
        """The algorithm name the CMS and RFC 3161 builders use.

        RSA time-stamping keys sign PKCS#1 v1.5 (stock ``openssl ts -verify`` refuses
        RSA-PSS); RSA signing keys sign RSA-PSS, raw and in CMS.
        """
        if self.algorithm is KeyAlgorithm.RSA_3072 and self.purpose == "timestamp":
            return "rsa-pkcs1"
        return _CMS_ALGORITHM[self.algorithm]

    @property
    def public_key(self) -> PublicKeyTypes:
        """The public key, from the certificate."""
        return _public_key(self.certificate)

    @property
    def public_key_der(self) -> bytes:
        """SubjectPublicKeyInfo DER."""
        return self.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)

    @property
    def spki_sha256(self) -> str:
        """Hex SHA-256 of the SubjectPublicKeyInfo DER."""
        return hashlib.sha256(self.public_key_der).hexdigest()

    @property
    def certificate_sha256(self) -> str:
        """Hex SHA-256 of the certificate DER."""
        return hashlib.sha256(self.certificate).hexdigest()


@dataclass(frozen=True)
class NamedKey:
    """A named key with every usable (active or retired) version, oldest first."""

    name: str
    algorithm: KeyAlgorithm
    purpose: str
    created_at: datetime
    versions: tuple[KeyVersion, ...]

    @property
    def current(self) -> KeyVersion | None:
        """The active version, if any."""
        return next((v for v in reversed(self.versions) if v.status == "active"), None)

    @property
    def status(self) -> str:
        """``active`` while a version signs, else ``retired``."""
        return "active" if self.current is not None else "retired"

    def version(self, number: int) -> KeyVersion:
        """One version, or NotFound."""
        for candidate in self.versions:
            if candidate.version == number:
                return candidate
        raise NotFound(f"key {self.name!r} has no version {number}", code="no_such_version")


def _version(key: SigningKey, row: SigningKeyVersion) -> KeyVersion:
    assert row.certificate is not None
    return KeyVersion(
        name=key.name,
        version=row.version,
        label=row.label,
        algorithm=KeyAlgorithm(key.algorithm),
        purpose=key.purpose,
        status=row.status,
        certificate=bytes(row.certificate),
        created_at=row.created_at,
        retired_at=row.retired_at,
    )


def named_key(key: SigningKey, rows: Sequence[SigningKeyVersion]) -> NamedKey:
    """The view of a key row and its version rows (pending versions are left out)."""
    usable = sorted((r for r in rows if r.status != "pending"), key=lambda r: r.version)
    return NamedKey(
        name=key.name,
        algorithm=KeyAlgorithm(key.algorithm),
        purpose=key.purpose,
        created_at=key.created_at,
        versions=tuple(_version(key, r) for r in usable),
    )


async def all_keys() -> list[NamedKey]:
    """Every named key in the registry, by name."""
    keys = await SigningKey.all().order_by("name")
    rows = await SigningKeyVersion.filter(key_id__in=[k.id for k in keys])
    by_key: dict[int, list[SigningKeyVersion]] = {}
    for row in rows:
        by_key.setdefault(row.key_id, []).append(row)
    return [named_key(k, by_key.get(k.id, [])) for k in keys]


class KeyRegistry:
    """Reads of the key registry, and the token CA certificate."""

    def __init__(self, token: Token, ca_label: str) -> None:
        self._token = token
        self._ca_label = ca_label
        self._ca_certificate: bytes | None = None
        self._cache: TtlCache[str, tuple[NamedKey, int]] = TtlCache(CACHE_SECONDS)

    @property
    def token(self) -> Token:
        """The token holding every version's private key."""
        return self._token

    async def ca_certificate(self) -> bytes:
        """DER certificate of the token CA that issues every key version's certificate."""
        if self._ca_certificate is None:
            found = await self._token.certificate(self._ca_label)
            if found is None:
                raise Unavailable(f"the token has no CA certificate {self._ca_label!r}; run init")
            self._ca_certificate = found
        return self._ca_certificate

    async def all(self) -> list[NamedKey]:
        """Every named key, by name."""
        return await all_keys()

    async def get(self, name: str) -> NamedKey:
        """One named key, or NotFound (cached for ``CACHE_SECONDS``: rotation by another
        process reaches this one within that time; old versions keep verifying)."""
        cached = self._cache.get(name)
        if cached is not None and cached[1] == _generation[0]:
            return cached[0]
        key = await SigningKey.get_or_none(name=name)
        if key is None:
            raise NotFound(f"no signing key named {name!r}", code="no_such_key")
        found = named_key(key, await SigningKeyVersion.filter(key_id=key.id))
        self._cache.put(name, (found, _generation[0]))
        return found

    def forget(self) -> None:
        """Drop cached key records (after a change made in this process)."""
        self._cache.clear()

    async def active(self, name: str, purpose: str) -> KeyVersion:
        """The version that signs now, checked to be for ``purpose``."""
        key = await self.get(name)
        if key.purpose != purpose:
            what = "a time-stamping key" if key.purpose == "timestamp" else "not a TSA key"
            raise KeyPurposeError(f"key {name!r} is {what}; it cannot be used here")
        current = key.current
        if current is None:
            raise Conflict(f"key {name!r} has no active version", code="key_retired")
        return current
