"""``sekisho users`` as an operator uses it, against an initialised data directory."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.auth.identity import Unauthenticated
from gateway.auth.models import SignInThrottle
from gateway.auth.throttle import millis
from gateway.auth.tokens import authenticate_bearer, identity_cache
from gateway.config import load_settings
from gateway.db.setup import close_database, open_database
from tests.gateway.ledger_rows import ledger_entries, raw_ledger_bytes
from tests.gateway.test_cli import assert_one_line_error
from tests.nodes import run_cli

pytestmark = pytest.mark.slow  # subprocesses or many cases: `./dev test -m "not slow"` skips it


@pytest.fixture(scope="module")
def shared_node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One initialised node for tests that only read or fail."""
    data_dir = tmp_path_factory.mktemp("users") / "var"
    assert run_cli(["init"], data_dir).returncode == 0
    return data_dir


@pytest.fixture
def node_db(data_dir: Path) -> Path:
    """An initialised node; the test opens its database between CLI calls."""
    assert run_cli(["init"], data_dir).returncode == 0
    return data_dir


async def entries_for(data_dir: Path, username: str) -> list[dict[str, object]]:
    settings = load_settings(environ={"SEKISHO_DATA": str(data_dir)})
    await open_database(settings.database_url)
    try:
        return await ledger_entries("principal.changed", principal=username)
    finally:
        await close_database()


def ok(args: list[str], data_dir: Path) -> str:
    result = run_cli(args, data_dir)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_users_round_trip_with_one_entry_per_change(node_db: Path) -> None:
    out = ok(
        [
            "users",
            "add",
            "carol",
            "--level",
            "secret",
            "--compartments",
            "logistics, alpha",
            "--nationality",
            "usa",
            "--roles",
            "reader,uploader",
            "--name",
            "Carol Kestrel",
        ],
        node_db,
    )
    assert "created user 'carol': SECRET" in out
    password = out.split("one-time password for 'carol': ")[1].split()[0]
    assert len(password) == 20
    assert len(await entries_for(node_db, "carol")) == 1

    listed = json.loads(ok(["users", "list", "--json"], node_db))
    carol = next(u for u in listed if u["username"] == "carol")
    assert carol["compartments"] == ["ALPHA", "LOGISTICS"] and carol["nationality"] == "USA"
    assert carol["display_name"] == "Carol Kestrel" and carol["must_change_password"] is True
    table = ok(["users", "list"], node_db)
    assert "carol" in table and password not in table

    assert "(level, roles)" in ok(
        ["users", "set", "carol", "--level", "TOP SECRET", "--roles", "reader"], node_db
    )
    assert "nothing changed" in ok(["users", "set", "carol", "--level", "top secret"], node_db)
    assert "disabled" in ok(["users", "disable", "carol"], node_db)
    assert "already disabled" in ok(["users", "disable", "carol"], node_db)
    assert "enabled" in ok(["users", "enable", "carol"], node_db)

    issued = ok(["users", "token", "carol", "--label", "laptop"], node_db).splitlines()
    token = issued[-1]
    prefix = token[:12]
    assert f"prefix {prefix}" in issued[0]
    assert prefix in ok(["users", "tokens", "carol"], node_db)
    assert token not in ok(["users", "tokens", "carol"], node_db)

    settings = load_settings(environ={"SEKISHO_DATA": str(node_db)})
    await open_database(settings.database_url)
    try:
        assert (await authenticate_bearer(token)).name == "carol"
    finally:
        await close_database()
    assert f"revoked token {prefix} of 'carol'" in ok(["users", "revoke-token", prefix], node_db)
    assert "already revoked" in ok(["users", "revoke-token", prefix], node_db)

    identity_cache.clear()  # this process cached carol's identity; the CLI is another process
    await open_database(settings.database_url)
    try:
        with pytest.raises(Unauthenticated):
            await authenticate_bearer(token)
        entries = await ledger_entries("principal.changed", principal="carol")
        raw = await raw_ledger_bytes()
    finally:
        await close_database()
    assert [e["change"] for e in entries] == [
        "created",
        "updated",
        "disabled",
        "enabled",
        "token_issued",
        "token_revoked",
    ]
    assert all(str(e["actor"]).startswith("operator:") and e["source"] == "cli" for e in entries)
    assert entries[1]["fields"] == ["level", "roles"] and entries[1]["level"] == "TOP SECRET"
    for secret in (password, token, "Kestrel", "LOGISTICS", "USA"):
        assert secret.encode() not in raw


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["users", "add", "Carol", "--level", "SECRET"], "invalid username 'Carol'"),
        (["users", "add", "carol", "--level", "COSMIC"], "unknown classification level 'COSMIC'"),
        (["users", "add", "carol", "--level", "SECRET", "--nationality", "US"], "is USA"),
        (["users", "add", "carol", "--level", "SECRET", "--nationality", "XXX"], "not an ISO"),
        (["users", "add", "carol", "--level", "SECRET", "--roles", "root"], "unknown role(s) root"),
        (
            ["users", "add", "carol", "--level", "SECRET", "--compartments", "A,a"],
            "listed twice",
        ),
        (["users", "add", "admin", "--level", "SECRET"], "user 'admin' already exists"),
        (["users", "set", "nobody", "--level", "SECRET"], "no user 'nobody'"),
        (["users", "disable", "admin"], "last enabled administrator"),
        (["users", "set", "admin", "--roles", "reader"], "last enabled administrator"),
        (["users", "token", "nobody"], "no user 'nobody'"),
        (["users", "revoke-token", "sks_nothere0"], "no personal token"),
    ],
)
def test_users_errors_are_one_line(shared_node: Path, args: list[str], fragment: str) -> None:
    result = run_cli(args, shared_node)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, fragment)


def test_a_write_while_another_process_keeps_the_database_is_one_line(shared_node: Path) -> None:
    """A stopped or stuck gateway holding SQLite's writer lock: an error after the busy timeout."""
    lock_file = shared_node / "sekisho.sqlite3-writer"
    with subprocess.Popen(
        ["flock", "--exclusive", str(lock_file), "sh", "-c", "echo held; read line"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        result = run_cli(["users", "add", "dave", "--level", "SECRET"], shared_node, timeout=60)
        holder.communicate("go\n")
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "the database is busy, try again: database is locked")


def test_users_before_init_says_where_it_looked(data_dir: Path) -> None:
    result = run_cli(["users", "list"], data_dir)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, f"no initialised node in data dir {data_dir.resolve()}")
    assert "SEKISHO_DATA" in result.stderr
    assert "--config" in result.stderr


async def test_users_unlock_ends_a_lock_out_and_is_ledgered(node_db: Path) -> None:
    ok(["users", "add", "dave", "--level", "SECRET"], node_db)
    settings = load_settings(environ={"SEKISHO_DATA": str(node_db)})
    await open_database(settings.database_url)
    try:
        until = millis(datetime.now(UTC) + timedelta(minutes=10))
        await SignInThrottle.create(
            scope="account", subject="dave", failures=5, window_start=1, locked_until=until
        )
    finally:
        await close_database()
    assert ok(["users", "unlock", "dave"], node_db).strip() == "user 'dave' unlocked"
    assert ok(["users", "unlock", "dave"], node_db).strip() == "user 'dave' was not locked out"
    changes = [e["change"] for e in await entries_for(node_db, "dave")]
    assert changes == ["created", "unlocked"]
    failed = run_cli(["users", "unlock", "nobody"], node_db)
    assert failed.returncode != 0
    assert_one_line_error(failed.stderr, "no user 'nobody'")
