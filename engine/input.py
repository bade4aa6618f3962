"""Typed input for paused and suspended runs.

Example::

    from signoff.engine.input import RunInput

    class Approval(RunInput):
        approved: bool
        reason: str = ""

    answer = pause_flow_run(wait_for_input=Approval.with_initial_data(reason="looks fine"))
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, SupportsIndex, TypeVar, cast

import pydantic
from pydantic import BaseModel, ConfigDict

# pydantic's model metaclass, which has no public name; it has been here throughout 2.x.
from pydantic._internal._model_construction import ModelMetaclass

from signoff.engine.input_schema import REQUIRED_KEYWORD
from signoff.engine.quorum import Answers

__all__ = ["AutomaticRunInput", "RunInput", "RunInputMetadata", "run_input_from_type"]

M = TypeVar("M", bound="RunInput")


#: Prefect's ``RunInput`` class members that Signoff's lacks: its messages between runs and
#: the keyset primitives under them. Signoff's input always answers a pause.
PREFECT_ONLY = frozenset(
    (
        *("receive", "send_to", "asend_to", "respond", "arespond"),
        *("save", "asave", "load", "aload", "load_from_flow_run_input"),
        *("keyset_from_type", "subclass_from_base_model_type"),
    )
)


@dataclass(frozen=True)
class RunInputMetadata:
    """Where an answer came from: ``answer.metadata``, as Prefect's ``RunInput.metadata``."""

    #: the key of the pause it answered ("1", or the ``key=`` given); Prefect's is the
    #: keyset's response key ("paused-1-response"), which names nothing in Signoff
    key: str
    #: None: a person answered a pause (Prefect's, after a pause, is None too)
    sender: str | None
    #: the id of the run that waited for it
    receiver: str


#: where an answer keeps its metadata: in the instance ``__dict__``, as a
#: ``functools.cached_property`` keeps its value, so that pydantic leaves it out of ``==``,
#: ``model_dump`` and validation; a field's name cannot start with "_"
_METADATA = "_signoff_metadata"


class _RunInputType(ModelMetaclass):
    """Names Prefect's members that Signoff's ``RunInput`` lacks, where pydantic's
    ``AttributeError`` would say only the bare name (``AttributeError: receive``)."""

    def __getattr__(cls, name: str) -> Any:
        if name in PREFECT_ONLY:
            raise _not_in_signoff(cls, name)
        # pydantic's own (its private attributes), defined only when not type checking
        return super().__getattr__(name)  # type: ignore[misc]


def _not_in_signoff(cls: type, name: str) -> AttributeError:
    return AttributeError(
        f"{cls.__name__}.{name}: Prefect's RunInput.{name} is not part of Signoff, "
        "whose input always comes from a person answering a pause "
        "(pause_flow_run or suspend_flow_run with wait_for_input)"
    )


