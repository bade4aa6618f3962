"""The view around a modal's inputs, and what cannot be a modal: titles, descriptions,
Slack's block limits, and the field that cannot be shown named with why.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Annotated, Any, Literal

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, Field, SecretStr, create_model
from slack_sdk.models.blocks import InputBlock, Option, RadioButtonsElement
from slack_sdk.models.views import View

from signoff.bot.forms import modals
from signoff.bot.forms.blockkit import VIEW_SIZE_LIMIT, view_size
from signoff.bot.forms.modals import (
    ModalError,
    UnsupportedField,
    build_input_view,
    check_renderable,
)
from signoff.bot.forms.submissions import parse_submission
from signoff.bot.inputs import SlackUsers
from tests.bot.slack_answers import element, input_block, slack_state, view_for
from tests.bot.test_modal_elements import Address, ShirtOrder

# --- the view around the inputs ------------------------------------------------------------


def test_title_submit_description_and_context() -> None:
    description = "## Deploy\n\nPlease **check** the [diff](https://x.io/d).\n\n" + "word " * 1000
    view = view_for(
        ShirtOrder,
        title="Choose the shirt for the offsite",
        submit="Send my answer right now please",
        description=description,
        context="Flow *deploy* · run `r42`",
    )
    assert view["title"]["text"] == "Choose the shirt for th…"
    assert len(view["submit"]["text"]) == 24
    assert view["blocks"][0] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "Flow *deploy* · run `r42`"}],
    }
    sections = [b for b in view["blocks"] if b["type"] == "section"]
    assert len(sections) == 2  # over 3000 characters
    assert sections[0]["text"]["text"].startswith(
        "*Deploy*\n\nPlease *check* the <https://x.io/d|diff>."
    )
    assert all(len(s["text"]["text"]) <= 3000 for s in sections)
    assert view["blocks"][3]["type"] == "divider"
    assert view["callback_id"] == "run_input"
    assert view["private_metadata"] == "r42"


def test_description_gives_way_when_inputs_need_the_blocks() -> None:
    many = create_model("Many", **{f"f{i}": (str, "x") for i in range(97)})  # type: ignore[call-overload]
    view = view_for(many, description="para\n\n" * 2000, context="ctx")
    assert len(view["blocks"]) == 100
    assert [b["type"] for b in view["blocks"][:3]] == ["context", "section", "divider"]
    assert view["blocks"][1]["text"]["text"].endswith("…")


def test_empty_model_still_makes_a_valid_view() -> None:
    view = view_for(create_model("Nothing"))
    assert [b["type"] for b in view["blocks"]] == ["section"]


def test_bad_title_or_metadata_raise_modal_error() -> None:
    schema = ShirtOrder.model_json_schema()
    with pytest.raises(ModalError, match="title"):
        build_input_view(schema, title=" ", callback_id="c", private_metadata="")
    with pytest.raises(ModalError, match="private_metadata"):
        build_input_view(schema, title="t", callback_id="c", private_metadata="x" * 3001)


def test_hand_written_schema_forms() -> None:
    schema = {
        "type": "object",
        "$defs": {"Level": {"enum": ["low", "high", None]}},
        "properties": {
            "name": {"type": ["string", "null"], "title": "Name"},
            "level": {"allOf": [{"$ref": "#/$defs/Level"}], "default": "high"},
            "amount": {"anyOf": [{"type": "integer"}, {"type": "number"}]},
            "flag": {"const": True},
            # pydantic < 2.12 wrote Decimal with a pattern on the string branch.
            "price": {
                "anyOf": [
                    {"type": "number", "exclusiveMinimum": 0},
                    {"type": "string", "pattern": r"^(?!^[-+.]*$)[+-]?0*\d*\.?\d*$"},
                ],
                "default": "9.90",
            },
        },
        "required": ["name", "level", "amount", "flag"],
    }
    check_renderable(schema)
    view = build_input_view(schema, title="t", callback_id="c", private_metadata="").to_dict()
    assert input_block(view, "name")["optional"] is True
    level = input_block(view, "level")
    assert level["optional"] is True
    assert level["element"]["initial_option"]["value"] == "high"
    assert element(view, "amount")["is_decimal_allowed"] is True
    assert [o["value"] for o in element(view, "flag")["options"]] == ["true"]
    price = element(view, "price")
    assert (price["min_value"], price["initial_value"]) == ("0", "9.90")
    state = slack_state(view, {"level": None, "amount": "2.5", "flag": "true", "price": "1e1"})
    data, errors = parse_submission(schema, state)
    assert errors == {}
    assert data == {"name": None, "level": None, "amount": 2.5, "flag": True, "price": "10"}
    Draft202012Validator(schema).validate(data)


# --- what cannot be a modal ----------------------------------------------------------------


class Inner(BaseModel):
    extras: dict[str, int]


class Outer(BaseModel):
    inner: Inner


class Node(BaseModel):
    name: str
    child: Node | None = None


Big = enum.Enum("Big", {f"V{i}": f"v{i}" for i in range(101)})  # type: ignore[misc]
Twenty = enum.Enum("Twenty", {f"V{i}": f"v{i}" for i in range(20)})  # type: ignore[misc]


@pytest.mark.parametrize(
    ("annotation", "field", "reason"),
    [
        (dict[str, int], "value", "free-form mapping"),
        (list[Address], "value", "list of nested models"),
        (list[dict[str, int]], "value", "list of nested models or mappings"),
        (tuple[int, int], "value", "tuples"),
        (int | str, "value", "union of different kinds of value (integer | string)"),
        (date | datetime, "value", "kinds of value (string (date) | string (date-time))"),
        (Address | Node, "value", "kinds of value (object Address | object Node)"),
        (Literal["x" * 151], "value", "longer than 150 characters"),
        (Big, "value", "101 options"),
        (list[Big], "value", "101 options"),
        (bytes, "value", "bytes"),
        (SecretStr, "value", "secret"),
        (Any, "value", "no type (Any)"),
        (list[int], "value", "lists of integer values"),
        (Outer, "value.inner.extras", "free-form mapping"),
        (Node, "value.child", "contains itself"),
        (Annotated[str, Field(min_length=5, max_length=3)], "value", "nothing fits"),
        # Slack's box holds 3,000 characters, so no answer could be long enough.
        (Annotated[str, Field(min_length=3001)], "value", "holds 3000: nothing fits"),
    ],
)
def test_check_renderable_names_the_field_and_why(annotation: Any, field: str, reason: str) -> None:
    model = create_model("Wrapper", value=(annotation, ...))
    with pytest.raises(UnsupportedField, match="cannot be shown") as caught:
        check_renderable(model.model_json_schema())
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert repr(field) in str(caught.value)
    with pytest.raises(UnsupportedField):
        view_for(model)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("x" * 250, "its path is 250 characters; a Slack block id holds 249"),
        ("v1.2", "its name contains '.', which separates nested fields"),
    ],
)
def test_a_name_no_block_id_can_hold_is_refused_with_what_is_wrong(name: str, reason: str) -> None:
    """A 250-character name was refused as one that "contains '.' or its path is over 255
    characters": neither, for a person counting its characters."""
    model = create_model("Wrapper", **{name: (str, ...)})  # type: ignore[call-overload]
    with pytest.raises(UnsupportedField) as caught:
        check_renderable(model.model_json_schema())
    assert (caught.value.field, caught.value.reason) == (name, reason)
    fits = create_model("Wrapper", **{"x" * 249: (str, ...)})  # type: ignore[call-overload]
    check_renderable(fits.model_json_schema())


