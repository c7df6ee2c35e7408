"""Offline re-verification of an exported custody chain (``sekisho custody verify``).

Needs only the export and the log's verifier key: each link's and each rule
version's receipt is checked (log signature and inclusion of the exact entry,
as ``sekisho verify`` does), each entry's opening against its commitments, the
chain's links against each other, each hand-over's two signatures against the
certificates of the keys that made them, and finally every step is re-evaluated
against the rule version its entry names, by the same pure evaluator the server
uses. The first problem is reported, with the step it concerns.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from gateway.custody.evaluate import Step, check_step
from gateway.custody.export import FORMAT
from gateway.custody.guard import entry_time, state_of
from gateway.custody.handovers import attestation_digest, document_sha256
from gateway.custody.rules import Rule, RuleError, rule_sha256, validate_rule
from gateway.ledger.audit.model import LogKey
from gateway.ledger.commitments import OpeningError, check_opening
from gateway.ledger.entries import EntryError, canonical_json, parse_entry
from gateway.tlog.errors import FormatError
from gateway.tlog.merkle import leaf_hash
from gateway.tlog.receipt import parse_receipt, verify_receipt
from hsm import verify_signature


class ExportBroken(Exception):
    """The first thing in an export that does not verify; ``step`` is a link's sequence."""

    def __init__(self, message: str, step: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.step = step


@dataclass(frozen=True)
class Verified:
    """A chain that verified: its links, rule versions and final state."""

    links: int
    rules: list[str]
    state: str | None


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ExportBroken(f"{what} is missing")
    return value


def _opened(entry: bytes, opening: Any, receipt: Any, key: LogKey, what: str) -> dict[str, Any]:
    """Receipt then opening of one entry: its opened fields."""
    try:
        verify_receipt(
            parse_receipt(_text(receipt, f"{what}'s receipt").encode()),
            entry,
            key.name,
            key.public_key,
            key.origin,
        )
    except FormatError as exc:
        raise ExportBroken(f"{what}'s receipt does not verify: {exc.message}") from None
    if not isinstance(opening, Mapping):
        raise ExportBroken(f"{what}'s opening is missing")
    try:
        return check_opening(parse_entry(entry), opening)
    except (OpeningError, EntryError) as exc:
        raise ExportBroken(f"{what}'s opening does not match its entry: {exc}") from None


def _rules(export: Mapping[str, Any], key: LogKey) -> dict[tuple[str, int], Rule]:
    rules: dict[tuple[str, int], Rule] = {}
    for item in export.get("rules") or []:
        what = f"rule {item.get('name')} v{item.get('version')}"
        entry = _text(item.get("entry"), f"{what}'s entry").encode()
        fields = _opened(entry, item.get("opening"), item.get("receipt"), key, what)
        document = item.get("document")
        if not isinstance(document, dict) or fields.get("rule_sha256") != rule_sha256(document):
            raise ExportBroken(f"{what}: the document is not the one its ledger entry recorded")
        if (fields.get("rule"), fields.get("version")) != (item.get("name"), item.get("version")):
            raise ExportBroken(f"{what}: its ledger entry names another rule version")
        try:
            rules[(str(fields["rule"]), int(fields["version"]))] = validate_rule(document)
        except RuleError as exc:
            raise ExportBroken(f"{what}: {exc.message}") from None
    return rules


def _signature_ok(signed: Any, digest: bytes) -> bool:
    if not isinstance(signed, Mapping):
        return False
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode(signed["certificate"]))
        signature = base64.b64decode(signed["signature"])
    except (KeyError, ValueError, TypeError, binascii.Error):
        return False
    public_key: Any = certificate.public_key()
    return verify_signature(public_key, signature, digest, prehashed=True)


def _signed_digest(signed: Mapping[str, Any], document_sha256: str) -> bytes:
    """What a party's signature covers: the document's SHA-256, or for a person who signed
    in the portal, the node's attestation of that person's signature."""
    if signed.get("attests") == "portal":
        return attestation_digest(document_sha256, str(signed.get("party")))
    return bytes.fromhex(document_sha256)


