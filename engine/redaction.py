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
    return _hidden(schema, value, schema, 0)


def _has_secrets(node: Any) -> bool:
    """Whether any part of a schema is ``writeOnly``: most have none, and are left alone."""
    if isinstance(node, Mapping):
        return node.get("writeOnly") is True or any(_has_secrets(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_secrets(v) for v in node)
    return False


def _target(root: Mapping[str, Any], reference: str) -> Any:
    """What a local ``$ref`` points at: ``#/$defs/X`` as pydantic writes it, or any other
    path in the schema (Prefect stores nested models' as ``#/definitions/X``)."""
    found: Any = root
    for part in reference.removeprefix("#/").split("/"):
        found = found.get(part) if isinstance(found, Mapping) else None
    return found


def _hidden(node: Any, value: Any, root: Mapping[str, Any], depth: int) -> Any:
    """``root``: the whole schema, which local references point into."""
    if not isinstance(node, Mapping) or value is None or depth > _MAX_DEPTH:
        return value
    reference = node.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/"):
        node = _target(root, reference)
        if not isinstance(node, Mapping):
            return value
    if node.get("writeOnly") is True:
        return SECRET_MASK
    for combined in ("anyOf", "oneOf", "allOf"):
        branches = node.get(combined)
        if isinstance(branches, list):
            # Optional[SecretStr] and the like: a value any secret branch could hold.
            for branch in branches:
                shown = _hidden(branch, value, root, depth + 1)
                if shown is not value:
                    return shown
    if isinstance(value, dict):
        fields = node.get("properties")
        fields = fields if isinstance(fields, Mapping) else {}
        others = node.get("additionalProperties")
        return {
            name: _hidden(fields.get(name, others), item, root, depth + 1)
            for name, item in value.items()
        }
    if isinstance(value, list):
        items = node.get("items")
        return [_hidden(items, item, root, depth + 1) for item in value]
    return value


__all__ = ["SECRET_MASK", "hide_secrets"]
