"""Typed, actionable errors for each way the token can be unusable."""

from __future__ import annotations

from pathlib import Path

import pytest

from hsm import (
    HsmConfigError,
    KeyNotFound,
    ModuleMissing,
    Secret,
    Token,
    TokenConfig,
    TokenNotFound,
    WrongPin,
    parse_pkcs11_uri,
    read_pin,
)


async def test_wrong_pin(token_config: TokenConfig) -> None:
    bad = TokenConfig(
        module_path=token_config.module_path,
        pin=Secret("not-the-pin"),
        token_label=token_config.token_label,
        softhsm_conf=token_config.softhsm_conf,
    )
    with pytest.raises(WrongPin, match="refused the PIN"):
        await Token.open(bad)


async def test_missing_module(token_config: TokenConfig) -> None:
    bad = TokenConfig(
        module_path="/nonexistent/libpkcs11.so", pin=token_config.pin, token_label="x"
    )
    with pytest.raises(ModuleMissing, match="not found"):
        await Token.open(bad)


async def test_missing_token(token_config: TokenConfig) -> None:
    bad = TokenConfig(
        module_path=token_config.module_path,
        pin=token_config.pin,
        token_label="no-such-token",
        softhsm_conf=token_config.softhsm_conf,
    )
    with pytest.raises(TokenNotFound, match="no-such-token"):
        await Token.open(bad)


async def test_missing_key(token: Token) -> None:
    with pytest.raises(KeyNotFound, match="no-such-key"):
        await token.sign_message("no-such-key", b"x")


def test_pin_never_shows_in_repr(token_config: TokenConfig) -> None:
    secret = token_config.pin.reveal()
    assert secret not in repr(token_config)
    assert secret not in str(token_config.pin)


def test_pin_from_env_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PIN_ENV", "1234")
    assert read_pin(env_var="TEST_PIN_ENV").reveal() == "1234"
    pin_file = tmp_path / "pin"
    pin_file.write_text("5678\n")
    assert read_pin(env_var="TEST_PIN_ENV", pin_file=pin_file).reveal() == "1234"
    monkeypatch.delenv("TEST_PIN_ENV")
    assert read_pin(env_var="TEST_PIN_ENV", pin_file=pin_file).reveal() == "5678"
    with pytest.raises(HsmConfigError, match="no token PIN"):
        read_pin(env_var="TEST_PIN_ENV")


def test_token_must_be_named_not_numbered() -> None:
    with pytest.raises(HsmConfigError, match="label or serial"):
        TokenConfig(module_path="/x.so", pin=Secret("1"))


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("pkcs11:slot-id=3", "slot numbers"),
        ("pkcs11:token=a?pin-value=1234", "must not be written"),
        ("https://example", "not a pkcs11"),
        ("pkcs11:token=a;token=b", "twice"),
        ("pkcs11:bogus=1", "not supported"),
        ("pkcs11:token", "no value"),
        ("pkcs11:type=banana", "type must be"),
    ],
)
def test_bad_uris_are_refused(uri: str, message: str) -> None:
    with pytest.raises(HsmConfigError, match=message):
        parse_pkcs11_uri(uri)


def test_uri_with_percent_encoding() -> None:
    parsed = parse_pkcs11_uri(
        "pkcs11:token=Sekisho%20Base%201;object=ledger;type=private;id=%01%02"
        "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/etc/sekisho/pin"
    )
    assert parsed.token == "Sekisho Base 1"
    assert parsed.object == "ledger"
    assert parsed.object_type == "private"
    assert parsed.object_id == b"\x01\x02"
    assert parsed.module_path == "/usr/lib/softhsm/libsofthsm2.so"
    assert parsed.pin_source == "/etc/sekisho/pin"


async def test_uri_config_opens_the_token(token_config: TokenConfig) -> None:
    config = TokenConfig.from_uri(
        f"pkcs11:token={token_config.token_label}?module-path={token_config.module_path}",
        token_config.pin,
        softhsm_conf=token_config.softhsm_conf,
    )
    token = await Token.open(config)
    try:
        assert (await token.status()).token_label == token_config.token_label
    finally:
        await token.close()
