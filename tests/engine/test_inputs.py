"""RunInput, with_initial_data and the types pause_flow_run accepts."""

from __future__ import annotations

from typing import Literal

import pydantic
import pytest

from signoff.engine.input import AutomaticRunInput, RunInput, run_input_from_type


class Approval(RunInput):
    approved: bool
    note: str = pydantic.Field(default="", title="Note", max_length=50)


def test_with_initial_data_keeps_the_name_constraints_and_stores_a_description() -> None:
    model = Approval.with_initial_data(description="**Ship it?**", note="hello")
    assert model.__name__ == "Approval"
    assert issubclass(model, Approval)
    schema = model.model_json_schema()
    assert schema["properties"]["note"] == {
        "default": "hello",
        "title": "Note",
        "type": "string",
        "maxLength": 50,
    }
    assert schema["required"] == ["approved"]
    assert model.signoff_description == "**Ship it?**"
    assert Approval.signoff_description is None


def test_with_initial_data_refuses_unknown_fields() -> None:
    with pytest.raises(
        ValueError, match="Approval has no field 'colour'; its fields are approved, note"
    ):
        Approval.with_initial_data(colour="red")


def test_run_input_refuses_unknown_keys() -> None:
    with pytest.raises(pydantic.ValidationError, match="extra"):
        Approval.model_validate({"approved": True, "surprise": 1})


def test_plain_models_and_types_are_wrapped() -> None:
    class Place(pydantic.BaseModel):
        city: str

    wrapped = run_input_from_type(Place)
    assert issubclass(wrapped, RunInput) and wrapped.model_json_schema()["title"] == "PlaceRunInput"
    automatic = run_input_from_type(Literal["yes", "no"])
    assert issubclass(automatic, AutomaticRunInput)
    assert automatic.model_json_schema()["properties"]["value"]["enum"] == ["yes", "no"]
    assert run_input_from_type(int).model_json_schema()["title"] == "intAutomaticRunInput"
    assert run_input_from_type(Approval) is Approval


def test_legacy_validator_with_values_runs() -> None:
    class Order(RunInput):
        size: Literal["small", "large"]
        color: Literal["red", "green"]

        @pydantic.validator("color")
        def check(cls, value, values, **kwargs):
            if value == "green" and values["size"] == "small":
                raise ValueError("no small green")
            return value

    with pytest.raises(pydantic.ValidationError, match="no small green"):
        Order(size="small", color="green")
    assert Order(size="large", color="green").color == "green"
