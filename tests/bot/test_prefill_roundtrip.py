"""A form prefilled from a model's values and submitted untouched gives those values back.

A flow that asks again after a refusal, or pauses with ``with_initial_data``, prefills the
modal; the person often submits it as it is. Hypothesis draws the values (text of any
script and length, numbers of any size, dates, times, ids, nested models, lists, and
``None`` or ``""`` where the model allows them) and each must survive the trip: model →
modal's initial values → Slack's view state (kept as the client keeps untouched inputs,
through JSON) → parsed submission → validated model. They must also survive it as the
model's defaults (``with_initial_data``), which is how a form starts that nobody refused.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import BaseModel, Field, NaiveDatetime

from signoff.bot.forms.modals import build_input_view
from signoff.bot.forms.submissions import parse_submission
from signoff.bot.inputs import SlackChannel, SlackUser, SlackUsers
from signoff.engine.input import RunInput
from signoff.engine.input_schema import input_schema
from tests.bot.slack_answers import slack_state


class Region(enum.Enum):
    EU = "eu"
    US = "us"
    APAC = "apac"


class Contact(BaseModel):
    city: str = Field(min_length=1, max_length=100)
    floor: int = 1


class Release(RunInput):
    title: str = Field(min_length=1, max_length=150)
    notes: str = Field(default="", max_length=3000, json_schema_extra={"multiline": True})
    nickname: str | None = None
    count: int = Field(ge=-1000, le=10**12)
    ratio: float = 0.5
    price: Decimal = Field(default=Decimal("9.99"), ge=0, le=10**9, decimal_places=2)
    urgent: bool = False
    size: Literal["s", "m", "l"]
    region: Region = Region.EU
    tags: list[Literal["x", "y", "z"]] = []
    lines: list[str] = []
    day: dt.date
    at: dt.time = dt.time(9, 30)
    when: dt.datetime | None = None
    local: NaiveDatetime | None = None
    owner: SlackUser
    room: SlackChannel | None = None
    reviewers: SlackUsers = []
    contact: Contact
    # None, Yes or No: left alone, the form must not answer "No" for the person
    signed: bool | None = None
    # shown as an empty box, as None would be; an empty box gives the default back
    memo: str | None = ""
    items: list[str] | None = None
    picks: list[Literal["a", "b"]] | None = None


#: lists the form shows empty both as None and as []: prefilled with [] (not by default),
#: the empty input answers None
_NULLABLE_LISTS = ("items", "picks")

#: what one line of a single-line input can hold (a newline would end it)
_LINE = st.characters(
    exclude_categories=("Cs",), exclude_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
)
#: a non-empty value: Slack sends an emptied input as no value at all
_TEXT = st.text(_LINE, min_size=1, max_size=150)
_USER = st.from_regex(r"U[A-Z0-9]{8,10}", fullmatch=True)
_CHANNEL = st.from_regex(r"C[A-Z0-9]{8,10}", fullmatch=True)
#: a datetime picker holds whole seconds in 10 digits (2001-09-09 to 2286-11-20), and
#: answers in UTC
_MOMENT = st.datetimes(
    min_value=dt.datetime(2001, 9, 10),
    max_value=dt.datetime(2286, 11, 19),
    timezones=st.just(dt.UTC),
).map(lambda moment: moment.replace(microsecond=0))

releases = st.builds(
    Release,
    title=_TEXT,
    notes=st.text(st.characters(exclude_categories=("Cs",)), max_size=3000),
    nickname=st.none() | _TEXT,
    count=st.integers(-1000, 10**12),
    ratio=st.floats(allow_nan=False, allow_infinity=False),
    price=st.decimals(min_value=0, max_value=10**9, places=2),
    urgent=st.booleans(),
    size=st.sampled_from(["s", "m", "l"]),
    region=st.sampled_from(Region),
    # a multi-select answers with the options in the view's order, once each
    tags=st.sets(st.sampled_from(["x", "y", "z"])).map(lambda s: sorted(s)),
    # one item a line, read back without the spaces around it
    lines=st.lists(_TEXT.map(str.strip).filter(bool), max_size=5),
    day=st.dates(min_value=dt.date(1000, 1, 1)),
    # a time picker holds hours and minutes
    at=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    when=st.none() | _MOMENT,
    local=st.none() | _MOMENT.map(lambda moment: moment.replace(tzinfo=None)),
    owner=_USER,
    room=st.none() | _CHANNEL,
    reviewers=st.lists(_USER, max_size=4, unique=True),
    contact=st.builds(Contact, city=_TEXT.filter(lambda c: len(c) <= 100), floor=st.integers()),
    signed=st.none() | st.booleans(),
    memo=st.just("") | _TEXT,
    items=st.none() | st.lists(_TEXT.map(str.strip).filter(bool), max_size=3),
    picks=st.none() | st.sets(st.sampled_from(["a", "b"])).map(lambda s: sorted(s)),
)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(release=releases)
def test_a_prefilled_form_submitted_untouched_gives_the_same_values(release: Release) -> None:
    schema = input_schema(Release)  # what a pause stores
    view = build_input_view(
        schema,
        initial=release.model_dump(mode="json"),
        title="Input needed",
        callback_id="run_input",
        private_metadata="r42",
    ).to_dict()
    data, errors = parse_submission(schema, slack_state(view, {}))
    assert errors == {}
    Draft202012Validator(schema).validate(data)
    shown = {k: None for k in _NULLABLE_LISTS if getattr(release, k) == []}
    assert Release.model_validate(data) == release.model_copy(update=shown)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(release=releases)
def test_a_form_started_from_defaults_submitted_untouched_gives_the_defaults(
    release: Release,
) -> None:
    model = Release.with_initial_data(**release.model_dump(mode="json"))
    schema = input_schema(model)
    view = build_input_view(
        schema, title="Input needed", callback_id="run_input", private_metadata="r42"
    ).to_dict()
    data, errors = parse_submission(schema, slack_state(view, {}))
    assert errors == {}
    Draft202012Validator(schema).validate(data)
    assert model.model_validate(data).model_dump() == release.model_dump()
