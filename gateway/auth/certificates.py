"""TLS client certificates with which people may sign in to the portal.

A certificate is registered by the SHA-256 of its DER (what TLS shows the
server), pasted as PEM or as the fingerprint. Adding and removing one is a
``principal.changed`` ledger entry with the fingerprint, queued in the same
serialised transaction as the change (so a fingerprint registered twice at
once, or removed twice, is one entry).
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.exceptions import IntegrityError

from gateway.auth.models import PersonCertificate, PortalSession
from gateway.auth.principals import Principal
from gateway.db.serialised import serialised
from gateway.errors import BadRequest, Conflict, NotFound
from gateway.ledger.queued import EntryRecorder, QueuedLedger
from gateway.signing.clients import certificate_fingerprint, check_fingerprint

MAX_LABEL = 64


@dataclass(frozen=True)
class CertificateActor:
    """Who registers or removes a certificate, and from where."""

    name: str
    source: str


def fingerprint_of(text: str) -> str:
    """The fingerprint of a pasted PEM certificate, or a pasted hex fingerprint."""
    text = text.strip()
    if "-----BEGIN" in text:
        return certificate_fingerprint(text.encode())
    return check_fingerprint(text)


class PersonCertificates:
    """Registers and removes people's sign-in certificates, ledgering each change."""

    def __init__(self, ledger: EntryRecorder) -> None:
        self._ledger = QueuedLedger(ledger.node)  # queued inside each change's transaction

    async def of(self, person: Principal) -> list[PersonCertificate]:
        """A person's certificates, newest first."""
        return await PersonCertificate.filter(principal_id=person.id).order_by("-id")

    async def add(
        self, person: Principal, certificate: str, label: str, actor: CertificateActor
    ) -> PersonCertificate:
        """Register a certificate (PEM or fingerprint) for ``person``."""
        fingerprint = fingerprint_of(certificate)
        label = label.strip()
        if len(label) > MAX_LABEL or not label.isprintable():
            raise BadRequest(f"a certificate label is at most {MAX_LABEL} printable characters")
        taken = Conflict("this certificate is already registered")
        try:
            async with serialised("accounts"):
                if await PersonCertificate.exists(fingerprint=fingerprint):
                    raise taken
                await self._record(person, "certificate_added", fingerprint, actor)
                return await PersonCertificate.create(
                    fingerprint=fingerprint, principal=person, label=label
                )
        except IntegrityError:
            raise taken from None

    async def remove(self, person: Principal, certificate_id: int, actor: CertificateActor) -> None:
        """Remove one of ``person``'s certificates; their certificate sessions end."""
        async with serialised("accounts"):
            row = await PersonCertificate.get_or_none(id=certificate_id, principal_id=person.id)
            if row is None:
                raise NotFound("no such certificate for this person")
            await self._record(person, "certificate_removed", row.fingerprint, actor)
            await PersonCertificate.filter(id=row.id).delete()
            # Sessions do not say which certificate opened them: end every session
            # this person opened with a certificate, so the removed one opens none.
            await PortalSession.filter(principal_id=person.id, method="certificate").delete()

    async def _record(
        self, person: Principal, change: str, fingerprint: str, actor: CertificateActor
    ) -> None:
        await self._ledger.record(
            "principal.changed",
            principal=person.username,
            actor=actor.name,
            change=change,
            fields=["certificates"],
            level=person.level,
            roles=sorted(person.roles),
            outcome="applied",
            source=actor.source[:64],
            certificate=fingerprint,
        )
