"""Keys on other tokens: the ``[hsm.keys]`` settings, their checks, and how labels are routed."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.errors import ConfigError
from gateway.node_token import placements
from hsm import HsmConfigError, Placement, Secret, TokenConfig, TokenSet, find_softhsm_module

MODULE = find_softhsm_module() or "/usr/lib/softhsm/libsofthsm2.so"


def _default() -> TokenConfig:
    return TokenConfig(module_path=MODULE, pin=Secret("node-pin"), token_label="node")


def test_toml_table_and_environment_override(tmp_path: Path) -> None:
    config = tmp_path / "sekisho.toml"
    config.write_text(
        "[hsm.keys]\n"
        'kek = "pkcs11:token=kek-hsm;object=sekisho-kek?pin-source=file:/etc/kek.pin"\n'
        'ledger = "pkcs11:token=from-file"\n'
        "[[hsm.named_keys]]\n"
        'name = "payroll"\n'
        'uri = "pkcs11:serial=0123"\n'
    )
    settings = load_settings(config, environ={"SEKISHO_HSM_KEYS_LEDGER": "pkcs11:token=from-env"})
    assert settings.hsm.keys.kek.startswith("pkcs11:token=kek-hsm;")
    assert settings.hsm.keys.ledger == "pkcs11:token=from-env"
    assert settings.hsm.keys.ca == ""
    assert [(n.name, n.uri) for n in settings.hsm.named_keys] == [("payroll", "pkcs11:serial=0123")]


@pytest.mark.parametrize(
    ("variable", "uri", "expected"),
    [
        ("KEK", "pkcs11:token=a;slot-id=1", "'slot-id' refused"),
        ("KEK", "pkcs11:token=a;colour=blue", "'colour' is not supported here"),
        ("KEK", "pkcs11:token=a;id=%01", "'id' is not supported for a key's token"),
        ("KEK", "pkcs11:token=a?pin-value=1234", "a PIN must not be written into a URI"),
        ("KEK", "pkcs11:object=sekisho-kek", "must name the token"),
        ("KEK", "pkcs11:token=a;object=other", "names object 'other', expected the key label"),
        ("LEDGER", "https://hsm.example", "not a pkcs11: URI"),
    ],
)
def test_a_bad_uri_is_one_line_naming_the_setting(variable: str, uri: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={f"SEKISHO_HSM_KEYS_{variable}": uri})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"setting hsm.keys.{variable.lower()} (SEKISHO_HSM_KEYS_{variable})")
    assert expected in message


def test_named_keys_need_a_name_and_no_object() -> None:
    with pytest.raises(ConfigError, match="names object 'x', expected no object"):
        load_settings(
            environ={
                "SEKISHO_HSM_NAMED_KEYS": '[{"name": "pay", "uri": "pkcs11:token=a;object=x"}]'
            }
        )
    with pytest.raises(ConfigError, match="needs a key name"):
        load_settings(
            environ={"SEKISHO_HSM_NAMED_KEYS": '[{"name": "Pay", "uri": "pkcs11:token=a"}]'}
        )


def test_labels_follow_their_key_to_its_token(tmp_path: Path) -> None:
    pin = tmp_path / "kek.pin"
    pin.write_text("kek-pin\n")
    settings = load_settings(
        environ={
            "SEKISHO_DATA": str(tmp_path),
            "SEKISHO_HSM_KEYS_KEK": f"pkcs11:token=kek-hsm?pin-source=file:{pin}",
            "SEKISHO_HSM_KEYS_LEDGER": "pkcs11:token=log-hsm",
            "SEKISHO_HSM_NAMED_KEYS": '[{"name": "payroll", "uri": "pkcs11:token=log-hsm"}]',
        }
    )
    tokens = TokenSet(_default(), placements(settings, _default()))
    where = {
        label: tokens.owner(label).config.token_label
        for label in (
            "sekisho-kek",
            "sekisho-kek-v3",
            "sekisho-ledger",
            "sekisho-checkpoint:example/log:ab12",
            "sign-payroll-v2",
            "sign-payrollx-v1",
            "sekisho-ca",
            "sekisho-kek-backup",
        )
    }
    assert where == {
        "sekisho-kek": "kek-hsm",
        "sekisho-kek-v3": "kek-hsm",  # KEK versions stay with the KEK
        "sekisho-ledger": "log-hsm",
        "sekisho-checkpoint:example/log:ab12": "log-hsm",  # the rollback checkpoint
        "sign-payroll-v2": "log-hsm",
        "sign-payrollx-v1": "node",
        "sekisho-ca": "node",
        "sekisho-kek-backup": "node",
    }
    # Two placements on one token share one session; the PIN file is read, the node PIN not.
    assert [m.config.token_label for m in tokens.members()] == ["node", "log-hsm", "kek-hsm"]
    assert tokens.owner("sekisho-kek").config.pin == Secret("kek-pin")
    assert tokens.owner("sekisho-ledger").config.pin == Secret("node-pin")


def test_pin_source_env_and_missing_pin_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEK_PIN", "from-env")
    settings = load_settings(
        environ={"SEKISHO_HSM_KEYS_KEK": "pkcs11:token=k?pin-source=env:KEK_PIN"}
    )
    (placed,) = placements(settings, _default())
    assert placed.config.pin == Secret("from-env")
    settings = load_settings(
        environ={"SEKISHO_HSM_KEYS_KEK": f"pkcs11:token=k?pin-source=file:{tmp_path}/none.pin"}
    )
    with pytest.raises(HsmConfigError) as caught:
        placements(settings, _default())
    assert caught.value.message.startswith("hsm.keys.kek: cannot read the PIN file")


def test_one_module_under_two_names_is_one_token() -> None:
    """python-pkcs11 caches libraries by path string: a second spelling of the same file
    would call C_Initialize again ("already initialized"). Tokens are keyed by real path."""
    real = os.path.realpath(MODULE)
    if real == MODULE:
        pytest.skip("the SoftHSM module is not reached through a symlink here")
    same = TokenConfig(module_path=real, pin=Secret("node-pin"), token_label="node")
    tokens = TokenSet(_default(), [Placement("hsm.keys.kek", re.compile("k"), same)])
    assert tokens.members() == [tokens]
    assert tokens._module is tokens.owner("k")._module
    other_pin = TokenConfig(module_path=real, pin=Secret("other"), token_label="node")
    with pytest.raises(HsmConfigError, match="with a PIN other than"):
        TokenSet(_default(), [Placement("hsm.keys.kek", re.compile("k"), other_pin)])
