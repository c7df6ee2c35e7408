"""This node's token: where it is (embedded SoftHSM or a configured module), what it holds."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gateway.config import Settings
from hsm import (
    Function,
    HsmConfigError,
    HsmError,
    KeyInfo,
    SoftHsmLayout,
    Token,
    TokenConfig,
    TokenProfile,
    TokenStatus,
    find_softhsm_module,
    read_pin,
)

PIN_ENV = "SEKISHO_HSM_PIN"
log = logging.getLogger("sekisho.token")


def softhsm_layout(settings: Settings) -> SoftHsmLayout:
    """The embedded SoftHSM files under the data directory."""
    return SoftHsmLayout(settings.data_dir / "hsm")


def token_config(settings: Settings) -> TokenConfig:
    """How to open the node's token. The PIN comes from $SEKISHO_HSM_PIN or a PIN file."""
    if settings.uses_embedded_softhsm:
        layout = softhsm_layout(settings)
        module = find_softhsm_module()
        if module is None:
            raise HsmConfigError(
                "SoftHSM is not installed (apt-get install softhsm2) and no PKCS#11 module "
                "is configured (SEKISHO_HSM_MODULE or SEKISHO_HSM_URI)"
            )
        pin = read_pin(env_var=PIN_ENV, pin_file=settings.hsm.pin_file or layout.user_pin_file)
        return TokenConfig(
            module_path=module,
            pin=pin,
            token_label=settings.hsm.token_label,
            softhsm_conf=str(layout.conf),
        )
    pin = read_pin(env_var=PIN_ENV, pin_file=settings.hsm.pin_file or None)
    if settings.hsm.uri:
        return TokenConfig.from_uri(settings.hsm.uri, pin)
    return TokenConfig(
        module_path=settings.hsm.module, pin=pin, token_label=settings.hsm.token_label
    )


@dataclass(frozen=True)
class TokenInventory:
    """What an administrator sees of the node's token; ``error`` when it did not answer."""

    status: TokenStatus | None
    keys: list[KeyInfo]
    ca_certificate: bytes | None
    error: str = ""


async def token_inventory(token: Token, ca_label: str) -> TokenInventory:
    """The token's status, its keys (by label) and the CA certificate, or why not."""
    try:
        status = await token.status()
        keys = sorted(await token.list_keys(), key=lambda k: k.label)
        ca = await token.certificate(ca_label)
    except HsmError as exc:
        return TokenInventory(None, [], None, exc.message)
    return TokenInventory(status, keys, ca)


async def serving_profile(token: Token, settings: Settings) -> TokenProfile:
    """Read the token's capability profile once at start, log it, and refuse to serve
    when the token cannot sign checkpoints or wrap data keys (one line naming the key)."""
    profile = await token.profile()
    for choice in profile.choices:
        chosen = choice.chosen
        log.info(
            "token profile: %s: %s",
            choice.function.value,
            f"{chosen.mechanism} ({chosen.name})" if chosen else "not possible on this token",
        )
    profile.require(Function.CHECKPOINT, settings.keys.ledger)
    profile.require(Function.KEK, settings.keys.kek)
    return profile
