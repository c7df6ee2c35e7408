"""Security keys (FIDO2/WebAuthn): registration, removal and assertions, with py_webauthn.

The library builds the options and verifies every response (challenge, origin,
RP id hash, user presence and verification, signature, sign counter); this
module keeps the credentials and the one-time challenges in the database and
ledgers each registration and removal as an ``auth.security_key`` entry, queued
in the same serialised transaction as the change.

A challenge belongs to the browser it was handed to (its secret cookie) and to
one purpose; taking it deletes it, so each is answered at most once, and it
expires after :data:`CHALLENGE_TTL`. Keys are discoverable credentials with
user verification required (the key's PIN or biometric), so a key alone is two
factors and sign-in needs no username (docs/decisions.md).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from tortoise.exceptions import IntegrityError
from webauthn import (
    base64url_to_bytes,
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from gateway.auth.account import Account
from gateway.auth.key_trail import trail_row
from gateway.auth.models import PortalSession, SecurityKey, WebAuthnChallenge
from gateway.db.serialised import serialised
from gateway.errors import BadRequest, Conflict, NotFound, TooManyRequests
from gateway.ledger.queued import EntryRecorder, QueuedLedger

CHALLENGE_TTL = timedelta(minutes=5)
MAX_LIVE_CHALLENGES = 10_000  # sign-in options are public: bound what visitors can store
MAX_NAME = 64
MAX_CREDENTIAL_JSON = 64 * 1024
TIMEOUT_MS = 120_000
_PARSE_ERRORS = (WebAuthnException, ValueError, TypeError, KeyError, AttributeError)


class SecurityKeyRefused(BadRequest):
    """A registration response that does not verify (wrong origin, challenge, key...)."""

    code = "security_key_refused"


@dataclass(frozen=True)
class RelyingParty:
    """Who the keys are registered with: RP id and name, and the accepted origins."""

    rp_id: str
    name: str
    origins: tuple[str, ...] = ()

    def origins_for(self, scheme: str, host: str) -> list[str]:
        """The configured origins, else the one the browser reached us at if on the RP id."""
        if self.origins:
            return list(self.origins)
        hostname = urlsplit(f"//{host}").hostname or ""
        if hostname == self.rp_id or hostname.endswith("." + self.rp_id):
            return [f"{scheme}://{host}"]
        return []


@dataclass(frozen=True)
class KeyActor:
    """Who registers or removes a key, and from where."""

    name: str
    source: str


def key_digest(credential_id: str) -> str:
    """How ledger entries and counters name a credential: SHA-256 of its id, 32 hex digits."""
    return hashlib.sha256(credential_id.encode()).hexdigest()[:32]


def user_handle(person: Account) -> bytes:
    """The WebAuthn user handle of a person (no personal data in it)."""
    return hashlib.sha256(f"sekisho person {person.id}".encode()).digest()


def holder_of(secret: str, purpose: str) -> str:
    """The challenge holder: the browser's secret cookie bound to one purpose."""
    return hashlib.sha256(f"{purpose}\n{secret}".encode()).hexdigest()


def credential_id_of(credential: str) -> str | None:
    """The base64url credential id a posted credential names, or None if it names none."""
    if len(credential) > MAX_CREDENTIAL_JSON:
        return None
    try:
        parsed = json.loads(credential)
        raw = base64url_to_bytes(str(parsed["rawId"]))
    except (*_PARSE_ERRORS, json.JSONDecodeError):
        return None
    return bytes_to_base64url(raw) if raw else None


def _descriptor(key: SecurityKey) -> PublicKeyCredentialDescriptor:
    transports = []
    for name in key.transports or []:
        try:
            transports.append(AuthenticatorTransport(name))
        except ValueError:
            continue
    return PublicKeyCredentialDescriptor(
        id=base64url_to_bytes(key.credential_id), transports=transports or None
    )