def test_check_renderable_counts_blocks() -> None:
    too_many = create_model("TooMany", **{f"f{i}": (str, ...) for i in range(101)})  # type: ignore[call-overload]
    with pytest.raises(UnsupportedField, match="103 blocks") as caught:
        check_renderable(too_many.model_json_schema())
    assert caught.value.field == ""
    with pytest.raises(UnsupportedField, match="not an object"):
        check_renderable({"type": "string"})


_LONG_OPTIONS = Literal[tuple(f"option {i} " + "x" * 60 for i in range(100))]  # type: ignore[valid-type]


@pytest.mark.parametrize(
    "fields",
    [
        # 32 blocks, each option within Slack's limits: some 630 kB in all
        {f"f{i}": (_LONG_OPTIONS, ...) for i in range(30)},
        # 92 blocks, labels and hints within 2,000 characters: some 385 kB
        {f"f{i}": (str, Field(title="T" * 2000, description="D" * 2000)) for i in range(90)},
    ],
)
def test_a_form_larger_than_slack_takes_is_refused_before_anyone_clicks(
    fields: dict[str, Any],
) -> None:
    """Slack refuses a view over about 250 kB (``view_too_large``) however few its blocks."""
    model = create_model("Huge", **fields)  # type: ignore[call-overload]
    with pytest.raises(
        UnsupportedField, match=r"bytes as sent to Slack, and a modal holds 250,000"
    ) as caught:
        check_renderable(model.model_json_schema())
    assert caught.value.field == ""
    assert "the largest field, 'f" in caught.value.reason
    with pytest.raises(ModalError, match="250,000"):
        view_for(model)


