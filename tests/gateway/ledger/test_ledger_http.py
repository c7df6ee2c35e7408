"""The ledger read API of an in-process node: tlog-tiles, proofs, receipts, bad parameters."""

from __future__ import annotations

import base64
import itertools
from pathlib import Path

import pytest

from gateway.ledger.audit.verify import LogKey
from gateway.tlog.checkpoint import open_signed_checkpoint
from gateway.tlog.merkle import (
    HASH_SIZE,
    leaf_hash,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)
from gateway.tlog.receipt import parse_receipt, verify_receipt
from gateway.tlog.tiles import (
    TILE_WIDTH,
    decode_entry_bundle,
    entry_bundles_for_size,
    tiles_for_size,
)
from tests.gateway.ledger.conftest import LedgerNode, MakeNode
from tests.nodes import run_cli


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


async def log_key(node: LedgerNode) -> LogKey:
    served = await node.get_json("/api/v1/ledger/key")
    key = LogKey.from_vkey(served["vkey"])
    assert key.public_key == b64(served["public_key"])
    assert served["origin"] == key.origin == node.settings.ledger_origin
    assert served["algorithm"] == "Ed25519"
    return key


async def fetch(
    node: LedgerNode, path: str, headers: dict[str, str] | None = None
) -> tuple[bytes, str]:
    """GET a tlog-tiles resource: its body and Cache-Control, after checking the basics."""
    response = await node.client.get("/ledger/" + path, headers=headers)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/octet-stream"
    return await response.read(), response.headers["Cache-Control"]


async def rebuild_root_from_tiles(node: LedgerNode) -> None:
    """Checkpoint, every tile and bundle: the leaves hash to the signed root."""
    response = await node.client.get("/ledger/checkpoint")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    key = await log_key(node)
    checkpoint, _ = open_signed_checkpoint(
        await response.text(), key.origin, key.name, key.public_key
    )
    size = checkpoint.size
    assert size > TILE_WIDTH

    levels: dict[int, list[bytes]] = {}
    for ref in tiles_for_size(size):
        assert ref.level is not None
        body, cache = await fetch(node, ref.path)
        assert len(body) == ref.width * HASH_SIZE
        assert cache == (
            "public, max-age=60" if ref.is_partial else "public, max-age=31536000, immutable"
        )
        hashes = [body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)]
        levels.setdefault(ref.level, []).extend(hashes)
    assert len(levels[0]) == size

    leaves: list[bytes] = []
    officer = await node.officer_headers()
    for ref in entry_bundles_for_size(size):  # entry bundles are for entry readers only
        body, cache = await fetch(node, ref.path, officer)
        assert cache == (
            "private, max-age=60" if ref.is_partial else "private, max-age=31536000, immutable"
        )
        leaves.extend(decode_entry_bundle(body, ref.width))
    assert [leaf_hash(d) for d in leaves] == levels[0]
    assert root_from_leaves(levels[0]) == checkpoint.root_hash
    for n, upper in enumerate(levels[1]):  # each level-1 hash is the root of a full level-0 tile
        assert root_from_leaves(levels[0][n * TILE_WIDTH : (n + 1) * TILE_WIDTH]) == upper


async def test_tiles_and_bundles_rebuild_the_checkpoint_root(make_node: MakeNode) -> None:
    node = await make_node()
    size = await node.append(600)
    await rebuild_root_from_tiles(node)

    partial = size % TILE_WIDTH
    assert partial > 10
    narrow, cache = await fetch(node, "tile/0/002.p/10")
    wide, _ = await fetch(node, f"tile/0/002.p/{partial}")
    assert narrow == wide[: 10 * HASH_SIZE] and cache == "public, max-age=60"
    for path in (
        "tile/0/002",
        f"tile/0/002.p/{partial + 1}",
        "tile/1/000",
        "tile/1/000.p/3",
        "tile/entries/003",
        "tile/2/000.p/1",
    ):
        body = await node.get_json("/ledger/" + path, 404, await node.officer_headers())
        assert body["error"] == "not_found" and path in body["message"]
    for path in ("tile/0/1", "tile/0/000.p/0", "tile/0/000.p/256", "tile/64/000", "tile/x/000"):
        body = await node.get_json("/ledger/" + path, status=400)
        assert body["error"] == "invalid_tile_path"


async def test_tiles_on_postgres(make_node: MakeNode, pg_database_url: str) -> None:
    node = await make_node(pg_database_url)
    await node.append(300)
    await rebuild_root_from_tiles(node)


