"""Every JSON-schema → element rule, driven end to end.

Each test goes model → ``model_json_schema()`` → ``build_input_view`` → (checks on the
element) → what Slack would send back after a person answers → ``parse_submission`` →
JSON-schema validation → ``model_validate``.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field, HttpUrl

from signoff.bot.forms.modals import build_input_view
from signoff.bot.forms.submissions import parse_submission
from signoff.bot.inputs import SlackChannel, SlackChannels, SlackUser, SlackUsers
from signoff.engine.input_schema import input_schema
from tests.bot.slack_answers import element, input_block, roundtrip, slack_state, view_for

# --- text ----------------------------------------------------------------------------------


class Note(BaseModel):
    subject: str = Field(min_length=3, max_length=80, title="Subject", description="Short")
    body: str = Field(default="Looks good", max_length=2000)
    remark: Annotated[str, Field(json_schema_extra={"multiline": True})] = ""
    essay: str | None = Field(default=None, max_length=10_000)


def test_str_is_plain_text_input_with_lengths_and_multiline_rule() -> None:
    view = view_for(Note)
    subject = input_block(view, "subject")
    assert subject["label"]["text"] == "Subject"
    assert subject["hint"]["text"] == "Short"
    assert subject["optional"] is False
    assert subject["element"] == {
        "type": "plain_text_input",
        "action_id": "value",
        "min_length": 3,
        "max_length": 80,
    }
    body = element(view, "body")
    assert body["multiline"] is True  # maxLength > 150
    assert body["initial_value"] == "Looks good"
    assert input_block(view, "body")["optional"] is True
    assert element(view, "remark")["multiline"] is True  # json_schema_extra
    assert "initial_value" not in element(view, "remark")  # "" cannot be prefilled
    assert "max_length" not in element(view, "essay")  # 10000 does not fit Slack's 3000

    answered = roundtrip(Note, {"subject": "Deploy", "essay": "Long\ntext"})
    assert answered == Note(subject="Deploy", essay="Long\ntext")
    # Clearing a defaulted field leaves it out, so the default applies.
    assert roundtrip(Note, {"subject": "Deploy", "body": None}).body == "Looks good"


def test_too_long_initial_text_is_dropped_not_sent() -> None:
    view = view_for(Note, initial={"subject": "x" * 81, "body": "ok"})
    assert "initial_value" not in element(view, "subject")
    assert element(view, "body")["initial_value"] == "ok"


class Contact(BaseModel):
    email: Annotated[str, Field(json_schema_extra={"format": "email"})]
    site: HttpUrl
    backup: HttpUrl | None = None


def test_email_and_url_inputs() -> None:
    view = view_for(Contact, initial={"site": "https://old.example"})
    assert element(view, "email")["type"] == "email_text_input"
    assert element(view, "site") == {
        "type": "url_text_input",
        "action_id": "value",
        "initial_value": "https://old.example",
    }
    assert input_block(view, "backup")["optional"] is True
    result = roundtrip(Contact, {"email": "ann@example.com", "site": "https://x.io/a"})
    assert result == Contact(email="ann@example.com", site=HttpUrl("https://x.io/a"))


class Tagging(BaseModel):
    version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$", examples=["2.4.1", "3.0.0"])]
    replicas: int | None = Field(default=None, examples=[3])
    owner: Annotated[str, Field(json_schema_extra={"format": "email"}, examples=["a@x.io"])]
    notes: str = Field(default="", examples=["y" * 300])
    odd: str = Field(default="", examples=[{"a": 1}, True, "two\nlines"])
    env: Literal["eu", "us"] = Field(default="eu", examples=["us"])


def test_a_fields_first_example_shows_as_its_placeholder() -> None:
    view = view_for(Tagging)

    def placeholder(path: str) -> str | None:
        shown = element(view, path).get("placeholder")
        return shown and shown["text"]

    # Without it, a person learnt the format only from the refusal (the pattern, in regex)
    assert placeholder("version") == "e.g. 2.4.1"
    assert placeholder("replicas") == "e.g. 3"
    assert placeholder("owner") == "e.g. a@x.io"
    notes = placeholder("notes")
    assert notes is not None and len(notes) == 150 and notes.endswith("…")  # Slack's limit
    assert placeholder("odd") is None  # nothing that reads as one line
    assert "placeholder" not in element(view, "env")  # a radio button group has none
    assert roundtrip(Tagging, {"version": "2.4.1", "owner": "b@x.io"}).replicas is None


# --- numbers -------------------------------------------------------------------------------


class Sizing(BaseModel):
    replicas: int = Field(ge=1, lt=10)
    ratio: float = Field(default=0.5, gt=0, le=1)
    budget: Decimal = Field(default=Decimal("12.50"), ge=0)
    limit: int | None = None


def test_numbers_become_number_inputs_with_bounds_as_strings() -> None:
    view = view_for(Sizing)
    assert element(view, "replicas") == {
        "type": "number_input",
        "action_id": "value",
        "is_decimal_allowed": False,
        "min_value": "1",
        "max_value": "9",  # lt=10 on whole numbers
    }
    ratio = element(view, "ratio")
    assert ratio["is_decimal_allowed"] is True
    assert (ratio["min_value"], ratio["max_value"], ratio["initial_value"]) == ("0", "1", "0.5")
    budget = element(view, "budget")  # Decimal: anyOf number/string
    assert (budget["is_decimal_allowed"], budget["min_value"]) == (True, "0")
    assert budget["initial_value"] == "12.50"
    assert "initial_value" not in element(view, "limit")

    result = roundtrip(Sizing, {"replicas": "3", "ratio": "0.25", "budget": "99.95"})
    assert result == Sizing(replicas=3, ratio=0.25, budget=Decimal("99.95"), limit=None)
    assert roundtrip(Sizing, {"replicas": "9", "limit": "0"}).limit == 0


def test_number_initial_out_of_bounds_is_dropped() -> None:
    view = view_for(Sizing, initial={"replicas": 42, "ratio": 0.75})
    assert "initial_value" not in element(view, "replicas")
    assert element(view, "ratio")["initial_value"] == "0.75"


@pytest.mark.parametrize("typed", ["1E-5000", "1E+3000", "1E-999999999", "1E+999999999"])
def test_a_number_too_long_to_write_out_in_an_input_starts_it_empty(typed: str) -> None:
    """A prefill from ``/runs start f budget=1e-5000`` was written out in plain digits: 5,002
    characters, which Slack's client will not submit, so the form could not be sent as it
    opened; ``-1e-999999999`` was a gigabyte, written with the interpreter lock held.
    Left empty, the input answers the prefill, which the answer's check then judges."""
    # as the engine's with_initial_data gives it: the prefill is the field's default
    schema = Sizing.model_json_schema()
    schema["properties"]["budget"]["default"] = typed
    view = build_input_view(
        schema, title="Input needed", callback_id="run_input", private_metadata="r42"
    ).to_dict()
    assert "initial_value" not in element(view, "budget")
    data, errors = parse_submission(schema, slack_state(view, {"replicas": "3"}))
    assert errors == {} and data["budget"] == typed


