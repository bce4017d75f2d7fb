"""Red-flag rules: data a clinic can edit, run on a patient's intake answers, giving cards.

A rule is JSON: `{"id", "when", "indicator", "summary", "detail"}` where `when` is
`{"all": [...]}` or `{"any": [...]}` of conditions (or of nested all/any groups), and a
condition is `{"linkId", "operator", "value"}` with operator `=` (a choice that repeats: one of
the chosen), `>=`, `<=` or `exists` (value true/false). Only answers to questions that were asked
count. A card has the CDS Hooks shape (summary, indicator info/warning/critical, detail,
source.label); cards are decision support for the clinician, never a diagnosis, and never stop
the visit.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.core.errors import InvalidInput
from app.intake.questionnaire import (
    CHEST_PAIN,
    SHORT_OF_BREATH,
    Answer,
    Answers,
    Questionnaire,
    enabled_answers,
    field_errors,
)

Indicator = Literal["info", "warning", "critical"]
ORDER: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}
SOURCE_LABEL = "OpenConsult intake red-flag rules"
NOT_A_DIAGNOSIS = "Decision support from the patient's intake answers, not a diagnosis."
MAX_RULES = 50


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    linkId: str = Field(min_length=1, max_length=64)
    operator: Literal["=", ">=", "<=", "exists"]
    value: str | bool | int | float

    @model_validator(mode="after")
    def _value_fits(self) -> Condition:
        if self.operator == "exists" and not isinstance(self.value, bool):
            raise ValueError("exists takes true or false")
        if self.operator in (">=", "<=") and (
            isinstance(self.value, bool) or not isinstance(self.value, int | float)
        ):
            raise ValueError(f"{self.operator} compares with a number")
        return self

    def links(self) -> list[str]:
        return [self.linkId]

    def holds(self, answers: Answers) -> bool:
        given = answers.get(self.linkId)
        if self.operator == "exists":
            return (given is not None) == self.value
        if given is None:
            return False
        if self.operator == "=":
            return self.value in given if isinstance(given, list) else _same(given, self.value)
        if isinstance(given, bool) or not isinstance(given, int | float):
            return False
        target = float(self.value)
        return given >= target if self.operator == ">=" else given <= target


def _same(given: Answer, value: object) -> bool:
    if isinstance(given, bool) or isinstance(value, bool):
        return given is value
    return given == value


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid")

    all: list[Condition | Group] | None = Field(default=None, min_length=1, max_length=20)
    any: list[Condition | Group] | None = Field(default=None, min_length=1, max_length=20)

    @model_validator(mode="after")
    def _one_kind(self) -> Group:
        if (self.all is None) == (self.any is None):
            raise ValueError("give either all or any")
        return self

    def links(self) -> list[str]:
        return [link for part in (self.all or self.any or []) for link in part.links()]

    def holds(self, answers: Answers) -> bool:
        if self.all is not None:
            return all(part.holds(answers) for part in self.all)
        return any(part.holds(answers) for part in self.any or [])


Group.model_rebuild()


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    when: Group
    indicator: Indicator
    summary: str = Field(min_length=1, max_length=140)  # CDS Hooks: under 140 characters
    detail: str = Field(default="", max_length=2000)


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[Rule] = Field(max_length=MAX_RULES)


def parse_rules(data: object, questionnaire: Questionnaire) -> list[Rule]:
    """The rules, checked on their own and against the questionnaire's linkIds."""
    try:
        rules = RuleSet.model_validate({"rules": data}).rules
    except ValidationError as error:
        raise InvalidInput(
            "The red-flag rules are not valid.", fields=field_errors(error)
        ) from None
    links = questionnaire.items()
    fields: dict[str, str] = {}
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        if rule.id in seen:
            fields[f"rules.{index}.id"] = f"the id {rule.id} is used twice"
        seen.add(rule.id)
        unknown = [link for link in rule.when.links() if link not in links]
        if unknown:
            fields[f"rules.{index}.when"] = f"no question with linkId {', '.join(unknown)}"
    if fields:
        raise InvalidInput("The red-flag rules are not valid.", fields=fields)
    return rules


def card(rule: Rule) -> dict[str, Any]:
    """The rule's card in CDS Hooks shape; its detail says it is decision support."""
    detail = f"{rule.detail} {NOT_A_DIAGNOSIS}".strip()
    return {
        "uuid": rule.id,
        "summary": rule.summary,
        "indicator": rule.indicator,
        "detail": detail,
        "source": {"label": SOURCE_LABEL},
    }


def cards_for(
    rules: list[Rule], questionnaire: Questionnaire, answers: Answers
) -> list[dict[str, Any]]:
    """The cards whose rule holds on the asked answers, critical first (then the rules' order)."""
    asked = enabled_answers(questionnaire, answers)
    fired = [rule for rule in rules if rule.when.holds(asked)]
    fired.sort(key=lambda rule: ORDER[rule.indicator])
    return [card(rule) for rule in fired]


#: The rules every clinic starts with; each has a question in the default questionnaire.
DEFAULT_RULES: list[dict[str, Any]] = [
    {
        "id": "chest-pain-breathless",
        "when": {
            "all": [
                {"linkId": "symptoms", "operator": "=", "value": CHEST_PAIN},
                {"linkId": "symptoms", "operator": "=", "value": SHORT_OF_BREATH},
            ]
        },
        "indicator": "critical",
        "summary": "Chest pain with shortness of breath",
        "detail": "The patient reports chest pain and shortness of breath. Consider seeing them "
        "first and whether they need emergency care in person.",
    },
    {
        "id": "self-harm",
        "when": {"all": [{"linkId": "self-harm", "operator": "=", "value": True}]},
        "indicator": "critical",
        "summary": "Thoughts of self-harm or suicide",
        "detail": "The patient reports thoughts of harming themselves or ending their life. "
        "Assess their safety early in the visit.",
    },
    {
        "id": "pregnancy-bleeding",
        "when": {
            "all": [
                {"linkId": "pregnant", "operator": "=", "value": True},
                {"linkId": "pregnancy-bleeding", "operator": "=", "value": True},
            ]
        },
        "indicator": "critical",
        "summary": "Bleeding in pregnancy",
        "detail": "The patient may be pregnant and reports vaginal bleeding. Consider whether "
        "they need urgent in-person assessment.",
    },
    {
        "id": "severe-pain",
        "when": {"all": [{"linkId": "pain", "operator": ">=", "value": 8}]},
        "indicator": "warning",
        "summary": "Severe pain (8 or more out of 10)",
        "detail": "The patient rates their pain at 8 or more out of 10.",
    },
]
