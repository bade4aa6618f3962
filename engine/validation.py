"""Checking input against a stored JSON schema, with one plain message per field."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pydantic
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError as SchemaError

_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a group of fields",
    "null": "empty",
}
_FORMAT_WORDS = {
    "email": "an email address",
    "uri": "a URL",
    "date": "a date (YYYY-MM-DD)",
    "time": "a time (HH:MM)",
    "date-time": "a date and time",
}
_REQUIRED = re.compile(r"^'(?P<name>[^']+)' is a required property")
_UNEXPECTED = re.compile(r"\('(?P<names>.+)' (?:was|were) unexpected\)")


def _path(parts: Iterable[Any]) -> str:
    return ".".join(str(p) for p in parts)


def _describe(error: SchemaError) -> tuple[str, str]:
    """(field path, message in plain words) for one jsonschema error."""
    path = _path(error.absolute_path)
    kind = error.validator
    expected: Any = error.validator_value
    if kind == "required":
        match = _REQUIRED.match(error.message)
        name = match["name"] if match else "?"
        return (f"{path}.{name}" if path else name), "is required"
    if kind == "additionalProperties":
        match = _UNEXPECTED.search(error.message)
        names = match["names"] if match else "?"
        return path, f"unknown field '{names}'"
    if kind in ("anyOf", "oneOf") and error.context:
        # Optional[X] is anyOf [X, null]: the helpful message is the one about X.
        useful = [e for e in error.context if e.validator_value != "null"] or list(error.context)
        return _path(error.absolute_path), _describe(useful[0])[1]
    messages: dict[str, Callable[[], str]] = {
        "type": lambda: (
            "must be "
            + " or ".join(
                _TYPE_WORDS.get(str(t), str(t))
                for t in (expected if isinstance(expected, list) else [expected])
            )
        ),
        "enum": lambda: "must be one of: " + ", ".join(str(v) for v in expected),
        "const": lambda: f"must be {expected}",
        "minimum": lambda: f"must be at least {expected}",
        "maximum": lambda: f"must be at most {expected}",
        "exclusiveMinimum": lambda: f"must be more than {expected}",
        "exclusiveMaximum": lambda: f"must be less than {expected}",
        "minLength": lambda: f"must be at least {expected} characters long",
        "maxLength": lambda: f"must be at most {expected} characters long",
        "minItems": lambda: f"needs at least {expected} items",
        "maxItems": lambda: f"takes at most {expected} items",
        "pattern": lambda: f"must match the pattern {expected}",
        "format": lambda: f"must be {_FORMAT_WORDS.get(str(expected), str(expected))}",
        "multipleOf": lambda: f"must be a multiple of {expected}",
        "uniqueItems": lambda: "must not repeat items",
    }
    describe = messages.get(str(kind))
    return path, describe() if describe else error.message


@functools.lru_cache(maxsize=256)
def _validator(schema_json: str) -> Draft202012Validator:
    # Building a validator costs more than validating; pauses reuse a handful of schemas.
    return Draft202012Validator(json.loads(schema_json), format_checker=FormatChecker())


def schema_errors(schema: Mapping[str, Any], payload: Any) -> dict[str, str]:
    """Every way ``payload`` breaks ``schema``, as ``{field path: message}``; empty if valid.

    Example::

        >>> schema_errors({"type": "object", "properties": {"n": {"type": "integer"}},
        ...                "required": ["n"]}, {})
        {'n': 'is required'}
    """
    validator = _validator(json.dumps(schema, sort_keys=True))
    found: dict[str, list[str]] = {}
    for error in validator.iter_errors(payload):
        path, message = _describe(error)
        if message not in found.setdefault(path, []):
            found[path].append(message)
    return {path: "; ".join(messages) for path, messages in sorted(found.items())}


def model_errors(exc: pydantic.ValidationError) -> dict[str, str]:
    """A pydantic ValidationError as ``{field path: message}``, without pydantic's prefixes."""
    found: dict[str, list[str]] = {}
    for err in exc.errors():
        path = _path(p for p in err["loc"] if p != "__root__")
        message = str(err["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        found.setdefault(path, []).append(message)
    return {path: "; ".join(messages) for path, messages in found.items()}