async def test_proofs_verify(make_node: MakeNode) -> None:
    node = await make_node()
    await node.append(40, "a")
    await node.append(170, "b")
    size = await node.append(90, "c")
    checkpoints = await node.ledger.store.checkpoints(-1, 100)
    roots = {c.size: c.root for c in checkpoints}
    assert len(roots) >= 4 and max(roots) == size
    latest = await node.get_json("/api/v1/ledger/checkpoint")
    assert latest["size"] == size and b64(latest["root"]) == roots[size]
    assert latest["note"] == (await node.ledger.latest()).note

    for index in (0, 1, 39, 40, 128, size - 1):
        data = await node.ledger.entry(index)
        body = await node.get_json(f"/api/v1/ledger/proof/inclusion?index={index}")
        assert body["size"] == size and body["leaf_hash"] == leaf_hash(data).hex()
        assert b64(body["root"]) == roots[size]
        assert body["checkpoint"] == latest["note"]
        verify_inclusion(leaf_hash(data), index, size, [b64(h) for h in body["proof"]], roots[size])
        by_hash = await node.get_json(
            f"/api/v1/ledger/proof/inclusion?leaf_hash={leaf_hash(data).hex()}&size={size}"
        )
        assert by_hash == body
        for old in (s for s in roots if s > index):
            body = await node.get_json(f"/api/v1/ledger/proof/inclusion?index={index}&size={old}")
            assert b64(body["root"]) == roots[old] and "checkpoint" in body
            verify_inclusion(
                leaf_hash(data), index, old, [b64(h) for h in body["proof"]], roots[old]
            )

    for old, new in itertools.combinations(sorted(roots), 2):
        body = await node.get_json(f"/api/v1/ledger/proof/consistency?old={old}&new={new}")
        assert (b64(body["old_root"]), b64(body["new_root"])) == (roots[old], roots[new])
        verify_consistency(old, new, [b64(h) for h in body["proof"]], roots[old], roots[new])
    body = await node.get_json("/api/v1/ledger/proof/consistency?old=7")
    assert body["new"] == size and "checkpoint" in body  # 7 is no checkpoint size; still provable
    verify_consistency(7, size, [b64(h) for h in body["proof"]], b64(body["old_root"]), roots[size])


@pytest.mark.slow  # runs the CLI
async def test_entries_and_receipts(make_node: MakeNode, tmp_path: Path) -> None:
    node = await make_node()
    size = await node.append(20)
    key = await log_key(node)
    body = await node.get_json(
        f"/api/v1/ledger/entries/{size - 1}", headers=await node.officer_headers()
    )
    data = await node.ledger.entry(size - 1)
    assert body["index"] == size - 1 and body["leaf_hash"] == leaf_hash(data).hex()
    assert body["entry"]["type"] == "record.anchored" and "client" not in body["entry"]
    opened = await node.get_json(
        f"/api/v1/ledger/entries/{size - 1}/opening", headers=await node.officer_headers()
    )
    assert opened["fields"]["client"] == "t" and opened["entry"].encode() == data

    response = await node.client.get(f"/api/v1/ledger/receipts/{size - 1}")
    assert response.status == 200 and response.content_type == "text/plain"
    text = await response.text()
    checkpoint = verify_receipt(parse_receipt(text), data, key.name, key.public_key)
    assert checkpoint.size >= size  # the officer's opening above is itself ledgered

    (tmp_path / "receipt.tlog-proof").write_text(text)
    (tmp_path / "entry.json").write_bytes(data)
    (tmp_path / "log.vkey").write_text(node.ledger.signer.verifier_key + "\n")
    (tmp_path / "other.json").write_bytes(await node.ledger.entry(0))
    receipt = str(tmp_path / "receipt.tlog-proof")
    vkey = str(tmp_path / "log.vkey")
    result = run_cli(
        ["verify", receipt, "--key", vkey, "--entry", str(tmp_path / "entry.json")], tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"receipt OK: entry {size - 1} of {key.origin}")
    result = run_cli(
        ["verify", receipt, "--key", vkey, "--entry", str(tmp_path / "other.json")], tmp_path
    )
    assert result.returncode == 1 and result.stdout.startswith("receipt INVALID: ")
    assert len(result.stdout.splitlines()) == 1 and not result.stderr


