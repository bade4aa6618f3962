from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Annotated, Any, Literal

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, Field, NaiveDatetime, ValidationError

from signoff.bot.forms.modals import build_input_view
from signoff.bot.forms.submissions import errors_for_view, parse_submission
from signoff.engine import schema_errors
from signoff.engine.input import RunInput
from signoff.engine.input_schema import input_schema
from tests.bot.slack_answers import element, input_block, slack_state, view_for
from tests.bot.test_modal_elements import (
    Address,
    Approval,
    ShirtOrder,
    Sizing,
    Tags,
    Window,
)


def number_state(value: Any) -> dict[str, Any]:
    return {"value": {"type": "number_input", "value": value}}


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("abc", "Enter a number"),
        ("2.5", "Enter a whole number"),
        ("NaN", "Enter a number"),
        # What Decimal reads, but Slack's number input never sends (a forged submission):
        ("1_0", "Enter a number"),
        ("\u0663", "Enter a number"),  # ARABIC-INDIC DIGIT THREE
        ("\uff15", "Enter a number"),  # FULLWIDTH DIGIT FIVE
    ],
)
def test_unreadable_numbers_come_back_keyed_by_block_id(typed: str, message: str) -> None:
    schema = Sizing.model_json_schema()
    state = {"field:replicas": number_state(typed), "field:ratio": number_state("x")}
    data, errors = parse_submission(schema, state)
    assert errors == {"field:replicas": message, "field:ratio": "Enter a number"}
    assert "replicas" not in data
    assert "ratio" not in data


def test_a_number_past_what_a_float_holds_is_refused_in_the_modal() -> None:
    schema = Sizing.model_json_schema()
    for typed in ("1e400", "-2e308", "9" * 400):
        data, errors = parse_submission(schema, {"field:ratio": number_state(typed)})
        assert (data.get("ratio"), errors) == (None, {"field:ratio": "Enter a smaller number"})
    data, errors = parse_submission(schema, {"field:ratio": number_state("1e300")})
    assert (data["ratio"], errors) == (10**300, {})  # the model's bounds judge it next


def test_a_number_closer_to_zero_than_a_float_holds_is_refused_not_read_as_zero() -> None:
    schema = Sizing.model_json_schema()
    for typed in ("1e-400", "-1e-999999"):
        data, errors = parse_submission(schema, {"field:ratio": number_state(typed)})
        assert (data.get("ratio"), errors) == (
            None,
            {"field:ratio": "Enter a number further from zero"},
        )
    data, errors = parse_submission(schema, {"field:ratio": number_state("1e-300")})
    assert (data["ratio"], errors) == (1e-300, {})
    data, errors = parse_submission(schema, {"field:ratio": number_state("0.0")})
    assert (data["ratio"], errors) == (0, {})


def test_numbers_too_long_to_write_out_are_refused_in_the_modal_at_once() -> None:
    """1e999999 as an integer is a million digits: refused by its size, not written out
    (that took 30 s, past Slack's 3 s), and never 'something went wrong'."""
    schema = Sizing.model_json_schema()
    for field, typed, message in [
        ("replicas", "1e999999", "Enter a smaller number"),
        ("replicas", "1e5000", "Enter a smaller number"),
        ("replicas", "9" * 4301, "Enter a smaller number"),
        ("budget", "1e999999", "Enter a smaller number"),
        ("budget", "1e-999999", "Enter fewer decimal places"),
    ]:
        data, errors = parse_submission(schema, {f"field:{field}": number_state(typed)})
        assert (data.get(field), errors) == (None, {f"field:{field}": message}), typed
    data, errors = parse_submission(schema, {"field:replicas": number_state("1e4000")})
    assert (data["replicas"], errors) == (10**4000, {})  # the model's bounds judge it next


def test_a_moment_no_calendar_holds_is_refused_in_the_modal() -> None:
    schema = Window.model_json_schema()
    for sent in (10**12, -(10**12), 2**63, "soon"):
        state = {"field:starts": {"value": {"type": "datetimepicker", "selected_date_time": sent}}}
        data, errors = parse_submission(schema, state)
        assert errors == {"field:starts": "Choose a date and time between the years 1 and 9999"}
        assert "starts" not in data


