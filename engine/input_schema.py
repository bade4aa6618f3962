"""The JSON schema stored with a pause: pydantic's, plus what pydantic checks beyond it.

JSON Schema cannot say everything a model's types enforce. The schema stored with a
pause carries those rules in ``x-signoff-*`` keywords, so that ``engine.validation`` can
refuse at resume (and the Slack form inside the modal) every value the model's types
would refuse; only the model's own validators are left to judge after that.

==========================  ==========================================================
``x-signoff-url``           ``AnyUrl``/``HttpUrl``/``PostgresDsn``/... constraints:
                            allowed schemes, maximum length, whether a host is required
``x-signoff-temporal``      a ``date``/``datetime``/``time``/``timedelta``'s rules: the
                            pydantic-core ``type``, bounds (``gt``/``ge``/``lt``/``le``,
                            ISO 8601 text), ``now_op`` (``PastDate``, ``FutureDatetime``,
                            ...) with ``now_utc_offset``, and ``tz_constraint``
                            (``AwareDatetime``: ``"aware"``, ``NaiveDatetime``:
                            ``"naive"``, or an offset in seconds)
``x-signoff-decimal``       ``Decimal`` bounds, digits and decimal places (as strings)
``x-signoff-number-or-text`` ``true`` on a union of a number and a text (``float | str``)
``x-signoff-regex-engine``  ``"python-re"`` when the model's config asks for it
``x-signoff-strip``         ``true`` on text the model strips of the spaces around it
                            before checking it (``str_strip_whitespace``,
                            ``StringConstraints(strip_whitespace=True)``)
``x-signoff-enum-names``    an ``Enum``'s member names, in the order of its ``enum``, when
                            a value is not text (an ``IntEnum``'s ``1``, ``2``): a form
                            shows the names, which say what the numbers mean
``x-signoff-required``      ``true`` on a field the model requires that
                            ``with_initial_data`` gave a value: a form still asks for it
                            (starting from that value), while an answer given in code may
                            leave it out and get the value, as with Prefect
==========================  ==========================================================
"""

from __future__ import annotations

import copy
import weakref
from decimal import Decimal
from typing import Any

import pydantic
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema, to_jsonable_python

from signoff.engine.serialization import unstorable_values

__all__ = [
    "ENUM_NAMES_KEYWORD",
    "REQUIRED_KEYWORD",
    "STRIP_KEYWORD",
    "TEMPORAL_KEYS",
    "URL_KEYS",
    "InputJsonSchema",
    "input_schema",
]

#: see ``x-signoff-required`` above
REQUIRED_KEYWORD = "x-signoff-required"
#: see ``x-signoff-strip`` above
STRIP_KEYWORD = "x-signoff-strip"
#: see ``x-signoff-enum-names`` above
ENUM_NAMES_KEYWORD = "x-signoff-enum-names"

#: the url_schema options that decide whether pydantic accepts a URL
URL_KEYS = ("allowed_schemes", "max_length", "host_required")
_DECIMAL_KEYS = ("le", "ge", "lt", "gt", "max_digits", "decimal_places", "multiple_of")
#: the date/datetime/time/timedelta schema options that decide whether pydantic accepts one
#: (besides its format): bounds, relative to now, and time zone
TEMPORAL_KEYS = ("gt", "ge", "lt", "le", "now_op", "now_utc_offset", "tz_constraint")


