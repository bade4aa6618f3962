"""Which models a prompt answers with one click: one decision, plus only optional text."""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import BaseModel, Field

from signoff.bot.slack.messages import single_decision


class Approve(BaseModel):
    approved: bool
    comment: str | None = None


class Route(BaseModel):
    route: Literal["canary", "full", "abort"]
    note: str = ""


class Review(BaseModel):
    verdict: Literal["approve", "Approve", "needs_work"]


class Region(BaseModel):
    region: Literal["eu_west", "eu-west"]
    note: str | None = None


class Sized(BaseModel):
    approved: bool
    replicas: int | None = None


class Two(BaseModel):
    approved: bool
    urgent: bool


def test_one_decision_with_optional_text_gets_a_button_per_choice() -> None:
    assert single_decision(Approve.model_json_schema()) == (
        "approved",
        [("Approved: yes", True), ("Approved: no", False)],
    )
    assert single_decision(Route.model_json_schema()) == (
        "route",
        [("Canary", "canary"), ("Full", "full"), ("Abort", "abort")],
    )


class Verdict(enum.StrEnum):
    APPROVE = "approve"
    NEEDS_WORK = "needs_work"


class Triage(BaseModel):
    verdict: Verdict
    comment: str | None = None


def test_an_enum_decision_gets_its_buttons_as_a_literal_does() -> None:
    # Its choices sit in $defs: the prompt offered only "Provide input".
    assert single_decision(Triage.model_json_schema()) == (
        "verdict",
        [("Approve", "approve"), ("Needs work", "needs_work")],
    )
    assert Triage.model_validate({"verdict": "needs_work"}).verdict is Verdict.NEEDS_WORK


def test_choices_that_would_read_alike_get_buttons_labelled_as_written() -> None:
    # As in the form: "Approve" / "Approve" would be two buttons nobody could tell apart.
    assert single_decision(Review.model_json_schema()) == (
        "verdict",
        [("approve", "approve"), ("Approve", "Approve"), ("needs_work", "needs_work")],
    )
    assert single_decision(Region.model_json_schema()) == (
        "region",
        [("eu_west", "eu_west"), ("eu-west", "eu-west")],
    )


def test_anything_a_click_cannot_answer_gets_the_form_only() -> None:
    assert single_decision(Sized.model_json_schema()) is None
    assert single_decision(Two.model_json_schema()) is None


class LongTitle(BaseModel):
    approved: bool = Field(
        title="Approve deploying payments-service release 2026.03.1 to production (eu-west-1)"
    )


def test_a_long_title_gives_way_on_the_buttons_and_yes_and_no_stay() -> None:
    # Cut at Slack's 75 characters, both buttons read the title's first 75 and nothing else.
    field, [(yes, value_yes), (no, value_no)] = single_decision(LongTitle.model_json_schema())
    assert (field, value_yes, value_no) == ("approved", True, False)
    assert yes.endswith("…: yes") and no.endswith("…: no")
    assert yes.startswith("Approve deploying payments-service release 2026.03.1")
    assert len(yes) <= 75 and len(no) <= 75