def test_a_tickbox_option_that_was_not_offered_is_refused() -> None:
    schema = Approval.model_json_schema()

    def ticked(*values: str) -> dict[str, Any]:
        options = [{"text": {"type": "plain_text", "text": "Yes"}, "value": v} for v in values]
        return {"field:notify": {"value": {"type": "checkboxes", "selected_options": options}}}

    assert parse_submission(schema, ticked("true"))[0]["notify"] is True
    data, errors = parse_submission(schema, ticked("no-thanks"))
    assert ("notify" not in data, errors) == (
        True,
        {"field:notify": "Tick the box or leave it empty"},
    )


class Server(BaseModel):
    host: str
    port: int = 80


class Deploy(BaseModel):
    target: Server | None = None


def test_an_optional_group_left_with_only_its_defaults_is_not_given() -> None:
    """Its host and port start empty (the group starts as None, so its port's default is
    not shown as though it were an answer): sent as opened, the group is None, as it was,
    not a Server without a host that the form refuses."""
    schema = Deploy.model_json_schema()
    view = view_for(Deploy)
    data, errors = parse_submission(schema, slack_state(view, {}))
    assert (data.get("target"), errors) == (None, {})
    assert Deploy.model_validate(data) == Deploy()
    data, errors = parse_submission(schema, slack_state(view, {"target.host": "db1"}))
    assert Deploy.model_validate(data) == Deploy(target=Server(host="db1"))


def test_missing_null_and_empty_states_are_all_empty() -> None:
    schema = Tags.model_json_schema()
    empty: dict[str, Any] = {
        "field:labels": {"value": {"type": "checkboxes", "selected_options": []}},
        "field:teams": {"value": {"type": "multi_static_select", "selected_options": None}},
        "field:notes": {"value": {"type": "plain_text_input", "value": None}},
    }
    data, errors = parse_submission(schema, empty)
    assert errors == {}
    # Lists are always sent: clearing a prefilled list must not bring the default back.
    assert data == {"labels": [], "teams": [], "regions": [], "notes": []}
    # A required bool is a yes/no choice (left out when unanswered); a tickbox is sent.
    assert parse_submission(Approval.model_json_schema(), {}) == ({"notify": False}, {})
    number = parse_submission(Sizing.model_json_schema(), {"field:limit": number_state("")})
    assert number == ({}, {})


def test_stale_option_is_an_error_not_a_guess() -> None:
    state: dict[str, Any] = {
        "field:size": {
            "value": {
                "type": "radio_buttons",
                "selected_option": {"text": {"type": "plain_text", "text": "XXL"}, "value": "xxl"},
            }
        }
    }
    data, errors = parse_submission(ShirtOrder.model_json_schema(), state)
    assert errors == {"field:size": "Choose one of the options"}
    assert data == {}


def test_times_and_datetimes_are_iso_strings() -> None:
    state: dict[str, Any] = {
        "field:day": {"value": {"type": "datepicker", "selected_date": "2025-01-31"}},
        "field:at": {"value": {"type": "timepicker", "selected_time": "07:05"}},
        "field:starts": {"value": {"type": "datetimepicker", "selected_date_time": 1738330200}},
        "field:ends": {"value": {"type": "datetimepicker", "selected_date_time": None}},
    }
    data, errors = parse_submission(Window.model_json_schema(), state)
    assert (data, errors) == (
        {"day": "2025-01-31", "at": "07:05:00", "starts": "2025-01-31T13:30:00Z"},
        {},
    )
    assert Window.model_validate(data).starts == dt.datetime(2025, 1, 31, 13, 30, tzinfo=dt.UTC)


class Review(RunInput):
    note: str | None = None
    score: int | None = Field(default=None, ge=1, le=5)


def test_emptying_a_prefilled_optional_input_answers_none_not_the_prefill() -> None:
    """The person saw the box empty when they submitted; the model has a value for that
    (None), so the prefill must not come back in its place."""
    model = Review.with_initial_data(note="LGTM", score=4)
    schema = input_schema(model)
    view = view_for(model)
    assert (element(view, "note")["initial_value"], element(view, "score")["initial_value"]) == (
        "LGTM",
        "4",
    )
    data, errors = parse_submission(schema, slack_state(view, {"note": None, "score": None}))
    assert (data, errors) == ({"note": None, "score": None}, {})
    assert schema_errors(schema, data) == {}
    assert model.model_validate(data).model_dump() == {"note": None, "score": None}
    untouched, _ = parse_submission(schema, slack_state(view, {}))
    assert model.model_validate(untouched).model_dump() == {"note": "LGTM", "score": 4}