def _handovers(export: Mapping[str, Any]) -> dict[str, tuple[str, str, str]]:
    """Verified hand-overs: id -> (document SHA-256, giver, receiver)."""
    verified: dict[str, tuple[str, str, str]] = {}
    for item in export.get("handovers") or []:
        document = item.get("document")
        if not isinstance(document, dict):
            continue
        digest = document_sha256(document)
        signatures = item.get("signatures") or {}
        giver, receiver = document.get("giver"), document.get("receiver")
        ok = all(
            isinstance(signatures.get(role), Mapping)
            and signatures[role].get("party") == party
            and _signature_ok(signatures[role], _signed_digest(signatures[role], digest))
            for role, party in (("giver", giver), ("receiver", receiver))
        )
        if ok:
            verified[str(document.get("handover"))] = (digest, str(giver), str(receiver))
    return verified


def _check_link(
    link: Mapping[str, Any],
    fields: Mapping[str, Any],
    owner: str,
    subject: str,
    sequence: int,
    previous: str | None,
) -> None:
    """The link's fields against its entry and the link before it."""
    expected = {
        "sequence": sequence,
        "previous": previous,
        "owner": owner,
        "subject_sha256": hashlib.sha256(subject.encode()).hexdigest(),
        "record": link.get("record"),
        "kind": link.get("kind"),
        "rule": link.get("rule"),
        "rule_version": link.get("rule_version"),
    }
    for name, value in expected.items():
        if fields.get(name) != value:
            raise ExportBroken(f"link {sequence}: {name} does not match its ledger entry", sequence)
    try:
        digest = base64.b64decode(_text(link.get("digest"), "digest"), validate=True)
    except binascii.Error:
        raise ExportBroken(f"link {sequence}: the digest is not base64", sequence) from None
    if fields.get("digest") != f"{link.get('hash')}:{digest.hex()}":
        raise ExportBroken(f"link {sequence}: digest does not match its ledger entry", sequence)
    metadata = link.get("metadata")
    if (
        not isinstance(metadata, dict)
        or fields.get("metadata_sha256") != hashlib.sha256(canonical_json(metadata)).hexdigest()
    ):
        raise ExportBroken(f"link {sequence}: metadata does not match its ledger entry", sequence)


def verify_export(export: Any, key: LogKey) -> Verified:
    """Verify an export; raises ExportBroken at the first problem (a malformed one too)."""
    try:
        return _verify(export, key)
    except (AttributeError, TypeError, KeyError, ValueError, IndexError) as exc:
        raise ExportBroken(f"the export is malformed: {type(exc).__name__}: {exc}") from None


def _verify(export: Any, key: LogKey) -> Verified:
    if not isinstance(export, dict) or export.get("format") != FORMAT:
        raise ExportBroken(f"not a custody chain export ({FORMAT})")
    owner = _text(export.get("owner"), "owner")
    subject = _text(export.get("subject"), "subject")
    rules = _rules(export, key)
    handovers = _handovers(export)
    previous_hash: str | None = None
    previous_step: Step | None = None
    links = export.get("links") or []
    if not links:
        raise ExportBroken("the export has no links")
    for sequence, link in enumerate(links, start=1):
        entry = _text(link.get("entry"), f"link {sequence}'s entry").encode()
        try:
            fields = _opened(
                entry, link.get("opening"), link.get("receipt"), key, f"link {sequence}"
            )
        except ExportBroken as exc:
            raise ExportBroken(exc.message, sequence) from None
        _check_link(link, fields, owner, subject, sequence, previous_hash)
        handover = None
        if fields.get("handover_sha256") is not None:
            proof = handovers.get(str(link.get("handover")))
            if proof is None or proof[0] != fields["handover_sha256"]:
                raise ExportBroken(
                    f"link {sequence}: its hand-over's two signatures are not in the export "
                    "or do not verify",
                    sequence,
                )
            handover = (proof[1], proof[2])
        step = Step(
            state_of(link["metadata"]),
            f"client:{fields.get('client')}",
            entry_time(entry),
            handover,
        )
        if fields.get("rule") is not None:
            rule = rules.get((str(fields["rule"]), int(fields.get("rule_version") or 0)))
            if rule is None:
                raise ExportBroken(
                    f"link {sequence}: rule {fields['rule']} v{fields.get('rule_version')} "
                    "is not in the export or does not verify",
                    sequence,
                )
            verdict = check_step(rule, previous_step, step)
            if not verdict.ok:
                raise ExportBroken(
                    f"step {sequence} breaks rule {fields['rule']} v{fields['rule_version']}: "
                    f"{verdict.code}: {verdict.message}",
                    sequence,
                )
        previous_hash = leaf_hash(entry).hex()
        previous_step = step
    names = sorted(f"{name} v{version}" for name, version in rules)
    return Verified(len(links), names, previous_step.state if previous_step else None)
