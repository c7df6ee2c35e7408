"""``sekisho ledger verify|checkpoint`` and ``sekisho verify`` as an operator runs them."""

from __future__ import annotations

import io
import json
import re
import shutil
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.cli.progress import ProgressBar
from gateway.ledger.entries import open_entry
from gateway.tlog.note import verifier_key
from tests.nodes import SEKISHO, http_get, node_env, run_cli, running_node, wait_for

pytestmark = pytest.mark.slow  # subprocesses or many cases: `./dev test -m "not slow"` skips it

APPENDED = 300


def tree_size_on_disk(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "sekisho.sqlite3", timeout=10) as db:
        (size,) = db.execute("SELECT MAX(size) FROM ledger_checkpoint").fetchone()
    return int(size)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A node with a few hundred ledger entries, built once and copied per test."""
    root = tmp_path_factory.mktemp("ledger-node")
    data_dir = root / "var"
    assert run_cli(["init"], data_dir).returncode == 0
    appender = subprocess.run(
        [SEKISHO[0], "-m", "tests.ledger_appender", str(APPENDED), str(root / "ack.txt")],
        env=node_env(data_dir),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert appender.returncode == 0, appender.stderr.decode()[-2000:]
    assert tree_size_on_disk(data_dir) > APPENDED  # init ledgers its keys and accounts too
    return data_dir


@pytest.fixture
def node_dir(template: Path, tmp_path: Path) -> Path:
    """A private copy of the template node (database, token and all)."""
    data_dir = tmp_path / "var"
    shutil.copytree(template, data_dir)
    conf = data_dir / "hsm" / "softhsm2.conf"
    conf.write_text(conf.read_text().replace(str(template), str(data_dir)))
    return data_dir


def update(data_dir: Path, query: str, *values: object) -> None:
    with sqlite3.connect(data_dir / "sekisho.sqlite3", timeout=10) as db:
        assert db.execute(query, values).rowcount == 1


def flip_leaf(data_dir: Path, index: int) -> None:
    with sqlite3.connect(data_dir / "sekisho.sqlite3", timeout=10) as db:
        (data,) = db.execute("SELECT data FROM ledger_leaf WHERE idx = ?", (index,)).fetchone()
    update(data_dir, "UPDATE ledger_leaf SET data = ? WHERE idx = ?", data[:-2] + b"X}", index)


def flip_node(data_dir: Path, level: int, index: int) -> None:
    key = (level << 56) | index
    update(data_dir, "UPDATE ledger_node SET hash = zeroblob(32) WHERE key = ?", key)


def flip_checkpoint(data_dir: Path, size: int) -> None:
    with sqlite3.connect(data_dir / "sekisho.sqlite3", timeout=10) as db:
        (note,) = db.execute(
            "SELECT note FROM ledger_checkpoint WHERE size = ?", (size,)
        ).fetchone()
    origin, size_line, root, rest = note.split("\n", 3)
    root = ("B" if root[0] != "B" else "C") + root[1:]
    tampered = "\n".join([origin, size_line, root, rest])
    update(data_dir, "UPDATE ledger_checkpoint SET note = ? WHERE size = ?", tampered, size)


def first_opened(data_dir: Path) -> tuple[int, str, dict[str, object]]:
    """The first entry with a stored opening: index, leaf hash, opening."""
    with sqlite3.connect(data_dir / "sekisho.sqlite3", timeout=10) as db:
        index, digest, opening = db.execute(
            "SELECT idx, leaf_hash, opening FROM ledger_leaf "
            "WHERE opening IS NOT NULL ORDER BY idx LIMIT 1"
        ).fetchone()
    return int(index), str(digest), json.loads(opening)


def change_opening(data_dir: Path) -> int:
    """Rewrite one field of the first opening, as a database writer could; its index."""
    index, digest, opening = first_opened(data_dir)
    fields = opening["fields"]
    assert isinstance(fields, dict)
    fields["actor"] = "operator:someone-else"
    update(
        data_dir,
        "UPDATE ledger_leaf SET opening = ? WHERE leaf_hash = ?",
        json.dumps(opening).encode(),
        digest,
    )
    return index


def drop_opening(data_dir: Path) -> int:
    index, digest, _ = first_opened(data_dir)
    update(data_dir, "UPDATE ledger_leaf SET opening = NULL WHERE leaf_hash = ?", digest)
    return index


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (change_opening, "entry {index}: the opening's field commitments do not match the entry"),
        (drop_opening, "entry {index}: its opening is missing"),
    ],
    ids=["changed", "dropped"],
)
def test_a_changed_or_dropped_opening_is_found(
    node_dir: Path, tamper: Callable[[Path], int], message: str
) -> None:
    index = tamper(node_dir)
    result = run_cli(["ledger", "verify"], node_dir)
    assert result.returncode == 1, result.stdout + result.stderr
    assert one_line(result.stdout) == f"ledger TAMPERED: {message.format(index=index)}"


def one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_intact_ledger_verifies_and_prints_its_checkpoint(node_dir: Path) -> None:
    size = tree_size_on_disk(node_dir)
    result = run_cli(["ledger", "verify"], node_dir)
    assert result.returncode == 0, result.stderr
    assert one_line(result.stdout).startswith(f"ledger OK: {size} entries, ")
    assert re.search(r", (1 checkpoint|\d+ checkpoints) verified$", result.stdout.rstrip())
    assert result.stderr == ""  # no progress bar when stderr is not a terminal

    printed = run_cli(["ledger", "checkpoint"], node_dir)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.split("\n")[1] == str(size)
    assert "\n\n\u2014 " in printed.stdout


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (
            lambda d: flip_leaf(d, 200),
            "leaf 200: stored data does not hash to the stored leaf hash",
        ),
        (
            lambda d: flip_node(d, 1, 50),
            "node at level 1, index 50 (entries 100..101): stored hash does not match",
        ),
        (lambda d: flip_node(d, 0, 7), "leaf 7: stored data does not hash"),
        (
            lambda d: flip_checkpoint(d, tree_size_on_disk(d)),
            "checkpoint at size {size}: signature invalid",
        ),
    ],
    ids=["leaf", "node", "leaf-hash", "checkpoint"],
)
def test_tampered_ledger_names_the_index(
    node_dir: Path, tamper: Callable[[Path], None], message: str
) -> None:
    size = tree_size_on_disk(node_dir)
    tamper(node_dir)
    result = run_cli(["ledger", "verify"], node_dir)
    assert result.returncode == 1, result.stderr
    expected = message.format(size=size)
    assert one_line(result.stdout).startswith(f"ledger TAMPERED: {expected}")


def readiness(base: str, token: str) -> dict[str, object]:
    """The auditor's /readyz check as ``token`` (a metrics scraper's) reads it."""
    status, body = http_get(base + "/readyz", headers={"Authorization": f"Bearer {token}"})
    assert status == 200, body  # tampering is reported, the node stays ready
    check: dict[str, object] = json.loads(body)["checks"]["ledger"]
    return check


def tree_size(base: str) -> int:
    """The published checkpoint's size; 0 while a node that just started has none yet."""
    status, body = http_get(base + "/api/v1/ledger/checkpoint")
    if status == 503 and b"no checkpoint yet" in body:
        return 0
    assert status == 200, body
    return int(json.loads(body)["size"])


