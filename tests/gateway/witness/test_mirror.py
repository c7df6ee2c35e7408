"""A mirroring witness: a byte-for-byte copy of the log's tiles, and tampering found in it.

The mirror reads entries with a ``ledger-read`` credential of its own and
serves its copy's entry bundles to registered readers only.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gateway.tlog.tiles import entry_bundles_for_size, tiles_for_size
from gateway.tlog.witness_protocol import origin_hash
from tests.cluster import (
    Process,
    add_anchor_client,
    add_ledger_reader,
    anchor_many,
    make_gateway,
    make_witnesses,
    stopped_at_exit,
    witness_log,
    witnesses_setting,
)
from tests.nodes import http_get, run_cli, wait_for

ENTRIES = 700  # three level-0 tiles (two full, one partial) and a partial level-1 tile


def mirror_view(witness: Process, origin: str) -> dict[str, Any]:
    view: dict[str, Any] = next(
        log["mirror"] for log in witness.get_json("/status")["logs"] if log["origin"] == origin
    )
    return view


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.slow
def test_mirror_matches_the_log_byte_for_byte_and_finds_a_changed_byte(tmp_path: Path) -> None:
    readers_file = tmp_path / "mirror-readers"
    officer_token = "sks_an-officer-of-the-witness-base"
    readers_file.write_text(f"# officers\n{hashlib.sha256(officer_token.encode()).hexdigest()}\n")
    [witness] = make_witnesses(
        tmp_path,
        1,
        {
            "SEKISHO_WITNESS_MIRROR_SECONDS": "1",
            "SEKISHO_WITNESS_MIRROR_READERS_FILE": str(readers_file),
        },
    )
    witness.start()
    gateway = make_gateway(
        tmp_path, "gateway", {"SEKISHO_LEDGER_WITNESSES": witnesses_setting([witness])}
    )
    token = add_anchor_client(gateway)
    token_file = tmp_path / "mirror.token"
    mirror_token = add_ledger_reader(gateway, token_file)
    with stopped_at_exit(gateway, witness):
        gateway.start()
        # Without a credential the mirror gets no entries, and says why.
        origin, vkey = witness_log([witness], gateway, mirror=True)
        links = asyncio.run(anchor_many(gateway.url, token, ENTRIES, "m", wait=True))
        size = max(int(link["index"]) for link in links) + 1
        assert int(gateway.get_json("/api/v1/ledger/checkpoint")["size"]) == size
        wait_for(lambda: mirror_view(witness, origin)["error"], what="the mirror's error")
        error = mirror_view(witness, origin)["error"]
        assert "HTTP 401" in error and "ledger-read" in error and "--token-file" in error
        assert mirror_view(witness, origin)["size"] == 0
        assert mirror_view(witness, origin)["credential"] == "none"

        # With its ledger-read token (read from a file) it replicates the whole log.
        witness_log([witness], gateway, mirror=True, token_file=token_file)
        wait_for(lambda: mirror_view(witness, origin)["size"] == size, 60, "the mirror")
        view = mirror_view(witness, origin)
        assert view["error"] is None and view["halted"] is False
        assert view["credential"] == "token_file" and str(token_file) not in str(view)
        mirror = witness.url + view["path"].removesuffix("/")  # .../mirror/<hash>/ledger
        log = gateway.url + "/ledger"
        assert view["path"] == f"/mirror/{origin_hash(origin)}/ledger/"

        # Every tile and entry bundle of the tree, byte for byte.
        paths = [t.path for t in tiles_for_size(size)] + [
            b.path for b in entry_bundles_for_size(size)
        ]
        assert len(paths) >= 7
        for path in paths:
            log_status, log_body = http_get(f"{log}/{path}", headers=bearer(mirror_token))
            mirror_status, mirror_body = http_get(f"{mirror}/{path}", headers=bearer(officer_token))
            assert (log_status, mirror_status) == (200, 200), path
            assert log_body == mirror_body, path
        # Neither the log nor the mirror gives entries to anyone else; hash tiles stay public.
        for path in (b.path for b in entry_bundles_for_size(size)):
            assert http_get(f"{log}/{path}")[0] == 401, path
            assert http_get(f"{mirror}/{path}")[0] == 401, path
            assert http_get(f"{mirror}/{path}", headers=bearer(token))[0] == 403, path
        for path in (t.path for t in tiles_for_size(size)):
            assert http_get(f"{mirror}/{path}")[0] == 200, path
        mirror_note = http_get(f"{mirror}/checkpoint")[1].decode()
        log_root = gateway.get_json("/api/v1/ledger/checkpoint")["root"]
        assert mirror_note.split("\n")[:3] == [origin, str(size), log_root]
        assert http_get(f"{mirror}/tile/0/999")[0] == 404

        # Officers or a replacement node can verify the copy remotely...
        base = witness.url + view["path"].removesuffix("/ledger/")
        reader = {"SEKISHO_LEDGER_TOKEN": officer_token}
        done = run_cli(["ledger", "verify", "--url", base, "--key", vkey], tmp_path / "reader")
        assert done.returncode == 1 and "HTTP 401" in done.stderr
        done = run_cli(
            ["ledger", "verify", "--url", base, "--key", vkey], tmp_path / "reader", reader
        )
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
        done = run_cli(
            ["ledger", "verify", "--url", base, "--key", vkey], tmp_path / "reader", reader
        )
        assert done.returncode == 1
        assert "123" in done.stdout