# --- booleans and choices ------------------------------------------------------------------


class Approval(BaseModel):
    approved: bool
    notify: bool = True


def test_required_boolean_is_a_yes_no_choice_and_never_reads_optional() -> None:
    view = view_for(Approval)
    approved = input_block(view, "approved")
    # A tickbox would have to be optional in Slack, which labels it "(optional)".
    assert approved["element"]["type"] == "radio_buttons"
    assert [(o["text"]["text"], o["value"]) for o in approved["element"]["options"]] == [
        ("Yes", "true"),
        ("No", "false"),
    ]
    assert approved.get("optional", False) is False
    assert "initial_option" not in approved["element"]  # the person must choose
    assert roundtrip(Approval, {"approved": "Yes"}) == Approval(approved=True)
    assert roundtrip(Approval, {"approved": "No"}) == Approval(approved=False)
    prefilled = view_for(Approval, initial={"approved": False})
    assert element(prefilled, "approved")["initial_option"]["value"] == "false"


def test_boolean_with_a_default_is_one_checkbox_that_says_what_unticked_means() -> None:
    view = view_for(Approval)
    notify = input_block(view, "notify")
    assert notify["element"]["type"] == "checkboxes"
    assert [o["value"] for o in notify["element"]["options"]] == ["true"]
    assert notify["optional"] is True  # else Slack would force a tick
    assert notify["hint"]["text"] == "Leave unticked for no."
    assert notify["element"]["initial_options"] == notify["element"]["options"]
    assert roundtrip(Approval, {"approved": "Yes", "notify": []}) == Approval(
        approved=True, notify=False
    )


class ShirtOrder(BaseModel):
    size: Literal["small", "medium", "large", "xlarge"]
    color: Literal["red", "green", "black"]