class Fleet(RunInput):
    hosts: list[str] | None = None
    zones: list[Literal["eu", "us"]] | None = None
    tags: list[str] | None = Field(default_factory=list)


def test_emptying_a_prefilled_optional_list_answers_none_as_an_emptied_box_does() -> None:
    # hosts=None reads "leave the hosts alone" to many flows; emptied, the list answered
    # [] ("remove every host") where an emptied optional text box answers None.
    model = Fleet.with_initial_data(hosts=["a", "b"], zones=["eu"])
    schema = input_schema(model)
    view = view_for(model)
    assert element(view, "hosts")["initial_value"] == "a\nb"
    emptied = {"hosts": None, "zones": []}
    data, errors = parse_submission(schema, slack_state(view, emptied))
    assert errors == {}
    assert model.model_validate(data).model_dump() == {"hosts": None, "zones": None, "tags": []}
    # A list that showed empty ([] by default) and was left so stays [].
    untouched, _ = parse_submission(schema, slack_state(view, {}))
    assert model.model_validate(untouched).model_dump() == {
        "hosts": ["a", "b"],
        "zones": ["eu"],
        "tags": [],
    }


class Survey(BaseModel):
    agreed: bool | None = None
    comment: str | None = ""
    notes: list[str] | None = None
    labels: list[Literal["a", "b"]] | None = None


def test_a_form_of_defaults_submitted_untouched_gives_the_defaults() -> None:
    """Nobody chose "No", so the flow must not get it; an empty box shows "" and gives it
    back; a list that starts as None stays None rather than becoming []."""
    schema = input_schema(Survey)
    view = view_for(Survey)
    agreed = element(view, "agreed")
    assert agreed["type"] == "radio_buttons" and "initial_option" not in agreed
    assert [o["text"]["text"] for o in agreed["options"]] == ["Yes", "No"]
    assert input_block(view, "agreed")["optional"] is True
    data, errors = parse_submission(schema, slack_state(view, {}))
    assert errors == {}
    assert Survey.model_validate(data) == Survey()
    assert Survey.model_validate(data).model_dump() == {
        "agreed": None,
        "comment": "",
        "notes": None,
        "labels": None,
    }
    chosen = {"agreed": "No", "comment": "fine", "notes": "x", "labels": ["B"]}
    data, _ = parse_submission(schema, slack_state(view, chosen))
    assert Survey.model_validate(data) == Survey(
        agreed=False, comment="fine", notes=["x"], labels=["b"]
    )


class Shift(BaseModel):
    starts: NaiveDatetime
    ends: NaiveDatetime | None = None


def test_a_naive_datetime_is_answered_in_utc_without_a_zone() -> None:
    """Slack's picker gives a moment, which datetimes take in UTC; a ``NaiveDatetime``
    refuses a zone, so it gets the same UTC time without one (every answer was refused)."""
    schema = input_schema(Shift)  # what a pause stores, with the model's time zone rule
    state = {
        "field:starts": {"value": {"type": "datetimepicker", "selected_date_time": 1738330200}}
    }
    data, errors = parse_submission(schema, state)
    assert (data, errors) == ({"starts": "2025-01-31T13:30:00"}, {})
    assert schema_errors(schema, data) == {}
    assert Shift.model_validate(data) == Shift(starts=dt.datetime(2025, 1, 31, 13, 30))


class Invoice(BaseModel):
    note: str | None
    billing: Address | None
    shipping: Address | None = None


def test_required_nullable_fields_and_models_become_none() -> None:
    schema = Invoice.model_json_schema()
    view = view_for(Invoice)
    data, errors = parse_submission(schema, slack_state(view, {}))
    assert (data, errors) == ({"note": None, "billing": None}, {})
    Draft202012Validator(schema).validate(data)
    assert Invoice.model_validate(data) == Invoice(note=None, billing=None)


