"""Checking input against a stored JSON schema, with one plain message per field.

The check is as strict as the model's types, so that a form can refuse in place every
value the model would refuse (only the model's own validators judge later). Where JSON
Schema and pydantic differ, pydantic-core itself decides:

- ``pattern``: pydantic-core's regex engine (Rust's ``regex``, where ``$`` matches only at
  the very end, so ``"abc\n"`` fails ``^abc$``), or Python's ``re`` for patterns Rust
  cannot compile and for models configured with ``regex_engine="python-re"``;
- ``format``: email addresses through ``email-validator`` (pydantic's ``EmailStr``), URLs
  through pydantic-core's URL parser with the field's schemes and length
  (``x-signoff-url``), IP addresses, interfaces and networks through ``ipaddress`` (as
  pydantic checks them), dates, times, UUIDs (and their version) and the like through
  pydantic-core;
- dates, datetimes, times and durations: their bounds, "in the past/future" and time
  zone rules (``x-signoff-temporal``) through pydantic-core;
- ``Decimal``: its bounds, digits and places (``x-signoff-decimal``) apply whichever
  ``anyOf`` branch (number or digit string) the value took.
- text the model strips (``x-signoff-strip``) meets its lengths, pattern and format
  without the spaces around it, stripped as pydantic-core strips it;
- ``multipleOf`` on a float: pydantic's tolerance (a remainder within a billionth of the
  step), so that ``0.3`` is a multiple of ``0.1`` as it is to the model; a whole number
  given to a float field is read as the float nearest it, as the model reads it.

Not checked here, so only the model refuses them (after the answer is stored): strict mode
(``StrictInt``, ``strict=True``), keys of a ``dict`` that are not text, ``Json[...]``,
base64 (``Base64Str``...), and paths that must exist (``FilePath``...).

An answer is at most ``MAX_ANSWER_CHARS`` characters as JSON, whatever its schema: it is
stored with the pause and in the audit trail, and a Slack form holds far less.

See ``engine.input_schema`` for the ``x-signoff-*`` keywords.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

import pydantic
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema.protocols import Validator
from jsonschema.validators import extend
from pydantic_core import PydanticCustomError, SchemaValidator, core_schema
from pydantic_core import SchemaError as CoreSchemaError

from signoff.engine.input_schema import STRIP_KEYWORD, URL_KEYS
from signoff.engine.numbers import text_number_refusal
from signoff.engine.refusals import field_path
from signoff.engine.serialization import unstorable_values
from signoff.engine.temporal_rules import temporal_errors

#: a schema (or a field's rules) as the key its built check is kept under: the same JSON
#: text for the same content, whatever its key order
_cache_key = json.JSONEncoder(sort_keys=True).encode

_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a group of fields",
    "null": "empty",
}
#: the versions pydantic's UUID1 ... UUID8 check (there is no UUID2)
_UUID_VERSIONS = (1, 3, 4, 5, 6, 7, 8)
_FORMAT_WORDS = {
    "email": "an email address",
    "name-email": "an email address",
    "uri": "a URL",
    "date": "a date (YYYY-MM-DD)",
    "time": "a time (HH:MM)",
    "date-time": "a date and time",
    "uuid": "a UUID",
    **{f"uuid{version}": f"a version {version} UUID" for version in _UUID_VERSIONS},
    "duration": "a duration",
    "ipv4": "an IPv4 address",
    "ipv6": "an IPv6 address",
    "ipvanyaddress": "an IP address",
    "ipv4interface": "an IPv4 address with a prefix length (10.0.0.1/24)",
    "ipv6interface": "an IPv6 address with a prefix length (2001:db8::1/64)",
    "ipvanyinterface": "an IP address with a prefix length (10.0.0.1/24)",
    "ipv4network": "an IPv4 network (10.0.0.0/24)",
    "ipv6network": "an IPv6 network (2001:db8::/64)",
    "ipvanynetwork": "an IP network (10.0.0.0/24)",
    "multi-host-uri": "a URL",
}
_REQUIRED = re.compile(r"^'(?P<name>[^']+)' is a required property")
_UNEXPECTED = re.compile(r"\('(?P<names>.+)' (?:was|were) unexpected\)")


def _describe(error: SchemaError) -> tuple[str, str]:
    """(field path, message in plain words) for one jsonschema error."""
    path = field_path(error.absolute_path)
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
        return field_path(error.absolute_path), _describe(useful[0])[1]
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
        "minLength": lambda: f"must be at least {_count(expected, 'character')} long",
        "maxLength": lambda: f"must be at most {_count(expected, 'character')} long",
        "minItems": lambda: f"needs at least {_count(expected, 'item')}",
        "maxItems": lambda: f"takes at most {_count(expected, 'item')}",
        "pattern": lambda: f"must match the pattern {expected}",
        "format": lambda: _format_words(error),
        "multipleOf": lambda: f"must be a multiple of {expected}",
        "uniqueItems": lambda: "must not repeat items",
    }
    describe = messages.get(str(kind))
    return path, describe() if describe else error.message


def _count(number: Any, noun: str) -> str:
    """``1 item``, ``2 items``: the noun agrees with the number shown."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _format_words(error: SchemaError) -> str:
    """What a value of the error's ``format`` must be; for a URL of a scheme its field
    does not take (``ftp://...`` for an ``HttpUrl``), which schemes it takes."""
    fmt = str(error.validator_value)
    words = f"must be {_FORMAT_WORDS.get(fmt, fmt)}"
    rules = error.schema.get("x-signoff-url") if isinstance(error.schema, Mapping) else None
    schemes = rules.get("allowed_schemes") if isinstance(rules, Mapping) else None
    typed = error.instance if isinstance(error.instance, str) else ""
    if not isinstance(schemes, list) or not schemes or fmt not in _URL_SCHEMAS:
        return words
    if any(typed.lower().startswith(f"{scheme}:") for scheme in schemes):
        return words  # of a scheme it takes, and still not a URL it takes ("https://")
    return f"{words} starting with " + " or ".join(f"{scheme}://" for scheme in schemes)