def test_reference_shirt_order() -> None:
    view = view_for(ShirtOrder)
    size = element(view, "size")
    assert size["type"] == "radio_buttons"
    assert [(o["text"]["text"], o["value"]) for o in size["options"]] == [
        ("Small", "small"),
        ("Medium", "medium"),
        ("Large", "large"),
        ("Xlarge", "xlarge"),
    ]
    assert element(view, "color")["type"] == "radio_buttons"
    result = roundtrip(ShirtOrder, {"size": "Xlarge", "color": "Black"})
    assert result == ShirtOrder(size="xlarge", color="black")
    # A rejected answer comes back as the prefill.
    again = view_for(ShirtOrder, initial=result.model_dump(mode="json"))
    assert element(again, "size")["initial_option"]["value"] == "xlarge"
    assert roundtrip(ShirtOrder, {}, initial=result.model_dump()) == result


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Region(enum.StrEnum):
    EU_WEST = "eu-west"
    US_EAST = "us-east"


class Routing(BaseModel):
    priority: Priority = Priority.HIGH
    region: Region
    tier: Literal["a"] | Literal["b"] = "b"
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "fri"
    level: Literal[1, 2, 3] | None = None


def test_enums_literals_and_const_unions() -> None:
    view = view_for(Routing)
    priority = element(view, "priority")
    assert [(o["text"]["text"], o["value"]) for o in priority["options"]] == [
        ("1", "1"),
        ("2", "2"),
    ]
    assert priority["initial_option"]["value"] == "2"
    assert [o["text"]["text"] for o in element(view, "region")["options"]] == ["Eu west", "Us east"]
    tier = element(view, "tier")
    assert (tier["type"], tier["initial_option"]["value"]) == ("radio_buttons", "b")
    weekday = element(view, "weekday")  # more than 5 options
    assert weekday["type"] == "static_select"
    assert weekday["initial_option"] == {
        "text": {"type": "plain_text", "text": "Fri", "emoji": True},
        "value": "fri",
    }
    assert input_block(view, "level")["optional"] is True

    result = roundtrip(
        Routing, {"priority": "1", "region": "Eu west", "weekday": "Mon", "level": "3"}
    )
    assert result == Routing(priority=Priority.LOW, region=Region.EU_WEST, weekday="mon", level=3)
    assert roundtrip(Routing, {"region": "Us east"}).level is None


class Severity(enum.IntEnum):
    SEV1 = 1
    SEV2 = 2
    LOW = 3


class Triage(BaseModel):
    severity: Severity = Severity.LOW
    also: list[Severity] = []
    maybe: Severity | None = None


def test_an_int_enums_options_read_as_its_names_and_answer_its_members() -> None:
    schema = input_schema(Triage)  # what a pause stores: the names beside the numbers
    view = build_input_view(
        schema, title="Input needed", callback_id="run_input", private_metadata="r42"
    ).to_dict()
    for path in ("severity", "also", "maybe"):
        options = element(view, path)["options"]
        # "1", "2", "3" said nothing of what each meant
        assert [(o["text"]["text"], o["value"]) for o in options] == [
            ("Sev1", "1"),
            ("Sev2", "2"),
            ("Low", "3"),
        ]
    state = slack_state(view, {"severity": "Sev1", "also": ["Sev2", "Low"], "maybe": "Low"})
    data, errors = parse_submission(schema, state)
    assert errors == {}
    assert Triage.model_validate(data) == Triage(
        severity=Severity.SEV1, also=[Severity.SEV2, Severity.LOW], maybe=Severity.LOW
    )


class Lookalikes(BaseModel):
    verdict: Literal["approve", "Approve", "needs_work"]
    env: Literal["eu_west", "eu-west", "us"] = "us"
    tags: list[Literal["high_risk", "high-risk", "low"]] = []
    size: Literal["small", "x_large"] = "small"


def test_choices_that_would_read_alike_read_as_their_values() -> None:
    view = view_for(Lookalikes, initial={"verdict": "Approve"})

    def texts(path: str) -> list[str]:
        return [o["text"]["text"] for o in element(view, path)["options"]]

    # "Approve" twice, "Eu west" twice, "High risk" twice: the whole field reads as written.
    assert texts("verdict") == ["approve", "Approve", "needs_work"]
    assert texts("env") == ["eu_west", "eu-west", "us"]
    assert texts("tags") == ["high_risk", "high-risk", "low"]
    assert texts("size") == ["Small", "X large"]  # no two alike: humanised as before
    assert element(view, "verdict")["initial_option"]["text"]["text"] == "Approve"

    result = roundtrip(Lookalikes, {"verdict": "Approve", "env": "eu-west", "tags": ["high_risk"]})
    assert result == Lookalikes(verdict="Approve", env="eu-west", tags=["high_risk"])


