"""Every ``sekisho`` command, walked from the argparse tree, refuses bad input in one line.

For each sub-command there is a baseline command line with plausible values
(``BASELINES``; a command added without one fails ``test_every_command_has_a_baseline``).
Each value in it is replaced in turn by bad values of its kind: text of 100 KB,
bytes that are not UTF-8, control characters; numbers too large for any column,
negative, not numbers; files that are missing, directories, empty, binary,
over 4 MiB, JSON nested too deeply or with a 5,000-digit number. Every such run
must exit non-zero with exactly one line of output (the error, or a verifier's
verdict), no traceback, no exception class name, nothing echoed at length.

The commands run in-process against one initialised node (and one witness) per
test worker, so the whole walk takes seconds, not one process start per case.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.cli.main import build_parser, main
from gateway.tlog.checkpoint import Checkpoint
from gateway.tlog.merkle import Frontier, inclusion_proof_from_leaves, leaf_hash
from gateway.tlog.note import SIG_ED25519_COSIGNATURE, verifier_key
from gateway.tlog.receipt import Receipt, format_receipt
from tests.gateway.ledger.test_audit import ORIGIN, SoftSigner, entries
from tests.nodes import free_port, run_cli

pytestmark = pytest.mark.slow  # one node init per worker, then a few hundred in-process runs

LONG = "x" * 100_000
NOT_UTF8 = os.fsdecode(b"caf\xe9\xff")  # what Python makes of argv bytes that are not UTF-8
CONTROL = "bad\nvalue\x1b[2J"
TEXT_BAD = {"100 KB": LONG, "not UTF-8": NOT_UTF8, "control characters": CONTROL}
NUMBER_BAD = {"10**30": str(10**30), "negative": "-5", "not a number": "ten", "100 KB": LONG}
FILE_BAD = {
    **TEXT_BAD,
    "missing file": "{missing}",
    "a directory": "{dir}",
    "empty file": "{empty}",
    "binary garbage": "{garbage}",
    "over 4 MiB": "{huge}",
    "JSON nested too deep": "{deep}",
    "JSON with a 5000-digit number": "{bignum}",
}
EXCEPTION_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b|Traceback")

WITNESS = "witness"
"""Commands under this word run against the witness's data dir, the others the node's."""


def words(text: str) -> list[str]:
    """A command line written as one string (no value in it has a space)."""
    return text.split()


BASELINES: dict[str, list[list[str]]] = {
    "init": [[]],
    "serve": [["--host", "127.0.0.1", "--port", "{busy_port}", "--workers", "1"]],
    "hsm status": [[]],
    "hsm keys": [[]],
    "users add": [
        words("bob --level SECRET --compartments A --nationality USA --roles reader --name Bob")
    ],
    "users set": [
        words("alice --level SECRET --compartments A --nationality USA --roles reader --name A")
    ],
    "users disable": [["alice"]],
    "users enable": [["alice"]],
    "users unlock": [["alice"]],
    "users list": [[]],
    "users token": [["alice", "--label", "laptop"]],
    "users tokens": [["alice"]],
    "users revoke-token": [["abcdefabcdef"]],
    "keys list": [[]],
    "keys create": [["k9", "--algorithm", "ec-p256", "--purpose", "sign"]],
    "keys rotate": [["default"]],
    "keys rotate-kek": [words("--batch 10 --limit 5 --kek-type aes-key-wrap-pad")],
    "keys remove-kek": [["--version", "1"]],
    "keys kek-status": [[]],
    "clients add": [
        words("c9 --scopes sign --keys default --rate 5 --chain-writers c1 --cert {cert}"),
        ["c9", "--scopes", "sign", "--keys", "default", "--cert-sha256", "ab" * 32],
    ],
    "clients set": [
        [
            *words("c1 --scopes ledger-read --keys default --rate 5 --cert {cert}"),
            "--chain-writers",
            "",
        ]
    ],
    "clients list": [[]],
    "clients revoke": [["c1"]],
    "clients token": [["c1", "--label", "ci"]],
    "clients revoke-token": [["c1", "sks_abcdefgh"]],
    "custody rules add": [["{rule}"]],
    "custody rules list": [[]],
    "custody rules show": [["spare-parts"]],
    "custody verify": [["{export}", "--key", "{vkey}", "--origin", ORIGIN]],
    "ledger verify": [
        ["--key", "{vkey}", "--origin", ORIGIN],
        words("--url http://127.0.0.1:{closed_port}/ --key {vkey} --token-file {token_file}"),
    ],
    "ledger checkpoint": [["--url", "http://127.0.0.1:{closed_port}/"]],
    "ledger accept-rollback": [["--reason", "restored from the backup of Monday"]],
    "ledger anchor": [[]],
    "verify": [
        [
            *words("{receipt} --key {vkey} --entry {entry} --opening {opening}"),
            *["--witness", "{cosigner}", "--quorum", "1", "--origin", ORIGIN],
        ],
        ["{receipt}", "--key", "{vkey}", "--leaf-hash", "00" * 32],
    ],
    "witness init": [[]],
    "witness add-log": [
        [ORIGIN, *words("{vkey} --url http://127.0.0.1:9/ --mirror --token-file {token_file}")]
    ],
    "witness remove-log": [[ORIGIN]],
    "witness status": [[]],
    "witness verify-mirror": [[ORIGIN]],
    "witness resume-mirror": [[ORIGIN]],
    "witness serve": [["--host", "127.0.0.1", "--port", "{busy_port}"]],
}


def leaf_parsers() -> dict[str, argparse.ArgumentParser]:
    """Every runnable sub-command: its words ("users add") and its parser."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, words: list[str]) -> None:
        groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not groups:
            found[" ".join(words)] = parser
        for group in groups:
            for name, child in group.choices.items():
                walk(child, [*words, name])

    walk(build_parser(), [])
    return found


