"""Capability profile: which mechanism this token gives each Sekisho function, or why none.

Pure code: :func:`choose_profile` takes what the token reported (mechanism
names with their key-size range and flags, read once by
:meth:`hsm.Token.profile`) and picks, per function, the first option in the
order of preference whose mechanisms are all offered with the flags and key
size Sekisho uses. Options Sekisho cannot use yet are listed as alternatives
(marked "not yet supported") but never chosen.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from hsm.errors import MechanismNotSupported
from hsm.key_templates import KeyAlgorithm

# CKF_* mechanism flags (PKCS#11 v2.40, table 34).
CKF_DECRYPT = 0x200
CKF_SIGN = 0x800
CKF_GENERATE = 0x8000
CKF_GENERATE_KEY_PAIR = 0x10000
CKF_WRAP = 0x20000
CKF_UNWRAP = 0x40000
CKF_DERIVE = 0x80000
_FLAG_NAMES = {
    CKF_DECRYPT: "decrypt",
    CKF_SIGN: "sign",
    CKF_GENERATE: "generate",
    CKF_GENERATE_KEY_PAIR: "generate key pair",
    CKF_WRAP: "wrap",
    CKF_UNWRAP: "unwrap",
    CKF_DERIVE: "derive",
}


class Function(enum.StrEnum):
    """What Sekisho does with a token key."""

    CHECKPOINT = "checkpoint signing"
    KEK = "KEK wrap/unwrap"
    CA = "CA/CMS certificates"
    SIGNING = "document signing key"
    TIMESTAMP = "timestamping"
    NAMED_ECDSA = "named key ecdsa-p256"
    NAMED_ED25519 = "named key ed25519"
    NAMED_RSA = "named key rsa-pss"
    WITNESS = "witness cosigning"


@dataclass(frozen=True)
class MechanismSupport:
    """One mechanism as the token reports it (C_GetMechanismInfo)."""

    name: str
    min_key: int | None
    max_key: int | None
    flags: int


@dataclass(frozen=True)
class Requirement:
    """A mechanism with the flags (all needed) and key size an option uses."""

    mechanism: str
    flags: int
    key_size: int | None = None
    """In the unit PKCS#11 gives this mechanism: bits for RSA/EC, bytes for AES."""
    in_bytes: bool = False
    """True for AES: some tokens report AES sizes in bits despite the spec; both count."""

    @property
    def label(self) -> str:
        """``CKM_<name>`` as PKCS#11 spells it."""
        return f"CKM_{self.mechanism}"

    def missing(self, offered: Mapping[str, MechanismSupport]) -> str | None:
        """Why the token cannot do this, or None when it can."""
        support = offered.get(self.mechanism)
        if support is None:
            return f"{self.label} is not offered"
        lacking = [n for f, n in _FLAG_NAMES.items() if self.flags & f and not support.flags & f]
        if lacking:
            return f"{self.label} is offered without {'/'.join(lacking)}"
        if self.key_size is not None and not self._size_fits(support, self.key_size):
            return (
                f"{self.label} takes keys of {support.min_key}-{support.max_key}, "
                f"not {self.key_size}"
            )
        return None

    def _size_fits(self, support: MechanismSupport, size: int) -> bool:
        sizes = (size, size * 8) if self.in_bytes else (size,)
        return any(_size_ok(support, n) for n in sizes)


def _size_ok(support: MechanismSupport, size: int) -> bool:
    if not support.min_key and not support.max_key:
        return True  # the token does not say
    low = support.min_key or 0
    high = support.max_key or size
    return low <= size <= high