class Runbook(enum.Enum):
    PRIMARY = "Restart the payment service in every region, then page the on-call engineer: primary"
    BACKUP = "Restart the payment service in every region, then page the on-call engineer: backup"
    EAST = f"{'x' * 80}east{'y' * 40}"
    WEST = f"{'x' * 80}west{'y' * 40}"


class LongChoices(BaseModel):
    step: Runbook
    steps: list[Runbook] = []


def test_long_choices_alike_in_their_first_75_characters_still_read_apart() -> None:
    """An option's text holds 75 characters: values alike that far must not all read as
    the same clipped text, which left the person guessing."""
    view = view_for(LongChoices)
    for path in ("step", "steps"):
        texts = [o["text"]["text"] for o in element(view, path)["options"]]
        assert len(set(texts)) == len(texts), texts
        assert all(len(text) <= 75 for text in texts)
    texts = [o["text"]["text"] for o in element(view, "step")["options"]]
    assert texts[0].endswith("engineer: primary") and texts[1].endswith("engineer: backup")
    assert roundtrip(LongChoices, {"step": texts[1]}).step is Runbook.BACKUP
    assert roundtrip(LongChoices, {"step": texts[3]}).step is Runbook.WEST


class Tags(BaseModel):
    labels: list[Literal["bug", "feature", "docs"]] = ["bug"]
    teams: list[Literal["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"]] = Field(
        min_length=1, max_length=3
    )
    regions: list[Region] = []
    notes: list[str] = []


def test_lists_of_choices_and_of_strings() -> None:
    view = view_for(Tags, initial={"notes": ["first", "second"]})
    labels = element(view, "labels")
    assert labels["type"] == "checkboxes"
    assert [o["value"] for o in labels["initial_options"]] == ["bug"]
    teams = input_block(view, "teams")
    assert teams["element"]["type"] == "multi_static_select"  # 12 options > 10 checkboxes
    assert teams["element"]["max_selected_items"] == 3
    assert teams["optional"] is False  # minItems 1
    notes = element(view, "notes")
    assert (notes["type"], notes["multiline"]) == ("plain_text_input", True)
    assert notes["initial_value"] == "first\nsecond"

    result = roundtrip(
        Tags,
        {"labels": [], "teams": ["A", "L"], "regions": ["Us east"], "notes": "  x \n\n y\n"},
    )
    assert result == Tags(labels=[], teams=["a", "l"], regions=[Region.US_EAST], notes=["x", "y"])


# --- dates and times -----------------------------------------------------------------------


class Window(BaseModel):
    day: dt.date
    at: dt.time = dt.time(9, 30)
    starts: dt.datetime = dt.datetime(2025, 1, 31, 13, 30, tzinfo=dt.UTC)
    ends: dt.datetime | None = None


def test_date_time_and_datetime_pickers() -> None:
    initial = {"day": "2025-02-30", "ends": "2025-02-01T08:00:00+01:00"}
    view = view_for(Window, initial=initial)
    assert element(view, "day") == {"type": "datepicker", "action_id": "value"}  # bad date
    assert element(view, "at")["initial_time"] == "09:30"
    assert element(view, "starts")["initial_date_time"] == 1738330200
    assert element(view, "ends")["initial_date_time"] == 1738393200

    answers = {"day": "2025-03-01", "at": "17:05", "starts": 1738400000}
    result = roundtrip(Window, answers, initial=initial)
    assert result == Window(
        day=dt.date(2025, 3, 1),
        at=dt.time(17, 5),
        starts=dt.datetime(2025, 2, 1, 8, 53, 20, tzinfo=dt.UTC),
        ends=dt.datetime(2025, 2, 1, 7, 0, tzinfo=dt.UTC),
    )


class Cooldown(BaseModel):
    wait: dt.timedelta = dt.timedelta(minutes=5)
    grace: dt.timedelta | None = Field(default=None, description="Before paging.")