LEAVES = leaf_parsers()


@dataclass(frozen=True)
class Slot:
    """One value of a baseline command line: where it is and what kind of value it is."""

    index: int
    name: str
    kind: str  # "text", "number" or "file"


def _kind(action: argparse.Action) -> str:
    metavar = str(action.metavar or "")
    if action.type is int or getattr(action.type, "__name__", "") == "number":
        return "number"
    if "FILE" in metavar or "EXPORT" in metavar:
        return "file"
    return "text"


def slots(command: str, baseline: list[str]) -> list[Slot]:
    """The values in ``baseline``, each with the argparse action that reads it."""
    parser = LEAVES[command]
    positionals = iter(parser._get_positional_actions())
    found: list[Slot] = []
    index = 0
    while index < len(baseline):
        token = baseline[index]
        action = parser._option_string_actions.get(token)
        if action is not None:
            if action.nargs != 0:
                found.append(Slot(index + 1, token, _kind(action)))
                index += 1
        else:
            positional = next(positionals)
            found.append(Slot(index, str(positional.metavar or positional.dest), _kind(positional)))
        index += 1
    return found


def bad_cases() -> Iterator[tuple[str, list[str], str]]:
    """(command, argv with one bad value, what is bad) for every value of every baseline."""
    bad_of = {"text": TEXT_BAD, "number": NUMBER_BAD, "file": FILE_BAD}
    for command, baselines in BASELINES.items():
        for baseline in baselines:
            for slot in slots(command, baseline):
                for what, value in bad_of[slot.kind].items():
                    argv = [*command.split(), *baseline]
                    argv[len(command.split()) + slot.index] = value
                    yield command, argv, f"{command} {slot.name}={what}"


def usage_cases() -> Iterator[tuple[str, list[str], str]]:
    """An unknown option, a stray argument, and nothing at all where something is required."""
    for command, baselines in BASELINES.items():
        words = command.split()
        yield command, [*words, *baselines[0], "--no-such-option"], f"{command} unknown option"
        yield command, [*words, *baselines[0], "stray"], f"{command} stray argument"
        parser = LEAVES[command]
        if any(a.required for a in parser._actions):
            yield command, words, f"{command} missing arguments"


