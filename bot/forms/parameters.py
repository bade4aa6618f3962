"""Flow parameters typed as text (``k=v`` in ``/runs start``, ``--param`` on the command
line and in ``signoff demo``), each read as the flow's parameters schema takes it.

A parameter that takes text (``str``, ``str | None``, a ``Literal`` or ``Enum`` of strings)
gets the text as it was typed, so that ``version=1.10`` stays ``"1.10"`` and
``ticket=1234`` stays ``"1234"``. Any other parameter's text (a date or a UUID too, so
that ``day=null`` is None for a ``date | None``) is read as JSON when it can be
(``count=3``, ``dry_run=true``, ``tags=["a","b"]``) and otherwise left as text for the
flow's type hints to judge (``day=2024-01-02``); JSON nested too deeply to store is refused
(``JsonTooDeep``).

    >>> schema = {"properties": {"ticket": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}
    >>> parameter_values({"ticket": "1234", "count": "3"}, schema)
    {'ticket': '1234', 'count': 3}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from signoff.bot.errors import JsonTooDeep
from signoff.bot.forms.json_text import read_json

__all__ = ["accepts_text", "parameter_value", "parameter_values"]

#: how deep ``$ref``, ``anyOf`` and ``allOf`` are followed; a schema nested past it (or one
#: referring to itself) is taken as not text, and its values are read as JSON
_MAX_DEPTH = 20
#: formats of ``"type": "string"`` that are values with a syntax of their own, not free
#: text: a parameter of one reads its text as JSON when it parses, as a number does. A
#: path, a password (``SecretStr``), bytes or an unknown format stay text, where ``1234``
#: or ``null`` may be meant as typed.
_NOT_TEXT_FORMATS = frozenset(
    {
        "date", "date-time", "time", "duration",
        "uuid", "uuid1", "uuid3", "uuid4", "uuid5", "uuid6", "uuid7", "uuid8",
        "email", "idn-email", "uri", "iri", "ipv4", "ipv6",
    }
)  # fmt: skip


def accepts_text(node: Mapping[str, Any], schema: Mapping[str, Any] | None = None) -> bool:
    """Whether a parameter whose schema is ``node`` takes a string as it is.

    Args:
        node: The parameter's schema (one entry of ``properties``).
        schema: The whole parameters schema, which a ``$ref`` (an ``Enum``, say) points
            into.
    """
    return _accepts_text(node, schema or {}, 0)


def _accepts_text(node: object, schema: Mapping[str, Any], depth: int) -> bool:
    if not isinstance(node, Mapping) or depth > _MAX_DEPTH:
        return False
    if node.get("type") == "string":
        # A date or a UUID is a string in JSON but not free text: ``null`` is None there, and
        # its own text (``2024-01-02``) does not parse as JSON, so it is kept as typed anyway.
        return node.get("format") not in _NOT_TEXT_FORMATS
    enum = node.get("enum")
    if isinstance(enum, list) and any(isinstance(v, str) for v in enum):
        return True
    if isinstance(node.get("const"), str):
        return True
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        # ``#/$defs/X`` as pydantic writes it, ``#/definitions/X`` as Prefect stores it.
        target: object = schema
        for part in ref.removeprefix("#/").split("/"):
            target = target.get(part) if isinstance(target, Mapping) else None
        if _accepts_text(target, schema, depth + 1):
            return True
    branches = [*_list(node.get("anyOf")), *_list(node.get("allOf"))]
    return any(_accepts_text(branch, schema, depth + 1) for branch in branches)


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def parameter_value(schema: Mapping[str, Any] | None, name: str, text: str) -> Any:
    """``text`` as parameter ``name`` takes it: verbatim for text, else JSON when it parses.

    Args:
        schema: The flow's parameters JSON schema; None when it has none (a parameter of a
            type without one), when every value is read as JSON where it parses.
        name: The parameter.
        text: What was typed after ``name=``.

    Raises:
        JsonTooDeep: the text is JSON nested past ``json_text.MAX_NESTING`` levels, for a
            parameter that does not take text.
    """
    properties = schema.get("properties") if schema else None
    node = properties.get(name) if isinstance(properties, Mapping) else None
    if isinstance(node, Mapping) and accepts_text(node, schema):
        return text
    try:
        return read_json(text)
    except JsonTooDeep:
        # As text, the flow would say it is not a list or an object, which it is.
        raise
    except ValueError:
        # Not JSON, or a number too long to read: the flow's types judge the text.
        return text


def parameter_values(texts: Mapping[str, str], schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every ``name -> text`` of ``texts`` read by ``parameter_value``.

    Raises:
        JsonTooDeep: as ``parameter_value``.
    """
    return {name: parameter_value(schema, name, text) for name, text in texts.items()}
