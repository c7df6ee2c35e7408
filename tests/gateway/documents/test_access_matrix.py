"""Every combination of level, compartments and REL TO for people and documents.

The decision point answers the whole matrix (32 people x 64 labels) in
milliseconds. Over HTTP, across list, search, metadata, content, receipt and
versions, a person sees a document exactly when their clearance dominates its
label, never otherwise, and each request produces exactly one
``document.accessed`` ledger entry: a smoke test covers each way to be denied,
the whole matrix over HTTP is marked slow (CI runs it).
"""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest

from gateway.auth.identity import Identity
from gateway.documents.models import AccessEvent
from gateway.policy.labels import DEFAULT_LEVELS, DEFAULT_SCHEME
from gateway.policy.pdp import PolicyDecisionPoint
from tests.gateway.documents.conftest import Gateway, MakePerson
from tests.gateway.documents.test_api import upload
from tests.gateway.ledger_rows import ledger_entries

COMPARTMENT_SETS: list[tuple[str, ...]] = [(), ("A",), ("B",), ("A", "B")]
REL_TO: list[tuple[str, ...] | None] = [None, ("USA",), ("GBR",), ("GBR", "USA")]
NATIONS = ("USA", "GBR")
Person = tuple[int, tuple[str, ...], str]
DocumentLabel = tuple[int, tuple[str, ...], tuple[str, ...] | None]
ALL_PEOPLE: list[Person] = list(
    itertools.product(range(len(DEFAULT_LEVELS)), COMPARTMENT_SETS, NATIONS)
)
ALL_LABELS: list[DocumentLabel] = list(
    itertools.product(range(len(DEFAULT_LEVELS)), COMPARTMENT_SETS, REL_TO)
)


def label_text(level: str, compartments: tuple[str, ...], rel: tuple[str, ...] | None) -> str:
    parts = [level]
    if compartments:
        parts.append("/".join(compartments))
    if rel:
        parts.append("REL TO " + ", ".join(rel))
    return "//".join(parts)


def expected(person: Person, doc: DocumentLabel) -> bool:
    """An oracle written independently of the gateway's policy code."""
    p_level, p_comp, p_nation = person
    d_level, d_comp, d_rel = doc
    return (
        p_level >= d_level and set(d_comp) <= set(p_comp) and (d_rel is None or p_nation in d_rel)
    )


async def count_access_entries() -> int:
    """``document.accessed`` entries, queued or integrated."""
    return len(await ledger_entries("document.accessed"))


def test_decision_point_matrix() -> None:
    pdp = PolicyDecisionPoint(DEFAULT_SCHEME)
    checked = 0
    for person in ALL_PEOPLE:
        rank, comp, nation = person
        identity = Identity(
            kind="person",
            name="p",
            roles=frozenset({"reader"}),
            level=DEFAULT_LEVELS[rank],
            compartments=frozenset(comp),
            nationality=nation,
        )
        for doc in ALL_LABELS:
            decision = pdp.may_read(identity, label_text(DEFAULT_LEVELS[doc[0]], doc[1], doc[2]))
            assert decision.granted == expected(person, doc), (person, doc, decision)
            checked += 1
    assert checked == 32 * 64


async def check_over_http(
    gateway: Gateway, make_person: MakePerson, people: list[Person], labels: list[DocumentLabel]
) -> None:
    """Upload ``labels``; each person lists, searches and reads every document."""
    uploaders = {
        nation: await make_person(
            f"up{nation}", "TOP SECRET", ("A", "B"), nation, ("uploader", "reader")
        )
        for nation in NATIONS
    }
    documents: dict[str, DocumentLabel] = {}
    for rank, comp, rel in labels:
        uploader = uploaders["USA" if rel is None or "USA" in rel else "GBR"]
        doc_id = await upload(
            gateway,
            uploader,
            label_text(DEFAULT_LEVELS[rank], comp, rel),
            f"doc {rank}".encode(),
            "matrix doc",
        )
        documents[doc_id] = (rank, comp, rel)
    assert len(documents) == len(labels)

    before = await count_access_entries()
    requests = 0
    for person in people:
        rank, comp, nation = person
        headers = await make_person(
            f"p{rank}{''.join(comp)}{nation}", DEFAULT_LEVELS[rank], comp, nation
        )
        visible = {d for d, label in documents.items() if expected(person, label)}
        for path in ("/api/v1/documents?limit=200", "/api/v1/documents?q=matrix&limit=200"):
            listing = await (await gateway.client.get(path, headers=headers)).json()
            requests += 1
            assert {d["id"] for d in listing["documents"]} == visible, (person, path)

        async def probe(
            doc_id: str, suffix: str, headers: dict[str, str] = headers
        ) -> tuple[str, str, int, str]:
            response = await gateway.client.get(
                f"/api/v1/documents/{doc_id}{suffix}", headers=headers
            )
            body = await response.read()
            return doc_id, suffix, response.status, body.decode(errors="replace")

        results = await asyncio.gather(
            *(probe(d, s) for d in documents for s in ("", "/content", "/receipt", "/versions"))
        )
        requests += len(results)
        for doc_id, suffix, status, body in results:
            allowed = doc_id in visible
            assert status == (200 if allowed else 404), (person, documents[doc_id], suffix)
            if not allowed:
                assert json.loads(body)["message"] == "no such document"
    assert requests == len(people) * (2 + len(labels) * 4)
    assert await count_access_entries() - before == requests
    assert await AccessEvent.filter(outcome="denied").count() > 0


async def test_access_smoke_over_http(gateway: Gateway, make_person: MakePerson) -> None:
    """One person and labels that deny them by level, compartment and REL TO, or grant."""
    secret, top_secret = DEFAULT_LEVELS.index("SECRET"), DEFAULT_LEVELS.index("TOP SECRET")
    labels: list[DocumentLabel] = [
        (secret, ("A",), ("USA",)),  # granted
        (top_secret, (), None),  # level too high
        (secret, ("B",), None),  # compartment missing
        (0, (), ("GBR",)),  # not releasable to USA
    ]
    await check_over_http(gateway, make_person, [(secret, ("A",), "USA")], labels)


@pytest.mark.slow
async def test_access_matrix_over_http(gateway: Gateway, make_person: MakePerson) -> None:
    await check_over_http(gateway, make_person, ALL_PEOPLE, ALL_LABELS)
