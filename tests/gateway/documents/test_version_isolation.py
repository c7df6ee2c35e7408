"""Old versions shown as themselves, and officer actions checked against the officer's role.

A reader cleared for version 1 of a document whose version 2 is labelled above
them sees version 1 as if it were the whole document: its own label, itself as
the newest version, no trace of version 2 (issue #14, "Old versions"). A
downgrade is an officer action and needs the officer role, not the uploader's
(issue #14, role checks borrowed from another action).
"""

from __future__ import annotations

from tests.gateway.documents.conftest import Gateway, MakePerson

HIGHER = "SECRET//NIGHTJAR"


async def _two_versions(gateway: Gateway, uploader: dict[str, str]) -> str:
    """A CONFIDENTIAL version 1 (v1.txt) and a higher-labelled version 2 (v2-nightjar.txt)."""
    first = await gateway.client.post(
        "/api/v1/documents?title=Manifest&label=CONFIDENTIAL&filename=v1.txt",
        data=b"version one",
        headers={**uploader, "Content-Type": "text/plain"},
    )
    assert first.status == 201, await first.text()
    doc = str((await first.json())["id"])
    second = await gateway.client.post(
        f"/api/v1/documents/{doc}/versions?label={HIGHER}&filename=v2-nightjar.txt",
        data=b"version two",
        headers={**uploader, "Content-Type": "application/x-nightjar"},
    )
    assert second.status == 201, await second.text()
    return doc


def _betrays_version_two(text: str) -> bool:
    return any(word in text for word in ("SECRET//", "NIGHTJAR", "nightjar", "v2-"))


async def test_an_old_version_shows_only_itself(gateway: Gateway, make_person: MakePerson) -> None:
    alice = await make_person("alice", "SECRET", ("NIGHTJAR",))
    rob = await make_person("rob", "CONFIDENTIAL", roles=("reader",))
    doc = await _two_versions(gateway, alice)
    base = f"/api/v1/documents/{doc}"

    for path in (f"{base}?version=1", base):  # without a version: the newest rob may read
        response = await gateway.client.get(path, headers=rob)
        assert response.status == 200, (path, await response.text())
        text = await response.text()
        meta = await response.json()
        assert meta["label"] == "CONFIDENTIAL", path
        assert meta["current_version"] == 1, path
        assert [v["version"] for v in meta["versions"]] == [1], path
        assert meta["version"]["version"] == 1, path
        assert not _betrays_version_two(text), path

    versions = await gateway.client.get(f"{base}/versions", headers=rob)
    assert [v["version"] for v in (await versions.json())["versions"]] == [1]

    for path in (f"{base}/content?version=1", f"{base}/content"):
        content = await gateway.client.get(path, headers=rob)
        assert await content.read() == b"version one", path
        headers = "\n".join(f"{k}: {v}" for k, v in content.headers.items())
        assert "v1.txt" in content.headers["Content-Disposition"], path
        assert not _betrays_version_two(headers), path

    receipt = await gateway.client.get(f"{base}/receipt", headers=rob)
    first = await gateway.client.get(f"{base}/receipt?version=1", headers=rob)
    assert receipt.status == first.status == 200
    assert (await receipt.text()).split("\n")[1] == (await first.text()).split("\n")[1]

    refused = await gateway.client.get(f"{base}?version=2", headers=rob)
    assert refused.status == 404

    # the uploader, cleared for both, still sees the document as it is now
    meta = await (await gateway.client.get(f"{base}?version=1", headers=alice)).json()
    assert (meta["label"], meta["current_version"]) == ("CONFIDENTIAL", 2)
    current = await (await gateway.client.get(base, headers=alice)).json()
    assert (current["label"], current["current_version"]) == (HIGHER, 2)


async def test_changes_act_on_the_current_version_only(
    gateway: Gateway, make_person: MakePerson
) -> None:
    """Reading falls back to an older version; writing never does (no downgrade around v2)."""
    alice = await make_person("alice", "SECRET", ("NIGHTJAR",))
    carl = await make_person(
        "carl", "CONFIDENTIAL", roles=("reader", "uploader", "officer")
    )  # cleared for version 1 only
    doc = await _two_versions(gateway, alice)
    base = f"/api/v1/documents/{doc}"
    over = await gateway.client.post(
        f"{base}/versions?label=CONFIDENTIAL", data=b"overwrite", headers=carl
    )
    assert over.status == 404
    lowered = await gateway.client.post(
        f"{base}/downgrade", json={"label": "UNCLASSIFIED", "reason": "x"}, headers=carl
    )
    assert lowered.status == 404
    destroyed = await gateway.client.delete(base, headers=carl)
    assert destroyed.status == 404
    current = await (await gateway.client.get(base, headers=alice)).json()
    assert (current["current_version"], current["label"]) == (2, HIGHER)


