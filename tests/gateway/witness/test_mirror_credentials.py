"""A mirror's credential: a token file's path stored (never the token), readers of its copy."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.errors import BadRequest, Forbidden, SekishoError, Unavailable
from gateway.ledger.reader_token import read_token_file, reader_token
from gateway.tlog.note import verifier_key
from gateway.witness.mirror_readers import reader_digests, require_mirror_reader
from tests.nodes import run_cli

ORIGIN = "ledger.base-a.example/sekisho"
TOKEN = "sks_" + "m" * 43


def log_vkey() -> str:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    return verifier_key(ORIGIN, public.public_bytes(Encoding.Raw, PublicFormat.Raw))


def stored_token_file(data_dir: Path) -> str:
    with sqlite3.connect(data_dir / "witness.sqlite3") as db:
        (path,) = db.execute(
            "SELECT token_file FROM witness_log WHERE origin = ?", (ORIGIN,)
        ).fetchone()
    return str(path)


@pytest.mark.slow
def test_add_log_stores_the_token_files_path_and_upgrades_an_older_database(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "witness"
    env = {"SEKISHO_WITNESS_NAME": "w.test"}
    assert run_cli(["witness", "init"], data_dir, env).returncode == 0
    with sqlite3.connect(data_dir / "witness.sqlite3") as db:  # as an older version made it
        db.execute("ALTER TABLE witness_log DROP COLUMN token_file")
    vkey = log_vkey()
    add = ["witness", "add-log", ORIGIN, vkey, "--url", "http://127.0.0.1:9", "--mirror"]

    missing = run_cli([*add, "--token-file", str(tmp_path / "absent")], data_dir, env)
    assert missing.returncode == 1
    assert missing.stderr.startswith("sekisho: error: cannot read token file ")

    token_file = tmp_path / "mirror.token"
    token_file.write_text(TOKEN + "\n")
    added = run_cli([*add, "--token-file", str(token_file)], data_dir, env)
    assert added.returncode == 0, added.stderr
    assert stored_token_file(data_dir) == str(token_file.resolve())
    assert TOKEN.encode() not in (data_dir / "witness.sqlite3").read_bytes()

    again = run_cli(add, data_dir, env)  # re-running without --token-file keeps it
    assert again.returncode == 0, again.stderr
    assert stored_token_file(data_dir) == str(token_file.resolve())


def test_token_files_hold_exactly_one_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = tmp_path / "good"
    good.write_text(f"  {TOKEN}\n")
    assert read_token_file(str(good)) == TOKEN
    for text in ("", "\n", "two tokens\n"):
        bad = tmp_path / "bad"
        bad.write_text(text)
        with pytest.raises(BadRequest, match="exactly one token"):
            read_token_file(str(bad))
    monkeypatch.setenv("SEKISHO_TEST_TOKEN", TOKEN)
    assert reader_token(None, "SEKISHO_TEST_TOKEN") == TOKEN
    assert reader_token(str(good), "UNSET_VARIABLE") == TOKEN  # the file wins
    monkeypatch.delenv("SEKISHO_TEST_TOKEN")
    assert reader_token(None, "SEKISHO_TEST_TOKEN") is None


def test_mirror_readers_are_token_digests(tmp_path: Path) -> None:
    readers = tmp_path / "readers"
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    readers.write_text(f"# officers of base D\n{digest.upper()}  # audrey\n\n")
    digests = reader_digests(str(readers))
    assert digests == {digest}
    require_mirror_reader(f"Bearer {TOKEN}", digests)
    with pytest.raises(SekishoError) as anonymous:
        require_mirror_reader(None, digests)
    assert anonymous.value.status == 401
    with pytest.raises(Forbidden):
        require_mirror_reader("Bearer sks_someone-else", digests)
    with pytest.raises(Forbidden):
        require_mirror_reader(f"Bearer {TOKEN}", reader_digests(""))  # no file: nobody
    readers.write_text(TOKEN + "\n")  # a token instead of its digest is refused, not trusted
    with pytest.raises(Unavailable):
        reader_digests(str(readers))
