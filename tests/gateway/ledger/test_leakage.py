"""An adversary with everything an anonymous caller (or a witness, or a mirror) can fetch learns
no label, no content match, no size, no username and no address from the ledger (#13).

The dictionary holds over a million candidate labels, hashed in every canonical form the code
has ever used for a label in the ledger; the adversary also knows the exact plaintexts.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import re
from pathlib import Path
from uuid import uuid4

from gateway.app_keys import LEDGER
from gateway.ledger.commitments import check_opening
from gateway.ledger.entries import canonical_json
from tests.gateway.app_fixtures import app_node
from tests.gateway.documents.conftest import Gateway, MakePerson, gateway, make_person
from tests.gateway.documents.test_api import upload
from tests.nodes import run_cli

__all__ = ["app_node", "gateway", "make_person"]

LEVELS = ("UNCLASSIFIED", "CONFIDENTIAL", "SECRET", "TOP SECRET")
WORDS = [f"C{n:03d}" for n in range(180)] + ["NIGHTJAR", "NUCLEAR", "LOGISTICS"]
NATIONS = ("USA", "GBR", "CAN", "AUS", "NZL", "FRA", "DEU", "JPN")
LABELS = {
    "SECRET//LOGISTICS/NIGHTJAR//REL TO GBR, USA": b"convoy plan for the northern route\n",
    "TOP SECRET//NUCLEAR": b"fuel manifest: 40 t JP-8, depot 3\n",
    "CONFIDENTIAL": b"maintenance record: rotor 7 replaced\n",
}


def candidate_labels() -> list[str]:
    """Over a million plausible labels: levels, up to two compartments, REL TO sets."""
    rel_tos = [""] + [
        "//REL TO " + ", ".join(sorted(combo))
        for size in (1, 2, 3)
        for combo in itertools.combinations(NATIONS, size)
    ]
    compartment_sets = (
        [""]
        + [f"//{w}" for w in WORDS]
        + [f"//{'/'.join(sorted(pair))}" for pair in itertools.combinations(WORDS, 2)]
    )
    labels = [
        f"{level}{compartments}{rel}"
        for level in LEVELS
        for compartments in compartment_sets
        for rel in rel_tos
    ]
    return labels


def hashed_forms(text: str) -> list[bytes]:
    """Every form a label ever took in a ledger leaf: the prefixed SHA-256, and plain ones."""
    raw = text.encode()
    return [
        hashlib.sha256(b"sekisho-label-v1:" + raw).digest(),
        hashlib.sha256(raw).digest(),
        hashlib.sha256(raw.lower()).digest(),
    ]


def digests_in(blob: bytes) -> set[bytes]:
    """Every 32-byte value the bytes hold in hex or base64 (how hashes appear in JSON)."""
    found = {bytes.fromhex(h.decode()) for h in re.findall(rb"[0-9a-f]{64}", blob)}
    for b64 in re.findall(rb"[A-Za-z0-9+/]{43}=", blob):
        found.add(base64.b64decode(b64))
    return found


async def drained(gw: Gateway) -> int:
    """Wait until every queued entry is integrated; the tree size."""
    ledger = gw.client.app[LEDGER]
    for _ in range(500):
        if await ledger.store.pending_count() == 0:
            break
        await asyncio.sleep(0.01)
    size: int = (await ledger.latest()).size
    return size


async def public_bytes(gw: Gateway, size: int) -> bytes:
    """Everything an anonymous caller can fetch about the log."""
    client = gw.client
    paths = ["/ledger/checkpoint", "/api/v1/ledger/checkpoint", "/api/v1/ledger/key"]
    paths += [f"/ledger/tile/0/{n:03d}" for n in range(size // 256)]
    paths += [f"/ledger/tile/0/{size // 256:03d}.p/{size % 256}"] if size % 256 else []
    paths += [f"/ledger/tile/entries/000.p/{min(size, 255)}", "/api/v1/ledger/entries/0"]
    for index in range(size):
        paths += [
            f"/api/v1/ledger/receipts/{index}",
            f"/api/v1/ledger/proof/inclusion?index={index}",
            f"/api/v1/ledger/entries/{index}/opening",
        ]
    paths += [f"/api/v1/ledger/proof/consistency?old={old}" for old in range(1, size)]
    chunks = []
    for path in paths:
        response = await client.get(path)
        chunks.append(await response.read())
    return b"\n".join(chunks)


async def test_the_public_log_reveals_nothing_to_a_dictionary_adversary(
    gateway: Gateway, make_person: MakePerson
) -> None:
    uploader = await make_person(
        "cmdr-okafor", "TOP SECRET", ("LOGISTICS", "NIGHTJAR", "NUCLEAR"), "USA"
    )
    denied = await make_person("pvt-lindqvist", "CONFIDENTIAL", (), "GBR")
    documents = [await upload(gateway, uploader, label, data) for label, data in LABELS.items()]
    for doc in documents:
        await gateway.client.get(f"/api/v1/documents/{doc}/content", headers=uploader)
        await gateway.client.get(f"/api/v1/documents/{doc}/content", headers=denied)
    ledger = gateway.client.app[LEDGER]
    size = await drained(gateway)
    leaves = b"\n".join(await ledger.store.leaves(0, size))  # what a mirror replicates

    anonymous = await public_bytes(gateway, size)
    for view, blob in (("anonymous caller and witness", anonymous), ("mirror", leaves)):
        # no label, in any form it was ever hashed in
        dictionary = candidate_labels()
        assert len(dictionary) >= 1_000_000
        assert set(LABELS) <= set(dictionary)  # the real labels are in the dictionary
        held = digests_in(blob)
        recovered = [label for label in dictionary if any(d in held for d in hashed_forms(label))]
        assert recovered == [], view
        # no content match: the plaintexts' and ciphertexts' hashes are not there
        for data in LABELS.values():
            assert hashlib.sha256(data).digest() not in held, view
        # no size, no username, no address, no reason
        for data in LABELS.values():
            assert f'"size":{len(data)}'.encode() not in blob, view
        for secret in (b"cmdr-okafor", b"pvt-lindqvist", b"127.0.0.1", b"compartments"):
            assert secret not in blob, (view, secret)
        for doc in documents:
            assert doc.encode() not in blob, view

    # the same leaves opened by the node: every fact is there for officers
    opened = await ledger.opened_entries(0, size)
    registered = [e for e in opened if e["type"] == "document.registered"]
    assert {e["plaintext_sha256"] for e in registered} == {
        hashlib.sha256(data).hexdigest() for data in LABELS.values()
    }
    denials = [e for e in opened if e["type"] == "document.accessed" and e["outcome"] == "denied"]
    assert {e["actor"] for e in denials} == {"person:pvt-lindqvist"}
    assert all(e["v"] == 2 for e in map(json.loads, await ledger.store.leaves(0, size)))


async def test_a_person_opens_only_entries_of_their_own_actions(
    gateway: Gateway, make_person: MakePerson
) -> None:
    alice = await make_person("alice", "SECRET")
    bob = await make_person("bob", "SECRET")
    officer = await make_person("olivia", "SECRET", roles=("reader", "officer"))
    doc = await upload(gateway, alice, "SECRET", b"alice's report")
    await gateway.client.get(f"/api/v1/documents/{doc}/content", headers=alice)
    ledger = gateway.client.app[LEDGER]
    size = await drained(gateway)
    opened = await ledger.opened_entries(0, size)
    own = [i for i, e in enumerate(opened) if e.get("actor") == "person:alice"]
    assert own
    for index in range(size):
        url = f"/api/v1/ledger/entries/{index}/opening"
        mine = await gateway.client.get(url, headers=alice)
        theirs = await gateway.client.get(url, headers=bob)
        assert theirs.status == 404  # bob did nothing here
        if index in own:
            assert mine.status == 200
            body = await mine.json()
            assert body["fields"]["actor"] == "person:alice"
            assert canonical_json(json.loads(body["entry"])) == body["entry"].encode()
        else:  # exactly what an index without an entry gets, once the index is masked
            assert mine.status == 404
            missing = await gateway.client.get(
                f"/api/v1/ledger/entries/{size + 999}/opening", headers=alice
            )
            masked = (await missing.read()).replace(str(size + 999).encode(), b"N")
            assert (await mine.read()).replace(str(index).encode(), b"N") == masked
        assert (await gateway.client.get(url, headers=officer)).status == 200


async def test_an_officer_opening_what_another_person_did_is_ledgered_as_oversight(
    gateway: Gateway, make_person: MakePerson
) -> None:
    alice = await make_person("alice", "SECRET")
    officer = await make_person("olivia", "SECRET", roles=("reader", "officer"))
    await upload(gateway, alice, "SECRET", b"alice's report")
    ledger = gateway.client.app[LEDGER]
    size = await drained(gateway)
    opened = await ledger.opened_entries(0, size)
    index = next(i for i, e in enumerate(opened) if e.get("actor") == "person:alice")
    url = f"/api/v1/ledger/entries/{index}/opening"
    assert (await gateway.client.get(url, headers=alice)).status == 200
    assert await drained(gateway) == size  # a person reading their own entry: not oversight
    assert (await gateway.client.get(url, headers=officer)).status == 200
    after = await drained(gateway)
    new = await ledger.opened_entries(size, after)
    assert [(e["type"], e["actor"], e["view"]) for e in new] == [
        ("oversight.viewed", "person:olivia", "ledger.opening")
    ]
    assert str(index) in json.dumps(new[0]["filters"])


async def test_a_cleared_reader_checks_a_file_against_the_anchor_offline(
    gateway: Gateway, make_person: MakePerson, tmp_path: Path
) -> None:
    alice = await make_person("alice", "SECRET")
    reader = await make_person("rob", "SECRET", roles=("reader",))
    outsider = await make_person("carl", "CONFIDENTIAL", roles=("reader",))
    plain = b"maintenance record: rotor 7 replaced\n"
    doc = await upload(gateway, alice, "SECRET", plain)
    await drained(gateway)
    response = await gateway.client.get(f"/api/v1/documents/{doc}/anchor", headers=reader)
    assert response.status == 200
    body = await response.json()
    assert set(body["opening"]["fields"]) == {
        "document", "version", "label", "plaintext_sha256", "ciphertext_sha256",
        "ciphertext_root", "size",
    }  # fmt: skip
    assert body["opening"]["fields"]["plaintext_sha256"] == hashlib.sha256(plain).hexdigest()
    assert "actor" not in body["opening"]["fields"]  # who uploaded it is not the reader's
    key = await (await gateway.client.get("/api/v1/ledger/key")).json()
    files = {name: tmp_path / name for name in ("receipt", "entry", "opening")}
    files["receipt"].write_text(body["receipt"])
    files["entry"].write_text(body["entry"])
    files["opening"].write_text(json.dumps(body["opening"]))
    command = ["verify", str(files["receipt"]), "--key", key["vkey"], "--entry"]
    command += [str(files["entry"]), "--opening", str(files["opening"])]
    checked = run_cli(command, tmp_path / "unused")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f'plaintext_sha256="{hashlib.sha256(plain).hexdigest()}"' in checked.stdout
    forged = dict(body["opening"], fields={**body["opening"]["fields"], "size": 1})
    files["opening"].write_text(json.dumps(forged))
    assert run_cli(command, tmp_path / "unused").returncode == 1
    denied = await gateway.client.get(f"/api/v1/documents/{doc}/anchor", headers=outsider)
    missing = await gateway.client.get(f"/api/v1/documents/{uuid4()}/anchor", headers=outsider)
    assert denied.status == missing.status == 404


async def test_a_refused_persons_own_entries_do_not_tell_a_hidden_document_from_no_document(
    gateway: Gateway, make_person: MakePerson
) -> None:
    """A person may open the entries of their own actions, but their refusals open as
    their trail shows them: without the reason (``level`` or ``not_found``) and the
    version, which would say the document exists; officers still see both."""
    alice = await make_person("alice", "SECRET")
    carl = await make_person("carl", "CONFIDENTIAL", roles=("reader",))
    officer = await make_person("olivia", "SECRET", roles=("reader", "officer"))
    hidden = await upload(gateway, alice, "SECRET", b"alice's report")
    missing = str(uuid4())
    for target in (hidden, missing):
        refused = await gateway.client.get(f"/api/v1/documents/{target}", headers=carl)
        assert refused.status == 404
    ledger = gateway.client.app[LEDGER]
    size = await drained(gateway)
    opened = await ledger.opened_entries(0, size)
    mine = {
        e["document"]: index
        for index, e in enumerate(opened)
        if e["type"] == "document.accessed" and e.get("actor") == "person:carl"
    }
    assert set(mine) == {hidden, missing}

    seen = {}
    for target, index in mine.items():
        url = f"/api/v1/ledger/entries/{index}/opening"
        response = await gateway.client.get(url, headers=carl)
        assert response.status == 200
        body = await response.json()
        assert not {"reason", "version"} & (set(body["fields"]) | set(body["opening"]["fields"]))
        assert check_opening(json.loads(body["entry"]), body["opening"])["document"] == target
        seen[target] = (
            {k: v for k, v in body["fields"].items() if k not in ("document", "ts")},
            sorted(body["opening"]["fields"]),
            sorted(body["opening"]["f"]),
        )
        as_officer = await (await gateway.client.get(url, headers=officer)).json()
        assert as_officer["fields"]["reason"] == ("level" if target == hidden else "not_found")
    assert seen[hidden] == seen[missing]