class RunInput(BaseModel, metaclass=_RunInputType):
    """A pydantic model that a flow can wait for. Unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    #: Markdown shown above the form, set by ``with_initial_data(description=...)``
    signoff_description: ClassVar[str | None] = None
    #: for a class made at run time (``with_initial_data``, a plain model wrapped), the
    #: class it was made from, which ``pickle`` can find by name where it cannot find this
    signoff_origin: ClassVar[type[BaseModel] | None] = None

    if TYPE_CHECKING:

        @property
        def metadata(self) -> RunInputMetadata:
            """Where this answer came from (a model made by hand has none)."""
            ...

    else:  # as pydantic's own, so that mypy still checks attribute names

        def __getattr__(self, name: str) -> Any:
            if name == "metadata":
                # Not a property: a model's own field named "metadata" comes first.
                found = self.__dict__.get(_METADATA)
                if found is None:
                    raise AttributeError(
                        f"{type(self).__name__}.metadata: only an answer that "
                        "pause_flow_run or suspend_flow_run returned has metadata"
                    )
                return found
            # Most of Prefect's messaging is called on an instance (``answer.respond(...)``,
            # ``Place(...).send_to(run_id)``): say why, as for the class, rather than
            # pydantic's "'Place' object has no attribute 'send_to'".
            if name in PREFECT_ONLY:
                raise _not_in_signoff(type(self), name)
            return super().__getattr__(name)

    def __reduce_ex__(self, protocol: SupportsIndex) -> str | tuple[Any, ...]:
        origin = type(self).signoff_origin
        if origin is None:
            return super().__reduce_ex__(protocol)
        # Kept as the class it was made from (the same fields, only other defaults), so a
        # task may return an answer, and a run be suspended or taken up, with it.
        return (_restored, (origin, self.__getstate__()))

    @classmethod
    def with_initial_data(cls, description: str | None = None, **defaults: Any) -> type[RunInput]:
        """The same model (same class name) with ``defaults`` as the values shown first.

        Example::

            pause_flow_run(wait_for_input=UserNameInput.with_initial_data(name="anonymous"))

        Raises:
            TypeError: ``description`` is neither text nor None.
            ValueError: a keyword names no field of the model.
        """
        if description is not None and not isinstance(description, str):
            # Refused here, at the call that got it wrong, not when the pause is stored.
            raise TypeError(
                f"{cls.__name__}.with_initial_data: description must be text (str) or None, "
                f"not {type(description).__name__} ({description!r:.60})"
            )
        unknown = sorted(set(defaults) - set(cls.model_fields))
        if unknown:
            raise ValueError(
                f"{cls.__name__} has no field {', '.join(repr(u) for u in unknown)}; "
                f"its fields are {', '.join(cls.model_fields) or 'none'}"
            )
        fields: dict[str, Any] = {}
        for name, value in defaults.items():
            # Keep the field's title, description and constraints; only the default changes.
            original = cls.model_fields[name]
            info = copy.copy(original)
            info.default, info.default_factory = value, None
            # An answer that leaves the field out gets the initial value checked like any
            # other (a nested model's dict becomes the model; a value out of bounds is refused).
            info.validate_default = True
            if original.is_required():
                info.json_schema_extra = _marked_required(original.json_schema_extra)
            fields[name] = (info.annotation, info)
        model: Any = pydantic.create_model(
            cls.__name__, __base__=cls, __module__=cls.__module__, **fields
        )
        model.__qualname__ = cls.__qualname__
        model.signoff_origin = cls.signoff_origin or cls
        model.signoff_description = (
            description if description is not None else getattr(cls, "signoff_description", None)
        )
        # Where Prefect's with_initial_data puts it: code ported from it reads it there.
        model._description = model.signoff_description  # type: ignore[attr-defined]
        return model


def _restored(cls: type[BaseModel], state: dict[Any, Any]) -> BaseModel:
    """A value pickled by ``RunInput.__reduce_ex__``, as an instance of ``cls``."""
    value = cls.__new__(cls)
    value.__setstate__(state)
    return value


def _marked_required(extra: Any) -> Any:
    if callable(extra):

        def update(schema: dict[str, Any]) -> None:
            extra(schema)
            schema[REQUIRED_KEYWORD] = True

        return update
    return {**(extra or {}), REQUIRED_KEYWORD: True}


class AutomaticRunInput(RunInput):
    """Wraps a plain type (``int``, ``str``, ``Literal[...]``) in a one-field model ``value``."""

    #: set on generated subclasses; the flow gets ``.value`` back rather than the model
    unwrap: ClassVar[bool] = True


def run_input_from_type(input_type: Any) -> type[RunInput]:
    """The ``RunInput`` model to ask for, given what was passed as ``wait_for_input``.

    A ``RunInput`` subclass is used as it is; any other pydantic model is wrapped so that it
    refuses unknown fields; anything else becomes a model with one required field ``value``.
    """
    if isinstance(input_type, type) and issubclass(input_type, RunInput):
        return input_type
    if isinstance(input_type, type) and issubclass(input_type, BaseModel):
        wrapped = cast(
            "type[RunInput]",
            type(
                f"{input_type.__name__}RunInput",
                (RunInput, input_type),
                {"__module__": input_type.__module__},
            ),
        )
        wrapped.signoff_origin = input_type
        return wrapped
    if isinstance(input_type, BaseModel):
        # A likely slip for initial values; pydantic's own error would not say so.
        model_name = type(input_type).__name__
        raise TypeError(
            f"wait_for_input takes a model class, not an instance ({input_type!r}): pass "
            f"{model_name}, or {model_name}.with_initial_data(...) for the values the form "
            "starts with"
        )
    name = getattr(input_type, "__name__", None) or type(input_type).__name__
    try:
        model = pydantic.create_model(
            f"{name.lower()}AutomaticRunInput", __base__=AutomaticRunInput, value=(input_type, ...)
        )
    except (TypeError, pydantic.PydanticSchemaGenerationError) as exc:
        raise TypeError(f"cannot wait for input of type {input_type!r}: {exc}") from exc
    return cast("type[RunInput]", model)


def is_automatic(model: type[RunInput]) -> bool:
    return issubclass(model, AutomaticRunInput)


def with_metadata(answer: Any, run_id: str, key: str) -> Any:
    """``answer`` as the flow gets it, with ``metadata`` naming the pause (each one of a
    quorum's ``Answers``); a plain value (``int``, ...) has none, as in Prefect."""
    metadata = RunInputMetadata(key=key, sender=None, receiver=run_id)
    for value in answer.values if isinstance(answer, Answers) else (answer,):
        if isinstance(value, RunInput):
            # Kept out of pydantic's sight (see _METADATA); frozen models take it too.
            value.__dict__[_METADATA] = metadata
    return answer


def load_answer(model: type[RunInput] | None, response: Any) -> Any:
    """What the waiting flow gets for ``response``: the validated model, its ``value`` for
    a plain type, or None when no input was asked for.

    Raises:
        pydantic.ValidationError: the model (its own validators included) refuses it.
    """
    if model is None:
        return None
    value = model.model_validate(response or {})
    return cast("Any", value).value if is_automatic(model) else value
