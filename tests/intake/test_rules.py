"""Red-flag rules on intake answers: every shipped rule fires and stays quiet, and a clinic's
questionnaire and rules are checked field by field."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.errors import InvalidInput
from app.intake.questionnaire import (
    DEFAULT_QUESTIONNAIRE,
    merge_answers,
    missing_required,
    parse_questionnaire,
)
from app.intake.rules import DEFAULT_RULES, NOT_A_DIAGNOSIS, cards_for, parse_rules

QUESTIONNAIRE = parse_questionnaire(DEFAULT_QUESTIONNAIRE)
RULES = parse_rules(DEFAULT_RULES, QUESTIONNAIRE)


def fired(answers: dict[str, Any]) -> list[str]:
    return [card["uuid"] for card in cards_for(RULES, QUESTIONNAIRE, answers)]


# (rule, answers that fire it, answers close to it that must not)
SHIPPED = [
    (
        "chest-pain-breathless",
        {"symptoms": ["Chest pain", "Shortness of breath"]},
        [{"symptoms": ["Chest pain"]}, {"symptoms": ["Shortness of breath", "Cough"]}],
    ),
    (
        "self-harm",
        {"self-harm": True},
        [{"self-harm": False}, {}],
    ),
    (
        "pregnancy-bleeding",
        {"pregnant": True, "pregnancy-bleeding": True},
        [
            {"pregnant": True, "pregnancy-bleeding": False},
            # Not asked when not pregnant: a stale answer to the hidden question does not count.
            {"pregnant": False, "pregnancy-bleeding": True},
        ],
    ),
    ("severe-pain", {"pain": 8}, [{"pain": 7}, {"pain": 0}]),
]


def test_every_shipped_rule_has_a_test():
    assert {rule.id for rule in RULES} == {rule for rule, _, _ in SHIPPED}


@pytest.mark.parametrize(("rule", "fires", "quiet"), SHIPPED, ids=[s[0] for s in SHIPPED])
def test_a_shipped_rule_fires_on_its_answers_and_not_on_others(rule, fires, quiet):
    assert fired(fires) == [rule]
    for answers in quiet:
        assert rule not in fired(answers), answers


def test_pain_of_ten_is_a_warning_and_critical_cards_come_first():
    cards = cards_for(
        RULES, QUESTIONNAIRE, {"pain": 10, "symptoms": ["Chest pain", "Shortness of breath"]}
    )
    assert [c["indicator"] for c in cards] == ["critical", "warning"]
    assert [c["uuid"] for c in cards] == ["chest-pain-breathless", "severe-pain"]


def test_a_card_has_the_cds_hooks_shape_and_says_it_is_not_a_diagnosis():
    (card,) = cards_for(RULES, QUESTIONNAIRE, {"self-harm": True})
    assert set(card) == {"uuid", "summary", "indicator", "detail", "source"}
    assert card["indicator"] == "critical" and card["source"]["label"]
    assert card["detail"].endswith(NOT_A_DIAGNOSIS)
    assert "not a diagnosis" in NOT_A_DIAGNOSIS


def test_required_questions_and_answers_are_checked_by_link_id():
    assert missing_required(QUESTIONNAIRE, {}) == {"reason": "Please answer this question."}
    assert missing_required(QUESTIONNAIRE, {"reason": "Cough"}) == {}
    with pytest.raises(InvalidInput) as bad:
        merge_answers(
            QUESTIONNAIRE, {}, {"pain": 11, "symptoms": ["Toothache"], "nope": "x", "pregnant": "y"}
        )
    assert set(bad.value.fields) == {"pain", "symptoms", "nope", "pregnant"}
    assert bad.value.fields["pain"] == "give a number from 0 to 10"
    merged = merge_answers(QUESTIONNAIRE, {"pain": 3, "reason": "Cough"}, {"pain": None})
    assert merged == {"reason": "Cough"}


def test_a_bad_questionnaire_names_its_fields():
    broken = {
        "resourceType": "Questionnaire",
        "title": "Mine",
        "item": [
            {"linkId": "a", "text": "Pick", "type": "choice"},
            {
                "linkId": "b",
                "text": "When",
                "type": "date",
                "enableWhen": [{"question": "zzz", "operator": "=", "answerString": "x"}],
            },
            {"linkId": "c", "text": "Colour", "type": "colour"},
        ],
    }
    with pytest.raises(InvalidInput) as bad:
        parse_questionnaire(broken)
    fields = bad.value.fields
    assert any(key.startswith("questionnaire.item.0") for key in fields), fields
    assert any(key.startswith("questionnaire.item.2.type") for key in fields), fields


def test_rules_must_name_questions_that_exist():
    rules = [
        {
            "id": "x",
            "when": {"any": [{"linkId": "temperature", "operator": ">=", "value": 39}]},
            "indicator": "warning",
            "summary": "Fever",
        }
    ]
    with pytest.raises(InvalidInput) as bad:
        parse_rules(rules, QUESTIONNAIRE)
    assert bad.value.fields == {"rules.0.when": "no question with linkId temperature"}
    with pytest.raises(InvalidInput) as bad:
        parse_rules([{"id": "y", "when": {}, "indicator": "urgent", "summary": ""}], QUESTIONNAIRE)
    assert {"rules.0.indicator", "rules.0.summary"} <= set(bad.value.fields)


def test_any_and_nested_groups():
    rules = parse_rules(
        [
            {
                "id": "breathless-or-fever-and-pain",
                "when": {
                    "any": [
                        {"linkId": "symptoms", "operator": "=", "value": "Shortness of breath"},
                        {
                            "all": [
                                {"linkId": "symptoms", "operator": "=", "value": "Fever"},
                                {"linkId": "pain", "operator": ">=", "value": 5},
                            ]
                        },
                    ]
                },
                "indicator": "info",
                "summary": "Check",
            }
        ],
        QUESTIONNAIRE,
    )
    assert cards_for(rules, QUESTIONNAIRE, {"symptoms": ["Fever"], "pain": 5})
    assert not cards_for(rules, QUESTIONNAIRE, {"symptoms": ["Fever"], "pain": 4})
    assert cards_for(rules, QUESTIONNAIRE, {"symptoms": ["Shortness of breath"]})
