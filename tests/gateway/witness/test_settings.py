"""Witness settings: the log's witness list and quorum, and a witness node's own section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.config import WitnessEndpoint, load_settings
from gateway.errors import ConfigError
from gateway.ledger.cosignatures import WitnessKey, cosigned_note
from gateway.tlog.note import (
    SIG_ED25519_COSIGNATURE,
    Signature,
    format_signature_line,
    parse_note,
    verifier_key,
)
from tests.gateway.witness.softlog import SoftLog

VKEYS = [
    verifier_key(f"w{n}.example", bytes([n]) * 32, sig_type=SIG_ED25519_COSIGNATURE)
    for n in (1, 2, 3)
]


def test_witnesses_from_toml_array_of_tables(tmp_path: Path) -> None:
    config = tmp_path / "sekisho.toml"
    tables = "".join(
        f'[[ledger.witnesses]]\nname = "base-{n}"\nurl = "https://w{n}.example"\nvkey = "{v}"\n'
        for n, v in enumerate(VKEYS, start=1)
    )
    config.write_text("[ledger]\nquorum = 2\n\n" + tables)
    settings = load_settings(config, environ={})
    assert [w.name for w in settings.ledger.witnesses] == ["base-1", "base-2", "base-3"]
    assert settings.witness_quorum == 2
    key = WitnessKey.from_endpoint(settings.ledger.witnesses[0])
    assert (key.name, key.key_name, key.url) == ("base-1", "w1.example", "https://w1.example")


def test_witnesses_from_json_in_the_environment_with_a_majority_by_default() -> None:
    value = json.dumps(
        [{"url": f"http://127.0.0.1:{9000 + n}", "vkey": v} for n, v in enumerate(VKEYS)]
    )
    settings = load_settings(environ={"SEKISHO_LEDGER_WITNESSES": value})
    assert settings.ledger.witnesses[1] == WitnessEndpoint("http://127.0.0.1:9001", VKEYS[1])
    assert settings.witness_quorum == 2
    assert load_settings(environ={}).witness_quorum == 0


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SEKISHO_LEDGER_WITNESSES": "not json"}, "JSON list"),
        ({"SEKISHO_LEDGER_WITNESSES": '{"url": "x"}'}, "list of tables"),
        ({"SEKISHO_LEDGER_WITNESSES": '[{"url": "http://x", "vkey": "nope"}]'}, "bad vkey"),
        ({"SEKISHO_LEDGER_WITNESSES": f'[{{"url": "ftp://x", "vkey": "{VKEYS[0]}"}}]'}, "url"),
        (
            {
                "SEKISHO_LEDGER_WITNESSES": json.dumps(
                    [{"url": "http://x", "vkey": VKEYS[0], "k": ""}]
                )
            },
            "unknown key",
        ),
        (
            {"SEKISHO_LEDGER_WITNESSES": json.dumps([{"url": "http://x", "vkey": VKEYS[0]}] * 2)},
            "listed twice",
        ),
        ({"SEKISHO_LEDGER_QUORUM": "1"}, "ledger.quorum"),
        ({"SEKISHO_LEDGER_WITNESS_TIMEOUT_MS": "5"}, "witness_timeout_ms"),
        ({"SEKISHO_WITNESS_NAME": "has space"}, "witness.name"),
        ({"SEKISHO_WITNESS_MIRROR_SECONDS": "0"}, "witness.mirror_seconds"),
    ],
)
def test_bad_witness_settings_name_the_setting(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=environ)
    assert message in caught.value.message


def test_a_witness_node_has_its_own_name_and_database(tmp_path: Path) -> None:
    settings = load_settings(environ={"SEKISHO_DATA": str(tmp_path), "SEKISHO_NODE_NAME": "base-7"})
    assert settings.witness_name == "sekisho.example/witness/base-7"
    assert settings.witness_database_url == f"sqlite://{tmp_path.resolve()}/witness.sqlite3"
    assert settings.witness_database_url != settings.database_url


def test_cosigned_note_appends_each_key_once() -> None:
    log = SoftLog("example.test/notes")
    note = log.note(5)
    first = format_signature_line(Signature("w1.example", b"\x01\x02\x03\x04", b"a" * 72))
    again = format_signature_line(Signature("w1.example", b"\x01\x02\x03\x04", b"b" * 72))
    other = format_signature_line(Signature("w2.example", b"\x05\x06\x07\x08", b"c" * 72))
    combined = cosigned_note(note, [first, again, other])
    assert [s.name for s in parse_note(combined).signatures] == [
        log.origin,
        "w1.example",
        "w2.example",
    ]
    assert cosigned_note(combined, [again]) == combined
    assert cosigned_note(note, []) == note
