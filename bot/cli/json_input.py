"""``--input``: an answer given on the command line, a JSON object read strictly.

Stricter than ``json.loads``: a field named twice, Python's ``Infinity`` and ``NaN``, a
number longer than Python reads, and nesting past ``MAX_NESTING`` levels are each refused
by name, not read as some value (or failing later, inside the engine).
"""

from __future__ import annotations

import json
import sys
from typing import NoReturn

import click

from signoff.bot.cli.render import JSONValue
from signoff.bot.errors import JsonTooDeep
from signoff.bot.forms.json_text import read_json


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
        )
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON ({exc})") from exc
    except JsonTooDeep as exc:
        raise click.BadParameter(str(exc)) from exc
    if not isinstance(value, dict):
        raise click.BadParameter(f"expected a JSON object like '{{\"approved\": true}}', got {raw}")
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


__all__ = ["parse_input"]
