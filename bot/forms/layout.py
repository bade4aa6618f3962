"""Reading a model's JSON schema into the modal's layout: headings and input fields.

``bot.forms.modals`` builds views from this layout and ``bot.forms.submissions`` reads answers back with
it, so both directions agree on every block id and element kind. Each schema node is
resolved (``$ref``, unions, malformed keywords) by ``bot.forms.schema_nodes``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, TypeAlias

from signoff.bot.errors import SecretField, UnsupportedField
from signoff.bot.forms.labels import choice_labels, clip
from signoff.bot.forms.schema_nodes import (
    NUMBER_OR_TEXT,
    Resolved,
    enum_options,
    malformed,
    resolve,
    whole_count,
)
from signoff.bot.forms.zones import time_offset, zoneless
from signoff.bot.inputs import CHANNEL_ID_PATTERN, USER_ID_PATTERN

__all__ = [
    "ACTION_ID",
    "ID_PATTERNS",
    "MAX_BLOCKS",
    "MAX_CHECKBOXES",
    "MAX_RADIO",
    "MAX_TEXT",
    "TICKED",
    "UNTICKED",
    "Choice",
    "FieldGroup",
    "InputField",
    "JSONSchema",
    "block_id_for",
    "schema_layout",
]

JSONSchema: TypeAlias = Mapping[str, Any]
"""A JSON schema as produced by ``pydantic.BaseModel.model_json_schema()``."""

#: The action id of every input element; the block id tells the fields apart.
ACTION_ID = "value"
#: the engine's mark on a required field that ``with_initial_data`` gave a value
REQUIRED_KEYWORD = "x-signoff-required"
#: the engine's list of an Enum's member names, beside values that are not text
ENUM_NAMES_KEYWORD = "x-signoff-enum-names"
#: the value of a boolean's one tickbox option
TICKED = "true"
MAX_BLOCKS = 100
#: Slack's limit on a block id, which holds a field's path (``block_id_for``)
MAX_BLOCK_ID = 255
MAX_OPTIONS = 100
MAX_RADIO = 5
MAX_CHECKBOXES = 10
MAX_TEXT = 3000
_DATE_KINDS = {"date": "date", "time": "time", "date-time": "datetime"}
_REFUSED_FORMATS = {"binary": "bytes cannot be typed into a Slack text box"}
ID_PATTERNS = {"user": re.compile(USER_ID_PATTERN), "channel": re.compile(CHANNEL_ID_PATTERN)}
#: the hint under a tickbox, which is sent as False when left unticked
UNTICKED = "Leave unticked for no."
#: the hint under a duration's text box (``timedelta``): what pydantic reads as one
DURATION = "A duration, as 01:30:00, 2 days or P1DT2H."


@dataclass(frozen=True)
class Choice:
    """One option of a choice field."""

    value: Any  #: the JSON value the model expects
    key: str  #: the option's ``value`` in Slack
    text: str  #: what the person reads


@dataclass(frozen=True)
class FieldGroup:
    """A nested model: shown as a heading; its fields follow with dotted paths."""

    path: str
    title: str
    in_required: bool  #: the key is listed in the parent's ``required``
    nullable: bool  #: ``None`` is an accepted value (``Optional[Model]``)
    prefilled: bool = False  #: it has a default (an instance), which the form shows


@dataclass(frozen=True)
class InputField:
    """One input block, and how its answer maps to a JSON value.

    ``kind`` is one of: text, lines (list of str), email, url, integer, number, decimal,
    boolean, choice, choices (list of choice), date, time, datetime, user, users, channel,
    channels.
    """

    path: str
    label: str
    hint: str | None
    kind: str
    in_required: bool
    nullable: bool
    optional: bool  #: Slack lets the person leave it empty
    default: Any = None
    choices: tuple[Choice, ...] = ()
    min_length: int | None = None
    max_length: int | None = None
    multiline: bool = False
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    max_items: int | None = None
    #: a datetime's answer has no time zone (``NaiveDatetime``: the schema's
    #: ``x-signoff-temporal`` says ``tz_constraint: naive``; or it started without one)
    naive: bool = False
    #: a text that is sent as a number when it reads as one (``float | str``)
    number_or_text: bool = False
    #: a list whose repeated items count once (a ``set``: ``uniqueItems``)
    unique: bool = False
    #: the field's first example (``Field(examples=[...])``), for a text or number input
    example: str | None = None

    @property
    def always_answered(self) -> bool:
        """An empty answer (an unticked box, an empty list) is itself a value to send."""
        return self.kind in ("boolean", "choices", "lines", "users", "channels")


_YES_NO = (Choice(value=True, key="true", text="Yes"), Choice(value=False, key="false", text="No"))


def block_id_for(path: str) -> str:
    """Returns the block id of the input block for a dotted field path.

    Args:
        path: Dotted path of the field, e.g. ``"address.city"``.

    Returns:
        ``"field:<path>"``, also the key for ``response_action: errors``.
    """
    return f"field:{path}"


def schema_layout(schema: JSONSchema) -> tuple[InputField | FieldGroup, ...]:
    """Lays a model's JSON schema out as the modal's headings and input fields, in order.

    Args:
        schema: The model's JSON schema (with ``$defs``).

    Returns:
        One entry per nested-model heading and per input block.

    Raises:
        UnsupportedField: If a field cannot become a Slack input.
    """
    root = resolve(schema, schema, "", ())
    if not _is_object(root.node):
        raise UnsupportedField("", "its schema is not an object with properties")
    return tuple(_walk_object(root, schema, "", optional=False))


# --- schema walking -------------------------------------------------------------------------


#: Slack's limit on an input's hint
MAX_HINT = 2000


def _noted(hint: str | None, note: str) -> str:
    """``hint`` with ``note`` after it; a long hint gives way, so that the note is read."""
    return f"{clip(hint, MAX_HINT - len(note) - 1)} {note}" if hint else note


def _is_object(node: Mapping[str, Any]) -> bool:
    return node.get("type") == "object" or "properties" in node


def _walk_object(
    obj: Resolved, root: JSONSchema, prefix: str, *, optional: bool, absent: bool = False
) -> Iterator[InputField | FieldGroup]:
    """``absent``: the model starts as None (``maybe: Inner | None = None``), so its fields
    start empty rather than at their own defaults: shown filled in, they read as an answer
    the form would not give (left so, the model stays None)."""
    properties: Mapping[str, Any] = obj.node.get("properties", {})
    # A model always lists its properties, even none; only a dict-like object lacks the key.
    if "properties" not in obj.node:
        reason = "a free-form mapping (dict, additionalProperties) has no fixed fields to ask for"
        raise UnsupportedField(prefix, reason)
    if not isinstance(properties, Mapping):
        raise malformed(prefix, "properties", "an object of field schemas", properties)
    listed = obj.node.get("required", [])
    if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
        raise malformed(prefix, "required", "a list of field names", listed)
    required = set(listed)
    # A nested model's own default ({"city": "Oslo", "zip": "0150"}), an instance given as
    # the field's default or by with_initial_data, holds the values its fields start from;
    # they win over the fields' own defaults (zip: None), as they do in the model.
    defaults = obj.node.get("default")
    for name, prop in properties.items():
        path = f"{prefix}.{name}" if prefix else name
        if "." in name:
            raise UnsupportedField(path, "its name contains '.', which separates nested fields")
        if len(block_id_for(path)) > MAX_BLOCK_ID:
            most = MAX_BLOCK_ID - len(block_id_for(""))
            raise UnsupportedField(
                path, f"its path is {len(path)} characters; a Slack block id holds {most}"
            )
        resolved = resolve(prop, root, path, obj.refs)
        node = dict(resolved.node)
        if isinstance(defaults, Mapping) and name in defaults:
            node["default"] = defaults[name]
        elif absent:
            node.pop("default", None)
        title = str(prop.get("title") or "").strip()
        label = title or " ".join(w.capitalize() for w in name.split("_") if w)
        # with_initial_data gives a required field a default, only so that code may leave it
        # out (as with Prefect); a person still has to answer it (engine.input_schema).
        in_required = name in required or prop.get(REQUIRED_KEYWORD) is True
        nullable = resolved.nullable or None in enum_options(node, path)
        slack_optional = optional or not in_required or nullable
        if _is_object(node):
            prefilled = isinstance(node.get("default"), Mapping)
            yield FieldGroup(path, label or name, in_required, nullable, prefilled)
            # A nested model that may be None makes its fields optional; one that always
            # exists (required, or defaulted to an instance) keeps its fields' own rules.
            inner = Resolved(node, nullable, resolved.refs)
            starts_absent = absent or (nullable and not prefilled)
            yield from _walk_object(
                inner, root, path, optional=optional or nullable, absent=starts_absent
            )
            continue
        entry = InputField(
            path=path,
            label=label or name,
            hint=str(prop.get("description") or node.get("description") or "") or None,
            in_required=in_required,
            nullable=nullable,
            optional=slack_optional,
            default=node.get("default"),
            **_classify(node, root, path, resolved.refs),
        )
        if entry.kind in _EXAMPLE_KINDS:
            entry = replace(entry, example=_example(prop.get("examples") or node.get("examples")))
        if entry.kind == "time" and (offset := time_offset(entry.default)) is not None:
            # Slack's time picker shows a clock time and sends it back without a zone: the
            # answer takes the zone of the time it started from (``submissions``).
            zone = f"Times are in UTC{offset if offset != 'Z' else ''}."
            entry = replace(entry, hint=_noted(entry.hint, zone))
        if entry.kind == "text" and node.get("format") == "duration":
            # A text box with nothing to say what pydantic reads as a duration: "5 minutes"
            # was refused ("must be a duration") with no way to know what to type instead.
            entry = replace(entry, hint=_noted(entry.hint, DURATION))
        if entry.kind == "boolean" and (not entry.optional or entry.nullable):
            # A tickbox must be optional in Slack (unticked is an answer), and Slack then
            # labels it "(optional)"; a required yes/no is asked as two explicit choices.
            # So is one that may be None: a tickbox has no third state, and would answer
            # "No" for whoever left it alone; nothing chosen answers None.
            entry = replace(entry, kind="choice", choices=_YES_NO)
        elif entry.kind == "boolean":
            entry = replace(entry, hint=_noted(entry.hint, UNTICKED))
        if entry.always_answered and (whole_count(node, "minItems", path) or 0) < 1:
            # An unticked box or an empty list is a real answer, so Slack must accept it.
            entry = replace(entry, optional=True)
        yield entry


#: the inputs that show an example as their placeholder: Slack's text and number boxes
_EXAMPLE_KINDS = ("text", "email", "url", "integer", "number", "decimal")


def _example(examples: Any) -> str | None:
    """The first of a field's ``examples`` that reads as one line of text, if any."""
    if not isinstance(examples, list):
        return None
    for example in examples:
        if isinstance(example, str) and example.strip() and "\n" not in example:
            return example
        if isinstance(example, int | float) and not isinstance(example, bool):
            return json.dumps(example)
    return None


