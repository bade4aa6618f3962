"""Every schema → Block Kit mapping row, round-tripped over real HTTP.

One input model holds a field for each row of the README's table. The flow pauses on it,
the bot builds the modal, a person (the sandbox driver) fills it in, Slack's state comes
back to the app, and the flow receives the validated model.
"""

from __future__ import annotations

import enum
import json
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Literal

import pydantic

from signoff.bot.inputs import SlackChannel, SlackUser, SlackUsers
from signoff.bot.testing import running_bot
from signoff.engine import Engine, RunState, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.waiting import wait_for

RECEIVED: list[RunInput] = []


class Region(enum.Enum):
    EU = "eu"
    US = "us"


class Contact(pydantic.BaseModel):
    city: str
    floor: int = 1


class Everything(RunInput):
    title: str = pydantic.Field(min_length=2, max_length=40, description="Short title")
    story: str = pydantic.Field(default="", max_length=2000)
    email: pydantic.EmailStr | None = None
    link: pydantic.AnyUrl | None = None
    count: int = pydantic.Field(ge=1, le=10)
    ratio: float = 0.5
    price: Decimal = Decimal("9.99")
    urgent: bool = False
    size: Literal["s", "m", "l"]
    region: Region = Region.EU
    zone: Literal["a", "b", "c", "d", "e", "f", "g"] = "a"
    tags: list[Literal["x", "y"]] = []
    many: list[Literal["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "b1", "b2"]] = []
    lines: list[str] = []
    day: date
    at: time = time(9, 30)
    when: datetime | None = None
    owner: SlackUser
    room: SlackChannel | None = None
    reviewers: SlackUsers = []
    contact: Contact


@flow
def everything_flow() -> None:
    RECEIVED.append(
        pause_flow_run(wait_for_input=Everything.with_initial_data(title="Initial title", count=3))
    )


def element_types(view: dict) -> dict[str, str]:
    return {b["block_id"]: b["element"]["type"] for b in view["blocks"] if b.get("type") == "input"}


def test_every_mapping_round_trips_through_slack(engine: Engine) -> None:
    RECEIVED.clear()
    with running_bot(engine=engine) as bot:
        run = engine.submit("everything-flow", {})
        prompt = bot.slack.wait_for(lambda ws: ws.channel(bot.channel).last, timeout=10)
        bot.driver.click("alice", prompt, action_id="provide_input")
        view = bot.slack.wait_for(lambda ws: ws.open_view("U0ALICE")).view
        assert element_types(view) == {
            "field:title": "plain_text_input",
            "field:story": "plain_text_input",
            "field:email": "email_text_input",
            "field:link": "url_text_input",
            "field:count": "number_input",
            "field:ratio": "number_input",
            "field:price": "number_input",
            "field:urgent": "checkboxes",
            "field:size": "radio_buttons",
            "field:region": "radio_buttons",
            "field:zone": "static_select",
            "field:tags": "checkboxes",
            "field:many": "multi_static_select",
            "field:lines": "plain_text_input",
            "field:day": "datepicker",
            "field:at": "timepicker",
            "field:when": "datetimepicker",
            "field:owner": "users_select",
            "field:room": "conversations_select",
            "field:reviewers": "multi_users_select",
            "field:contact.city": "plain_text_input",
            "field:contact.floor": "number_input",
        }
        blocks = {b.get("block_id"): b for b in view["blocks"]}
        assert blocks["field:title"]["element"]["initial_value"] == "Initial title"
        assert blocks["field:title"]["hint"]["text"] == "Short title"
        assert blocks["field:count"]["element"]["initial_value"] == "3"
        assert blocks["field:count"]["element"]["min_value"] == "1"
        assert blocks["field:story"]["element"]["multiline"] is True
        assert blocks["field:email"]["optional"] is True
        assert blocks["field:size"]["optional"] is False

        reply = bot.driver.submit(
            "alice",
            {
                "title": "Fix the queue",
                "story": "It was slow.",
                "email": "ops@example.com",
                "link": "https://example.com/runbook",
                "count": 7,
                "ratio": "0.25",
                "price": "12.50",
                "urgent": True,
                "size": "m",
                "region": "us",
                "zone": "f",
                "tags": ["x", "y"],
                "many": ["a2", "b2"],
                "lines": "first\nsecond\n\n",
                "day": date(2026, 12, 24),
                "at": time(17, 45),
                "when": datetime(2026, 12, 24, 8, 0, tzinfo=UTC),
                "owner": "U0BOB",
                "room": "C0GENERAL",
                "reviewers": ["U0BOB", "U0CAROL"],
                "contact.city": "Oslo",
                "contact.floor": 4,
            },
        )
        assert reply.status == 200 and reply.response_action == "update", reply.text
        assert "Answer recorded" in json.dumps(bot.outcome("alice").view)
        wait_for(lambda: engine.get_run(run.id).state is RunState.COMPLETED)
    (received,) = RECEIVED
    assert isinstance(received, Everything)
    assert received.model_dump() == (
        Everything(
            title="Fix the queue",
            story="It was slow.",
            email="ops@example.com",
            link="https://example.com/runbook",
            count=7,
            ratio=0.25,
            price=Decimal("12.50"),
            urgent=True,
            size="m",
            region=Region.US,
            zone="f",
            tags=["x", "y"],
            many=["a2", "b2"],
            lines=["first", "second"],
            day=date(2026, 12, 24),
            at=time(17, 45),
            when=datetime(2026, 12, 24, 8, 0, tzinfo=UTC),
            owner="U0BOB",
            room="C0GENERAL",
            reviewers=["U0BOB", "U0CAROL"],
            contact=Contact(city="Oslo", floor=4),
        ).model_dump()
    )