def test_half_filled_optional_model_is_sent_so_validation_can_point_at_the_gap() -> None:
    schema = Invoice.model_json_schema()
    state = slack_state(view_for(Invoice), {"shipping.zip_code": "0150"})
    data, errors = parse_submission(schema, state)
    assert errors == {}
    assert data == {"note": None, "billing": None, "shipping": {"zip_code": "0150"}}
    with pytest.raises(ValidationError) as caught:
        Invoice.model_validate(data)
    field_errors = {".".join(map(str, e["loc"])): e["msg"] for e in caught.value.errors()}
    assert errors_for_view(schema, field_errors) == {"field:shipping.city": "Field required"}


class Order(BaseModel):
    size: str
    tags: list[str] = []
    address: Address = Field(default_factory=lambda: Address(city="Oslo"))


def test_errors_for_view_places_every_error_on_an_input_block() -> None:
    schema = Order.model_json_schema()
    errors = errors_for_view(
        schema,
        {
            "size": "Too big",
            "tags.2": "Too long",
            "address.city": "Unknown city",
            "address": "Address is incomplete",
            "": "Order cannot ship today",
            "no.such.field": "Odd",
        },
    )
    assert errors == {
        "field:size": "Too big; Order cannot ship today; Odd",
        "field:tags": "item 3: Too long",
        "field:address.city": "Unknown city; Address is incomplete",
    }
    assert errors_for_view({"type": "object", "properties": {}}, {"": "x"}) == {}


class Pool(BaseModel):
    hosts: set[str] = Field(min_length=2)


def test_a_line_repeated_in_a_set_counts_once_as_the_model_counts_it() -> None:
    """A set takes a repeated item once; the form must not refuse what the model takes."""
    schema = input_schema(Pool)
    view = view_for(Pool)
    data, errors = parse_submission(schema, slack_state(view, {"hosts": "db1\ndb2\n db1"}))
    assert (data, errors) == ({"hosts": ["db1", "db2"]}, {})
    assert schema_errors(schema, data) == {}
    assert Pool.model_validate(data) == Pool(hosts={"db1", "db2"})
    data, _ = parse_submission(schema, slack_state(view, {"hosts": "db1\ndb1"}))
    assert list(schema_errors(schema, data)) == ["hosts"]  # one host, where two are needed


class Hosts(BaseModel):
    names: list[Annotated[str, Field(max_length=8)]]


def test_an_error_about_one_item_of_a_list_says_which() -> None:
    """One input holds the whole list; without its number, the person must guess which
    of their lines is too long."""
    schema = input_schema(Hosts)
    data, _ = parse_submission(
        schema, slack_state(view_for(Hosts), {"names": "db1\nweb-frontend-1\ndb2"})
    )
    assert errors_for_view(schema, schema_errors(schema, data)) == {
        "field:names": "item 2: must be at most 8 characters long"
    }


class Destination(BaseModel):
    street: str
    zip_code: int
    floor: int | None = None


class Delivery(RunInput):
    to: Destination
    note: str = ""


def test_a_required_model_left_empty_names_each_field_it_lacks_at_once() -> None:
    """Left empty, the model was refused as a whole, under its first input only: its
    second required field was named only after the first was filled in."""
    schema = input_schema(Delivery)
    data, errors = parse_submission(schema, {})
    assert (data, errors) == ({"to": {}}, {})
    assert errors_for_view(schema, schema_errors(schema, data)) == {
        "field:to.street": "is required",
        "field:to.zip_code": "is required",
    }
    with pytest.raises(ValidationError) as refused:
        Delivery.model_validate(data)
    assert {e["loc"] for e in refused.value.errors()} == {("to", "street"), ("to", "zip_code")}


class Limits(BaseModel):
    cpu: int = 3
    tier: str = "standard"


class Resize(RunInput):
    limits: Limits | None = None


