"""The decision point's label parsing: remembered per text, errors never remembered."""

from __future__ import annotations

import pytest

from gateway.policy.labels import DEFAULT_SCHEME, LabelError, parse_label
from gateway.policy.pdp import PolicyDecisionPoint


def test_the_same_text_gives_the_same_label_as_a_fresh_parse() -> None:
    pdp = PolicyDecisionPoint(DEFAULT_SCHEME)
    text = "secret//logistics//rel to usa, gbr"
    first = pdp.parse(text)
    assert first == parse_label(text, DEFAULT_SCHEME)
    assert pdp.parse(text) is first


def test_a_bad_label_is_refused_every_time() -> None:
    pdp = PolicyDecisionPoint(DEFAULT_SCHEME)
    for _ in range(2):
        with pytest.raises(LabelError):
            pdp.parse("NOT A LEVEL//X")
    with pytest.raises(LabelError):
        pdp.parse(7)  # type: ignore[arg-type]