@dataclass(frozen=True)
class Option:
    """One way to do a function: a key algorithm and the mechanisms it takes."""

    name: str
    algorithm: KeyAlgorithm
    needs: tuple[Requirement, ...]
    supported: bool = True
    """False while Sekisho itself cannot use this option yet."""

    @property
    def mechanism(self) -> str:
        """The mechanism that does the work (the last requirement, e.g. CKM_EDDSA)."""
        return self.needs[-1].label

    def missing(self, offered: Mapping[str, MechanismSupport]) -> str | None:
        """The first reason the token cannot do this option, or None."""
        for requirement in self.needs:
            reason = requirement.missing(offered)
            if reason is not None:
                return reason
        return None

    def describe(self) -> str:
        """``CKM_X (name)`` plus a note when Sekisho cannot use it yet."""
        text = f"{self.mechanism} ({self.name})"
        return text if self.supported else f"{text}, not yet supported by Sekisho"


_EC_GEN = Requirement("EC_KEY_PAIR_GEN", CKF_GENERATE_KEY_PAIR, 256)
_ED_GEN = Requirement("EC_EDWARDS_KEY_PAIR_GEN", CKF_GENERATE_KEY_PAIR)
_RSA_GEN = Requirement("RSA_PKCS_KEY_PAIR_GEN", CKF_GENERATE_KEY_PAIR, 3072)
_AES_GEN = Requirement("AES_KEY_GEN", CKF_GENERATE, 32, in_bytes=True)
_ECDSA = Option("ECDSA P-256", KeyAlgorithm.EC_P256, (_EC_GEN, Requirement("ECDSA", CKF_SIGN)))
_ED25519 = Option("Ed25519", KeyAlgorithm.ED25519, (_ED_GEN, Requirement("EDDSA", CKF_SIGN)))
_RSA_PSS = Option(
    "RSA-3072 PSS", KeyAlgorithm.RSA_3072, (_RSA_GEN, Requirement("RSA_PKCS_PSS", CKF_SIGN, 3072))
)
_RSA_PKCS1 = (_RSA_GEN, Requirement("RSA_PKCS", CKF_SIGN, 3072))
"""RSASSA-PKCS1-v1_5 as CKM_RSA_PKCS over a DigestInfo (no CKM_SHA256_RSA_PKCS needed)."""


OPTIONS: dict[Function, tuple[Option, ...]] = {
    Function.CHECKPOINT: (
        Option("Ed25519, signed-note type 0x01", KeyAlgorithm.ED25519, _ED25519.needs),
        Option("ECDSA P-256, signed-note type 0x02", KeyAlgorithm.EC_P256, _ECDSA.needs),
    ),
    Function.KEK: (
        Option(
            "AES-256 key wrap with padding, RFC 5649",
            KeyAlgorithm.AES_256,
            (_AES_GEN, Requirement("AES_KEY_WRAP_PAD", CKF_WRAP | CKF_UNWRAP)),
        ),
        Option(
            "AES-256 key wrap, RFC 3394",
            KeyAlgorithm.AES_256,
            (_AES_GEN, Requirement("AES_KEY_WRAP", CKF_WRAP | CKF_UNWRAP)),
            supported=False,
        ),
        Option(
            "RSA-3072 OAEP SHA-256, unwrap on the token",
            KeyAlgorithm.RSA_3072,
            (_RSA_GEN, Requirement("RSA_PKCS_OAEP", CKF_DECRYPT, 3072)),
        ),
        Option(
            "ECDH P-256 with an ephemeral key and HKDF",
            KeyAlgorithm.EC_P256,
            (_EC_GEN, Requirement("ECDH1_DERIVE", CKF_DERIVE)),
        ),
    ),
    Function.CA: (
        Option("ECDSA P-256, ecdsa-with-SHA256 certificates", KeyAlgorithm.EC_P256, _ECDSA.needs),
        Option(
            "RSA-3072 PKCS#1 v1.5, sha256WithRSAEncryption certificates",
            KeyAlgorithm.RSA_3072,
            _RSA_PKCS1,
        ),
    ),
    Function.SIGNING: (
        Option("ECDSA P-256 signing key", KeyAlgorithm.EC_P256, _ECDSA.needs),
        Option("RSA-3072 PSS signing key", KeyAlgorithm.RSA_3072, _RSA_PSS.needs),
    ),
    Function.TIMESTAMP: (
        Option("ECDSA P-256 TSA key", KeyAlgorithm.EC_P256, _ECDSA.needs),
        Option("RSA-3072 PKCS#1 v1.5 TSA key", KeyAlgorithm.RSA_3072, _RSA_PKCS1),
    ),
    Function.NAMED_ECDSA: (_ECDSA,),
    Function.NAMED_ED25519: (_ED25519,),
    Function.NAMED_RSA: (_RSA_PSS,),
    Function.WITNESS: (
        Option("Ed25519, tlog-cosignature/v1", KeyAlgorithm.ED25519, _ED25519.needs),
    ),
}
"""Per function, the options in order of preference."""