def test_the_size_check_leaves_room_for_the_metadata_a_form_carries() -> None:
    """What passes the check at pause still fits when the form is opened with the longest
    title and ``private_metadata`` (a sealed schema) it may carry."""
    field = (str, Field(title="T" * 2000, description="D" * 2000))
    for count in range(50, 70):
        model = create_model("Wide", **{f"f{i}": field for i in range(count)})  # type: ignore[call-overload]
        try:
            check_renderable(model.model_json_schema())
        except UnsupportedField:
            break
        view = build_input_view(
            model.model_json_schema(),
            title="x" * 24,
            context="Run `r42` · input `approval`",
            callback_id="run_input",
            private_metadata="m" * 3000,
        )
        assert view_size(view.to_dict()) <= VIEW_SIZE_LIMIT
    else:
        pytest.fail("no model was too large")


def _one(**node: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"a": node}}


@pytest.mark.parametrize(
    ("schema", "field", "reason"),
    [
        ({"type": "object", "properties": ["a"]}, "", 'properties is ["a"]'),
        ({"type": "object", "properties": None}, "", "properties is null"),
        ({"type": "object", "properties": {"a": 5}}, "a", "5 is not a JSON object"),
        ({"type": "object", "properties": {}, "required": 5}, "", "required is 5"),
        ({"type": "object", "properties": {}, "required": [{}]}, "", "not a list of field names"),
        (_one(anyOf={"type": "string"}), "a", "anyOf is"),
        (_one(anyOf=[]), "a", "anyOf is [], not a non-empty list"),
        (_one(oneOf=["string"]), "a", "oneOf is"),
        (_one(allOf=["x"]), "a", "allOf is"),
        (_one(enum="abc"), "a", 'enum is "abc"'),
        (_one(type="array", items=[{"type": "string"}]), "a", "is not a JSON object"),
        (_one(type="string", maxLength="abc"), "a", 'maxLength is "abc"'),
        (_one(type="string", minLength=-5), "a", "minLength is -5"),
        (_one(type="array", items={"type": "string"}, minItems="x"), "a", "minItems"),
        (_one(type=[1, 2]), "a", "type is [1, 2]"),
        (_one(type="string", format=["x"]), "a", 'format is ["x"]'),
        ("hello", "", '"hello" is not a JSON object'),
    ],
)
def test_a_malformed_schema_is_named_not_crashed_on(schema: Any, field: str, reason: str) -> None:
    """A schema no model produces (Prefect's server stores whatever a flow sent): the form
    cannot be shown, and says what is wrong, rather than failing with a TypeError that the
    bot would retry for ever."""
    with pytest.raises(UnsupportedField, match="malformed") as caught:
        check_renderable(schema)
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_a_whole_number_written_as_a_float_is_a_length() -> None:
    schema = _one(type="string", maxLength=200.0)
    check_renderable(schema)
    view = build_input_view(schema, title="t", callback_id="c", private_metadata="").to_dict()
    assert element(view, "a")["multiline"] is True