BAD_REQUESTS = [
    ("/api/v1/ledger/entries/-1", 400, "invalid_parameter", "'index'"),
    ("/api/v1/ledger/entries/01", 400, "invalid_parameter", "'index'"),
    ("/api/v1/ledger/entries/99999999999999999999", 400, "invalid_parameter", "'index'"),
    ("/api/v1/ledger/entries/1000000", 404, "not_found", "index 1000000"),
    ("/api/v1/ledger/receipts/x", 400, "invalid_parameter", "'index'"),
    ("/api/v1/ledger/receipts/1000000", 404, "not_found", "1000000"),
    ("/api/v1/ledger/proof/inclusion", 400, "invalid_parameter", "'index' and 'leaf_hash'"),
    (
        "/api/v1/ledger/proof/inclusion?index=1&leaf_hash=" + "0" * 64,
        400,
        "invalid_parameter",
        "exactly one",
    ),
    ("/api/v1/ledger/proof/inclusion?index=abc", 400, "invalid_parameter", "'index'"),
    (
        "/api/v1/ledger/proof/inclusion?index=1&index=2",
        400,
        "invalid_parameter",
        "'index' is given 2 times",
    ),
    ("/api/v1/ledger/proof/inclusion?index=1&size=-3", 400, "invalid_parameter", "'size'"),
    ("/api/v1/ledger/proof/inclusion?index=1&size=1000000", 400, "out_of_range", "'size'"),
    ("/api/v1/ledger/proof/inclusion?index=5&size=5", 400, "out_of_range", "'index'"),
    ("/api/v1/ledger/proof/inclusion?index=0&size=0", 400, "out_of_range", "'index'"),
    ("/api/v1/ledger/proof/inclusion?leaf_hash=zz", 400, "invalid_parameter", "'leaf_hash'"),
    ("/api/v1/ledger/proof/inclusion?leaf_hash=" + "ab" * 32, 404, "not_found", "leaf hash"),
    ("/api/v1/ledger/proof/consistency", 400, "invalid_parameter", "'old' is required"),
    ("/api/v1/ledger/proof/consistency?old=1.5", 400, "invalid_parameter", "'old'"),
    ("/api/v1/ledger/proof/consistency?old=3&new=2", 400, "out_of_range", "'old'"),
    ("/api/v1/ledger/proof/consistency?old=3&new=1000000", 400, "out_of_range", "'new'"),
    ("/api/v1/ledger/proof/consistency?old=9223372036854775808", 400, "invalid_parameter", "'old'"),
]


async def test_bad_parameters_answer_json_errors(make_node: MakeNode) -> None:
    node = await make_node()
    await node.append(10)
    officer = await node.officer_headers()  # entries need one; the rest ignores it
    for url, status, code, fragment in BAD_REQUESTS:
        body = await node.get_json(url, status, officer)
        assert body["error"] == code, (url, body)
        assert fragment in body["message"], (url, body)


@pytest.mark.parametrize("url", ["/api/v1/ledger/proof/consistency?old=0", "/api/v1/ledger/key"])
async def test_edges_answer(make_node: MakeNode, url: str) -> None:
    node = await make_node()
    await node.get_json(url)


async def test_json_reads_send_only_what_their_documented_models_say(make_node: MakeNode) -> None:
    """Each ledger JSON read is built from the model OpenAPI names for it, so a client
    generated from the document knows every field (the key's signature type was missing)."""
    node = await make_node()
    await node.append(3)
    officer = await node.officer_headers()
    document = await node.get_json("/api/openapi.json")
    schemas = document["components"]["schemas"]
    reads = {
        "/api/v1/ledger/key": "/api/v1/ledger/key",
        "/api/v1/ledger/checkpoint": "/api/v1/ledger/checkpoint",
        "/api/v1/ledger/entries/{index}": "/api/v1/ledger/entries/1",
        "/api/v1/ledger/proof/inclusion": "/api/v1/ledger/proof/inclusion?index=1",
        "/api/v1/ledger/proof/consistency": "/api/v1/ledger/proof/consistency?old=1",
    }
    for path, url in reads.items():
        ok = document["paths"][path]["get"]["responses"]["200"]
        ref = ok["content"]["application/json"]["schema"]["$ref"]
        schema = schemas[ref.rsplit("/", 1)[1]]
        served = await node.get_json(url, 200, officer)
        assert set(served) <= set(schema["properties"]), (
            path,
            set(served) - set(schema["properties"]),
        )
        assert set(schema.get("required", [])) <= set(served), path
