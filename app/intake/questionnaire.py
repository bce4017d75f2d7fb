"""A clinic's intake questionnaire, in the shape of a FHIR R4 Questionnaire, and its answers.

Items have a `linkId`, `text` and `type` (string, text, choice, integer, decimal, date, boolean),
may be `required`, a choice lists its `answerOption`s (`valueString`; `repeats` allows several),
a number may carry the standard minValue/maxValue extensions, and an item may be shown only
when one earlier answer says so (`enableWhen`: one question, operator `=`, `exists`, `>=`, `<=`).
Answers are kept as a plain map linkId → value; only answers to enabled items count.
"""

from __future__ import annotations

import json
import math
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.core.errors import InvalidInput

ItemType = Literal["string", "text", "choice", "integer", "decimal", "date", "boolean"]
Answer = str | int | float | bool | list[str]
Answers = dict[str, Answer]
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
MAX_TEXT = 2000
MAX_ITEMS = 60


class AnswerOption(BaseModel):
    model_config = ConfigDict(extra="forbid")

    valueString: str = Field(min_length=1, max_length=200)


class Extension(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Literal[
        "http://hl7.org/fhir/StructureDefinition/minValue",
        "http://hl7.org/fhir/StructureDefinition/maxValue",
    ]
    valueInteger: int | None = None
    valueDecimal: float | None = None


class EnableWhen(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=64)
    operator: Literal["=", "exists", ">=", "<="]
    answerBoolean: bool | None = None
    answerString: str | None = None
    answerInteger: int | None = None
    answerDecimal: float | None = None

    @model_validator(mode="after")
    def _one_answer(self) -> EnableWhen:
        given = [
            v
            for v in (self.answerBoolean, self.answerString, self.answerInteger, self.answerDecimal)
            if v is not None
        ]
        if len(given) != 1:
            raise ValueError("give exactly one answer[x] (answerBoolean for exists)")
        if self.operator == "exists" and self.answerBoolean is None:
            raise ValueError("exists takes answerBoolean")
        return self

    @property
    def answer(self) -> Answer:
        for value in (
            self.answerBoolean,
            self.answerString,
            self.answerInteger,
            self.answerDecimal,
        ):
            if value is not None:
                return value
        raise AssertionError("validated to hold one answer")


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    linkId: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    text: str = Field(min_length=1, max_length=500)
    type: ItemType
    required: bool = False
    repeats: bool = False
    answerOption: list[AnswerOption] | None = Field(default=None, max_length=50)
    enableWhen: list[EnableWhen] | None = Field(default=None, max_length=1)
    extension: list[Extension] | None = Field(default=None, max_length=2)

    @model_validator(mode="after")
    def _options_fit(self) -> Item:
        if self.type == "choice" and not self.answerOption:
            raise ValueError("a choice lists its answerOption")
        if self.type != "choice" and self.answerOption:
            raise ValueError("only a choice has answerOption")
        if self.repeats and self.type != "choice":
            raise ValueError("only a choice repeats")
        if self.extension and self.type not in ("integer", "decimal"):
            raise ValueError("only a number has minValue/maxValue")
        return self

    def options(self) -> list[str]:
        return [o.valueString for o in self.answerOption or []]

    def bound(self, url: str) -> float | None:
        for ext in self.extension or []:
            if ext.url == url:
                value = ext.valueInteger if ext.valueInteger is not None else ext.valueDecimal
                return float(value) if value is not None else None
        return None


class Questionnaire(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resourceType: Literal["Questionnaire"] = "Questionnaire"
    title: str = Field(min_length=1, max_length=200)
    status: Literal["draft", "active", "retired"] = "active"
    item: list[Item] = Field(min_length=1, max_length=MAX_ITEMS)

    @model_validator(mode="after")
    def _links_fit(self) -> Questionnaire:
        seen: dict[str, Item] = {}
        for item in self.item:
            if item.linkId in seen:
                raise ValueError(f"linkId {item.linkId} is used twice")
            for when in item.enableWhen or []:
                if when.question not in seen:
                    raise ValueError(
                        f"{item.linkId}: enableWhen names {when.question}, not an earlier item"
                    )
            seen[item.linkId] = item
        return self

    def items(self) -> dict[str, Item]:
        return {item.linkId: item for item in self.item}


def field_errors(error: ValidationError, prefix: str = "") -> dict[str, str]:
    """Pydantic's errors as the API's field map: "item.3.answerOption" → message."""
    fields: dict[str, str] = {}
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "questionnaire"
        fields[f"{prefix}{where}"] = problem["msg"]
    return fields


def parse_questionnaire(data: object) -> Questionnaire:
    try:
        return Questionnaire.model_validate(data)
    except ValidationError as error:
        raise InvalidInput(
            "The questionnaire is not valid.", fields=field_errors(error, "questionnaire.")
        ) from None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def enabled(item: Item, answers: Answers) -> bool:
    """Whether the item is asked, given the answers so far."""
    for when in item.enableWhen or []:
        given = answers.get(when.question)
        if when.operator == "exists":
            return (given is not None) == when.answer
        if given is None:
            return False
        if when.operator == "=":
            if isinstance(given, list):
                return when.answer in given
            return given == when.answer
        number, target = _number(given), _number(when.answer)
        if number is None or target is None:
            return False
        return number >= target if when.operator == ">=" else number <= target
    return True


def enabled_answers(questionnaire: Questionnaire, answers: Answers) -> Answers:
    """The answers to items that are asked (an answer to a hidden item does not count)."""
    kept: Answers = {}
    for item in questionnaire.item:
        if item.linkId in answers and enabled(item, kept):
            kept[item.linkId] = answers[item.linkId]
    return kept


def check_answer(item: Item, value: object) -> Answer:
    """The answer as stored, or a ValueError saying what is wrong with it."""
    kind = item.type
    if kind in ("string", "text"):
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise ValueError(f"write text of at most {MAX_TEXT} characters")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError("answer yes or no")
        return value
    if kind == "date":
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise ValueError("give a date as YYYY-MM-DD") from None
    if kind in ("integer", "decimal"):
        number = _number(value)
        if number is None or (kind == "integer" and not number.is_integer()):
            raise ValueError("give a whole number" if kind == "integer" else "give a number")
        low, high = item.bound(MIN_VALUE), item.bound(MAX_VALUE)
        if (low is not None and number < low) or (high is not None and number > high):
            raise ValueError(
                f"give a number from {low:g} to {high:g}"
                if low is not None and high is not None
                else "out of range"
            )
        return int(number) if kind == "integer" else number
    options = item.options()
    if item.repeats:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("choose from the list")
        if any(v not in options for v in value):
            raise ValueError("choose from the list")
        return list(dict.fromkeys(value))
    if not isinstance(value, str) or value not in options:
        raise ValueError("choose from the list")
    return value


def merge_answers(
    questionnaire: Questionnaire, saved: Answers, changes: dict[str, object]
) -> Answers:
    """`saved` with `changes` applied (None, a blank text or no choice clears one); bad answers
    are a 400 naming each field."""
    items = questionnaire.items()
    merged = dict(saved)
    fields: dict[str, str] = {}
    for link_id, value in changes.items():
        item = items.get(link_id)
        if item is None:
            fields[link_id] = "no such question"
            continue
        if value is None or value == [] or (isinstance(value, str) and not value.strip()):
            merged.pop(link_id, None)
            continue
        try:
            merged[link_id] = check_answer(item, value)
        except ValueError as error:
            fields[link_id] = str(error)
    if fields:
        raise InvalidInput("Some answers could not be saved.", fields=fields)
    return merged


def missing_required(questionnaire: Questionnaire, answers: Answers) -> dict[str, str]:
    """linkId → message for each required question that is asked and not answered."""
    missing: dict[str, str] = {}
    kept = enabled_answers(questionnaire, answers)
    asked: Answers = {}
    for item in questionnaire.item:
        if not enabled(item, asked):
            continue
        if item.linkId in kept:
            asked[item.linkId] = kept[item.linkId]
        elif item.required:
            missing[item.linkId] = "Please answer this question."
    return missing


def dumps(data: object) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _choice(*options: str) -> list[dict[str, str]]:
    return [{"valueString": option} for option in options]


CHEST_PAIN = "Chest pain"
SHORT_OF_BREATH = "Shortness of breath"

#: The questionnaire every visit type uses until the clinic sets its own.
DEFAULT_QUESTIONNAIRE: dict[str, Any] = {
    "resourceType": "Questionnaire",
    "title": "Before your visit",
    "status": "active",
    "item": [
        {
            "linkId": "reason",
            "text": "What is the main reason for your visit today?",
            "type": "text",
            "required": True,
        },
        {
            "linkId": "symptoms",
            "text": "Do you have any of these symptoms now? (choose all that apply)",
            "type": "choice",
            "repeats": True,
            "answerOption": _choice(
                CHEST_PAIN,
                SHORT_OF_BREATH,
                "Fever",
                "Cough",
                "Headache",
                "Nausea or vomiting",
                "Rash",
                "Dizziness",
            ),
        },
        {
            "linkId": "symptom-duration",
            "text": "How long have you had these symptoms?",
            "type": "choice",
            "answerOption": _choice(
                "Less than a day", "1 to 3 days", "4 to 7 days", "More than a week"
            ),
            "enableWhen": [{"question": "symptoms", "operator": "exists", "answerBoolean": True}],
        },
        {"linkId": "medications", "text": "Which medicines do you take now?", "type": "text"},
        {"linkId": "allergies", "text": "Do you have any allergies? Which?", "type": "text"},
        {"linkId": "pregnant", "text": "Are you pregnant, or could you be?", "type": "boolean"},
        {
            "linkId": "pregnancy-bleeding",
            "text": "Do you have any vaginal bleeding?",
            "type": "boolean",
            "enableWhen": [{"question": "pregnant", "operator": "=", "answerBoolean": True}],
        },
        {
            "linkId": "pain",
            "text": "How strong is your pain right now, from 0 (none) to 10 (the worst)?",
            "type": "integer",
            "extension": [
                {"url": MIN_VALUE, "valueInteger": 0},
                {"url": MAX_VALUE, "valueInteger": 10},
            ],
        },
        {
            "linkId": "self-harm",
            "text": "Are you having thoughts of harming yourself or of ending your life?",
            "type": "boolean",
        },
    ],
}