@functools.lru_cache(maxsize=256)
def _regex(pattern: str, engine: str | None) -> SchemaValidator:
    if engine != "python-re":
        try:
            return SchemaValidator(core_schema.str_schema(pattern=pattern))
        except CoreSchemaError:
            # pydantic cannot build such a model with the Rust engine either, so a model
            # that has this pattern is configured with Python's.
            pass
    return SchemaValidator(core_schema.str_schema(pattern=pattern, regex_engine="python-re"))


def _pattern(validator: Validator, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if not isinstance(instance, str):
        return
    try:
        engine = schema.get("x-signoff-regex-engine")
        _regex(pattern, engine).validate_python(instance)
    except pydantic.ValidationError:
        yield SchemaError(f"{instance!r} does not match {pattern!r}")


@functools.lru_cache(maxsize=64)
def _float_multiple(step: float) -> SchemaValidator:
    return SchemaValidator(core_schema.float_schema(multiple_of=step))


def _multiple_of(validator: Validator, step: Any, instance: Any, schema: Any) -> Iterator[Any]:
    numbers = (instance, step)
    if any(isinstance(n, bool) or not isinstance(n, int | float) for n in numbers):
        return  # the type check reports it
    whole = schema.get("type") == "integer"
    if whole and isinstance(instance, float) and instance.is_integer():
        instance = int(instance)  # an int field reads 1.8e16 as that whole number
    if whole and isinstance(instance, int) and isinstance(step, int):
        failed = step != 0 and instance % step != 0  # an int field: exact, in both
    else:
        # pydantic lets a float be off by a billionth of the step (0.3 is a multiple of
        # 0.1 to a float field), and a float field reads a whole number past 2**53 as the
        # float nearest it; JSON Schema's exact quotient would refuse either.
        try:
            _float_multiple(float(step)).validate_python(float(instance))
            failed = False
        except (pydantic.ValidationError, OverflowError):
            failed = True
    if failed:
        yield SchemaError(f"{instance!r} is not a multiple of {step!r}")


def _plain(schema: core_schema.CoreSchema) -> Callable[[Any], Any]:
    return SchemaValidator(schema).validate_python


#: formats pydantic checks, as pydantic checks them: emails through email-validator, IP
#: addresses with ``ipaddress`` (pydantic's validators call the same constructors; the
#: ``ip_*`` functions try IPv4, then IPv6, as ``IPvAny*`` do), the rest through pydantic-core
_FORMATS: dict[str, Callable[[Any], Any]] = {
    "email": pydantic.TypeAdapter(pydantic.EmailStr).validate_python,
    "name-email": pydantic.TypeAdapter(pydantic.NameEmail).validate_python,
    "date": _plain(core_schema.date_schema()),
    "time": _plain(core_schema.time_schema()),
    "date-time": _plain(core_schema.datetime_schema()),
    "uuid": _plain(core_schema.uuid_schema()),
    **{
        f"uuid{version}": _plain(core_schema.uuid_schema(version=version))  # type: ignore[arg-type]
        for version in _UUID_VERSIONS
    },
    "duration": _plain(core_schema.timedelta_schema()),
    "ipv4": ipaddress.IPv4Address,
    "ipv6": ipaddress.IPv6Address,
    "ipvanyaddress": ipaddress.ip_address,
    "ipv4interface": ipaddress.IPv4Interface,
    "ipv6interface": ipaddress.IPv6Interface,
    "ipvanyinterface": ipaddress.ip_interface,
    "ipv4network": ipaddress.IPv4Network,
    "ipv6network": ipaddress.IPv6Network,
    "ipvanynetwork": ipaddress.ip_network,
}
#: the URL kinds and the pydantic-core schema that parses each
_URL_SCHEMAS: dict[str, Callable[..., core_schema.CoreSchema]] = {
    "uri": core_schema.url_schema,
    "multi-host-uri": core_schema.multi_host_url_schema,
}


@functools.lru_cache(maxsize=64)
def _url(fmt: str, rules_json: str) -> Callable[[Any], Any]:
    rules = json.loads(rules_json)
    return _plain(_URL_SCHEMAS[fmt](**{k: rules[k] for k in URL_KEYS if k in rules}))


def _format(validator: Validator, fmt: str, instance: Any, schema: Any) -> Iterator[Any]:
    if not isinstance(instance, str):
        return
    if fmt in _URL_SCHEMAS:
        check = _url(fmt, _cache_key(schema.get("x-signoff-url") or {}))
    elif fmt in _FORMATS:
        check = _FORMATS[fmt]
    else:
        # Formats pydantic does not check (password, binary, path) or that need more than
        # a format to check (base64: the engine does not know whether it decodes to text);
        # the module's docstring lists them.
        return
    try:
        check(instance)
    except (pydantic.ValidationError, PydanticCustomError, ValueError) as exc:
        yield SchemaError(f"{instance!r} is not a valid {fmt}", cause=exc)


@functools.lru_cache(maxsize=64)
def _decimal_check(rules_json: str) -> SchemaValidator:
    rules = json.loads(rules_json)
    return SchemaValidator(core_schema.decimal_schema(**rules))


_DECIMAL_WORDS = {
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "greater_than": "must be more than {gt}",
    "less_than": "must be less than {lt}",
    "multiple_of": "must be a multiple of {multiple_of}",
    "decimal_max_digits": "must have at most {max_digits} digits",
    "decimal_max_places": "must have at most {decimal_places} decimal places",
    "decimal_whole_digits": "must have at most {whole_digits} digits before the point",
    "finite_number": "must be a finite number",
}


def _decimal(validator: Validator, rules: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if isinstance(instance, bool) or not isinstance(instance, str | int | float):
        return  # the type check reports it
    too_large = text_number_refusal(instance) if isinstance(instance, str) else None
    if too_large is not None:
        # Before the bounds, which would say "at most 1000" of 1e10000000 (and the model's
        # Decimal would be written out in full where something shows it).
        yield SchemaError(too_large)
        return
    try:
        _decimal_check(_cache_key(rules)).validate_python(instance)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        words = _DECIMAL_WORDS.get(error["type"])
        context = {**{k: str(v) for k, v in (error.get("ctx") or {}).items()}}
        try:
            message = words.format(**context) if words else "must be a number"
        except KeyError:
            message = str(error["msg"])
        yield SchemaError(message)


def _legacy_decimals(node: Any) -> Any:
    """Schemas stored without ``x-signoff-decimal``: a Decimal's number bounds go on both
    branches of its ``anyOf`` (number or digit string), so ``"-3"`` meets ``ge=0`` too."""
    if isinstance(node, list):
        return [_legacy_decimals(n) for n in node]
    if not isinstance(node, dict):
        return node
    found = {k: _legacy_decimals(v) for k, v in node.items()}
    branches = found.get("anyOf")
    if isinstance(branches, list) and "x-signoff-decimal" not in found:
        types = {b.get("type") for b in branches if isinstance(b, dict)}
        number = next(
            (b for b in branches if isinstance(b, dict) and b.get("type") == "number"), None
        )
        if types == {"number", "string"} and number is not None:
            keys = {
                "minimum": "ge",
                "maximum": "le",
                "exclusiveMinimum": "gt",
                "exclusiveMaximum": "lt",
                "multipleOf": "multiple_of",
            }
            rules = {
                keys[k]: format(Decimal(str(v)).normalize(), "f")
                for k, v in number.items()
                if k in keys
            }
            if rules:  # without bounds, a number-or-text union may be any text (float | str)
                found["x-signoff-decimal"] = rules
    return found


#: pydantic's ``strip_whitespace``, as pydantic-core strips (which spaces count as such)
_strip = _plain(core_schema.str_schema(strip_whitespace=True))


def _stripped(check: Callable[..., Any]) -> Callable[..., Any]:
    """``check`` of text as the model reads it: without the spaces around it, where the
    model strips them (``x-signoff-strip``)."""

    def stripped(validator: Validator, expected: Any, instance: Any, schema: Any) -> Any:
        if isinstance(instance, str) and isinstance(schema, Mapping) and schema.get(STRIP_KEYWORD):
            instance = _strip(instance)
        return check(validator, expected, instance, schema)

    return stripped


_InputValidator: Any = extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    {
        "minLength": _stripped(Draft202012Validator.VALIDATORS["minLength"]),
        "maxLength": _stripped(Draft202012Validator.VALIDATORS["maxLength"]),
        "pattern": _stripped(_pattern),
        "format": _stripped(_format),
        "multipleOf": _multiple_of,
        "x-signoff-decimal": _decimal,
        "x-signoff-temporal": temporal_errors,
    },
)


@functools.lru_cache(maxsize=256)
def _validator(schema_json: str) -> Validator:
    # Building a validator costs more than validating; pauses reuse a handful of schemas.
    made: Validator = _InputValidator(_legacy_decimals(json.loads(schema_json)))
    return made


def prepare_schema(schema: Mapping[str, Any]) -> None:
    """Build the check of ``schema`` now (it is kept), so that the first answer checked
    against it in this process does not wait for it. Never raises: a schema that cannot be
    checked is reported by the answer's own check, as without this."""
    # Checking something (an empty object) also readies what the first check runs.
    with contextlib.suppress(Exception):
        schema_errors(schema, {})


def _leaves(errors: Iterable[SchemaError]) -> Iterator[SchemaError]:
    """The errors to show: for ``Optional[X]`` (``anyOf`` of X and null) the errors inside
    X, each at its own field (``address.city``), rather than one at the group."""
    for error in errors:
        if error.validator in ("anyOf", "oneOf") and error.context:
            by_branch: dict[Any, list[SchemaError]] = {}
            for inner in error.context:
                by_branch.setdefault(inner.relative_schema_path[0], []).append(inner)
            branches = error.validator_value
            real = [
                inner
                for index, inners in by_branch.items()
                if not (isinstance(branches, list) and branches[index] == {"type": "null"})
                for inner in [inners]
            ]
            if len(real) == 1 and error.instance is not None:
                yield from _leaves(real[0])
                continue
        yield error


def _told_by_decimal(error: SchemaError) -> bool:
    """A Decimal's ``anyOf`` error when its ``x-signoff-decimal`` check says it better."""
    instance = error.instance
    return (
        error.validator == "anyOf"
        and isinstance(error.schema, Mapping)
        and "x-signoff-decimal" in error.schema
        and isinstance(instance, str | int | float)
        and not isinstance(instance, bool)
    )


#: The most characters an answer may hold as JSON: a hundred full Slack text boxes (3,000
#: characters each) fit several times over; a file pasted into ``--input`` does not.
MAX_ANSWER_CHARS = 1_000_000


def oversized(payload: Any) -> int | None:
    """How many characters ``payload`` holds as JSON, when that is more than an answer may
    (``MAX_ANSWER_CHARS``); None when it fits."""
    try:
        size = len(json.dumps(payload, ensure_ascii=False, default=repr))
    except (ValueError, RecursionError):
        return None  # an integer too long to write out: the check names its field
    return size if size > MAX_ANSWER_CHARS else None


def schema_errors(schema: Mapping[str, Any], payload: Any) -> dict[str, str]:
    """Every way ``payload`` breaks ``schema``, as ``{field path: message}``; empty if valid.

    Example::

        >>> schema_errors({"type": "object", "properties": {"n": {"type": "integer"}},
        ...                "required": ["n"]}, {})
        {'n': 'is required'}
    """
    size = oversized(payload)
    if size is not None:
        # Refused whole, before the check walks it (a model's patterns and formats, on
        # megabytes of text, would hold the process for as long).
        return {"": f"is {size:,} characters as JSON; an answer holds at most {MAX_ANSWER_CHARS:,}"}
    validator = _validator(_cache_key(schema))
    found: dict[str, list[str]] = {}
    unstorable = unstorable_values(payload)
    for path, why in unstorable.items():
        # inf, nan, an integer too long to write out, a Decimal too large or too fine (a
        # Python caller can pass them; the command line passes a Decimal it read so)
        found[path] = [why]
    for error in _leaves(validator.iter_errors(payload)):
        if _told_by_decimal(error):
            continue
        path, message = _describe(error)
        if path in unstorable:
            continue  # refused whatever else: "at most 1000" of 1e10000000 says less
        if message not in found.setdefault(path, []):
            found[path].append(message)
    return {path: "; ".join(messages) for path, messages in sorted(found.items())}
