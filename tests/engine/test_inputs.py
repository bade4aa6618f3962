"""RunInput, with_initial_data and the types pause_flow_run accepts."""

from __future__ import annotations

from typing import Literal

import pydantic
import pytest

from signoff.engine import Engine, RunState, flow, suspend_flow_run
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
    # Where Prefect's with_initial_data keeps it, for code ported from it.
    assert model._description == "**Ship it?**"


class Address(pydantic.BaseModel):
    city: str
    postcode: str = pydantic.Field(pattern=r"^\d{4}$")


class Shipping(RunInput):
    address: Address
    quantity: int = pydantic.Field(ge=1, le=10)
    note: str = ""


def test_an_initial_value_left_out_of_an_answer_is_checked_like_one_given() -> None:
    model = Shipping.with_initial_data(address={"city": "Oslo", "postcode": "0150"}, quantity=2)
    # As with Prefect, code may answer without the prefilled fields and get their values...
    answer = model.model_validate({})
    # ...as the model's types make them, not as the raw dict they were given.
    assert answer.address == Address(city="Oslo", postcode="0150")
    assert answer.quantity == 2

    wrong = Shipping.with_initial_data(address={"city": "Oslo", "postcode": "oslo"}, quantity=500)
    with pytest.raises(pydantic.ValidationError) as refused:
        wrong.model_validate({})
    assert sorted(e["loc"] for e in refused.value.errors()) == [
        ("address", "postcode"),
        ("quantity",),
    ]
    # An answer that gives the fields is checked as ever.
    assert (
        wrong.model_validate(
            {"address": {"city": "Oslo", "postcode": "0150"}, "quantity": 3}
        ).quantity
        == 3
    )


def test_a_required_field_given_an_initial_value_is_marked_for_forms_to_ask() -> None:
    model = Shipping.with_initial_data(address={"city": "Oslo", "postcode": "0150"}, note="hi")
    schema = model.model_json_schema()
    assert "address" not in schema["required"]  # Prefect's schema: the default makes it optional
    assert schema["properties"]["address"]["x-signoff-required"] is True
    # A field that had a default already stays optional for the form too.
    assert "x-signoff-required" not in schema["properties"]["note"]
    assert "x-signoff-required" not in schema["properties"]["quantity"]  # not given a value


def test_the_required_mark_keeps_a_fields_own_schema_extras() -> None:
    def extra(schema: dict[str, object]) -> None:
        schema["examples"] = ["0150"]

    class Tagged(RunInput):
        code: str = pydantic.Field(json_schema_extra=extra)
        label: str = pydantic.Field(json_schema_extra={"examples": ["x"]})

    props = Tagged.with_initial_data(code="a", label="b").model_json_schema()["properties"]
    assert props["code"]["examples"] == ["0150"] and props["code"]["x-signoff-required"]
    assert props["label"]["examples"] == ["x"] and props["label"]["x-signoff-required"]
    # The model the keywords were copied from is left as it was.
    assert "x-signoff-required" not in Tagged.model_json_schema()["properties"]["label"]


def test_with_initial_data_refuses_unknown_fields() -> None:
    with pytest.raises(
        ValueError, match="Approval has no field 'colour'; its fields are approved, note"
    ):
        Approval.with_initial_data(colour="red")


@pytest.mark.parametrize(("given", "shown"), [(5, "int (5)"), (["Ship?"], "list (['Ship?'])")])
def test_with_initial_data_refuses_a_description_that_is_not_text(
    given: object, shown: str
) -> None:
    """``description=5`` was taken, and the flow failed later, when it paused ("argument
    of type 'int' is not iterable")."""
    with pytest.raises(TypeError) as refused:
        Approval.with_initial_data(description=given, note="hello")  # type: ignore[arg-type]
    assert str(refused.value) == (
        f"Approval.with_initial_data: description must be text (str) or None, not {shown}"
    )


def test_run_input_refuses_unknown_keys() -> None:
    with pytest.raises(pydantic.ValidationError, match="extra"):
        Approval.model_validate({"approved": True, "surprise": 1})


def test_prefects_messaging_members_are_named_as_not_part_of_signoff() -> None:
    """Code ported from Prefect's send/receive gets an error saying what is missing and
    why, not pydantic's bare ``AttributeError: receive``."""
    for name in ("receive", "send_to", "respond", "save", "load", "keyset_from_type"):
        with pytest.raises(AttributeError) as raised:
            getattr(Approval, name)
        assert str(raised.value).startswith(
            f"Approval.{name}: Prefect's RunInput.{name} is not part of Signoff, whose input "
            "always comes from a person answering a pause"
        )
    with pytest.raises(AttributeError, match="^not_a_member$"):
        Approval.not_a_member  # noqa: B018 - anything else is pydantic's own error
    plain = run_input_from_type(int)
    with pytest.raises(AttributeError, match=r"^intAutomaticRunInput\.receive: Prefect's"):
        plain.receive  # noqa: B018


class Noted(RunInput):
    approved: bool
    _seen: int = pydantic.PrivateAttr(default=0)


def test_prefects_messaging_on_an_answer_is_named_as_not_part_of_signoff() -> None:
    """Prefect calls most of it on an instance: ``answer.respond(...)``,
    ``Place(...).send_to(run_id)``. Those say why too, not just "no attribute"."""
    answer = Noted(approved=True)
    for name in ("send_to", "asend_to", "respond", "arespond", "save"):
        with pytest.raises(AttributeError) as raised:
            getattr(answer, name)
        assert str(raised.value).startswith(
            f"Noted.{name}: Prefect's RunInput.{name} is not part of Signoff, whose input "
            "always comes from a person answering a pause"
        )
    wrapped = run_input_from_type(Address)(city="Oslo", postcode="0150")
    with pytest.raises(AttributeError, match=r"^AddressRunInput\.send_to: Prefect's"):
        wrapped.send_to("run")
    # pydantic's own attributes and errors are as they were
    assert answer._seen == 0 and answer.approved is True
    with pytest.raises(AttributeError, match="^'Noted' object has no attribute 'nothing'$"):
        answer.nothing  # noqa: B018


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


def test_a_model_instance_given_as_the_input_type_is_named_with_what_to_pass() -> None:
    with pytest.raises(TypeError) as raised:
        run_input_from_type(Approval(approved=True))
    assert str(raised.value) == (
        "wait_for_input takes a model class, not an instance (Approval(approved=True, "
        "note='')): pass Approval, or Approval.with_initial_data(...) for the values the "
        "form starts with"
    )


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


class Origin(pydantic.BaseModel):
    # pydantic's schema lists this field as "region", which the model does not take: a
    # form's answer was refused every time (or, with extra="ignore", silently dropped).
    region: str = pydantic.Field(validation_alias=pydantic.AliasPath("geo", "region"))


class Relocation(RunInput):
    origin: Origin


@flow(name="inputs-alias-path")
def ask_relocation() -> None:
    suspend_flow_run(wait_for_input=Relocation)


def test_a_field_a_form_cannot_answer_by_its_alias_path_is_refused_at_the_pause(
    engine: Engine,
) -> None:
    with pytest.raises(ValueError) as refused:
        ask_relocation()
    assert str(refused.value) == (
        "Origin's field 'region' cannot be answered: its validation_alias is a path "
        "(['geo', 'region']), so a form sends the field under its name, which the model "
        "does not take (set populate_by_name=True, or give it an alias that is a plain name)"
    )
    (run,) = engine.list_runs(flow_name="inputs-alias-path")
    assert run.state is RunState.FAILED