def test_a_duration_says_how_to_write_one() -> None:
    """ "5 minutes" was refused as "must be a duration", with nothing to say what to type."""
    view = view_for(Cooldown)
    assert element(view, "wait")["initial_value"] == "PT5M"
    assert input_block(view, "wait")["hint"]["text"] == "A duration, as 01:30:00, 2 days or P1DT2H."
    grace = input_block(view, "grace")["hint"]["text"]
    assert grace == "Before paging. A duration, as 01:30:00, 2 days or P1DT2H."
    written = {"wait": "01:30:00", "grace": "2 days"}
    assert roundtrip(Cooldown, written) == Cooldown(
        wait=dt.timedelta(hours=1, minutes=30), grace=dt.timedelta(days=2)
    )
    assert roundtrip(Cooldown, {"wait": "P1DT2H"}).wait == dt.timedelta(days=1, hours=2)


def test_a_moment_slack_cannot_show_in_ten_digits_is_left_out_and_the_modal_opens() -> None:
    # Slack's datetime picker takes 10-digit UNIX seconds only (2001-09-09 01:46:40 UTC on).
    view = view_for(Window, initial={"ends": "2001-09-09T01:46:39Z"})
    assert "initial_date_time" not in element(view, "ends")
    view = view_for(Window, initial={"ends": "2001-09-09T01:46:40Z"})
    assert element(view, "ends")["initial_date_time"] == 1_000_000_000


# --- Slack users and conversations ---------------------------------------------------------


class Handover(BaseModel):
    owner: SlackUser
    reviewers: SlackUsers = ["U0REVIEW1"]
    room: SlackChannel | None = None
    notify: SlackChannels = []


def test_users_and_conversations_pickers() -> None:
    # A prefill no Slack id looks like (a stale model's, or 300 characters) is left out.
    initial = {"room": "not-a-channel", "owner": "U" + "0" * 300, "notify": ["C" + "1" * 300]}
    view = view_for(Handover, initial=initial)
    assert element(view, "owner") == {"type": "users_select", "action_id": "value"}
    assert "initial_conversations" not in element(view, "notify")
    assert element(view, "reviewers")["initial_users"] == ["U0REVIEW1"]
    assert element(view, "reviewers")["type"] == "multi_users_select"
    assert element(view, "room") == {"type": "conversations_select", "action_id": "value"}
    assert element(view, "notify")["type"] == "multi_conversations_select"

    result = roundtrip(Handover, {"owner": "U0OWNER1", "room": "C0ROOM1", "notify": ["D0DM1"]})
    assert result == Handover(
        owner="U0OWNER1", reviewers=["U0REVIEW1"], room="C0ROOM1", notify=["D0DM1"]
    )


# --- nested models -------------------------------------------------------------------------


class Address(BaseModel):
    city: str
    zip_code: str | None = Field(default=None, title="ZIP")


class Shipment(BaseModel):
    """Where the order goes."""

    recipient: str
    address: Address = Field(title="Delivery address")
    billing: Address | None = None
    gift: Address = Address(city="Oslo")


def test_nested_models_are_flattened_under_headings() -> None:
    view = view_for(Shipment)
    headers = [b["text"]["text"] for b in view["blocks"] if b["type"] == "header"]
    assert headers == ["Delivery address", "Billing", "Gift"]
    assert input_block(view, "address.city")["optional"] is False
    assert input_block(view, "address.zip_code")["label"]["text"] == "ZIP"
    assert input_block(view, "billing.city")["optional"] is True  # the whole model may be None
    assert element(view, "gift.city")["initial_value"] == "Oslo"

    result = roundtrip(Shipment, {"recipient": "Ann", "address.city": "Bergen"})
    assert result == Shipment(recipient="Ann", address=Address(city="Bergen"))
    filled = roundtrip(
        Shipment,
        {"recipient": "Ann", "address.city": "Bergen", "billing.city": "Tromsø"},
        initial={"gift": {"city": "Paris", "zip_code": "75001"}},
    )
    assert filled.billing == Address(city="Tromsø")
    assert filled.gift == Address(city="Paris", zip_code="75001")


class Parcel(BaseModel):
    gift: Address = Address(city="Oslo", zip_code="0150")
    billing: Address | None = Address(city="Bergen", zip_code="5003")


def test_a_nested_models_default_fills_in_its_fields_over_their_own_defaults() -> None:
    """A model's default (or ``with_initial_data``'s) is an instance: its values are what
    the form shows, down to fields that have defaults of their own (``zip_code=None``)."""
    view = view_for(Parcel)
    assert element(view, "gift.zip_code")["initial_value"] == "0150"
    assert element(view, "billing.city")["initial_value"] == "Bergen"
    assert element(view, "billing.zip_code")["initial_value"] == "5003"
    assert roundtrip(Parcel, {}) == Parcel()
    assert roundtrip(Parcel, {"gift.zip_code": None}).gift == Address(city="Oslo")