def test_limits_slack_sdk_misses_are_still_caught_before_slack_sees_the_view() -> None:
    # slack_sdk builds radio buttons with eleven options without complaint; Slack refuses them.
    options = [Option(text=f"o{i}", value=str(i)) for i in range(11)]
    view = View(
        type="modal",
        title="Input needed",
        blocks=[InputBlock(label="Pick", element=RadioButtonsElement(options=options))],
    )
    view.to_dict()
    with pytest.raises(ModalError, match=r"breaks Block Kit rules: .*options"):
        modals._check(view)


@pytest.mark.parametrize(
    ("fields", "description", "fits"),
    [
        (98, None, True),  # 98 inputs + context + divider = 100
        (99, None, False),
        (97, "Read me", True),  # + one description section = 100
        (98, "Read me", False),
        (100, None, False),
    ],
)
def test_block_limit_counts_the_blocks_around_the_inputs(
    fields: int, description: str | None, fits: bool
) -> None:
    model = create_model("Wide", **{f"f{i}": (str, "x") for i in range(fields)})  # type: ignore[call-overload]
    schema = model.model_json_schema()
    if fits:
        check_renderable(schema, description=description)
        view = view_for(model, description=description, context="Run `r42`")
        assert len(view["blocks"]) == 100 - (1 if description is None and fields < 98 else 0)
        return
    with pytest.raises(UnsupportedField, match=r"it needs 10[0-9] blocks .*a modal holds 100"):
        check_renderable(schema, description=description)
    # What the check refuses, building the view would refuse too: never a surprise on click.
    with pytest.raises(UnsupportedField):
        view_for(model, description=description, context="Run `r42`")


def test_a_bound_past_what_slack_lets_a_person_pick_is_held_to_slacks() -> None:
    """A model may allow 500 people or 200 picks; Slack's multi-selects stop at 100, so
    the form does, and the modal still opens."""
    many = create_model(
        "Many",
        people=(SlackUsers, Field(default=[], max_length=500)),
        labels=(list[Twenty], Field(default=[], max_length=200)),  # type: ignore[valid-type]
    )
    check_renderable(many.model_json_schema())
    view = view_for(many)
    assert element(view, "people")["max_selected_items"] == 100
    assert element(view, "labels")["max_selected_items"] == 100


def test_a_blank_field_title_gives_way_to_the_fields_name() -> None:
    # Slack refuses a view whose input has a blank label: the whole form would not open.
    blank = create_model("Blank", release_notes=(str, Field(title="   ")))
    (label,) = [b["label"]["text"] for b in view_for(blank)["blocks"] if b["type"] == "input"]
    assert label == "Release Notes"


def test_a_form_sent_back_with_errors_names_the_inputs_to_look_at_above_them() -> None:
    """The errors show under their inputs, which may be far below where the form opens."""

    class Hostile(BaseModel):
        note: str = Field(title="<b>*x*</b> & :fire:")
        count: int

    schema = Hostile.model_json_schema()
    errors = {"field:note": "too short", "field:count": "not a number"}
    for context in ("Run abc · input 1", None):
        view = build_input_view(
            schema,
            title="t",
            callback_id="c",
            private_metadata="",
            context=context,
            errors=errors,
        ).to_dict()
        top = view["blocks"][0]
        assert top["type"] == "context"
        text = top["elements"][0]["text"]
        assert text.startswith(f"{context}\n" if context else ":warning: Not accepted")
        # The label as written: neither HTML nor a mention, nor bold broken by its stars.
        assert "&lt;b&gt;" in text and "<b>" not in text and "*Count*" in text
    plain = build_input_view(schema, title="t", callback_id="c", private_metadata="").to_dict()
    assert "Not accepted" not in str(plain)
