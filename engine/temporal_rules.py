"""The rules of a date, datetime, time or duration that JSON Schema's ``format`` does not
carry (bounds, "in the past/future", time zone), as ``engine.input_schema`` stores them in
``x-signoff-temporal``: checked by pydantic-core, exactly as the model checks them, and
told in plain words ("must be a date in the future") under the field.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import pydantic
from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema.protocols import Validator
from pydantic_core import SchemaValidator, core_schema

from signoff.engine.input_schema import TEMPORAL_KEYS

__all__ = ["temporal_errors"]

#: the same JSON text for the same rules, whatever their key order
_cache_key = json.JSONEncoder(sort_keys=True).encode

#: pydantic-core's date, datetime, time and timedelta schemas, by their ``type``
_TEMPORAL_SCHEMAS: dict[str, Callable[..., core_schema.CoreSchema]] = {
    "date": core_schema.date_schema,
    "datetime": core_schema.datetime_schema,
    "time": core_schema.time_schema,
    "timedelta": core_schema.timedelta_schema,
}
_BOUND_KEYS = ("gt", "ge", "lt", "le")
_BOUND_WORDS = {
    "greater_than": ("gt", "must be after {}"),
    "greater_than_equal": ("ge", "must be {} or later"),
    "less_than": ("lt", "must be before {}"),
    "less_than_equal": ("le", "must be {} or earlier"),
}
_DURATION_WORDS = {
    "greater_than": "must be longer than {}",
    "greater_than_equal": "must be at least {}",
    "less_than": "must be shorter than {}",
    "less_than_equal": "must be at most {}",
}
_TEMPORAL_WORDS = {
    "date_future": "must be a date in the future",
    "date_past": "must be a date in the past",
    "datetime_future": "must be a date and time in the future",
    "datetime_past": "must be a date and time in the past",
    "timezone_aware": "must include a time zone",
    "timezone_naive": "must not include a time zone",
}


@dataclass(frozen=True)
class _Temporal:
    """A built check of ``x-signoff-temporal`` rules, with its bounds as values."""

    kind: str
    check: SchemaValidator
    bounds: dict[str, Any]


@functools.lru_cache(maxsize=64)
def _temporal_check(rules_json: str) -> _Temporal | None:
    rules = json.loads(rules_json)
    kind = rules.get("type")
    build = _TEMPORAL_SCHEMAS.get(kind)
    if build is None:
        return None  # a kind this version does not know: the model judges it
    plain = SchemaValidator(build())
    options = {key: rules[key] for key in TEMPORAL_KEYS if key in rules}
    bounds = {key: plain.validate_python(options[key]) for key in _BOUND_KEYS if key in options}
    return _Temporal(kind, SchemaValidator(build(**{**options, **bounds})), bounds)


def _shown(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)  # a timedelta: "1 day, 2:00:00"


def temporal_errors(
    validator: Validator, rules: Any, instance: Any, schema: Any
) -> Iterator[SchemaError]:
    """The ``x-signoff-temporal`` keyword of ``engine.validation``'s JSON Schema check:
    what is wrong with ``instance`` (ISO 8601 text) under ``rules``, in plain words."""
    if not isinstance(instance, str):
        return  # the type check reports it
    built = _temporal_check(_cache_key(rules))
    if built is None:
        return
    try:
        built.check.validate_python(instance)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        kind = error["type"]
        if kind in _BOUND_WORDS:
            key, words = _BOUND_WORDS[kind]
            if built.kind == "timedelta":
                words = _DURATION_WORDS[kind]
            yield SchemaError(words.format(_shown(built.bounds[key])))
        elif kind in _TEMPORAL_WORDS:
            yield SchemaError(_TEMPORAL_WORDS[kind])
        elif kind == "timezone_offset":
            offset = timedelta(seconds=(error.get("ctx") or {}).get("tz_expected", 0))
            yield SchemaError(f"must be in the time zone {timezone(offset)}")
        # Anything else is a value that is not one at all: the format check says so.
