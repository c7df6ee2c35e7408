"""REL TO and nationalities: ISO 3166-1 alpha-3 codes, coalitions, and people without one.

Issue #14: ``REL TO XXX`` released to every person without a nationality (the
decision point stood in ``XXX`` for them) and any three letters were taken as a
nationality. Now a person without a nationality is in no REL TO list, and every
code is an ISO 3166-1 alpha-3 code or, in labels, a configured coalition.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.auth.identity import Identity
from gateway.config import Coalition, Settings, load_settings
from gateway.errors import ConfigError
from gateway.policy.labels import (
    DEFAULT_SCHEME,
    Clearance,
    Label,
    LabelError,
    dominates,
    format_label,
    parse_label,
)
from gateway.policy.nations import FVEY, NationCodes, iso_alpha3
from gateway.policy.pdp import PolicyDecisionPoint
from gateway.policy.scheme import node_scheme


def reader(nationality: str) -> Identity:
    return Identity(
        kind="person",
        name="p",
        roles=frozenset({"reader"}),
        level="TOP SECRET",
        nationality=nationality,
    )


def test_a_person_without_a_nationality_is_in_no_rel_to_list() -> None:
    pdp = PolicyDecisionPoint(DEFAULT_SCHEME)
    for label in ("SECRET//REL TO XXX", "SECRET//REL TO USA", "SECRET//REL TO NATO"):
        assert not pdp.may_read(reader(""), label).granted, label
    assert pdp.may_read(reader(""), "SECRET").granted
    assert pdp.may_read(reader("USA"), "SECRET//REL TO USA").granted
    # also when a label is built directly, not parsed
    assert not dominates(
        Clearance("SECRET", frozenset(), ""),
        Label("SECRET", frozenset(), frozenset({"USA"})),
        DEFAULT_SCHEME,
    ).granted


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("SECRET//REL TO XXX", "'XXX' is not an ISO 3166-1 alpha-3 code"),
        ("SECRET//REL TO GER", "Germany is DEU"),
        ("SECRET//REL TO USA, UK", "United Kingdom is GBR"),
        ("SECRET//REL TO ZZZ", "not an ISO 3166-1 alpha-3 code"),
        ("SECRET//REL TO QMA", "not an ISO 3166-1 alpha-3 code"),  # user-assigned range
        ("SECRET//REL TO NATOX", "coalitions: FVEY, NATO"),
    ],
)
def test_rel_to_codes_are_iso_or_coalitions(text: str, fragment: str) -> None:
    with pytest.raises(LabelError) as refused:
        parse_label(text, DEFAULT_SCHEME)
    assert fragment in refused.value.message


def test_rel_to_error_is_a_sentence_a_person_understands() -> None:
    with pytest.raises(LabelError) as refused:
        parse_label("SECRET//REL TO GER", DEFAULT_SCHEME)
    message = str(refused.value)
    assert message[0].isupper() and message.endswith(".")
    assert "countries the document may be released to" in message
    assert not message.startswith("REL TO:")


def test_a_coalition_in_a_label_expands_to_its_members() -> None:
    label = parse_label("secret//rel to fvey", DEFAULT_SCHEME)
    assert label.releasable_to == frozenset(FVEY.split())
    assert format_label(label) == "SECRET//REL TO AUS, CAN, GBR, NZL, USA"
    nato = parse_label("SECRET//REL TO NATO, JPN", DEFAULT_SCHEME)
    assert {"DEU", "FRA", "JPN", "USA", "SWE"} <= (nato.releasable_to or set())
    assert "AUS" not in (nato.releasable_to or set())
    pdp = PolicyDecisionPoint(DEFAULT_SCHEME)
    assert pdp.may_read(reader("NZL"), "SECRET//REL TO FVEY").granted
    assert not pdp.may_read(reader("DEU"), "SECRET//REL TO FVEY").granted
    assert (
        Label.from_dict(
            {"level": "SECRET", "compartments": [], "releasable_to": ["fvey"]}, DEFAULT_SCHEME
        )
        == label
    )


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("XXX", "'XXX' is not an ISO 3166-1 alpha-3 code"),
        ("GER", "Germany is DEU"),
        ("de", "Germany is DEU"),
        ("NATO", "is a coalition, not a nationality"),
        ("U5A", "not an ISO 3166-1 alpha-3 code"),
    ],
)
def test_nationalities_are_iso_codes(code: str, fragment: str) -> None:
    with pytest.raises(LabelError) as refused:
        NationCodes().nationality(code)
    assert fragment in refused.value.message


def test_every_current_iso_code_is_a_nationality() -> None:
    nations = NationCodes()
    assert len(iso_alpha3()) >= 249
    assert all(nations.nationality(code.lower()) == code for code in iso_alpha3())
    assert nations.nationality("") == ""


def test_coalitions_are_a_setting() -> None:
    nordic = '[{"name": "NORDIC", "members": "DNK FIN ISL NOR SWE"}]'
    settings = load_settings(None, {"SEKISHO_CLEARANCE_COALITIONS": nordic})
    assert settings.clearance.coalitions == (Coalition("NORDIC", "DNK FIN ISL NOR SWE"),)
    scheme = node_scheme(settings)
    assert parse_label("SECRET//REL TO NORDIC", scheme).releasable_to == frozenset(
        {"DNK", "FIN", "ISL", "NOR", "SWE"}
    )
    with pytest.raises(LabelError, match="coalitions: NORDIC"):
        parse_label("SECRET//REL TO NATO", scheme)  # replaced, not added to
    assert node_scheme(Settings()).nations.coalitions.keys() == {"NATO", "FVEY"}


@pytest.mark.parametrize(
    "value",
    [
        '[{"name": "EU", "members": "FRA GER"}]',  # a member that is no ISO code
        '[{"name": "FRA", "members": "FRA"}]',  # a name that is an ISO code
        '[{"name": "EMPTY", "members": ""}]',
    ],
)
def test_bad_coalitions_are_refused_at_start(value: str) -> None:
    with pytest.raises(ConfigError, match=r"clearance\.coalitions"):
        load_settings(None, {"SEKISHO_CLEARANCE_COALITIONS": value})


CODES = st.text(max_size=12) | st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=4
)


def _message_or_code(check: Callable[[], object]) -> object:
    """The result, or the message of the LabelError (nothing else may be raised)."""
    try:
        return check()
    except LabelError as exc:
        return exc.message


@settings(max_examples=300, deadline=None)
@given(CODES)
def test_any_text_is_a_code_or_a_label_error(text: str) -> None:
    nations = NationCodes()
    found = _message_or_code(lambda: nations.nationality(text))
    assert found in iso_alpha3() | {""} or "not" in str(found)
    expanded = _message_or_code(lambda: nations.releasable_to([text]))
    assert isinstance(expanded, str) or expanded <= iso_alpha3()  # type: ignore[operator]
