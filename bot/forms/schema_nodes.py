"""Reading one node of a model's JSON schema: following ``$ref`` and ``allOf`` wrappers,
folding unions into one kind of value, and reading the keywords a field is built from.

A schema no model produces (hand-written, or stored by another program) is named as
malformed here, with the field's path, rather than failing deeper down.

Example::

    node = resolve({"anyOf": [{"type": "integer"}, {"type": "null"}]}, {}, "count", ())
    assert node.node == {"type": "integer"} and node.nullable
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from signoff.bot.errors import UnsupportedField
from signoff.bot.forms.labels import clip

__all__ = ["NUMBER_OR_TEXT", "Resolved", "enum_options", "malformed", "resolve", "whole_count"]

JSONSchema: TypeAlias = Mapping[str, Any]

#: the engine's mark on a union of a number and a text (``engine.input_schema``)
NUMBER_OR_TEXT = "x-signoff-number-or-text"


@dataclass(frozen=True)
class Resolved:
    node: Mapping[str, Any]
    nullable: bool
    refs: tuple[str, ...]  #: the $refs followed to get here, to catch recursive models


def resolve(
    node: Mapping[str, Any], root: JSONSchema, path: str, refs: tuple[str, ...]
) -> Resolved:
    """Follows ``$ref`` and single ``allOf`` wrappers and takes ``null`` out of unions."""
    if not isinstance(node, Mapping):
        shown = clip(json.dumps(node, default=repr), 60)
        raise UnsupportedField(path, f"its schema is malformed: {shown} is not a JSON object")
    merged = dict(node)
    nullable = False
    while True:
        if "$ref" in merged:
            ref = str(merged.pop("$ref"))
            if ref in refs:
                raise UnsupportedField(path, "its model contains itself, so the form has no end")
            refs = (*refs, ref)
            merged = {**_lookup(root, ref, path), **merged}
        elif "allOf" in merged:
            parts = _schemas(merged.pop("allOf"), path, "allOf")
            if len(parts) != 1:
                raise UnsupportedField(path, "allOf with several schemas is not supported")
            merged = {**parts[0], **merged}
        elif "anyOf" in merged or "oneOf" in merged:
            word = "anyOf" if "anyOf" in merged else "oneOf"
            branches = _schemas(merged.pop(word), path, word)
            if not branches:
                raise malformed(path, word, "a non-empty list of schemas", branches)
            rest = [b for b in branches if b.get("type") != "null"]
            nullable = nullable or len(rest) < len(branches)
            either = merged.pop(NUMBER_OR_TEXT, False) is True
            merged = {**_merge_union(rest, root, path, refs, number_or_text=either), **merged}
        elif isinstance(merged.get("type"), list):
            if not all(isinstance(t, str) for t in merged["type"]):
                raise malformed(path, "type", "a name or a list of names", merged["type"])
            types = [t for t in merged["type"] if t != "null"]
            nullable = nullable or len(types) < len(merged["type"])
            if len(types) != 1:
                raise UnsupportedField(path, f"a union of different types {types} is not supported")
            merged["type"] = types[0]
        else:
            return Resolved(merged, nullable, refs)


def _merge_union(
    branches: Sequence[Mapping[str, Any]],
    root: JSONSchema,
    path: str,
    refs: tuple[str, ...],
    *,
    number_or_text: bool = False,
) -> dict[str, Any]:
    if len(branches) == 1:
        return dict(branches[0])
    resolved = [resolve(b, root, path, refs).node for b in branches]
    if resolved and all("const" in b or "enum" in b for b in resolved):
        # Literal["a"] | Literal["b"], or several enums: one list of options.
        return {"enum": [v for b in resolved for v in b.get("enum", [b.get("const")])]}
    types = sorted({str(b.get("type")) for b in resolved})
    if types == ["number", "string"] and number_or_text:
        # ``float | str``, as the engine marks it: typed text, sent as a number when it
        # reads as one.
        text = next(b for b in resolved if b.get("type") == "string")
        return {**text, NUMBER_OR_TEXT: True}
    if types == ["number", "string"]:
        # pydantic's Decimal: a number, or a string so that no precision is lost. The bounds
        # sit on the number branch. (Unmarked, a ``float | str`` from elsewhere reads so.)
        number = next(b for b in resolved if b.get("type") == "number")
        return {**number, "x-decimal": True}
    if types and set(types) <= {"integer", "number"}:
        return {"type": "number"}
    kinds = " | ".join(dict.fromkeys(_kind_of(b) for b in resolved))
    raise UnsupportedField(
        path,
        f"a union of different kinds of value ({kinds}) is not supported: one field "
        "asks for one kind",
    )


def _kind_of(branch: Mapping[str, Any]) -> str:
    """How a union's branch is named to the flow's author: its format (``date-time``), the
    title of a model (``object Approve``), else its JSON type."""
    kind = str(branch.get("type", "any"))
    if isinstance(branch.get("format"), str):
        return f"{kind} ({branch['format']})"
    if kind == "object" and isinstance(branch.get("title"), str):
        return f"object {branch['title']}"
    return kind


def _lookup(root: JSONSchema, ref: str, path: str) -> Mapping[str, Any]:
    target: Any = root if ref.startswith("#") else None
    for part in ref[2:].split("/") if ref.startswith("#/") else []:
        target = target.get(part) if isinstance(target, Mapping) else None
    if not isinstance(target, Mapping):
        raise UnsupportedField(path, f"$ref {ref!r} does not point into this schema")
    return target


def malformed(path: str, keyword: str, wanted: str, found: Any) -> UnsupportedField:
    """A schema that no model produces (hand-written, or stored by another program, as
    Prefect's server stores what a flow sent): named, rather than failing deeper down."""
    shown = clip(json.dumps(found, default=repr), 60)
    return UnsupportedField(path, f"its schema is malformed: {keyword} is {shown}, not {wanted}")


def _schemas(value: Any, path: str, keyword: str) -> list[Mapping[str, Any]]:
    """``value`` as a list of schemas (``allOf``, ``anyOf``, ``oneOf``)."""
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise malformed(path, keyword, "a list of schemas", value)
    return value


def whole_count(node: Mapping[str, Any], keyword: str, path: str) -> int | None:
    """A length or item count keyword (``maxLength``, ``minItems``...), if given."""
    value = node.get(keyword)
    if value is None:
        return None
    # JSON Schema counts 10.0 as a whole number too.
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or value < 0:
        raise malformed(path, keyword, "a whole number of at least 0", value)
    return int(value)


def enum_options(node: Mapping[str, Any], path: str) -> list[Any]:
    """A node's ``enum`` (none: empty)."""
    options = node.get("enum", [])
    if not isinstance(options, list):
        raise malformed(path, "enum", "a list of options", options)
    return options
