"""A mirroring witness: a byte-for-byte copy of the log's tiles, and tampering found in it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gateway.tlog.tiles import entry_bundles_for_size, tiles_for_size
from gateway.tlog.witness_protocol import origin_hash
from tests.cluster import (
    Process,
    add_anchor_client,
    anchor_many,
    make_gateway,
    make_witnesses,
    stopped_at_exit,
    wait_for,
    witness_log,
    witnesses_setting,
)
from tests.nodes import http_get, run_cli

ENTRIES = 700  # three level-0 tiles (two full, one partial) and a partial level-1 tile


def mirror_view(witness: Process, origin: str) -> dict[str, Any]:
    view: dict[str, Any] = next(
        log["mirror"] for log in witness.get_json("/status")["logs"] if log["origin"] == origin
    )
    return view


@pytest.mark.slow
def test_mirror_matches_the_log_byte_for_byte_and_finds_a_changed_byte(tmp_path: Path) -> None:
    [witness] = make_witnesses(tmp_path, 1, {"SEKISHO_WITNESS_MIRROR_SECONDS": "1"})
    witness.start()
    gateway = make_gateway(
        tmp_path, "gateway", {"SEKISHO_LEDGER_WITNESSES": witnesses_setting([witness])}
    )
    token = add_anchor_client(gateway)
    with stopped_at_exit(gateway, witness):
        gateway.start()
        origin, vkey = witness_log([witness], gateway, mirror=True)
        links = asyncio.run(anchor_many(gateway.url, token, ENTRIES, "m", wait=True))
        size = max(int(link["index"]) for link in links) + 1
        assert int(gateway.get_json("/api/v1/ledger/checkpoint")["size"]) == size
        wait_for(lambda: mirror_view(witness, origin)["size"] == size, 60, "the mirror")
        view = mirror_view(witness, origin)
        assert view["error"] is None and view["halted"] is False
        mirror = witness.url + view["path"].removesuffix("/")  # .../mirror/<hash>/ledger
        log = gateway.url + "/ledger"
        assert view["path"] == f"/mirror/{origin_hash(origin)}/ledger/"

        # Every tile and entry bundle of the tree, byte for byte.
        paths = [t.path for t in tiles_for_size(size)] + [
            b.path for b in entry_bundles_for_size(size)
        ]
        assert len(paths) >= 7
        for path in paths:
            log_status, log_body = http_get(f"{log}/{path}")
            mirror_status, mirror_body = http_get(f"{mirror}/{path}")
            assert (log_status, mirror_status) == (200, 200), path
            assert log_body == mirror_body, path
        mirror_note = http_get(f"{mirror}/checkpoint")[1].decode()
        log_root = gateway.get_json("/api/v1/ledger/checkpoint")["root"]
        assert mirror_note.split("\n")[:3] == [origin, str(size), log_root]
        assert http_get(f"{mirror}/tile/0/999")[0] == 404

        # Officers or a replacement node can verify the copy remotely...
        base = witness.url + view["path"].removesuffix("/ledger/")
        done = run_cli(["ledger", "verify", "--url", base, "--key", vkey], tmp_path / "reader")
        assert done.returncode == 0, done.stdout + done.stderr
        # ...and the witness verifies its own store.
        done = witness.cli("witness", "verify-mirror", origin)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"mirror OK: {size} entries" in done.stdout

        # One byte changed in the mirror's store is reported, with its entry index.
        database = witness.data_dir / "witness.sqlite3"
        with sqlite3.connect(database) as db:
            (data,) = db.execute("SELECT data FROM mirror_leaf WHERE idx = 123").fetchone()
            changed = bytes(data[:10]) + bytes([data[10] ^ 1]) + bytes(data[11:])
            db.execute("UPDATE mirror_leaf SET data = ? WHERE idx = 123", (changed,))
        done = witness.cli("witness", "verify-mirror", origin)
        assert done.returncode == 1
        assert "mirror TAMPERED: leaf 123" in done.stdout
        done = run_cli(["ledger", "verify", "--url", base, "--key", vkey], tmp_path / "reader")
        assert done.returncode == 1
        assert "123" in done.stdout
