"""This node's token: where it is (embedded SoftHSM or a configured module), what it holds."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, replace

from gateway.config import Settings, placement_labels
from gateway.ledger.rollback import LABEL_PREFIX as CHECKPOINT_DATA_PREFIX
from hsm import (
    Function,
    HsmConfigError,
    HsmError,
    KeyInfo,
    MechanismNotSupported,
    Option,
    Placement,
    Secret,
    SoftHsmLayout,
    Token,
    TokenConfig,
    TokenProfile,
    TokenSet,
    TokenStatus,
    find_softhsm_module,
    parse_pkcs11_uri,
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


def _versions(name: str) -> str:
    """The labels of every version of the named signing key ``name``."""
    return rf"sign-{re.escape(name)}-v[0-9]+"


def placements(settings: Settings, default: TokenConfig) -> list[Placement]:
    """The keys ``[hsm.keys]``/``[[hsm.named_keys]]`` put on other tokens, most specific first.

    Each placement takes the key's label and the labels that follow it: KEK versions
    (``<kek>-v<N>``) follow the KEK, the checkpoint kept for rollback detection follows
    the log key, versions of the ``default`` and TSA named keys follow ``signing`` and
    ``tsa``. Tokens on the module the default token uses share its SoftHSM configuration.
    """
    labels = placement_labels(settings)
    extra = {
        "ledger": [re.escape(CHECKPOINT_DATA_PREFIX) + ".*"],
        "kek": [re.escape(settings.keys.kek) + "-v[0-9]+"],
        "signing": [_versions("default")],
        "tsa": [_versions(settings.signing.tsa_key)],
    }
    result: list[Placement] = []
    for named in settings.hsm.named_keys:
        where = f"hsm.named_keys {named.name!r}"
        config = _placed_config(named.uri, default, where)
        result.append(Placement(where, re.compile(_versions(named.name)), config))
    for role, label in labels.items():
        uri = getattr(settings.hsm.keys, role)
        if not uri:
            continue
        pattern = "|".join([re.escape(label), *extra.get(role, [])])
        where = f"hsm.keys.{role}"
        result.append(Placement(where, re.compile(pattern), _placed_config(uri, default, where)))
    return result


def _placed_config(uri: str, default: TokenConfig, where: str) -> TokenConfig:
    """The token of one placed key; its PIN from ``pin-source`` or else the node's PIN."""
    parsed = parse_pkcs11_uri(uri)
    source = parsed.pin_source
    if source is None:
        pin = default.pin
    elif source.startswith("env:"):
        name = source.removeprefix("env:")
        if not os.environ.get(name):
            raise HsmConfigError(f"{where}: no token PIN: set ${name} (the URI's pin-source)")
        pin = Secret(os.environ[name])
    else:
        try:
            pin = read_pin(pin_file=source)
        except HsmConfigError as exc:
            raise HsmConfigError(f"{where}: {exc.message}") from None
    config = TokenConfig.from_uri(uri, pin)
    if os.path.realpath(config.module_path) == os.path.realpath(default.module_path):
        config = replace(config, softhsm_conf=default.softhsm_conf)
    return config


async def open_node_token(settings: Settings) -> Token:
    """Log in to the node's token, and to each token ``[hsm.keys]`` places keys on."""
    config = token_config(settings)
    placed = placements(settings, config)
    if not placed:
        return await Token.open(config)
    return await TokenSet.connect(config, placed)


def open_node_token_sync(settings: Settings) -> Token:
    """:func:`open_node_token` for synchronous callers (the CLI)."""
    config = token_config(settings)
    placed = placements(settings, config)
    if not placed:
        return Token.open_sync(config)
    return TokenSet.connect_sync(config, placed)


def token_uses(token: Token, member: Token) -> list[str]:
    """Which settings put keys on ``member`` ("default token" for the node's own token)."""
    uses = token.uses(member) if isinstance(token, TokenSet) else []
    return ["default token", *uses] if member is token else uses


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
    """Read each token's capability profile once at start, log it, and refuse to serve
    when the log key's token cannot sign checkpoints or the KEK's cannot wrap data keys
    (one line naming the key)."""
    several = len(token.members()) > 1
    for member in token.members():
        profile = await member.profile()
        where = f"{member.config.describe()}: " if several else ""
        for choice in profile.choices:
            chosen = choice.chosen
            log.info(
                "token profile: %s%s: %s",
                where,
                choice.function.value,
                f"{chosen.mechanism} ({chosen.name})" if chosen else "not possible on this token",
            )
    await require_on_token(token, Function.CHECKPOINT, settings.keys.ledger)
    await require_on_token(token, Function.KEK, settings.keys.kek)
    return await token.profile()


async def require_on_token(token: Token, function: Function, label: str) -> Option:
    """The option the profile of the token holding ``label`` chooses for ``function``, or
    MechanismNotSupported naming the key, the mechanism and (with several) the token."""
    owner = token.owner(label)
    try:
        return (await owner.profile()).require(function, label)
    except MechanismNotSupported as exc:
        if len(token.members()) == 1:
            raise
        where = f"on the {owner.config.describe()}"
        raise MechanismNotSupported(exc.message.replace("on this token", where)) from None
