"""Custody rule documents (schema, JSON and TOML) and the pure evaluator."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.config import load_settings
from gateway.custody.evaluate import Step, check_step, first_break, overdue
from gateway.custody.rules import RuleError, parse_rule, rule_document, validate_rule
from gateway.errors import ConfigError

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def parts_rule(**changes: Any) -> dict[str, Any]:
    """manufactured -> inspected -> depot -> in-transit (hand-over) -> unit."""
    rule: dict[str, Any] = {
        "name": "spare-parts",
        "match": {"subject": "part:*"},
        "states": [
            {"name": "manufactured", "max_duration": "7d"},
            {"name": "inspected", "max_duration": "48h"},
            "depot",
            {"name": "in-transit", "max_duration": "12h"},
            "unit",
        ],
        "transitions": [
            {"to": "manufactured", "by": ["client:factory"]},
            {"from": "manufactured", "to": "inspected", "by": ["client:inspector"]},
            {"from": "inspected", "to": "depot", "by": ["client:depot-3"]},
            {
                "from": "depot",
                "to": "in-transit",
                "handover": {"giver": ["client:depot-3"], "receiver": ["client:carrier-7"]},
            },
            {"from": "in-transit", "to": "unit", "by": ["client:unit-12"]},
        ],
        "on_violation": "refuse",
    }
    rule.update(changes)
    return rule


TOML_RULE = """
name = "footage"
on_violation = "record-and-alert"
match = { kind = "footage.*" }
states = ["captured", { name = "reviewed", max_duration = "2h" }, "archived"]

[[transitions]]
to = "captured"
by = ["client:drone"]

[[transitions]]
from = "captured"
to = "reviewed"
by = ["person:analyst", "client:review-desk"]

[[transitions]]
from = "reviewed"
to = "archived"
by = ["client:archive"]
"""


def test_json_and_toml_rules_parse_and_round_trip() -> None:
    rule = parse_rule(json.dumps(parts_rule()).encode())
    assert [s.name for s in rule.states][:2] == ["manufactured", "inspected"]
    assert rule.transition(None, "manufactured") is not None
    assert validate_rule(rule_document(rule)) == rule  # the stored form reads back the same
    toml = parse_rule(TOML_RULE.encode(), toml=True)
    assert toml.on_violation == "record-and-alert" and toml.match.kind == "footage.*"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"states": []}, "states"),
        ({"on_violation": "shrug"}, "on_violation"),
        ({"match": {"subject": "a*", "kind": "b"}}, "match"),
        ({"surprise": 1}, "surprise"),
        ({"states": [{"name": "a", "max_duration": "soon"}]}, "states[0]"),
        ({"transitions": [{"to": "nowhere", "by": ["client:x"]}]}, "unknown state"),
        (
            {"transitions": [{"from": "depot", "to": "unit", "by": ["nobody"]}]},
            "transitions[0].by[0]",
        ),
        ({"transitions": [{"from": "depot", "to": "unit"}]}, "'by'"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(json.dumps(parts_rule(**change)).encode())
    assert field in caught.value.message and caught.value.status == 400


def test_bad_syntax_is_a_rule_error() -> None:
    with pytest.raises(RuleError, match="not valid TOML"):
        parse_rule(b"name = ", toml=True)
    with pytest.raises(RuleError, match="not valid JSON"):
        parse_rule(b"{")


RULE = validate_rule(parts_rule())


def step(state: str | None, party: str, hours: float, handover: Any = None) -> Step:
    return Step(state, party, T0 + timedelta(hours=hours), handover)


def test_allowed_transitions_keep_the_rule() -> None:
    steps = [
        step("manufactured", "client:factory", 0),
        step("inspected", "client:inspector", 24),
        step("depot", "client:depot-3", 48),
        step("in-transit", "client:depot-3", 50, ("client:depot-3", "client:carrier-7")),
        step("unit", "client:unit-12", 60),
    ]
    assert first_break([(RULE, s) for s in steps]) is None


@pytest.mark.parametrize(
    ("previous", "new", "code"),
    [
        (None, step("inspected", "client:inspector", 1), "transition_not_allowed"),
        (
            step("manufactured", "client:factory", 0),
            step("depot", "client:depot-3", 1),
            "transition_not_allowed",
        ),
        (
            step("manufactured", "client:factory", 0),
            step("inspected", "client:factory", 1),
            "wrong_party",
        ),
        (
            step("manufactured", "client:factory", 0),
            step("inspected", "client:inspector", 169),
            "out_of_time",
        ),
        (
            step("manufactured", "client:factory", 0),
            step("scrapped", "client:inspector", 1),
            "unknown_state",
        ),
        (
            step("manufactured", "client:factory", 0),
            step(None, "client:inspector", 1),
            "missing_state",
        ),
        (
            step("depot", "client:depot-3", 0),
            step("in-transit", "client:depot-3", 1),
            "handover_required",
        ),
        (
            step("depot", "client:depot-3", 0),
            step("in-transit", "client:depot-3", 1, ("client:depot-3", "client:thief")),
            "handover_party",
        ),
    ],
)
def test_refused_steps_say_why(previous: Step | None, new: Step, code: str) -> None:
    verdict = check_step(RULE, previous, new)
    assert verdict.code == code and verdict.message
    assert verdict.refused(RULE)


def test_record_and_alert_still_refuses_a_missing_hand_over() -> None:
    lenient = validate_rule(parts_rule(on_violation="record-and-alert"))
    wrong = check_step(
        lenient, step("manufactured", "client:factory", 0), step("inspected", "client:factory", 1)
    )
    assert wrong.code == "wrong_party" and not wrong.refused(lenient)
    unsigned = check_step(
        lenient, step("depot", "client:depot-3", 0), step("in-transit", "client:depot-3", 1)
    )
    assert unsigned.refused(lenient)


def test_overdue_is_a_function_of_the_given_time() -> None:
    head = step("inspected", "client:inspector", 0)
    assert overdue(RULE, head, T0 + timedelta(hours=47)) is None
    assert overdue(RULE, head, T0 + timedelta(hours=49)) == timedelta(hours=1)
    assert overdue(RULE, step("depot", "client:depot-3", 0), T0 + timedelta(days=400)) is None
    assert overdue(RULE, step("unit", "client:unit-12", 0), T0 + timedelta(days=400)) is None


def test_first_break_names_the_step() -> None:
    steps = [
        step("manufactured", "client:factory", 0),
        step("inspected", "client:inspector", 1),
        step("unit", "client:unit-12", 2),
    ]
    assert first_break([(RULE, s) for s in steps]) == (2, check_step(RULE, steps[1], steps[2]))


def test_the_overdue_check_interval_is_validated() -> None:
    assert load_settings(environ={}).signing.custody_check_seconds == 60
    environ = {"SEKISHO_SIGNING_CUSTODY_CHECK_SECONDS": "0"}
    assert load_settings(environ=environ).signing.custody_check_seconds == 0
    with pytest.raises(ConfigError, match="custody_check_seconds"):
        load_settings(environ={"SEKISHO_SIGNING_CUSTODY_CHECK_SECONDS": "-1"})
