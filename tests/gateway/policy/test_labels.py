"""Tests for classification labels and clearance dominance."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import BadRequest
from gateway.policy.labels import (
    DEFAULT_LEVELS,
    DEFAULT_SCHEME,
    Clearance,
    Decision,
    Label,
    LabelError,
    LevelScheme,
    dominates,
    format_label,
    highest,
    is_downgrade,
    label_dominates,
    label_within_clearance,
    parse_label,
)
from gateway.policy.nations import iso_alpha3

SCHEME = DEFAULT_SCHEME
LEVELS = list(DEFAULT_LEVELS)
COMPARTMENT_SETS = [frozenset(c) for c in ([], ["A"], ["B"], ["A", "B"])]
REL_TOS: list[frozenset[str] | None] = [
    None,
    frozenset({"USA"}),
    frozenset({"GBR"}),
    frozenset({"GBR", "USA"}),
]
NATIONALITIES = ["USA", "GBR", "FRA"]  # FRA: a nation outside every REL TO

ALL_LABELS = [
    Label(level, comps, rel)
    for level, comps, rel in itertools.product(LEVELS, COMPARTMENT_SETS, REL_TOS)
]
ALL_CLEARANCES = [
    Clearance(level, comps, nation)
    for level, comps, nation in itertools.product(LEVELS, COMPARTMENT_SETS, NATIONALITIES)
]


def oracle(clearance: Clearance, label: Label) -> Decision:
    """Independent statement of the access rule, checked in the documented order."""
    if LEVELS.index(clearance.level) < LEVELS.index(label.level):
        return Decision(False, "level")
    if any(c not in clearance.compartments for c in label.compartments):
        return Decision(False, "compartments")
    if label.releasable_to is not None and clearance.nationality not in label.releasable_to:
        return Decision(False, "releasability")
    return Decision(True, "granted")


def label_oracle(upper: Label, lower: Label) -> bool:
    """``upper`` is at least as restrictive as ``lower``: everyone who may see it may see lower."""
    return all(
        dominates(c, lower, SCHEME).granted
        for c in ALL_CLEARANCES
        if dominates(c, upper, SCHEME).granted
    ) and LEVELS.index(upper.level) >= LEVELS.index(lower.level)


# --- dominance -------------------------------------------------------------------


def test_dominates_matches_oracle_exhaustively() -> None:
    assert len(ALL_LABELS) * len(ALL_CLEARANCES) == 64 * 48
    for clearance in ALL_CLEARANCES:
        for label in ALL_LABELS:
            assert dominates(clearance, label, SCHEME) == oracle(clearance, label), (
                clearance,
                label,
            )


def test_label_within_clearance_matches_oracle() -> None:
    for clearance in ALL_CLEARANCES:
        for label in ALL_LABELS:
            decision = label_within_clearance(label, clearance, SCHEME)
            assert decision.granted == oracle(clearance, label).granted


def test_denial_reason_names_only_the_category() -> None:
    clearance = Clearance("TOP SECRET", frozenset({"ALPHA"}), "USA")
    label = Label("SECRET", frozenset({"ALPHA", "ZULU"}))
    decision = dominates(clearance, label, SCHEME)
    assert decision == Decision(False, "compartments")
    assert "ZULU" not in decision.reason


def test_label_dominance_and_downgrade_match_oracle() -> None:
    # Downgrade-free relabelling must not widen the set of people who may see it.
    for old, new in itertools.product(ALL_LABELS, repeat=2):
        expected = label_oracle(new, old)
        assert label_dominates(new, old, SCHEME) == expected, (old, new)
        assert is_downgrade(old, new, SCHEME) == (not expected), (old, new)


def test_downgrade_examples() -> None:
    def lab(text: str) -> Label:
        return parse_label(text, SCHEME)

    assert is_downgrade(lab("SECRET"), lab("CONFIDENTIAL"), SCHEME)
    assert is_downgrade(lab("SECRET//A"), lab("SECRET//B"), SCHEME)
    assert is_downgrade(lab("SECRET//REL TO USA"), lab("SECRET"), SCHEME)
    assert is_downgrade(lab("SECRET//REL TO USA"), lab("SECRET//REL TO GBR, USA"), SCHEME)
    assert not is_downgrade(lab("SECRET"), lab("SECRET"), SCHEME)
    assert not is_downgrade(lab("SECRET"), lab("TOP SECRET//A//REL TO USA"), SCHEME)


def test_highest_is_least_upper_bound() -> None:
    for a, b in itertools.product(ALL_LABELS, repeat=2):
        rel = (
            a.releasable_to
            if b.releasable_to is None
            else b.releasable_to
            if a.releasable_to is None
            else a.releasable_to & b.releasable_to
        )
        if rel is not None and not rel:
            with pytest.raises(LabelError):
                highest([a, b], SCHEME)
            continue
        top = highest([a, b], SCHEME)
        assert label_dominates(top, a, SCHEME)
        assert label_dominates(top, b, SCHEME)
        for c in ALL_LABELS:
            if label_dominates(c, a, SCHEME) and label_dominates(c, b, SCHEME):
                assert label_dominates(c, top, SCHEME)


def test_highest_examples() -> None:
    labels = [
        parse_label("SECRET//A//REL TO GBR, USA", SCHEME),
        parse_label("CONFIDENTIAL//B//REL TO USA", SCHEME),
        parse_label("UNCLASSIFIED", SCHEME),
    ]
    assert format_label(highest(labels, SCHEME)) == "SECRET//A/B//REL TO USA"
    assert highest([], SCHEME) == Label("UNCLASSIFIED")


def test_unknown_levels_raise() -> None:
    with pytest.raises(LabelError):
        dominates(Clearance("COSMIC", frozenset(), "USA"), Label("SECRET"), SCHEME)
    with pytest.raises(LabelError):
        SCHEME.rank("RESTRICTED")


# --- scheme ----------------------------------------------------------------------


def test_scheme_rank_is_case_insensitive() -> None:
    assert SCHEME.rank("top  secret") == 3
    assert SCHEME.rank("Unclassified") == 0
    assert SCHEME.canonical_level(" secret ") == "SECRET"


def test_custom_scheme_with_compartment_vocabulary() -> None:
    scheme = LevelScheme(("OFFICIAL", "SECRET"), frozenset({"ALPHA"}))
    assert parse_label("secret//alpha", scheme) == Label("SECRET", frozenset({"ALPHA"}))
    with pytest.raises(LabelError, match="unknown compartment"):
        parse_label("SECRET//BRAVO", scheme)
    with pytest.raises(LabelError, match="unknown classification level"):
        parse_label("CONFIDENTIAL", scheme)
    with pytest.raises(LabelError):
        Label.from_dict({"level": "SECRET", "compartments": ["BRAVO"]}, scheme)


@pytest.mark.parametrize(
    "levels",
    [(), ("SECRET", "SECRET"), ("secret",), ("TOP//SECRET",), ("X" * 40,)],
)
def test_bad_schemes_are_rejected(levels: tuple[str, ...]) -> None:
    with pytest.raises(LabelError):
        LevelScheme(levels)


# --- grammar ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("secret", "SECRET"),
        ("Top Secret//bravo/alpha", "TOP SECRET//ALPHA/BRAVO"),
        ("SECRET//REL TO usa,gbr", "SECRET//REL TO GBR, USA"),
        (" SECRET // A / B // REL  TO  GBR , USA ", "SECRET//A/B//REL TO GBR, USA"),
        ("SECRET//REL//REL TO USA", "SECRET//REL//REL TO USA"),
        ("TOP   SECRET", "TOP SECRET"),
    ],
)
def test_parse_canonicalises(text: str, canonical: str) -> None:
    label = parse_label(text, SCHEME)
    assert format_label(label) == canonical
    assert parse_label(canonical, SCHEME) == label


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "RESTRICTED",
        "SECRET//",
        "//A",
        "SECRET//A//",
        "SECRET//A//B",
        "SECRET//A/A",
        "SECRET//A//REL TO USA, USA",
        "SECRET//A/",
        "SECRET///A",
        "SECRET//REL TO",
        "SECRET//REL TO USA,",
        "SECRET//REL TO US",
        "SECRET//REL TO USA1",
        "SECRET//REL TO USA//A",
        "SECRET//A B",
        "SECRET//" + "A" * 33,
        "SECRET//A//REL TO USA//X",
        "SECRET\n",
        "SECR\u0130T",
        "\u017fECRET",
        "SECRET//" + "/".join(f"C{i}" for i in range(65)),
        "SECRET//A" * 200,
    ],
)
def test_malformed_labels_are_rejected(text: str) -> None:
    with pytest.raises(LabelError) as info:
        parse_label(text, SCHEME)
    assert isinstance(info.value, BadRequest)
    assert info.value.code == "invalid_label"
    assert info.value.status == 400


def test_direct_construction_validates_shape() -> None:
    bad_constructions: list[Callable[[], object]] = [
        lambda: Label("secret"),
        lambda: Label("SECRET", frozenset({"a b"})),
        lambda: Label("SECRET", releasable_to=frozenset()),
        lambda: Label("SECRET", releasable_to=frozenset({"usa"})),
        lambda: Clearance("SECRET", frozenset(), "US"),
    ]
    for bad in bad_constructions:
        with pytest.raises(LabelError):
            bad()


names = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=1, max_size=8).filter(
    lambda s: s[0] not in "_-"
)
nations = st.sampled_from(sorted(iso_alpha3()))
labels = st.builds(
    Label,
    st.sampled_from(LEVELS),
    st.frozensets(names, max_size=5),
    st.none() | st.frozensets(nations, min_size=1, max_size=5),
)


@given(labels)
def test_format_parse_round_trip(label: Label) -> None:
    text = format_label(label)
    assert parse_label(text, SCHEME) == label
    assert parse_label(text.lower(), SCHEME) == label
    assert Label.from_dict(label.to_dict(), SCHEME) == label
    assert label.canonical_bytes() == b"sekisho-label-v1:" + text.encode()


@given(labels, labels)
def test_canonical_bytes_are_injective(a: Label, b: Label) -> None:
    assert (a.canonical_bytes() == b.canonical_bytes()) == (a == b)


@settings(max_examples=300)
@given(st.text(max_size=60) | st.text(alphabet="SECRTOPAB/ ,-REL_USAGBR", max_size=40))
def test_random_text_raises_only_label_error(text: str) -> None:
    try:
        label = parse_label(text, SCHEME)
    except LabelError:
        return
    assert parse_label(format_label(label), SCHEME) == label


def test_dict_forms() -> None:
    label = parse_label("SECRET//B/A//REL TO USA, GBR", SCHEME)
    assert label.to_dict() == {
        "level": "SECRET",
        "compartments": ["A", "B"],
        "releasable_to": ["GBR", "USA"],
    }
    clearance = Clearance("SECRET", frozenset({"A"}), "GBR")
    assert Clearance.from_dict(clearance.to_dict(), SCHEME) == clearance
    assert (
        Clearance.from_dict(
            {"level": "secret", "compartments": ["a"], "nationality": "gbr"}, SCHEME
        )
        == clearance
    )
    bad_dicts: list[dict[str, object]] = [
        {"level": 3},
        {"level": "SECRET", "compartments": "A"},
        {"level": "SECRET", "compartments": ["A", "a"]},
        {"level": "SECRET", "releasable_to": []},
        {"level": "SECRET", "extra": 1},
    ]
    for bad_dict in bad_dicts:
        with pytest.raises(LabelError):
            Label.from_dict(bad_dict, SCHEME)
