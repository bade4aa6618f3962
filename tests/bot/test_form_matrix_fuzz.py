"""Any model the pause-time check accepts opens as a modal Slack takes, and any submission of
it gets an answer.

A run that pauses on a model its modal cannot show is reported at once, in the run's
thread (``check_renderable``). The promise is that every other model opens when someone
clicks: ``build_input_view`` never fails there. Hypothesis draws models (every kind of
field the forms know, with titles, hints, bounds, lengths and choices of any size and
script, nested one level) and prefills of any JSON, fitting or not.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any, Literal

import pydantic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import Field

from signoff.bot.errors import UnsupportedField
from signoff.bot.forms.blockkit import check_view
from signoff.bot.forms.modals import build_input_view, check_renderable
from signoff.bot.forms.submissions import errors_for_view, parse_submission
from signoff.engine import schema_errors
from signoff.engine.input_schema import input_schema

_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
_LONG_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=3000)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _described(annotation: Any, **constraints: Any) -> st.SearchStrategy[tuple[Any, Any]]:
    """``(annotation, Field(...))`` with any title and description."""
    return st.builds(
        lambda title, description: (
            annotation,
            Field(title=title, description=description, **constraints),
        ),
        title=st.none() | _TEXT,
        description=st.none() | _LONG_TEXT,
    )


@st.composite
def _bounded(draw: st.DrawFn, kind: type) -> tuple[Any, Any]:
    numbers = st.integers(-(10**15), 10**15) if kind is int else st.floats(-1e12, 1e12)
    low, high = sorted([draw(numbers), draw(numbers)])
    bounds = draw(st.sampled_from([{}, {"ge": low}, {"le": high}, {"ge": low, "le": high}]))
    return draw(_described(kind, **bounds))


@st.composite
def _lengths(draw: st.DrawFn) -> tuple[Any, Any]:
    low = draw(st.none() | st.integers(0, 5000))
    high = draw(st.none() | st.integers(max(low or 0, 1), 10_000))
    return draw(_described(str, min_length=low, max_length=high))


_CHOICES = st.lists(st.text(max_size=200), min_size=1, max_size=120, unique=True)
#: an IntEnum's members, whose names the form shows: any identifier, alike once lowercased
_MEMBERS = st.dictionaries(
    st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,99}", fullmatch=True).filter(
        lambda name: not name.startswith("_")
    ),
    st.integers(-(10**6), 10**6),
    min_size=1,
    max_size=110,
).map(lambda members: enum.IntEnum("Drawn", members))  # type: ignore[misc]
_SCALAR_FIELDS = (
    _lengths()
    | _bounded(int)
    | _bounded(float)
    | _described(Decimal, max_digits=12, decimal_places=2)
    | _described(bool)
    | _CHOICES.flatmap(lambda c: _described(Literal[tuple(c)]))  # type: ignore[misc]
    | _CHOICES.flatmap(lambda c: _described(list[Literal[tuple(c)]]))  # type: ignore[misc]
    | _MEMBERS.flatmap(_described)
    | _MEMBERS.flatmap(lambda members: _described(list[members]))  # type: ignore[valid-type]
    | _described(list[str])
    | _described(dt.date)
    | _described(dt.time)
    | _described(dt.datetime)
)


def _optional(field: tuple[Any, Any]) -> tuple[Any, Any]:
    annotation, info = field
    info.default = None
    return annotation | None, info


_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,30}", fullmatch=True).filter(
    lambda name: not name.startswith("model_")
)


def _model(fields: dict[str, tuple[Any, Any]], name: str = "Answer") -> type[pydantic.BaseModel]:
    return pydantic.create_model(name, **fields)  # type: ignore[call-overload,no-any-return]


_FIELD = _SCALAR_FIELDS | _SCALAR_FIELDS.map(_optional)
_INNER = st.dictionaries(_NAMES, _FIELD, min_size=1, max_size=4).map(
    lambda fields: (_model(fields, "Inner"), Field())
)
models = st.dictionaries(_NAMES, _FIELD | _INNER, max_size=12).map(_model)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    model=models,
    prefill=st.dictionaries(_NAMES, _JSON, max_size=6),
    description=st.none() | _LONG_TEXT,
)
def test_a_model_that_passes_the_pause_time_check_always_opens(
    model: type[pydantic.BaseModel], prefill: dict[str, Any], description: str | None
) -> None:
    schema = input_schema(model)  # what a pause stores
    try:
        check_renderable(schema, description=description)
    except UnsupportedField:
        return  # told in the run's thread when it paused
    view = build_input_view(
        schema,
        initial={**prefill, **_fields_prefill(model, prefill)},
        title="Input needed",
        description=description,
        context="*deploy* run `1234abcd`",
        callback_id="run_input",
        private_metadata="r42",
    )
    assert check_view(view.to_dict()) == []


def _fields_prefill(model: type[pydantic.BaseModel], drawn: dict[str, Any]) -> dict[str, Any]:
    """The drawn JSON, put under the model's own field names too (where it matters)."""
    names = list(model.model_fields)
    return {name: value for name, value in zip(names, drawn.values(), strict=False)}


@st.composite
def _typed(draw: st.DrawFn, element: dict[str, Any]) -> dict[str, Any]:
    """What a person could leave in ``element``: anything the Slack client lets through."""
    kind = element["type"]
    if kind in ("plain_text_input", "email_text_input", "url_text_input"):
        return {"type": kind, "value": draw(st.none() | _TEXT)}
    if kind == "number_input":
        typed = st.integers().map(str) | st.decimals(allow_nan=False).map(str) | _TEXT
        return {"type": kind, "value": draw(st.none() | typed)}
    options = [o for g in element.get("option_groups", []) for o in g["options"]]
    options += element.get("options", [])
    if kind in ("radio_buttons", "static_select"):
        return {"type": kind, "selected_option": draw(st.none() | st.sampled_from(options))}
    if kind in ("checkboxes", "multi_static_select"):
        picked = st.lists(st.sampled_from(options), unique_by=lambda o: o["value"])
        return {"type": kind, "selected_options": draw(picked)}
    if kind == "datepicker":
        return {"type": kind, "selected_date": draw(st.none() | st.dates().map(str))}
    if kind == "timepicker":
        return {
            "type": kind,
            "selected_time": draw(st.none() | st.times().map(lambda t: f"{t:%H:%M}")),
        }
    assert kind == "datetimepicker", kind
    return {"type": kind, "selected_date_time": draw(st.none() | st.integers(10**9, 10**10 - 1))}


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(model=models, data=st.data())
def test_whatever_is_submitted_gets_an_answer_on_its_inputs_or_a_model(
    model: type[pydantic.BaseModel], data: st.DataObject
) -> None:
    schema = input_schema(model)  # what a pause stores
    try:
        check_renderable(schema)
    except UnsupportedField:
        return
    view = build_input_view(
        schema, title="Input needed", callback_id="run_input", private_metadata="r42"
    ).to_dict()
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    state = {
        block_id: {"value": data.draw(_typed(block["element"]), label=block_id)}
        for block_id, block in inputs.items()
    }
    values, unreadable = parse_submission(schema, state)
    assert set(unreadable) <= set(inputs)
    if unreadable:
        return  # shown under those inputs
    refused = errors_for_view(schema, schema_errors(schema, values))
    assert set(refused) <= set(inputs)
    if not refused:
        model.model_validate(values)  # only a model's own validators may refuse now
