"""Nation codes: ISO 3166-1 alpha-3 (from pycountry) and configured coalition codes.

A person's nationality is one ISO 3166-1 alpha-3 code, or empty for none. A
label's REL TO list holds ISO codes and coalition codes (NATO, FVEY, ...); a
coalition expands to its member nations when the label is parsed, so a stored
label names nations only and keeps its meaning if a coalition changes later.
Anything else, such as ``XXX`` or a sports code like ``GER``, is refused with a
message that names the right code where one can be guessed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping

import pycountry

from gateway.policy.errors import LabelError

NATO = (
    "ALB BEL BGR CAN CZE DEU DNK ESP EST FIN FRA GBR GRC HRV HUN ISL "
    "ITA LTU LUX LVA MKD MNE NLD NOR POL PRT ROU SVK SVN SWE TUR USA"
)
FVEY = "AUS CAN GBR NZL USA"
DEFAULT_COALITIONS: dict[str, str] = {"NATO": NATO, "FVEY": FVEY}
COALITION_NAME = re.compile(r"[A-Z][A-Z0-9]{1,15}")

# Codes people type that are not ISO alpha-3 (IOC and other common mistakes).
_COMMON_MISTAKES = {
    "GER": "DEU",
    "NED": "NLD",
    "SUI": "CHE",
    "DEN": "DNK",
    "POR": "PRT",
    "GRE": "GRC",
    "CRO": "HRV",
    "BUL": "BGR",
    "LAT": "LVA",
    "SLO": "SVN",
    "RSA": "ZAF",
    "UAE": "ARE",
    "KSA": "SAU",
    "INA": "IDN",
    "MAS": "MYS",
    "PHI": "PHL",
    "UK": "GBR",
    "ENG": "GBR",
    "USSR": "RUS",
}


class NationError(LabelError):
    """A nationality or REL TO code that is no ISO 3166-1 alpha-3 code or coalition."""


@functools.cache
def iso_alpha3() -> frozenset[str]:
    """Every current ISO 3166-1 alpha-3 code (pycountry's maintained list)."""
    return frozenset(country.alpha_3 for country in pycountry.countries)


def split_codes(text: str) -> tuple[str, ...]:
    """``"FRA, gbr USA"`` -> ``("FRA", "GBR", "USA")`` (commas or spaces between codes)."""
    return tuple(part.upper() for part in re.split(r"[\s,]+", text) if part)


def _country_name(alpha_3: str) -> str:
    country = pycountry.countries.get(alpha_3=alpha_3)
    return str(getattr(country, "common_name", None) or country.name) if country else alpha_3


def _suggestion(code: str) -> str | None:
    """The ISO alpha-3 code someone probably meant by ``code``, if one can be guessed."""
    if code in _COMMON_MISTAKES:
        return _COMMON_MISTAKES[code]
    try:
        return str(pycountry.countries.lookup(code).alpha_3)  # alpha-2, numeric or a name
    except LookupError:
        return None


_REL_TO_SENTENCE = "The countries the document may be released to (REL TO) include a wrong code:"


def not_a_nation(code: str) -> str:
    """A message saying why ``code`` is no nation code, with the likely right one."""
    shown = code if len(code) <= 40 else code[:37] + "..."
    message = f"{shown!r} is not an ISO 3166-1 alpha-3 code"
    if code.upper() == "XXX":
        return message + " ('XXX' means unspecified; a person without a nationality has none)"
    guess = _suggestion(code.upper()) if code.isascii() and len(code) <= 40 else None
    if guess is not None:
        return f"{message}; {_country_name(guess)} is {guess}"
    return message


class NationCodes:
    """ISO 3166-1 alpha-3 codes plus named coalitions, each a set of member nations."""

    def __init__(self, coalitions: Mapping[str, str | Iterable[str]] | None = None) -> None:
        given = DEFAULT_COALITIONS if coalitions is None else coalitions
        iso = iso_alpha3()
        self.coalitions: dict[str, frozenset[str]] = {}
        for raw_name, raw_members in given.items():
            name = raw_name.strip().upper()
            if not COALITION_NAME.fullmatch(name) or name in iso:
                raise NationError(
                    f"coalition name {raw_name!r} must be 2-16 letters and digits and "
                    "no ISO 3166-1 alpha-3 code"
                )
            members = split_codes(
                raw_members if isinstance(raw_members, str) else ",".join(raw_members)
            )
            unknown = [m for m in members if m not in iso]
            if unknown:
                raise NationError(f"coalition {name}: {not_a_nation(unknown[0])}")
            if not members:
                raise NationError(f"coalition {name} has no member nations")
            self.coalitions[name] = frozenset(members)

    def nationality(self, code: str) -> str:
        """A person's nationality: an ISO alpha-3 code in upper case, or "" for none."""
        folded = code.strip().upper()
        if not folded:
            return ""
        if folded in self.coalitions:
            raise NationError(
                f"{folded!r} is a coalition, not a nationality: give the person's own "
                "nation as an ISO 3166-1 alpha-3 code, e.g. FRA"
            )
        if folded not in iso_alpha3():
            raise NationError(not_a_nation(code.strip()))
        return folded

    def releasable_to(self, codes: Iterable[str]) -> frozenset[str]:
        """REL TO codes with coalitions expanded to their members; every code checked."""
        nations: set[str] = set()
        iso = iso_alpha3()
        for code in codes:
            folded = code.strip().upper()
            if folded in self.coalitions:
                nations |= self.coalitions[folded]
            elif folded in iso:
                nations.add(folded)
            else:
                known = ", ".join(sorted(self.coalitions)) or "none are configured"
                raise NationError(
                    f"{_REL_TO_SENTENCE} {not_a_nation(code.strip())}. Give three-letter "
                    f"country codes (such as FRA or USA) or a coalition (coalitions: {known})."
                )
        return frozenset(nations)

    def check_nations(self, codes: Iterable[str]) -> None:
        """Raise NationError unless every code is an ISO alpha-3 code (no coalition)."""
        iso = iso_alpha3()
        for code in codes:
            if code not in iso:
                raise NationError(f"{_REL_TO_SENTENCE} {not_a_nation(code)}.")
