"""Flows for the page's tests: one whose form uses every input element Signoff's form
generator makes, one whose texts hold a word longer than any line, one in Arabic, and one
decision whose buttons' labels are most of a line."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import EmailStr, Field, HttpUrl

from signoff.bot.inputs import SlackChannel, SlackUser, SlackUsers
from signoff.engine import flow, pause_flow_run
from signoff.engine.input import RunInput


class Everything(RunInput):
    title: str = Field(title="Title", description="A short name", min_length=3)
    notes: Annotated[str, Field(json_schema_extra={"multiline": True})] = "first line"
    contact: EmailStr
    site: HttpUrl | None = None
    replicas: int = Field(default=2, ge=1, le=9)
    code: str = Field(default="ABC", pattern=r"^[A-Z]{3}$", title="Code")
    approved: bool = False
    size: Literal["small", "medium", "large"] = "medium"
    region: Literal["eu", "us", "ap", "sa", "af", "me", "oc"] = "eu"
    labels: list[Literal["bug", "feature", "docs"]] = ["bug"]
    teams: list[Literal["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"]] = []
    day: dt.date = dt.date(2026, 12, 1)
    at: dt.time = dt.time(9, 30)
    starts: dt.datetime = dt.datetime(2026, 12, 1, 13, 30, tzinfo=dt.UTC)
    owner: SlackUser
    reviewers: SlackUsers = []
    channel: SlackChannel | None = None


@flow
def everything() -> str:
    answer = pause_flow_run(wait_for_input=Everything)
    return answer.model_dump_json()  # type: ignore[union-attr]


#: One word longer than any line: a URL, a hash, a path someone pasted.
LONG_WORD = "https://example.com/" + "a1b2c3" * 60


class LongWords(RunInput):
    target: str = Field(title=f"Target {LONG_WORD}", description=f"See {LONG_WORD}")


@flow
def long_words() -> str:
    answer = pause_flow_run(
        wait_for_input=LongWords.with_initial_data(description=f"Deploys `{LONG_WORD}`")
    )
    return answer.target  # type: ignore[union-attr]


class RightToLeft(RunInput):
    """A form written in Arabic: the page sets such text right to left, as Slack does."""

    note: str = Field(title="ملاحظة", description="اكتب ملاحظة قصيرة")


@flow(name="right-to-left")
def right_to_left() -> str:
    answer = pause_flow_run(wait_for_input=RightToLeft.with_initial_data(description="مرحبا"))
    return answer.note  # type: ignore[union-attr]


class LongDecision(RunInput):
    """One yes-or-no whose title makes each button's label most of a line."""

    go: bool = Field(title="Roll the release out to every region once the canary is healthy")


@flow(name="long-decision")
def long_decision() -> bool:
    answer = pause_flow_run(wait_for_input=LongDecision)
    return answer.go  # type: ignore[union-attr]