def test_an_optional_model_starting_as_none_starts_empty_and_its_defaults_can_be_given() -> None:
    """Its fields showed their defaults (3, "standard") as though filled in, and the flow
    got None whatever was left or typed, unless it differed from them: Limits() itself
    could not be given."""
    schema = input_schema(Resize)
    view = view_for(Resize)
    assert "initial_value" not in element(view, "limits.cpu")
    assert "initial_value" not in element(view, "limits.tier")
    data, errors = parse_submission(schema, slack_state(view, {}))
    assert (Resize.model_validate(data), errors) == (Resize(), {})
    data, errors = parse_submission(schema, slack_state(view, {"limits.cpu": "3"}))
    assert Resize.model_validate(data) == Resize(limits=Limits())
    data, errors = parse_submission(
        schema, slack_state(view, {"limits.cpu": "3", "limits.tier": "standard"})
    )
    assert Resize.model_validate(data) == Resize(limits=Limits())


class Window2(RunInput):
    start: dt.time = dt.time(9, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    end: dt.time = dt.time(17, 0)


def test_a_time_keeps_the_zone_of_the_time_it_started_from() -> None:
    """Slack's picker shows 09:00 and sends back a time without a zone: 09:00+02:00 came
    back as 09:00 in no zone, two hours from what was meant."""
    schema = input_schema(Window2)
    view = view_for(Window2)
    assert element(view, "start")["initial_time"] == "09:00"
    assert "Times are in UTC+02:00." in json.dumps(input_block(view, "start"))
    assert "Times are in" not in json.dumps(input_block(view, "end"))
    data, errors = parse_submission(schema, slack_state(view, {}))
    assert (Window2.model_validate(data), errors) == (Window2(), {})
    data, _ = parse_submission(schema, slack_state(view, {"start": "10:30"}))
    assert Window2.model_validate(data).start == dt.time(
        10, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))
    )


class HostList(RunInput):
    hosts: list[str] = ["db1", "db2"]


def test_a_list_whose_items_hold_line_breaks_is_not_shown_one_per_line() -> None:
    """["a\\nb", "c"] was shown as three lines and came back as three items."""
    assert element(view_for(HostList), "hosts")["initial_value"] == "db1\ndb2"
    split = view_for(HostList, initial={"hosts": ["a\nb", "c"]})
    assert "initial_value" not in element(split, "hosts")
    for odd in (["a\u2028b"], ["x\rY"]):
        assert "initial_value" not in element(view_for(HostList, initial={"hosts": odd}), "hosts")


HOSTS = [f"web-{i:03d}.prod.example.com" for i in range(130)]  # 3,249 characters as lines


class Rollout(RunInput):
    hosts: list[str] = HOSTS
    steps: list[str] = ["step 1:\nrestart", "step 2"]
    note: str = "x" * 3001
    count: int = Field(default=1, ge=1, le=10)


def test_a_default_the_form_cannot_show_is_kept_when_its_input_is_left_empty() -> None:
    """130 hosts (past a text box's 3,000 characters) or an item holding a line break
    start as an empty input: submitted untouched, the flow got [] and approved an empty
    rollout. Left empty, such an input answers its default, and says so."""
    view = view_for(Rollout)
    for path in ("hosts", "steps", "note"):
        assert "initial_value" not in element(view, path)
    hint = input_block(view, "hosts")["hint"]["text"]
    assert hint.startswith("Left empty, this keeps its starting value")
    assert (
        "(130 items)" in hint and "(3,001 characters)" in input_block(view, "note")["hint"]["text"]
    )
    data, errors = parse_submission(input_schema(Rollout), slack_state(view, {}))
    assert (Rollout.model_validate(data), errors) == (Rollout(), {})


def test_a_starting_value_outside_a_fields_range_is_judged_not_dropped() -> None:
    """``with_initial_data(count=100)`` on a field of 1 to 10: its number input started
    empty, and submitted so the flow's model refused the default and the run failed.
    Now the value is sent and the form's own check names it under its field."""
    model = Rollout.with_initial_data(count=100)
    schema = input_schema(model)
    view = view_for(model)
    assert "initial_value" not in element(view, "count")
    data, errors = parse_submission(schema, slack_state(view, {}))
    assert (data["count"], errors) == (100, {})
    assert schema_errors(schema, data) == {"count": "must be at most 10"}
    data, _ = parse_submission(schema, slack_state(view, {"count": "7"}))
    assert model.model_validate(data).count == 7


class Release(RunInput):
    service: str
    limits: Limits | None = Limits(cpu=8)


