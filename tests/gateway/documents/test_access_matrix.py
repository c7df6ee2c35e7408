"""Every combination of level, compartments and REL TO for people and documents.

Across list, search, metadata, content, receipt and versions: a person sees a
document exactly when their clearance dominates its label, never otherwise, and
each request produces exactly one ``document.accessed`` ledger entry.
"""

from __future__ import annotations

import asyncio
import itertools
import json

from gateway.documents.models import AccessEvent
from gateway.policy.labels import DEFAULT_LEVELS
from tests.gateway.documents.conftest import Gateway, MakePerson
from tests.gateway.documents.test_api import upload
from tests.gateway.ledger_rows import ledger_entries

COMPARTMENT_SETS: list[tuple[str, ...]] = [(), ("A",), ("B",), ("A", "B")]
REL_TO: list[tuple[str, ...] | None] = [None, ("USA",), ("GBR",), ("GBR", "USA")]
NATIONS = ("USA", "GBR")


def label_text(level: str, compartments: tuple[str, ...], rel: tuple[str, ...] | None) -> str:
    parts = [level]
    if compartments:
        parts.append("/".join(compartments))
    if rel:
        parts.append("REL TO " + ", ".join(rel))
    return "//".join(parts)


def expected(
    person: tuple[int, tuple[str, ...], str],
    doc: tuple[int, tuple[str, ...], tuple[str, ...] | None],
) -> bool:
    """An oracle written independently of the gateway's policy code."""
    p_level, p_comp, p_nation = person
    d_level, d_comp, d_rel = doc
    return (
        p_level >= d_level and set(d_comp) <= set(p_comp) and (d_rel is None or p_nation in d_rel)
    )


async def count_access_entries() -> int:
    """``document.accessed`` entries, queued or integrated."""
    return len(await ledger_entries("document.accessed"))


async def test_access_matrix(gateway: Gateway, make_person: MakePerson) -> None:
    uploaders = {
        nation: await make_person(
            f"up{nation}", "TOP SECRET", ("A", "B"), nation, ("uploader", "reader")
        )
        for nation in NATIONS
    }
    documents: dict[str, tuple[int, tuple[str, ...], tuple[str, ...] | None]] = {}
    for rank, comp, rel in itertools.product(range(len(DEFAULT_LEVELS)), COMPARTMENT_SETS, REL_TO):
        uploader = uploaders["USA" if rel is None or "USA" in rel else "GBR"]
        doc_id = await upload(
            gateway,
            uploader,
            label_text(DEFAULT_LEVELS[rank], comp, rel),
            f"doc {rank}".encode(),
            "matrix doc",
        )
        documents[doc_id] = (rank, comp, rel)
    assert len(documents) == 64

    before = await count_access_entries()
    requests = 0
    for rank, comp, nation in itertools.product(
        range(len(DEFAULT_LEVELS)), COMPARTMENT_SETS, NATIONS
    ):
        person = (rank, comp, nation)
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
    assert requests == 32 * (2 + 64 * 4)
    assert await count_access_entries() - before == requests
    assert await AccessEvent.filter(outcome="denied").count() > 0