BAD = list(bad_cases())
USAGE = list(usage_cases())


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """An initialised node and witness, a client and a person, and files good and bad."""
    root = tmp_path_factory.mktemp("cli-bad-input")
    data, witness = root / "node", root / "witness"
    for args, where in ((["init"], data), (["witness", "init"], witness)):
        result = run_cli(args, where)
        assert result.returncode == 0, result.stderr
    files = _files(root)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)  # a port in use: a serve that got past every check still cannot start
    values = {
        **files,
        "data": str(data),
        "witness": str(witness),
        "busy_port": str(busy.getsockname()[1]),
        "closed_port": str(free_port()),
    }
    with pytest.MonkeyPatch.context() as patch:
        _environment(patch, str(data))
        for setup in (
            ["clients", "add", "c1", "--scopes", "ledger-read"],
            ["users", "add", "alice", "--level", "SECRET"],
        ):
            assert main(setup) == 0
    try:
        yield values
    finally:
        busy.close()


def _files(root: Path) -> dict[str, str]:
    """A valid receipt, entry, log key and witness key, a rule, a certificate, and bad files."""
    signer = SoftSigner()
    data = entries(10, "r")
    hashes = [leaf_hash(d) for d in data]
    frontier = Frontier()
    frontier.extend(hashes)
    note = asyncio.run(signer.sign(Checkpoint(ORIGIN, 10, frontier.root())))
    receipt = format_receipt(Receipt(6, inclusion_proof_from_leaves(6, hashes), note))
    cosigner = verifier_key("witness.example", bytes(range(32)), sig_type=SIG_ED25519_COSIGNATURE)
    rule = {
        "name": "spare-parts",
        "match": {"subject": "part:*"},
        "states": ["made", "shipped"],
        "transitions": [{"to": "made", "by": ["client:c1"]}],
        "on_violation": "refuse",
    }
    contents: dict[str, bytes] = {
        "receipt": receipt.encode(),
        "entry": data[6],
        "vkey": (verifier_key(ORIGIN, signer.public) + "\n").encode(),
        "cosigner": cosigner.encode(),
        "opening": b'{"fields": {}}',
        "rule": json.dumps(rule).encode(),
        "export": b'{"subject": "part:1", "links": []}',
        "token_file": b"sks_" + b"A" * 43 + b"\n",
        "cert": _certificate(),
        "empty": b"",
        "garbage": bytes(range(256)) * 16,
        "huge": b"A" * (5 << 20),
        "deep": b"[" * 20_000 + b"]" * 20_000,
        "bignum": b'{"name": "spare-parts", "n": ' + b"9" * 5000 + b"}",
    }
    paths = {name: root / f"{name}.dat" for name in contents}
    for name, content in contents.items():
        paths[name].write_bytes(content)
    (root / "a-directory").mkdir()
    return {
        **{name: str(path) for name, path in paths.items()},
        "vkey": paths["vkey"].read_text().strip(),
        "cosigner": cosigner,
        "dir": str(root / "a-directory"),
        "missing": str(root / "no-such-file"),
    }


def _certificate() -> bytes:
    """A self-signed client certificate (PEM)."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "c9")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def _environment(patch: pytest.MonkeyPatch, data_dir: str) -> None:
    for name in list(os.environ):
        if name.startswith("SEKISHO_"):
            patch.delenv(name)
    patch.setenv("SEKISHO_DATA", data_dir)


@pytest.fixture(autouse=True)
def _keep_logging() -> Iterator[None]:
    """``serve`` configures logging for the process; put the test's logging back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def run(
    node: dict[str, str],
    command: str,
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: dict[str, str] | None = None,
) -> tuple[int, str, str]:
    """Run one command line in-process against the node (or witness); status, stdout, stderr."""
    _environment(monkeypatch, node[WITNESS if command.startswith(WITNESS) else "data"])
    for name, value in (extra or {}).items():
        monkeypatch.setenv(name, value)
    filled = [value.format_map(node) if "{" in value else value for value in argv]
    escaped = ""
    try:
        status = main(filled)
    except SystemExit as exc:  # argparse's own exits
        status = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # reported below in ASCII, without its chain
        escaped = ascii(repr(exc))[:500]  # xdist cannot carry lone surrogates
    if escaped:
        capsys.readouterr()
        pytest.fail(f"a traceback: {escaped}", pytrace=False)
    out, err = capsys.readouterr()
    return status, out, err