def _classify(
    node: Mapping[str, Any], root: JSONSchema, path: str, refs: tuple[str, ...]
) -> dict[str, Any]:
    if "const" in node or "enum" in node:
        return {"kind": "choice", "choices": _choices(node, path)}
    kind = node.get("type")
    for keyword in ("format", "x-slack"):
        if not isinstance(node.get(keyword, ""), str):
            raise malformed(path, keyword, "a name", node[keyword])
    if kind == "array":
        return _classify_array(node, root, path, refs)
    if kind == "string":
        fmt = node.get("format")
        if node.get("x-slack") in ID_PATTERNS:
            return {"kind": node["x-slack"]}
        if fmt == "password":
            raise SecretField(path)
        if fmt in _REFUSED_FORMATS:
            raise UnsupportedField(path, _REFUSED_FORMATS[fmt])
        if fmt in _DATE_KINDS:
            rules = node.get("x-signoff-temporal")
            zone_rule = rules.get("tz_constraint") if isinstance(rules, Mapping) else None
            # A datetime that started without a zone is answered without one too (in UTC,
            # as shown): with one, the flow's own comparisons would fail (naive < aware).
            naive = zone_rule == "naive" or (zone_rule is None and zoneless(node.get("default")))
            return {"kind": _DATE_KINDS[fmt], "naive": naive}
        if fmt in ("email", "uri", "iri"):
            return {"kind": "email" if fmt == "email" else "url"}
        max_length = whole_count(node, "maxLength", path)
        long_text = max_length is not None and max_length > 150
        return {
            "kind": "text",
            "min_length": whole_count(node, "minLength", path),
            "max_length": max_length,
            "multiline": long_text or node.get("multiline") is True,
            "number_or_text": node.get(NUMBER_OR_TEXT) is True,
        }
    if kind in ("integer", "number"):
        number_kind = "decimal" if node.get("x-decimal") else str(kind)
        return {"kind": number_kind, **_bounds(node, integer=kind == "integer")}
    if kind == "boolean":
        return {"kind": "boolean"}
    if kind is None:
        raise UnsupportedField(path, "it has no type (Any), so no input fits it")
    raise UnsupportedField(path, f"type {kind!r} is not supported")