def test_an_optional_model_shown_filled_in_and_emptied_answers_none() -> None:
    """Emptying every input of an optional model the form showed filled in gave back the
    values taken out (cpu=8); it answers None, as an emptied optional field does."""
    schema = input_schema(Release)
    view = view_for(Release)
    assert element(view, "limits.cpu")["initial_value"] == "8"
    emptied = {"service": "api", "limits.cpu": None, "limits.tier": None}
    data, errors = parse_submission(schema, slack_state(view, emptied))
    assert (Release.model_validate(data), errors) == (Release(service="api", limits=None), {})
    # Left as shown, or partly changed, it is the model as shown.
    data, _ = parse_submission(schema, slack_state(view, {"service": "api"}))
    assert Release.model_validate(data) == Release(service="api")
    data, _ = parse_submission(schema, slack_state(view, {"service": "api", "limits.cpu": "0"}))
    assert Release.model_validate(data).limits == Limits(cpu=0)


class LongWindow(RunInput):
    start: dt.time = Field(
        default=dt.time(9, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))), description="x" * 2000
    )


def test_a_long_description_gives_way_to_the_time_zone_note() -> None:
    """Cut at Slack's 2,000 characters, the hint lost "Times are in UTC+02:00." while the
    answer was still read in that zone."""
    hint = input_block(view_for(LongWindow), "start")["hint"]["text"]
    assert hint.endswith("… Times are in UTC+02:00.") and len(hint) <= 2000


class Cutover(RunInput):
    when: dt.datetime = dt.datetime(2026, 2, 28, 23, 59, tzinfo=dt.timezone(-dt.timedelta(hours=5)))


def test_a_datetime_keeps_the_offset_it_started_from() -> None:
    """Slack's picker sends seconds since 1970: 23:59 at -05:00 came back as 04:59 UTC on
    the next day, the same moment with another date and hour for the flow to read."""
    schema = input_schema(Cutover)
    data, errors = parse_submission(schema, slack_state(view_for(Cutover), {}))
    when = Cutover.model_validate(data).when
    assert (when, errors) == (Cutover().when, {})
    assert (when.date(), when.hour, when.utcoffset()) == (
        dt.date(2026, 2, 28),
        23,
        -dt.timedelta(hours=5),
    )


class Maintenance(RunInput):
    opens: dt.datetime = dt.datetime(2026, 2, 28, 23, 59)
    closes: dt.datetime


def test_a_datetime_that_started_without_a_zone_comes_back_without_one() -> None:
    """A flow that gives naive datetimes compares the answer with naive ones: answered with
    a zone, ``answer.closes > answer.opens`` would raise TypeError in the flow."""
    model = Maintenance.with_initial_data(closes="2026-03-01T08:00:00")
    schema = input_schema(model)
    data, errors = parse_submission(schema, slack_state(view_for(model), {}))
    answer = model.model_validate(data)
    assert errors == {}
    assert (answer.opens, answer.closes) == (
        dt.datetime(2026, 2, 28, 23, 59),
        dt.datetime(2026, 3, 1, 8, 0),
    )
    assert answer.closes > answer.opens


class Version(RunInput):
    version: float | str
    fallback: float | str | None = 2.5
    budget: Decimal = Decimal("1.10")


def test_a_number_or_text_takes_either_and_a_decimal_stays_a_number() -> None:
    """``float | str`` was a number input, as a Decimal is (their JSON schemas read the
    same): "latest" could not be typed, and 3.5 reached the flow as the text "3.5"."""
    schema = input_schema(Version)  # as the engine stores it with the pause
    view = build_input_view(
        schema, title="Input needed", callback_id="run_input", private_metadata="r42"
    ).to_dict()
    assert element(view, "version")["type"] == "plain_text_input"
    assert element(view, "fallback")["initial_value"] == "2.5"
    assert element(view, "budget")["type"] == "number_input"
    for typed, given in (("3.5", 3.5), ("latest", "latest"), ("2", 2.0)):
        data, errors = parse_submission(schema, slack_state(view, {"version": typed}))
        assert (errors, schema_errors(schema, data)) == ({}, {})
        answer = Version.model_validate(data)
        assert (answer.version, type(answer.version)) == (given, type(given))
        assert (answer.fallback, answer.budget) == (2.5, Decimal("1.10"))
