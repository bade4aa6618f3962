"""An answer as it may be recorded or shown: its secret fields masked.

A field typed ``SecretStr`` or ``SecretBytes`` is ``writeOnly`` in the pause's JSON schema.
The flow gets its value (the pause keeps the answer as given, for the flow and for a re-run
of it), but the audit trail, which can never be changed, records it masked, and so does
whatever shows an answer to people: ``runs show``, ``/runs show``, the run's thread.
Pydantic shows a secret the same way, as ``**********``.

>>> schema = {"type": "object", "properties": {"user": {"type": "string"},
...           "token": {"type": "string", "format": "password", "writeOnly": True}}}
>>> hide_secrets(schema, {"user": "ada", "token": "hunter2"})
{'user': 'ada', 'token': '**********'}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: what a secret's value is shown as
SECRET_MASK = "**********"
#: how deep a schema's references are followed (a recursive model's answer is finite)
_MAX_DEPTH = 64


def hide_secrets(schema: Mapping[str, Any] | None, value: Any) -> Any:
    """``value``, an answer to a pause with ``schema``, with each secret field's value
    (one the schema marks ``writeOnly``) replaced by ``SECRET_MASK``; the rest as given."""
    if not isinstance(schema, Mapping) or not _has_secrets(schema):
        return value
    definitions = schema.get("$defs")
    return _hidden(schema, value, definitions if isinstance(definitions, Mapping) else {}, 0)


def _has_secrets(schema: Mapping[str, Any]) -> bool:
    """Whether any part of a schema is ``writeOnly``: most have none, and are left alone.

    Asked on every answer: one pass of the C encoder over the schema costs a fraction of a
    walk of it in Python (the walk was about 5% of a resume). ``writeOnly`` needs no
    escaping, so its key holding ``true`` reads exactly so in the text.
    """
    try:
        return '"writeOnly":true' in _compact(schema)
    except (TypeError, ValueError):  # not JSON (a schema handed in by code): look in full
        return True


_compact = json.JSONEncoder(separators=(",", ":")).encode


def _hidden(node: Any, value: Any, definitions: Mapping[str, Any], depth: int) -> Any:
    if not isinstance(node, Mapping) or value is None or depth > _MAX_DEPTH:
        return value
    reference = node.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/$defs/"):
        node = definitions.get(reference.removeprefix("#/$defs/"), {})
        if not isinstance(node, Mapping):
            return value
    if node.get("writeOnly") is True:
        return SECRET_MASK
    for combined in ("anyOf", "oneOf", "allOf"):
        branches = node.get(combined)
        if isinstance(branches, list):
            # Optional[SecretStr] and the like: a value any secret branch could hold.
            for branch in branches:
                shown = _hidden(branch, value, definitions, depth + 1)
                if shown is not value:
                    return shown
    if isinstance(value, dict):
        fields = node.get("properties")
        fields = fields if isinstance(fields, Mapping) else {}
        others = node.get("additionalProperties")
        return {
            name: _hidden(fields.get(name, others), item, definitions, depth + 1)
            for name, item in value.items()
        }
    if isinstance(value, list):
        items = node.get("items")
        return [_hidden(items, item, definitions, depth + 1) for item in value]
    return value


__all__ = ["SECRET_MASK", "hide_secrets"]
