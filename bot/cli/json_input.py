"""``--input``: an answer given on the command line, a JSON object read strictly.

Stricter than ``json.loads``: a field named twice, Python's ``Infinity`` and ``NaN``, a
number longer than Python reads, and nesting past ``MAX_NESTING`` levels are each refused
by name, not read as some value (or failing later, inside the engine).

A number with a fraction or an exponent is read exactly (``Decimal``) and settled once the
input's schema is known (``exact_numbers``): a ``Decimal`` field gets its digits as text,
as a Slack form sends them, so ``12345678901234567.89`` is not rounded to a float; any
other field gets a float. A number too large or too fine to write out (``1e10000000``,
see ``engine.numbers``) is left as read, for the engine to refuse by its field's name.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, NoReturn

import click

from signoff.bot.cli.render import JSONValue
from signoff.bot.errors import JsonTooDeep
from signoff.bot.forms.json_text import read_json
from signoff.engine.numbers import number_refusal


def parse_input(_ctx: click.Context, _param: click.Parameter, raw: str | None) -> JSONValue:
    """Parse ``--input``: a JSON object, or nothing.

    Raises:
        click.BadParameter: the text is not JSON (Python's own ``Infinity`` and ``NaN``
            included), not a JSON object, names a field twice, holds a number too long, or
            nests too deeply.
    """
    if raw is None:
        return None
    try:
        value: JSONValue = read_json(
            raw,
            object_pairs_hook=_fields_once,
            parse_constant=_not_json,
            parse_int=_whole_number,
            parse_float=Decimal,
        )
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON ({exc})") from exc
    except JsonTooDeep as exc:
        raise click.BadParameter(str(exc)) from exc
    if not isinstance(value, dict):
        # A pause that asks for one value (wait_for_input=str, int, ...) takes it as "value".
        raise click.BadParameter(
            f"expected a JSON object like '{{\"approved\": true}}', got {raw}; "
            f"for a pause that asks for a single value, give it as '{{\"value\": {raw}}}'"
        )
    return value


def _fields_once(pairs: list[tuple[str, JSONValue]]) -> dict[str, JSONValue]:
    """A JSON object's fields, refusing a name that comes twice: JSON parsers keep the last,
    and an answer such as ``{"approve": true, "approve": false}`` has no one meaning."""
    fields: dict[str, JSONValue] = {}
    for name, value in pairs:
        if name in fields:
            raise click.BadParameter(f"the field {name!r} is given twice")
        fields[name] = value
    return fields


def _not_json(word: str) -> NoReturn:
    """Python's json reads ``Infinity``, ``-Infinity`` and ``NaN``; JSON has none of them."""
    raise click.BadParameter(f"{word} is not a JSON number")


def _whole_number(digits: str) -> int:
    limit = sys.get_int_max_str_digits()
    if limit and len(digits.lstrip("-")) > limit:
        raise click.BadParameter(f"a number has more than {limit:,} digits")
    return int(digits)


def exact_numbers(
    values: Mapping[str, Any], schema: Mapping[str, Any] | None
) -> dict[str, JSONValue]:
    """``values`` as ``parse_input`` read them, with each number it read exactly made a
    float, or, where ``schema`` (the input's) takes a ``Decimal`` (``x-signoff-decimal``),
    its digits as text: such a field takes a digit string, which keeps every digit.

    Example::

        >>> schema = {"properties": {"amount": {"x-signoff-decimal": {}}}}
        >>> exact_numbers({"amount": Decimal("0.1000000000000000000001"), "f": Decimal("1.5")}, schema)
        {'amount': '0.1000000000000000000001', 'f': 1.5}
    """
    root = schema or {}
    return {name: _settled(value, _field(root, root, name), root) for name, value in values.items()}


def _settled(value: Any, node: object, root: Mapping[str, Any]) -> Any:
    if isinstance(value, Decimal):
        if number_refusal(value) is not None:
            # Left as read, never written out: 1e1000000000 in plain digits is a gigabyte.
            # The engine refuses it by its field's name, as a Slack form refuses it.
            return value
        return format(value, "f") if _takes_decimal(node, root, 0) else float(value)
    if isinstance(value, dict):
        return {k: _settled(v, _field(node, root, k), root) for k, v in value.items()}
    if isinstance(value, list):
        return [_settled(v, _item(node, root, i), root) for i, v in enumerate(value)]
    return value


#: how many ``$ref`` and ``anyOf`` steps are followed to find what a field takes
_MAX_STEPS = 20


def _choices(node: object, root: Mapping[str, Any], steps: int = 0) -> list[Mapping[str, Any]]:
    """``node`` and what its ``$ref``, ``anyOf``, ``oneOf`` and ``allOf`` lead to."""
    if not isinstance(node, Mapping) or steps > _MAX_STEPS:
        return []
    found = [node]
    ref = node.get("$ref")
    defs = root.get("$defs")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and isinstance(defs, Mapping):
        found += _choices(defs.get(ref.removeprefix("#/$defs/")), root, steps + 1)
    for word in ("anyOf", "oneOf", "allOf"):
        branches = node.get(word)
        for branch in branches if isinstance(branches, list) else ():
            found += _choices(branch, root, steps + 1)
    return found


def _takes_decimal(node: object, root: Mapping[str, Any], steps: int) -> bool:
    return any("x-signoff-decimal" in choice for choice in _choices(node, root))


def _field(node: object, root: Mapping[str, Any], name: str) -> object:
    for choice in _choices(node, root):
        properties = choice.get("properties")
        if isinstance(properties, Mapping) and name in properties:
            return properties[name]
    for choice in _choices(node, root):
        if isinstance(choice.get("additionalProperties"), Mapping):
            return choice["additionalProperties"]
    return None


def _item(node: object, root: Mapping[str, Any], index: int) -> object:
    for choice in _choices(node, root):
        prefix = choice.get("prefixItems")
        if isinstance(prefix, list) and index < len(prefix):
            return prefix[index]
        if isinstance(choice.get("items"), Mapping):
            return choice["items"]
    return None


__all__ = ["exact_numbers", "parse_input"]