class SecurityKeys:
    """People's security keys and the challenges of their ceremonies."""

    def __init__(self, ledger: EntryRecorder, relying_party: RelyingParty) -> None:
        self._ledger = QueuedLedger(ledger.node)  # queued inside each change's transaction
        self.relying_party = relying_party

    async def of(self, person: Account) -> list[SecurityKey]:
        """A person's keys, newest first."""
        return await SecurityKey.filter(principal_id=person.id).order_by("-id")

    async def find(self, credential: str) -> SecurityKey | None:
        """The registered key a posted credential names, if any."""
        credential_id = credential_id_of(credential)
        if credential_id is None:
            return None
        return await SecurityKey.get_or_none(credential_id=credential_id)

    # ----- challenges ---------------------------------------------------------------

    async def _issue(
        self, secret: str, purpose: str, challenge: bytes, person: Account | None, name: str = ""
    ) -> None:
        now = datetime.now(UTC)
        await WebAuthnChallenge.filter(expires_at__lte=now).delete()
        holder = holder_of(secret, purpose)
        await WebAuthnChallenge.filter(holder=holder).delete()  # one ceremony at a time
        if await WebAuthnChallenge.all().count() >= MAX_LIVE_CHALLENGES:
            raise TooManyRequests(
                "Too many security-key requests are open right now; try again in a minute.",
                retry_after=60,
            )
        await WebAuthnChallenge.create(
            holder=holder,
            challenge=bytes_to_base64url(challenge),
            principal_id=person.id if person is not None else None,
            name=name,
            expires_at=now + CHALLENGE_TTL,
        )

    async def _take(self, secret: str, purpose: str) -> WebAuthnChallenge | None:
        """The browser's live challenge for ``purpose``, deleted as it is taken."""
        holder = holder_of(secret, purpose)
        row = await WebAuthnChallenge.filter(holder=holder).order_by("-id").first()
        if row is None:
            return None
        taken = await WebAuthnChallenge.filter(id=row.id).delete()
        if not taken or row.expires_at <= datetime.now(UTC):
            return None  # answered already (by a concurrent request) or expired
        return row

    # ----- registration -------------------------------------------------------------

    async def registration_options(self, person: Account, name: str, secret: str) -> str:
        """Options (JSON) for navigator.credentials.create, registering a key for ``person``."""
        name = check_name(name)
        existing = await self.of(person)
        options = generate_registration_options(
            rp_id=self.relying_party.rp_id,
            rp_name=self.relying_party.name,
            user_name=person.username,
            user_id=user_handle(person),
            user_display_name=person.display_name or person.username,
            timeout=TIMEOUT_MS,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.REQUIRED,
            ),
            exclude_credentials=[_descriptor(k) for k in existing],
        )
        await self._issue(secret, f"register:{person.id}", options.challenge, person, name)
        return options_to_json(options)

    async def register(
        self,
        person: Account,
        credential: str,
        secret: str,
        origins: list[str],
        actor: KeyActor,
    ) -> SecurityKey:
        """Verify a registration response and keep the key; ledgered."""
        challenge = await self._take(secret, f"register:{person.id}")
        if challenge is None or challenge.principal_id != person.id:
            raise SecurityKeyRefused("The registration expired; start again.")
        if len(credential) > MAX_CREDENTIAL_JSON or not origins:
            raise SecurityKeyRefused("The security key's answer was not accepted.")
        try:
            verified = verify_registration_response(
                credential=credential,
                expected_challenge=base64url_to_bytes(challenge.challenge),
                expected_rp_id=self.relying_party.rp_id,
                expected_origin=origins,
                require_user_verification=True,
            )
            transports = json.loads(credential).get("response", {}).get("transports", [])
        except (*_PARSE_ERRORS, json.JSONDecodeError):
            raise SecurityKeyRefused("The security key's answer was not accepted.") from None
        credential_id = bytes_to_base64url(verified.credential_id)
        kept = [str(t)[:16] for t in transports if isinstance(t, str)][:8]
        taken = Conflict("This security key is already registered.")
        try:
            async with serialised("accounts"):
                if await SecurityKey.exists(credential_id=credential_id):
                    raise taken
                await self._record(person, "registered", credential_id, challenge.name, actor)
                return await SecurityKey.create(
                    credential_id=credential_id,
                    principal_id=person.id,
                    public_key=verified.credential_public_key,
                    sign_count=verified.sign_count,
                    transports=kept,
                    name=challenge.name,
                )
        except IntegrityError:
            raise taken from None

    async def remove(self, person: Account, key_id: int, actor: KeyActor) -> None:
        """Remove one of ``person``'s keys; sessions it may have opened or stepped up end."""
        async with serialised("accounts"):
            row = await SecurityKey.get_or_none(id=key_id, principal_id=person.id)
            if row is None:
                raise NotFound("no such security key for this person")
            await self._record(person, "removed", row.credential_id, row.name, actor)
            await SecurityKey.filter(id=row.id).delete()
            # Sessions do not say which key opened them: end every session this person
            # opened with a key and take back every step-up, so the removed key opens none.
            await PortalSession.filter(principal_id=person.id, method="security_key").delete()
            await PortalSession.filter(principal_id=person.id).update(step_up="")

    async def _record(
        self, person: Account, change: str, credential_id: str, name: str, actor: KeyActor
    ) -> None:
        recorded = await self._ledger.record(
            "auth.security_key",
            principal=person.username,
            actor=actor.name,
            change=change,
            credential=key_digest(credential_id),
            name=name,
            outcome="applied",
            source=actor.source[:64],
        )
        own = actor.name == f"person:{person.username}"
        await trail_row(
            actor=actor.name,
            action=f"key_{change}",
            reason="granted" if own else f"for person:{person.username}",
            source=actor.source,
            node=self._ledger.node,
            recorded=recorded,
        )

    # ----- assertions ---------------------------------------------------------------

    async def assertion_options(
        self, secret: str, purpose: str, person: Account | None = None
    ) -> str:
        """Options (JSON) for navigator.credentials.get: any discoverable key, or ``person``'s."""
        allowed = [_descriptor(k) for k in await self.of(person)] if person is not None else []
        options = generate_authentication_options(
            rp_id=self.relying_party.rp_id,
            timeout=TIMEOUT_MS,
            allow_credentials=allowed,
            user_verification=UserVerificationRequirement.REQUIRED,
        )
        await self._issue(secret, purpose, options.challenge, person)
        return options_to_json(options)

    async def verify_assertion(
        self,
        credential: str,
        secret: str,
        purpose: str,
        origins: list[str],
        key: SecurityKey | None,
    ) -> bool:
        """True when ``credential`` is a fresh, valid assertion by ``key`` for this browser.

        The browser's challenge is used up whatever the outcome.
        """
        challenge = await self._take(secret, purpose)
        if challenge is None or key is None or not origins:
            return False
        if len(credential) > MAX_CREDENTIAL_JSON:
            return False
        try:
            verified = verify_authentication_response(
                credential=credential,
                expected_challenge=base64url_to_bytes(challenge.challenge),
                expected_rp_id=self.relying_party.rp_id,
                expected_origin=origins,
                credential_public_key=bytes(key.public_key),
                credential_current_sign_count=int(key.sign_count),
                require_user_verification=True,
            )
        except _PARSE_ERRORS:
            return False
        await SecurityKey.filter(id=key.id).update(
            sign_count=verified.new_sign_count, last_used_at=datetime.now(UTC)
        )
        return True


def check_name(name: str) -> str:
    """A key's name: trimmed, printable, 1 to :data:`MAX_NAME` characters."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise BadRequest(
            f"Give the security key a name of 1 to {MAX_NAME} printable characters.",
            code="bad_key_name",
        )
    return name
