"""Two-party hand-overs: a record both parties sign before its link is anchored.

A chain writer opens a hand-over for the next link (subject, state, digest,
metadata, giver and receiver). Its *document* (canonical JSON) is what both sign:
each party, an API client, signs the document's SHA-256 through the signing API
(``POST /api/v1/sign/{key}`` with ``digest``) with a key on its own allow-list,
and sends the signature here. The gateway verifies it against the key's version
and keeps it with the version's certificate (so the pair can be re-checked
offline). Once the giver's and the receiver's signatures are both present and
verify, the link is anchored, committing to the document's SHA-256
(``handover_sha256`` in its ``record.anchored`` entry) and checked against the
custody rule like any link. Every opening and signature is ledgered
(``custody.handover``).
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import Any

from gateway.auth.identity import Identity
from gateway.custody.bodies import HandoverBody, HandoverSignatureBody
from gateway.custody.guard import CustodyRefused, state_of
from gateway.custody.models import CustodyHandover
from gateway.custody.rules import PARTY
from gateway.db.transaction import transaction
from gateway.errors import Conflict, Forbidden, NotFound
from gateway.http.models import validate_body
from gateway.ledger.entries import canonical_json, utc_timestamp
from gateway.ledger.transactional import queue_entry
from gateway.signing.anchors import (
    AnchorService,
    HandoverProof,
    NewAnchor,
    may_use_chains,
)
from gateway.signing.models import AnchorRecord
from gateway.signing.requests import (
    InputError,
    SignInput,
)
from gateway.signing.service import Signature, SigningService

DOCUMENT_TYPE = "sekisho.custody.handover/v1"


_PARTY = re.compile(PARTY)


@dataclass(frozen=True)
class HandoverRequest:
    """A checked request to open a hand-over."""

    anchor: NewAnchor
    giver: str
    receiver: str


def handover_request(body: Any) -> HandoverRequest:
    """``{subject, kind, digest, hash?, metadata (with "state"), owner?, giver, receiver}``."""
    parsed = validate_body(HandoverBody, body, InputError)
    new = NewAnchor(
        parsed.subject,
        parsed.kind,
        parsed.hash or "sha256",
        parsed.digest,
        parsed.metadata,
        parsed.owner,
    )
    if state_of(new.metadata) is None:
        raise InputError("a hand-over's 'metadata' names the new 'state'", code="bad_metadata")
    if parsed.giver == parsed.receiver:
        raise InputError("the giver and the receiver are two parties", code="bad_party")
    return HandoverRequest(new, parsed.giver, parsed.receiver)


def document_sha256(document: dict[str, Any]) -> str:
    """Hex SHA-256 of a hand-over document in canonical JSON: what each party signs."""
    return hashlib.sha256(canonical_json(document)).hexdigest()


def attestation_digest(document_sha256: str, party: str) -> bytes:
    """What the node signs for a person: SHA-256 of ``{"handover_sha256", "party"}``."""
    statement = {"handover_sha256": document_sha256, "party": party}
    return hashlib.sha256(canonical_json(statement)).digest()


def _no_handover() -> NotFound:
    return NotFound("no such hand-over", code="no_such_handover")


class HandoverService:
    """Opens hand-overs, takes the parties' signatures and anchors the link once both verify."""

    def __init__(
        self, anchors: AnchorService, signing: SigningService, attest_key: str = "default"
    ) -> None:
        self._anchors = anchors
        self._signing = signing
        self.attest_key = attest_key  # the named key the node attests people's signatures with

    async def open(self, caller: Identity, request: HandoverRequest) -> CustodyHandover:
        """A pending hand-over of the owner's chain (the caller must be one of its writers)."""
        new = request.anchor
        owner = new.owner or caller.name
        if not await may_use_chains(caller, owner):
            raise NotFound("no such chain", code="no_such_chain")
        handover_id = uuid.uuid4()
        document = {
            "type": DOCUMENT_TYPE,
            "handover": str(handover_id),
            "owner": owner,
            "subject_sha256": new.subject_sha256,
            "kind": new.kind,
            "digest": f"{new.hash_name}:{new.digest.hex()}",
            "metadata_sha256": new.metadata_sha256,
            "state": state_of(new.metadata),
            "giver": request.giver,
            "receiver": request.receiver,
            "opened_by": f"client:{caller.name}",
            "opened_at": utc_timestamp(self._anchors.clock()),
        }
        digest = document_sha256(document)
        async with transaction():  # the row and its entry, or neither
            row = await CustodyHandover.create(
                id=handover_id,
                owner=owner,
                subject=new.subject,
                subject_sha256=new.subject_sha256,
                document={**document, "metadata": dict(new.metadata)},
                sha256=digest,
                giver=request.giver,
                receiver=request.receiver,
            )
            await self._ledger_change(row, "opened", f"client:{caller.name}")
        return row

    async def _ledger_change(
        self,
        row: CustodyHandover,
        change: str,
        party: str,
        key: str | None = None,
        key_version: int | None = None,
    ) -> None:
        """Queue a ``custody.handover`` entry (call inside the change's transaction)."""
        await queue_entry(
            self._anchors.ledger,
            "custody.handover",
            handover=str(row.id),
            change=change,
            party=party,
            owner=row.owner,
            subject_sha256=row.subject_sha256,
            handover_sha256=row.sha256,
            key=key,
            key_version=key_version,
        )

    async def get(self, caller: Identity, handover_id: str) -> CustodyHandover:
        """One hand-over, for a party to it or a writer of its chain (404 otherwise)."""
        try:
            parsed = uuid.UUID(handover_id)
        except ValueError:
            raise _no_handover() from None
        row = await CustodyHandover.get_or_none(id=parsed)
        if row is None or not await self._may_see(caller, row):
            raise _no_handover()
        return row

    async def _may_see(self, caller: Identity, row: CustodyHandover) -> bool:
        if f"{caller.kind}:{caller.name}" in (row.giver, row.receiver):
            return True
        return await may_use_chains(caller, row.owner)

    async def pending(self, caller: Identity) -> list[CustodyHandover]:
        """Pending hand-overs the caller is a party to or may write the chain of."""
        rows = await CustodyHandover.filter(status="pending").order_by("created_at")
        return [row for row in rows if await self._may_see(caller, row)]

    async def sign(self, caller: Identity, handover_id: str, body: Any) -> CustodyHandover:
        """Add the caller's signature; anchors the link once both parties' verify."""
        row = await self.get(caller, handover_id)
        parsed = validate_body(HandoverSignatureBody, body, InputError)
        key, version, signature = parsed.key, parsed.version, parsed.signature
        party = f"client:{caller.name}"
        role = "giver" if party == row.giver else "receiver" if party == row.receiver else None
        if role is None:
            raise Forbidden("the caller is not a party to this hand-over", code="not_a_party")
        if row.status != "pending":
            raise Conflict("this hand-over is no longer pending", code="handover_closed")
        signed = SignInput(bytes.fromhex(row.sha256), True, "sha256", "der")
        if await self._signing.verify(caller, key, signed, signature, version) is None:
            raise InputError(
                "the signature does not verify against that key version over the hand-over "
                "document's SHA-256",
                code="bad_signature",
            )
        other = row.receiver_signature if role == "giver" else row.giver_signature
        if other is not None and other.get("key") == key and "attests" not in other:
            raise InputError("each party signs with a key of its own", code="bad_signature")
        certificate = (await self._signing.registry.get(key)).version(version).certificate
        signed_by = {
            "party": party,
            "key": key,
            "version": version,
            "signature": base64.b64encode(signature).decode(),
            "certificate": base64.b64encode(certificate).decode(),
        }
        return await self._store(row, role, signed_by)

    async def sign_as_person(self, person: Identity, handover_id: str) -> CustodyHandover:
        """A person's signature, given through the portal: the node attests it.

        People hold no signing key of the API, so the node signs, with ``attest_key``,
        the statement that this signed-in person signed this hand-over document
        (:func:`attestation_digest`); the pair is checked offline like any signature.
        """
        row = await self.get(person, handover_id)
        party = f"person:{person.name}"
        role = "giver" if party == row.giver else "receiver" if party == row.receiver else None
        if role is None or not person.is_person:
            raise Forbidden("you are not a party to this hand-over", code="not_a_party")
        if row.status != "pending":
            raise Conflict("this hand-over is no longer pending", code="handover_closed")
        node = Identity(kind="client", name="portal", keys=frozenset({self.attest_key}))
        item = SignInput(attestation_digest(row.sha256, party), True, "sha256", "der")
        key, [result] = await self._signing.sign(node, self.attest_key, [item])
        if not isinstance(result, Signature):
            raise result
        signed_by = {
            "party": party,
            "key": key.name,
            "version": key.version,
            "signature": base64.b64encode(result.signature).decode(),
            "certificate": base64.b64encode(key.certificate).decode(),
            "attests": "portal",
        }
        return await self._store(row, role, signed_by)

    async def _store(
        self, row: CustodyHandover, role: str, signed_by: dict[str, Any]
    ) -> CustodyHandover:
        """Keep one party's verified signature; anchor the link once both are there."""
        column = f"{role}_signature"
        party, key = str(signed_by["party"]), str(signed_by["key"])
        async with transaction():  # the signature and its entry, or neither
            updated = await CustodyHandover.filter(id=row.id, status="pending").update(
                **{column: signed_by}
            )
            if not updated:
                raise Conflict("this hand-over is no longer pending", code="handover_closed")
            await self._ledger_change(row, "signed", party, key, int(signed_by["version"]))
        claimed = await CustodyHandover.filter(
            id=row.id,
            status="pending",
            giver_signature__isnull=False,
            receiver_signature__isnull=False,
        ).update(status="anchoring")
        if claimed:  # both signed: this request anchors the link
            await self._complete(row)
        return await CustodyHandover.get(id=row.id)

    async def _complete(self, row: CustodyHandover) -> AnchorRecord:
        """Anchor the hand-over's link (checked against the rule) as its opener."""
        document = row.document
        opener = str(document["opened_by"]).removeprefix("client:")
        caller = Identity(kind="client", name=opener, scopes=frozenset({"anchor"}))
        hash_name, _, hex_digest = str(document["digest"]).partition(":")
        metadata = document.get("metadata")
        new = NewAnchor(
            subject=row.subject,
            kind=str(document["kind"]),
            hash_name=hash_name,
            digest=bytes.fromhex(hex_digest),
            metadata=metadata if isinstance(metadata, dict) else {},
            owner=row.owner,
        )
        proof = HandoverProof(row.id, row.sha256, row.giver, row.receiver)
        try:
            record = await self._anchors.anchor(caller, new, proof)
        except CustodyRefused:
            await CustodyHandover.filter(id=row.id).update(status="refused")
            raise
        except BaseException:
            await CustodyHandover.filter(id=row.id).update(status="pending")
            raise
        await CustodyHandover.filter(id=row.id).update(status="anchored", record=record.id)
        return record


def signed_document(row: CustodyHandover) -> dict[str, Any]:
    """The document the parties signed (the stored one without the link's metadata)."""
    return {k: v for k, v in row.document.items() if k != "metadata"}