async def test_an_officer_downgrades_without_the_uploader_role(
    gateway: Gateway, make_person: MakePerson
) -> None:
    alice = await make_person("alice", "SECRET")
    olivia = await make_person("olivia", "SECRET", roles=("reader", "officer"))
    reader = await make_person("rob", "SECRET", roles=("reader", "uploader"))
    created = await gateway.client.post(
        "/api/v1/documents?title=Plan&label=SECRET&filename=p.txt", data=b"plan", headers=alice
    )
    doc = (await created.json())["id"]

    refused = await gateway.client.post(
        f"/api/v1/documents/{doc}/downgrade",
        json={"label": "CONFIDENTIAL", "reason": "released"},
        headers=reader,
    )
    assert refused.status == 403
    assert "officer" in (await refused.json())["message"]
    done = await gateway.client.post(
        f"/api/v1/documents/{doc}/downgrade",
        json={"label": "CONFIDENTIAL", "reason": "released"},
        headers=olivia,
    )
    assert done.status == 201, await done.text()
    assert (await done.json())["label"] == "CONFIDENTIAL"
    # an officer still cannot upload without the uploader role
    upload = await gateway.client.post(
        "/api/v1/documents?title=X&label=CONFIDENTIAL", data=b"x", headers=olivia
    )
    assert upload.status == 403
    assert "uploader" in (await upload.json())["message"]
    destroyed = await gateway.client.delete(f"/api/v1/documents/{doc}", headers=olivia)
    assert destroyed.status == 200


async def test_change_refusals_do_not_tell_a_hidden_newer_version(
    gateway: Gateway, make_person: MakePerson
) -> None:
    """A person refused a change for want of a role, or for a bad new label, gets the same
    answer for a document whose newer version is above them, a document they read whole,
    and an id that never existed: the checks that need no document come first."""
    alice = await make_person("alice", "SECRET", ("NIGHTJAR",))
    rob = await make_person("rob", "CONFIDENTIAL", roles=("reader",))
    olga = await make_person("olga", "CONFIDENTIAL", roles=("reader", "officer"))
    hidden_newer = await _two_versions(gateway, alice)
    whole = await gateway.client.post(
        "/api/v1/documents?title=Roster&label=CONFIDENTIAL",
        data=b"all readable",
        headers=alice,
    )
    readable = str((await whole.json())["id"])
    missing = "0b8f6a52-8a1c-4a3e-9d55-5f1f3f0e0c11"

    async def answers(doc: str) -> list[tuple[int, str]]:
        base = f"/api/v1/documents/{doc}"
        tried = [
            await gateway.client.delete(base, headers=rob),
            await gateway.client.post(
                f"{base}/downgrade", json={"label": "UNCLASSIFIED", "reason": "r"}, headers=rob
            ),
            await gateway.client.post(
                f"{base}/versions?label=CONFIDENTIAL", data=b"v3", headers=rob
            ),
            await gateway.client.post(
                f"{base}/downgrade", json={"label": "NO SUCH LEVEL", "reason": "r"}, headers=olga
            ),
        ]
        return [(r.status, (await r.json())["error"]) for r in tried]

    seen = {doc: await answers(doc) for doc in (hidden_newer, readable, missing)}
    assert seen[hidden_newer] == seen[readable] == seen[missing]
    assert [status for status, _ in seen[missing]] == [403, 403, 403, 400]


async def test_a_newer_version_above_the_reader_does_not_take_the_document_off_their_list(
    gateway: Gateway, make_person: MakePerson
) -> None:
    """The list shows a document at the newest version the reader may read, as its
    metadata does: adding a version above them changes nothing they can see."""
    alice = await make_person("alice", "SECRET", ("NIGHTJAR",))
    rob = await make_person("rob", "CONFIDENTIAL", roles=("reader",))
    doc = await _two_versions(gateway, alice)

    async def listed(query: str = "") -> list[dict[str, object]]:
        response = await gateway.client.get(f"/api/v1/documents{query}", headers=rob)
        assert response.status == 200
        assert not _betrays_version_two(await response.text())
        return list((await response.json())["documents"])

    [entry] = await listed()
    assert (entry["id"], entry["label"], entry["current_version"]) == (doc, "CONFIDENTIAL", 1)
    metadata = await (await gateway.client.get(f"/api/v1/documents/{doc}", headers=rob)).json()
    assert entry == {k: v for k, v in metadata.items() if k in entry}
    assert [e["id"] for e in await listed("?level=CONFIDENTIAL")] == [doc]
    assert await listed("?level=SECRET") == []
    assert [e["id"] for e in await listed("?q=Manifest")] == [doc]

    alices = await (await gateway.client.get("/api/v1/documents", headers=alice)).json()
    [hers] = alices["documents"]
    assert (hers["label"], hers["current_version"]) == (HIGHER, 2)