class InputJsonSchema(GenerateJsonSchema):
    """pydantic's JSON schema generator, keeping the checks JSON Schema cannot express."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._regex_engines: list[str | None] = []
        #: whether each model being read strips its text (``str_strip_whitespace``)
        self._strips: list[bool] = []
        #: whether each model being read takes its fields' names (``populate_by_name``)
        self._by_name: list[bool] = []

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        config = schema.get("config") or {}
        self._regex_engines.append(config.get("regex_engine"))
        self._by_name.append(config.get("validate_by_name") is True)
        self._strips.append(config.get("str_strip_whitespace") is True)
        try:
            return super().model_schema(schema)
        finally:
            self._regex_engines.pop()
            self._by_name.pop()
            self._strips.pop()

    def model_fields_schema(self, schema: core_schema.ModelFieldsSchema) -> JsonSchemaValue:
        by_name = bool(self._by_name) and self._by_name[-1]
        for name, field in schema["fields"].items():
            alias = field.get("validation_alias")
            if not by_name and alias is not None and _keyed_by_name(alias):
                # pydantic's schema then lists the field under its name, which the model
                # refuses (or ignores, with extra="ignore"): no answer could ever give it.
                title = schema.get("model_name") or "the model"
                raise ValueError(
                    f"{title}'s field {name!r} cannot be answered: its validation_alias is "
                    f"a path ({alias!r}), so a form sends the field under its name, which "
                    "the model does not take (set populate_by_name=True, or give it an "
                    "alias that is a plain name)"
                )
        return super().model_fields_schema(schema)

    def union_schema(self, schema: core_schema.UnionSchema) -> JsonSchemaValue:
        found = super().union_schema(schema)
        branches = [b for b in found.get("anyOf") or () if b.get("type") != "null"]
        if sorted(str(b.get("type")) for b in branches) == ["number", "string"]:
            # A number or a text (``float | str``): a Decimal's schema reads the same, and
            # a form must not take this for one (a Decimal is marked by decimal_schema).
            found["x-signoff-number-or-text"] = True
        return found

    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        found = super().str_schema(schema)
        engine: str | None = schema.get("regex_engine")
        engine = engine or next((e for e in reversed(self._regex_engines) if e), None)
        if "pattern" in found and engine == "python-re":
            found["x-signoff-regex-engine"] = "python-re"
        strip = schema.get("strip_whitespace")
        if strip is None:
            strip = bool(self._strips) and self._strips[-1]  # a model's own config only
        if strip:
            # The model checks "1.2.3 " as "1.2.3": a form must not refuse the space that
            # a paste brought along, which the model would drop.
            found[STRIP_KEYWORD] = True
        return found

    def enum_schema(self, schema: core_schema.EnumSchema) -> JsonSchemaValue:
        found = super().enum_schema(schema)
        members = schema["members"]
        if any(not isinstance(member.value, str) for member in members):
            # Only the values reach the schema: a form offered "1", "2" and "3" for an
            # IntEnum of LOW, MEDIUM and HIGH, whose meaning the person then had to guess.
            found[ENUM_NAMES_KEYWORD] = [member.name for member in members]
        return found

    def url_schema(self, schema: core_schema.UrlSchema) -> JsonSchemaValue:
        return _with_url_rules(super().url_schema(schema), schema)

    def multi_host_url_schema(self, schema: core_schema.MultiHostUrlSchema) -> JsonSchemaValue:
        return _with_url_rules(super().multi_host_url_schema(schema), schema)

    def date_schema(self, schema: core_schema.DateSchema) -> JsonSchemaValue:
        return _with_temporal(super().date_schema(schema), schema)

    def datetime_schema(self, schema: core_schema.DatetimeSchema) -> JsonSchemaValue:
        return _with_temporal(super().datetime_schema(schema), schema)

    def time_schema(self, schema: core_schema.TimeSchema) -> JsonSchemaValue:
        return _with_temporal(super().time_schema(schema), schema)

    def timedelta_schema(self, schema: core_schema.TimedeltaSchema) -> JsonSchemaValue:
        return _with_temporal(super().timedelta_schema(schema), schema)

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        found = super().decimal_schema(schema)
        rules: dict[str, Any] = {}
        for key in _DECIMAL_KEYS:
            value = schema.get(key)
            if value is not None:
                # Strings keep a bound such as 0.1 exact; a JSON float would not.
                rules[key] = str(value) if isinstance(value, Decimal) else value
        if schema.get("allow_inf_nan"):
            rules["allow_inf_nan"] = True
        found["x-signoff-decimal"] = rules
        return found


def _keyed_by_name(alias: str | list[str | int] | list[list[str | int]]) -> bool:
    """Whether pydantic's JSON schema lists a field with this ``validation_alias`` (as
    pydantic-core holds it) under the field's own name: as pydantic decides it, when no
    choice of it is a path of one key (``AliasPath("a", "b")``, even ``AliasPath("a")``)."""
    if isinstance(alias, str):
        return False
    return not any(isinstance(p, list) and len(p) == 1 and isinstance(p[0], str) for p in alias)


def _with_url_rules(found: JsonSchemaValue, schema: Any) -> JsonSchemaValue:
    """``found`` with ``x-signoff-url`` when ``schema`` (a pydantic-core URL or multi-host
    URL schema) has rules JSON Schema's format does not carry."""
    rules = {key: schema[key] for key in URL_KEYS if schema.get(key) is not None}
    if rules:
        found["x-signoff-url"] = rules
    return found


def _with_temporal(found: JsonSchemaValue, schema: Any) -> JsonSchemaValue:
    """``found`` with ``x-signoff-temporal`` when ``schema`` (a pydantic-core date,
    datetime, time or timedelta schema) has rules JSON Schema's format does not carry."""
    # Bounds become ISO 8601 text (a duration too: "P1DT5S"), as pydantic writes them.
    rules = {
        key: to_jsonable_python(schema[key]) for key in TEMPORAL_KEYS if schema.get(key) is not None
    }
    if rules:
        found["x-signoff-temporal"] = {"type": schema["type"], **rules}
    return found


#: the longest title (the model's) a pause keeps
MAX_TITLE = 200


def input_schema(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The JSON schema to store for a pause that waits for ``model``.

    Example::

        >>> input_schema(Budget)["properties"]["amount"]["x-signoff-decimal"]
        {'le': '1000', 'ge': '0'}
    """
    # Generating it takes about a millisecond, on every pause: keep one per model class
    # (weakly, since with_initial_data makes classes) and hand out copies.
    schema = _SCHEMAS.get(model)
    if schema is None:
        schema = model.model_json_schema(schema_generator=InputJsonSchema)
        for path, why in unstorable_values(schema).items():
            raise ValueError(
                f"{model.__name__}'s JSON schema cannot be stored: the number at {path} "
                f"{why} (a default or initial value of its fields)"
            )
        title = str(schema.get("title") or "")
        if len(title) > MAX_TITLE:
            raise ValueError(
                f"{model.__name__}'s title {title[:40]!r}... is {len(title)} characters; a "
                f"pause keeps at most {MAX_TITLE}"
            )
        _SCHEMAS[model] = schema
    return copy.deepcopy(schema)


_SCHEMAS: weakref.WeakKeyDictionary[type[pydantic.BaseModel], dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)