_NAMED_BY_ALGORITHM = {
    KeyAlgorithm.EC_P256: Function.NAMED_ECDSA,
    KeyAlgorithm.ED25519: Function.NAMED_ED25519,
    KeyAlgorithm.RSA_3072: Function.NAMED_RSA,
}


@dataclass(frozen=True)
class Choice:
    """The profile's answer for one function."""

    function: Function
    chosen: Option | None
    alternatives: tuple[Option, ...]
    """Other options this token can do (preferred first)."""
    reason: str = ""
    """Why no option is possible (empty when one is chosen)."""
    blockers: str = ""
    """What the options Sekisho supports need and the token lacks (empty when chosen)."""

    @property
    def possible(self) -> bool:
        """True when the token can do this function in a way Sekisho supports."""
        return self.chosen is not None

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return {
            "function": self.function.value,
            "mechanism": self.chosen.mechanism if self.chosen else None,
            "option": self.chosen.name if self.chosen else None,
            "algorithm": self.chosen.algorithm.value if self.chosen else None,
            "alternatives": [o.describe() for o in self.alternatives],
            "reason": self.reason or None,
        }


@dataclass(frozen=True)
class TokenProfile:
    """One :class:`Choice` per :class:`Function`, chosen once from the mechanism list."""

    choices: tuple[Choice, ...]

    def choice(self, function: Function) -> Choice:
        """The choice for one function."""
        for choice in self.choices:
            if choice.function is function:
                return choice
        raise KeyError(function)

    def require(self, function: Function, key_label: str) -> Option:
        """The chosen option, or MechanismNotSupported naming function, key and mechanism."""
        choice = self.choice(function)
        if choice.chosen is None:
            raise MechanismNotSupported(missing_message(choice, key_label))
        return choice.chosen

    def require_algorithm(self, algorithm: KeyAlgorithm, key_label: str) -> Option:
        """Check a named signing key's algorithm against the profile."""
        return self.require(_NAMED_BY_ALGORITHM[algorithm], key_label)

    def as_dicts(self) -> list[dict[str, object]]:
        """A JSON-ready view."""
        return [choice.as_dict() for choice in self.choices]


def missing_message(choice: Choice, key_label: str) -> str:
    """One line: the function, the key label, the mechanism it needs and what the token lacks."""
    return (
        f"{choice.function.value} (key {key_label!r}) is not possible on this token: "
        f"it needs {choice.blockers}"
    )


def choose_profile(offered: Mapping[str, MechanismSupport]) -> TokenProfile:
    """Pick, per function, the first supported option the token can do."""
    choices: list[Choice] = []
    for function, options in OPTIONS.items():
        possible = [o for o in options if o.missing(offered) is None]
        chosen = next((o for o in possible if o.supported), None)
        alternatives = tuple(o for o in possible if o is not chosen)
        reason = blockers = ""
        if chosen is None:
            blockers = " or ".join(
                f"{o.mechanism} ({o.name}) and {o.missing(offered)}" for o in options if o.supported
            )
            reason = "; ".join(
                f"{o.mechanism} ({o.name}): "
                f"{o.missing(offered) or 'offered, but not yet supported by Sekisho'}"
                for o in options
            )
        choices.append(Choice(function, chosen, alternatives, reason, blockers))
    return TokenProfile(tuple(choices))
