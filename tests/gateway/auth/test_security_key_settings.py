"""Security-key settings: the RP id, accepted origins and the levels that need a step-up."""

from __future__ import annotations

import pytest

from gateway.auth.security_keys import RelyingParty
from gateway.config import load_settings
from gateway.documents.wiring import step_up_levels
from gateway.errors import ConfigError


@pytest.mark.parametrize(
    ("environ", "rp_id"),
    [
        ({}, "localhost"),  # 127.0.0.1: browsers refuse IP addresses as RP ids
        ({"SEKISHO_HTTP_HOST": "0.0.0.0"}, "localhost"),
        ({"SEKISHO_HTTP_HOST": "::1"}, "localhost"),
        ({"SEKISHO_HTTP_HOST": "Portal.Example.org"}, "portal.example.org"),
        ({"SEKISHO_AUTH_RP_ID": "example.org"}, "example.org"),
    ],
)
def test_the_rp_id_derives_from_the_host(environ: dict[str, str], rp_id: str) -> None:
    assert load_settings(environ=environ).webauthn_rp_id == rp_id


def test_levels_are_this_level_and_above_and_must_exist() -> None:
    settings = load_settings(environ={"SEKISHO_AUTH_SECURITY_KEY_LEVELS": "SECRET"})
    assert step_up_levels(settings) == {"SECRET", "TOP SECRET"}
    assert step_up_levels(load_settings(environ={})) == frozenset()
    with pytest.raises(ConfigError, match="SECRT is not a level"):
        load_settings(environ={"SEKISHO_AUTH_SECURITY_KEY_LEVELS": "SECRT"})


def test_origins_are_configured_or_the_address_used_on_the_rp_id() -> None:
    derived = RelyingParty("example.org", "Sekisho")
    assert derived.origins_for("https", "example.org") == ["https://example.org"]
    assert derived.origins_for("https", "portal.example.org:8443") == [
        "https://portal.example.org:8443"
    ]
    assert derived.origins_for("https", "evil-example.org") == []
    assert derived.origins_for("https", "example.org.evil.net") == []
    assert derived.origins_for("http", "127.0.0.1:8080") == []
    fixed = RelyingParty("example.org", "Sekisho", ("https://example.org",))
    assert fixed.origins_for("http", "anything:1") == ["https://example.org"]