def assert_refused(status: int, out: str, err: str) -> None:
    """Non-zero, one short line (the error, or a verifier's verdict), no traceback."""
    lines = [line for line in (out + err).splitlines() if line.strip()]
    shown = ascii((out + err)[:3000])  # a report xdist can carry (no lone surrogates)
    assert status != 0, shown
    assert len(lines) == 1, shown
    assert len(lines[0]) <= 1000, shown
    assert not EXCEPTION_NAME.search(err), shown
    assert not any(c in lines[0] for c in "\x1b\udce9"), shown  # shown escaped, not raw


def test_every_command_has_a_baseline() -> None:
    assert sorted(BASELINES) == sorted(LEAVES)


@pytest.mark.parametrize(("command", "argv"), [c[:2] for c in BAD], ids=[c[2] for c in BAD])
def test_every_value_of_every_command_refuses_bad_input(
    node: dict[str, str],
    command: str,
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert_refused(*run(node, command, argv, monkeypatch, capsys))


@pytest.mark.parametrize(("command", "argv"), [c[:2] for c in USAGE], ids=[c[2] for c in USAGE])
def test_usage_mistakes_in_every_command_are_one_line(
    node: dict[str, str],
    command: str,
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = run(node, command, argv, monkeypatch, capsys)
    assert status == 2
    assert_refused(status, out, err)
    assert err.startswith("sekisho: error: ") and "usage:" not in err


def test_a_refused_rotation_starts_nothing(
    node: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 31-digit --batch once created a new KEK version, then crashed in SQLite."""
    for option in ("--batch", "--limit"):
        argv = ["keys", "rotate-kek", option, str(10**30)]
        assert_refused(*run(node, "keys rotate-kek", argv, monkeypatch, capsys))
    status, out, _ = run(
        node, "keys kek-status", ["keys", "kek-status", "--json"], monkeypatch, capsys
    )
    assert status == 0
    assert [version["version"] for version in json.loads(out)] == [1]


def test_a_file_name_that_is_not_utf8_still_names_a_file(
    node: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only file names may be bytes that are not UTF-8: the file is read, not refused."""
    name = Path(node["rule"]).with_name(os.fsdecode(b"r\xe9gle.json"))
    name.write_bytes(Path(node["rule"]).read_bytes())
    status, out, err = run(
        node, "custody rules add", ["custody", "rules", "add", str(name)], monkeypatch, capsys
    )
    assert status == 0, err
    assert out.startswith("custody rule spare-parts version ")


def test_a_database_that_is_not_one_is_one_line(
    node: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    garbage = tmp_path / "sekisho.sqlite3"
    garbage.write_bytes(bytes(range(256)) * 32)
    extra = {"SEKISHO_DATABASE_URL": f"sqlite://{garbage}"}
    assert_refused(*run(node, "users list", ["users", "list"], monkeypatch, capsys, extra))
    # init fails inside schema creation: one line, and the process ends (it hung at exit)
    garbage.rename(tmp_path / "garbage")
    data = tmp_path / "var"
    data.mkdir()
    (tmp_path / "garbage").rename(data / "sekisho.sqlite3")
    result = run_cli(["init"], data, timeout=60)
    assert_refused(result.returncode, result.stdout, result.stderr)


def test_a_wrong_pin_is_never_echoed(node: dict[str, str]) -> None:
    pin = "wrong-pin-4921-never-shown"
    result = run_cli(["hsm", "keys"], Path(node["data"]), {"SEKISHO_HSM_PIN": pin})
    assert result.returncode == 1
    assert_refused(result.returncode, result.stdout, result.stderr)
    assert pin not in result.stdout + result.stderr