def _classify_array(
    node: Mapping[str, Any], root: JSONSchema, path: str, refs: tuple[str, ...]
) -> dict[str, Any]:
    if "prefixItems" in node:
        raise UnsupportedField(path, "tuples (fixed-position lists) are not supported")
    limit = {"max_items": whole_count(node, "maxItems", path)}
    items = resolve(node.get("items") or {}, root, path, refs).node
    if "const" in items or "enum" in items:
        return {"kind": "choices", "choices": _choices(items, path), **limit}
    if _is_object(items):
        raise UnsupportedField(path, "a list of nested models or mappings cannot be entered")
    if items.get("type") == "string" and items.get("x-slack") in ID_PATTERNS:
        return {"kind": f"{items['x-slack']}s", **limit}
    if items.get("type") == "string" and "format" not in items:
        return {"kind": "lines", "unique": node.get("uniqueItems") is True}
    what = items.get("format") or items.get("type") or "Any"
    reason = f"lists of {what} values are not supported (only of str, Literal/Enum or Slack ids)"
    raise UnsupportedField(path, reason)


def _choices(node: Mapping[str, Any], path: str) -> tuple[Choice, ...]:
    choices: dict[str, Choice] = {}
    options = enum_options(node, path) if "enum" in node else [node["const"]]
    names = _enum_names(node, options)
    shown: list[Any] = []
    for value, name in zip(options, names or options, strict=True):
        if value is None:
            continue  # makes the field nullable; see _walk_object
        if not isinstance(value, str | int | float | bool):
            raise UnsupportedField(path, f"option {value!r} is not a string, number or boolean")
        key = value if isinstance(value, str) and value else json.dumps(value)
        if len(key) > 150:
            raise UnsupportedField(path, f"option {key[:30]!r}… is longer than 150 characters")
        if key in choices:
            raise UnsupportedField(path, f"two options would both be sent as {key!r}")
        choices[key] = Choice(value=value, key=key, text="")
        shown.append(name)
    if not choices:
        raise UnsupportedField(path, "it has no options to choose from")
    if len(choices) > MAX_OPTIONS:
        reason = f"it has {len(choices)} options and a Slack menu holds at most {MAX_OPTIONS}"
        raise UnsupportedField(path, reason)
    labels = choice_labels(shown)
    return tuple(replace(c, text=label) for c, label in zip(choices.values(), labels, strict=True))