def add_client(data_dir: Path, name: str, scopes: str) -> str:
    """``sekisho clients add NAME --scopes SCOPES``: the bearer token it prints once."""
    result = run_cli(["clients", "add", name, "--scopes", scopes], data_dir)
    assert result.returncode == 0, result.stderr
    return result.stdout.rsplit("store it now): ", 1)[1].strip()


def opened_on_disk(data_dir: Path, index: int) -> dict[str, Any]:
    """An entry opened with the opening the node keeps (as officers read it)."""
    with sqlite3.connect(data_dir / "sekisho.sqlite3", timeout=10) as db:
        data, opening = db.execute(
            "SELECT data, opening FROM ledger_leaf WHERE idx = ?", (index,)
        ).fetchone()
    return open_entry(bytes(data), None if opening is None else bytes(opening))


def get_entry(base: str, index: int, token: str) -> dict[str, object]:
    request = urllib.request.Request(  # noqa: S310 - loopback test URL
        f"{base}/api/v1/ledger/entries/{index}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        entry: dict[str, object] = json.loads(response.read())["entry"]
    return entry


def test_remote_verify_and_the_auditor_of_a_running_node(node_dir: Path, tmp_path: Path) -> None:
    token = add_client(node_dir, "auditor-box", "ledger-read")  # one entry, queued
    scraper = add_client(node_dir, "prometheus", "metrics")  # another: /readyz details
    entries = tree_size_on_disk(node_dir) + 2
    fast_audits = {"SEKISHO_LEDGER_AUDIT_SECONDS": "1", "SEKISHO_LEDGER_AUDIT_FULL_SECONDS": "0"}
    reader = {"SEKISHO_LEDGER_TOKEN": token}
    with running_node(node_dir, fast_audits) as base:
        wait_for(lambda: tree_size(base) == entries)
        vkey = json.loads(http_get(base + "/api/v1/ledger/key")[1])["vkey"]
        key_file = tmp_path / "log.vkey"
        key_file.write_text(vkey + "\n")
        pinned = run_cli(
            ["ledger", "verify", "--url", base, "--key", str(key_file)], node_dir, reader
        )
        assert pinned.returncode == 0, pinned.stderr
        assert one_line(pinned.stdout) == f"ledger OK: {entries} entries, 1 checkpoint verified"
        assert pinned.stderr == ""
        unpinned = run_cli(["ledger", "verify", "--url", base], node_dir, reader)
        assert unpinned.returncode == 0, unpinned.stderr
        assert "warning: no --key given" in one_line(unpinned.stderr)
        elsewhere = run_cli(["ledger", "verify", "--url", base + "/nothing"], node_dir, reader)
        assert elsewhere.returncode == 1
        said = one_line(elsewhere.stderr)
        assert "answered HTTP" in said and f"{base}/nothing is not a Sekisho ledger" in said
        assert "did not answer JSON" not in said
        origin = json.loads(http_get(base + "/api/v1/ledger/key")[1])["origin"]
        wrong = run_cli(
            ["ledger", "verify", "--url", base, "--key", other_vkey(origin)], node_dir, reader
        )
        assert wrong.returncode == 1
        assert f"checkpoint at size {entries}: " in one_line(wrong.stdout)

        wait_for(lambda: readiness(base, scraper)["audit"] == "intact")
        assert readiness(base, scraper)["verified_size"] == entries

        flip_leaf(node_dir, 77)
        tampered = run_cli(["ledger", "verify", "--url", base, "--key", vkey], node_dir, reader)
        assert tampered.returncode == 1
        assert one_line(tampered.stdout).startswith("ledger TAMPERED: leaf 77: stored data")

        wait_for(lambda: readiness(base, scraper)["audit"] == "tampered")
        check = readiness(base, scraper)
        assert check["finding_index"] == 77 and str(check["finding"]).startswith("leaf 77:")
        metrics = http_get(base + "/metrics")[1].decode()
        assert "\nsekisho_ledger_audit_ok 0.0\n" in metrics
        wait_for(lambda: tree_size(base) == entries + 1)
        assert get_entry(base, entries, token)["type"] == "alert.raised"  # a mirror sees that
        alert = opened_on_disk(node_dir, entries)  # officers see the rest
        assert alert["type"] == "alert.raised" and alert["index"] == 77
        time.sleep(2.5)  # more audits run; the finding is not alerted again
        assert tree_size(base) == entries + 1


def test_remote_verify_needs_a_credential_for_entries(node_dir: Path, tmp_path: Path) -> None:
    mirror = add_client(node_dir, "mirror-d", "ledger-read")
    signer = add_client(node_dir, "anchoring-box", "anchor")
    token_file = tmp_path / "reader.token"
    token_file.write_text(mirror + "\n")
    token_file.chmod(0o600)
    with running_node(node_dir) as base:
        vkey = json.loads(http_get(base + "/api/v1/ledger/key")[1])["vkey"]
        verify = ["ledger", "verify", "--url", base, "--key", vkey]

        anonymous = run_cli(verify, node_dir)
        assert anonymous.returncode == 1 and anonymous.stdout == ""
        error = one_line(anonymous.stderr)
        assert error.startswith("sekisho: error: ") and "answered HTTP 401" in error
        assert "none was sent" in error and "SEKISHO_LEDGER_TOKEN" in error
        assert "TAMPERED" not in error

        refused = run_cli(verify, node_dir, {"SEKISHO_LEDGER_TOKEN": signer})
        assert refused.returncode == 1
        error = one_line(refused.stderr)
        assert "answered HTTP 403" in error and "refused the credential" in error
        assert signer not in error  # a token is never echoed

        from_file = run_cli([*verify, "--token-file", str(token_file)], node_dir)
        assert from_file.returncode == 0, from_file.stderr
        assert one_line(from_file.stdout).startswith("ledger OK: ")
        from_env = run_cli(verify, node_dir, {"SEKISHO_LEDGER_TOKEN": mirror})
        assert from_env.returncode == 0, from_env.stderr

        missing = run_cli([*verify, "--token-file", str(tmp_path / "absent")], node_dir)
        assert missing.returncode == 1
        assert "cannot read token file" in one_line(missing.stderr)


def other_vkey(origin: str) -> str:
    """A verifier key with the log's name but another Ed25519 key."""
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    return verifier_key(origin, public.public_bytes(Encoding.Raw, PublicFormat.Raw))


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_on_a_terminal_only() -> None:
    terminal = Terminal()
    bar = ProgressBar(terminal, "verifying ledger", width=10)
    for done in (0, 250, 250, 1000):
        bar.update(done, 1000)
    bar.close()
    drawn = terminal.getvalue()
    assert "\rverifying ledger [..........]   0% 0/1000" in drawn
    assert "[##........]  25% 250/1000" in drawn and drawn.count("25%") == 1
    assert "[##########] 100% 1000/1000" in drawn
    assert drawn.endswith("\r")
    plain = io.StringIO()
    ProgressBar(plain, "x").update(1, 2)
    assert plain.getvalue() == ""


def delete_newest(data_dir: Path) -> tuple[int, int]:
    """Drop the newest leaves and checkpoints, as a DBA could with the node stopped."""
    with sqlite3.connect(data_dir / "sekisho.sqlite3", timeout=10) as db:
        (size,) = db.execute("SELECT MAX(size) FROM ledger_checkpoint").fetchone()
        (keep,) = db.execute(
            "SELECT MAX(size) FROM ledger_checkpoint WHERE size < ?", (size,)
        ).fetchone()
        db.execute("DELETE FROM ledger_leaf WHERE idx >= ?", (keep,))
        db.execute("DELETE FROM ledger_checkpoint WHERE size > ?", (keep,))
    return int(size), int(keep)


def test_deleted_newest_entries_fail_verify_until_an_operator_accepts(node_dir: Path) -> None:
    size, keep = delete_newest(node_dir)
    result = run_cli(["ledger", "verify"], node_dir)
    assert result.returncode == 1, result.stderr
    assert one_line(result.stdout) == (
        f"ledger TAMPERED: the database holds {keep} entries but the token's checkpoint "
        f"says {size} (rolled back)"
    )

    accepted = run_cli(
        ["ledger", "accept-rollback", "--reason", "restored after disk loss"], node_dir
    )
    assert accepted.returncode == 0, accepted.stderr
    assert f"the token's checkpoint now says {keep} entries" in accepted.stdout
    assert run_cli(["ledger", "verify"], node_dir).returncode == 0
    with running_node(node_dir) as base:
        assert http_get(base + "/readyz")[0] == 200
        wait_for(lambda: tree_size(base) == keep + 1)
    alert = opened_on_disk(node_dir, keep)  # as officers read it
    assert alert["type"] == "alert.raised" and alert["alert"] == "ledger.rolled_back"
    assert alert["index"] == size and alert["reason"] == "restored after disk loss"