def _enum_names(node: Mapping[str, Any], options: list[Any]) -> list[str] | None:
    """What an ``IntEnum``'s options read as: its member names (``LOW`` reads "Low"), which
    the engine lists beside values that are not text. None when there are none to use."""
    names = node.get(ENUM_NAMES_KEYWORD)
    if not isinstance(names, list) or len(names) != len(options):
        return None  # a schema from elsewhere (Prefect's), or one a hand changed
    if not all(isinstance(name, str) and name for name in names):
        return None
    # Python writes members in capitals; the form reads them as it reads ``needs_work``.
    return [name.lower() if name.isupper() else name for name in names]


def _bounds(node: Mapping[str, Any], *, integer: bool) -> dict[str, Decimal | None]:
    low, high = _decimal(node.get("minimum")), _decimal(node.get("maximum"))
    # Slack bounds are inclusive. For whole numbers an exclusive bound becomes the next
    # integer; for decimals Slack will allow the bound itself and validation refuses it.
    if (exclusive := _decimal(node.get("exclusiveMinimum"))) is not None:
        low = exclusive.to_integral(rounding="ROUND_FLOOR") + 1 if integer else exclusive
    if (exclusive := _decimal(node.get("exclusiveMaximum"))) is not None:
        high = exclusive.to_integral(rounding="ROUND_CEILING") - 1 if integer else exclusive
    if integer:
        low = low.to_integral(rounding="ROUND_CEILING") if low is not None else None
        high = high.to_integral(rounding="ROUND_FLOOR") if high is not None else None
    if low is not None and high is not None and low > high:
        return {"minimum": None, "maximum": None}  # nothing fits; validation will say so
    return {"minimum": low, "maximum": high}


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value)).normalize()  # pydantic writes ge=0 as 0.0; show "0"
    return None
