"""A Block Kit modal generated from a pydantic model's JSON schema.

:func:`schema_layout` reads the schema (``Model.model_json_schema()``) into one entry per
input block (:class:`InputField`) or nested-model heading (:class:`FieldGroup`).
:func:`build_input_view` turns that layout into a view and ``bot.submissions`` reads answers
back with the same layout, so the two directions cannot drift apart. Each input block has
``block_id = block_id_for(path)`` and ``action_id = "value"``.

Errors raised here::

    ModalError                          a modal could not be built
    └── UnsupportedField (field, reason)  a field no Slack input can represent

``ModalError`` may later move under a package-wide ``bot.errors.BotError``.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, TypeAlias

from pydantic_core import to_jsonable_python
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import (
    Block,
    CheckboxesElement,
    ContextBlock,
    ConversationMultiSelectElement,
    ConversationSelectElement,
    DatePickerElement,
    DateTimePickerElement,
    DividerBlock,
    EmailInputElement,
    HeaderBlock,
    InputBlock,
    InputInteractiveElement,
    MarkdownTextObject,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    RadioButtonsElement,
    SectionBlock,
    StaticMultiSelectElement,
    StaticSelectElement,
    TimePickerElement,
    UrlInputElement,
    UserMultiSelectElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.inputs import CHANNEL_ID_PATTERN, USER_ID_PATTERN
from bot.mrkdwn import markdown_to_mrkdwn

__all__ = [
    "ACTION_ID",
    "Choice",
    "FieldGroup",
    "InputField",
    "JSONSchema",
    "ModalError",
    "UnsupportedField",
    "block_id_for",
    "build_input_view",
    "check_renderable",
    "schema_layout",
]

JSONSchema: TypeAlias = Mapping[str, Any]
"""A JSON schema as produced by ``pydantic.BaseModel.model_json_schema()``."""

#: The action id of every input element; the block id tells the fields apart.
ACTION_ID = "value"
MAX_BLOCKS = 100
MAX_OPTIONS = 100
MAX_RADIO = 5
MAX_CHECKBOXES = 10
_MAX_TEXT = 3000
_DATE_KINDS = {"date": "date", "time": "time", "date-time": "datetime"}
_REFUSED_FORMATS = {
    "binary": "bytes cannot be typed into a Slack text box",
    "password": "Slack shows what is typed, so a secret must not be asked for in a modal",
}
_ID_PATTERNS = {"user": re.compile(USER_ID_PATTERN), "channel": re.compile(CHANNEL_ID_PATTERN)}


class ModalError(Exception):
    """A modal could not be built."""


class UnsupportedField(ModalError):
    """A field of the input model cannot be represented by any Slack input."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        where = f"field {field!r}" if field else "the input model"
        super().__init__(f"{where} cannot be shown in a Slack modal: {reason}")


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

    @property
    def always_answered(self) -> bool:
        """An empty answer (an unticked box, an empty list) is itself a value to send."""
        return self.kind in ("boolean", "choices", "lines", "users", "channels")


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
    root = _resolve(schema, schema, "", ())
    if not _is_object(root.node):
        raise UnsupportedField("", "its schema is not an object with properties")
    return tuple(_walk_object(root, schema, "", optional=False))


def check_renderable(schema: JSONSchema) -> None:
    """Checks that a model's JSON schema can be shown as a modal.

    Args:
        schema: The model's JSON schema.

    Raises:
        UnsupportedField: Naming the first field that cannot be shown, and why; ``field`` is
            ``""`` when the model as a whole is the problem (too many blocks).
    """
    _renderable_layout(schema)


def _renderable_layout(schema: JSONSchema) -> tuple[InputField | FieldGroup, ...]:
    layout = schema_layout(schema)
    if len(layout) > MAX_BLOCKS:
        raise UnsupportedField("", f"it needs {len(layout)} blocks; a modal holds {MAX_BLOCKS}")
    return layout


def build_input_view(
    schema: JSONSchema,
    *,
    initial: Mapping[str, Any] | None = None,
    title: str,
    description: str | None = None,
    context: str | None = None,
    callback_id: str,
    private_metadata: str,
    submit: str = "Submit",
) -> View:
    """Builds the modal that asks a person for a model's fields.

    Args:
        schema: The input model's JSON schema.
        initial: Values to prefill, nested like the model (e.g. a rejected submission). They
            win over schema defaults; a value that does not fit its input is left out.
        title: Modal title; clipped to Slack's 24 characters.
        description: Markdown shown above the inputs.
        context: A short mrkdwn line (flow, run, deadline) shown in a context block.
        callback_id: The view's callback id.
        private_metadata: Opaque reference returned with ``view_submission``.
        submit: Label of the submit button; clipped to 24 characters.

    Returns:
        The modal, already validated by ``slack_sdk``.

    Raises:
        UnsupportedField: If the schema cannot be shown as a modal.
        ModalError: If the title or submit label is empty, or the view breaks a Block Kit rule.
    """
    layout = _renderable_layout(schema)
    if not title.strip() or not submit.strip():
        raise ModalError("a modal needs a non-empty title and submit label")
    prefill = to_jsonable_python(initial or {})  # accepts model_dump() in python mode too
    fields: list[Block] = []
    for entry in layout:
        if isinstance(entry, FieldGroup):
            fields.append(HeaderBlock(text=_clip(entry.title, 150)))
        else:
            fields.append(_input_block(entry, _initial_for(entry, prefill)))
    head: list[Block] = []
    if context:
        head.append(ContextBlock(elements=[MarkdownTextObject(text=_clip(context, _MAX_TEXT))]))
    budget = MAX_BLOCKS - len(fields) - len(head) - 1
    head.extend(_description_sections(description, budget) if description else [])
    if head and fields:
        head.append(DividerBlock())
    view = View(
        type="modal",
        callback_id=callback_id,
        title=_clip(title, 24),
        submit=_clip(submit, 24),
        blocks=[*head, *fields] or [SectionBlock(text="Nothing to fill in.")],
        private_metadata=private_metadata,
    )
    _check(view)
    return view


def _check(view: View) -> None:
    try:
        payload = view.to_dict()
    except SlackObjectFormationError as exc:
        raise ModalError(f"the modal breaks a Block Kit rule: {exc}") from exc
    # bot/blockkit.py is written separately and may not exist yet; importing it by name keeps
    # this module importable and type-checked either way.
    try:
        module = importlib.import_module("bot.blockkit")
    except ImportError:
        return
    check_view: Callable[[dict[str, Any]], list[str]] = module.check_view
    if problems := check_view(payload):
        raise ModalError("the modal breaks Block Kit rules: " + "; ".join(problems))


def _description_sections(description: str, budget: int) -> list[Block]:
    chunks = _split(markdown_to_mrkdwn(description), _MAX_TEXT)
    if len(chunks) > budget:
        # The inputs are what the person must fill in, so the prose gives way.
        chunks = chunks[: max(budget, 0)]
        if chunks:
            chunks[-1] = _clip(chunks[-1] + " …", _MAX_TEXT)
    return [SectionBlock(text=MarkdownTextObject(text=chunk)) for chunk in chunks]


def _split(text: str, size: int) -> list[str]:
    chunks: list[str] = []
    while len(text) > size:
        # Break between paragraphs, else lines, else words, so formatting is rarely cut.
        cuts = (text.rfind(sep, size // 2, size) for sep in ("\n\n", "\n", " "))
        cut = next((c for c in cuts if c > 0), size)
        chunks.append(text[:cut].rstrip())
        text = text[cut:].lstrip("\n ")
    return [*chunks, text] if text.strip() else chunks


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _initial_for(entry: InputField, prefill: Any) -> Any:
    value: Any = prefill
    for key in entry.path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return entry.default
        value = value[key]
    return value


# --- elements -------------------------------------------------------------------------------


def _input_block(entry: InputField, initial: Any) -> InputBlock:
    return InputBlock(
        block_id=block_id_for(entry.path),
        label=_clip(entry.label, 2000),
        hint=_clip(entry.hint, 2000) if entry.hint else None,
        element=_element(entry, initial),
        optional=entry.optional,
    )


def _element(entry: InputField, initial: Any) -> InputInteractiveElement:
    kind = entry.kind
    if kind in ("text", "lines"):
        low, high = entry.min_length, entry.max_length
        return PlainTextInputElement(
            action_id=ACTION_ID,
            initial_value=_fit_text(entry, initial),
            multiline=True if entry.multiline or kind == "lines" else None,
            min_length=low if low is not None and 0 < low <= _MAX_TEXT else None,
            max_length=high if high is not None and 1 <= high <= _MAX_TEXT else None,
        )
    if kind in ("email", "url"):
        cls = EmailInputElement if kind == "email" else UrlInputElement
        return cls(action_id=ACTION_ID, initial_value=_fit_text(entry, initial))
    if kind in ("integer", "number", "decimal"):
        return NumberInputElement(
            action_id=ACTION_ID,
            is_decimal_allowed=kind != "integer",
            initial_value=_fit_number(entry, initial),
            min_value=_number_text(entry.minimum, entry),
            max_value=_number_text(entry.maximum, entry),
        )
    if kind == "boolean":
        yes = Option(value="true", text="Yes")
        return CheckboxesElement(
            action_id=ACTION_ID, options=[yes], initial_options=[yes] if initial is True else None
        )
    if kind == "choice":
        options = [_option(c) for c in entry.choices]
        chosen = _fit_choices(entry, [initial])
        picked = chosen[0] if chosen else None
        if len(options) <= MAX_RADIO:
            return RadioButtonsElement(action_id=ACTION_ID, options=options, initial_option=picked)
        return StaticSelectElement(action_id=ACTION_ID, options=options, initial_option=picked)
    if kind == "choices":
        options = [_option(c) for c in entry.choices]
        chosen = _fit_choices(entry, initial) if isinstance(initial, list) else []
        if len(options) <= MAX_CHECKBOXES:
            return CheckboxesElement(
                action_id=ACTION_ID, options=options, initial_options=chosen or None
            )
        return StaticMultiSelectElement(
            action_id=ACTION_ID,
            options=options,
            initial_options=chosen or None,
            max_selected_items=entry.max_items if entry.max_items else None,
        )
    if kind == "date":
        return DatePickerElement(action_id=ACTION_ID, initial_date=_fit_date(initial))
    if kind == "time":
        return TimePickerElement(action_id=ACTION_ID, initial_time=_fit_time(initial))
    if kind == "datetime":
        return DateTimePickerElement(action_id=ACTION_ID, initial_date_time=_fit_epoch(initial))
    return _id_picker(entry, initial)


def _id_picker(entry: InputField, initial: Any) -> InputInteractiveElement:
    kind, cap = entry.kind, entry.max_items or None
    if kind == "user":
        return UserSelectElement(action_id=ACTION_ID, initial_user=_fit_id("user", initial))
    if kind == "users":
        users = _fit_ids("user", initial)
        return UserMultiSelectElement(
            action_id=ACTION_ID, initial_users=users, max_selected_items=cap
        )
    if kind == "channel":
        channel = _fit_id("channel", initial)
        return ConversationSelectElement(action_id=ACTION_ID, initial_conversation=channel)
    channels = _fit_ids("channel", initial)
    return ConversationMultiSelectElement(
        action_id=ACTION_ID, initial_conversations=channels, max_selected_items=cap
    )


def _option(choice: Choice) -> Option:
    return Option(value=choice.key, text=choice.text)


def _json_key(value: Any) -> str:
    # json.dumps tells 1, 1.5, True and "1" apart, which == does not (True == 1).
    return json.dumps(value, sort_keys=True)


def _fit_choices(entry: InputField, values: Sequence[Any]) -> list[Option]:
    by_key = {_json_key(c.value): c for c in entry.choices}
    wanted = [by_key.get(_json_key(v)) for v in values]
    return [_option(c) for c in wanted if c is not None]


def _fit_text(entry: InputField, value: Any) -> str | None:
    if entry.kind == "lines" and isinstance(value, list):
        value = "\n".join(v for v in value if isinstance(v, str))
    limit = min(entry.max_length or _MAX_TEXT, _MAX_TEXT)
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def _fit_number(entry: InputField, value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    if not number.is_finite() or (entry.kind == "integer" and number != number.to_integral()):
        return None
    if (entry.minimum is not None and number < entry.minimum) or (
        entry.maximum is not None and number > entry.maximum
    ):
        return None
    return _number_text(number, entry)


def _number_text(number: Decimal | None, entry: InputField) -> str | None:
    if number is None:
        return None
    # Slack wants plain digits: "1000", never "1E+3"; whole-number inputs never get ".0".
    return str(int(number)) if entry.kind == "integer" else format(number, "f")


def _fit_date(value: Any) -> str | None:
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            return None
    return None


def _fit_time(value: Any) -> str | None:
    try:
        parsed = time.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return f"{parsed.hour:02d}:{parsed.minute:02d}" if parsed else None


def _fit_epoch(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        # A naive default has no zone of its own; UTC is what the submission returns too.
        seconds = int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())
    else:
        return None
    return seconds if 0 <= seconds <= 9_999_999_999 else None


def _fit_id(kind: str, value: Any) -> str | None:
    return value if isinstance(value, str) and _ID_PATTERNS[kind].match(value) else None


def _fit_ids(kind: str, value: Any) -> list[str] | None:
    ids = [v for v in value if _fit_id(kind, v)] if isinstance(value, list) else []
    return ids or None


# --- schema walking -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Resolved:
    node: Mapping[str, Any]
    nullable: bool
    refs: tuple[str, ...]  #: the $refs followed to get here, to catch recursive models


def _resolve(
    node: Mapping[str, Any], root: JSONSchema, path: str, refs: tuple[str, ...]
) -> _Resolved:
    """Follows ``$ref`` and single ``allOf`` wrappers and takes ``null`` out of unions."""
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
            parts = merged.pop("allOf")
            if len(parts) != 1:
                raise UnsupportedField(path, "allOf with several schemas is not supported")
            merged = {**parts[0], **merged}
        elif "anyOf" in merged or "oneOf" in merged:
            branches = merged.pop("anyOf", None) or merged.pop("oneOf")
            rest = [b for b in branches if b.get("type") != "null"]
            nullable = nullable or len(rest) < len(branches)
            merged = {**_merge_union(rest, root, path, refs), **merged}
        elif isinstance(merged.get("type"), list):
            types = [t for t in merged["type"] if t != "null"]
            nullable = nullable or len(types) < len(merged["type"])
            if len(types) != 1:
                raise UnsupportedField(path, f"a union of different types {types} is not supported")
            merged["type"] = types[0]
        else:
            return _Resolved(merged, nullable, refs)


def _merge_union(
    branches: Sequence[Mapping[str, Any]], root: JSONSchema, path: str, refs: tuple[str, ...]
) -> dict[str, Any]:
    if len(branches) == 1:
        return dict(branches[0])
    resolved = [_resolve(b, root, path, refs).node for b in branches]
    if resolved and all("const" in b or "enum" in b for b in resolved):
        # Literal["a"] | Literal["b"], or several enums: one list of options.
        return {"enum": [v for b in resolved for v in b.get("enum", [b.get("const")])]}
    types = sorted({str(b.get("type")) for b in resolved})
    if types == ["number", "string"]:
        # pydantic's Decimal: a number, or a string so that no precision is lost. The bounds
        # sit on the number branch.
        number = next(b for b in resolved if b.get("type") == "number")
        return {**number, "x-decimal": True}
    if types and set(types) <= {"integer", "number"}:
        return {"type": "number"}
    raise UnsupportedField(
        path, f"a union of different types ({', '.join(types)}) is not supported"
    )


def _lookup(root: JSONSchema, ref: str, path: str) -> Mapping[str, Any]:
    target: Any = root if ref.startswith("#") else None
    for part in ref[2:].split("/") if ref.startswith("#/") else []:
        target = target.get(part) if isinstance(target, Mapping) else None
    if not isinstance(target, Mapping):
        raise UnsupportedField(path, f"$ref {ref!r} does not point into this schema")
    return target


def _is_object(node: Mapping[str, Any]) -> bool:
    return node.get("type") == "object" or "properties" in node


def _walk_object(
    obj: _Resolved, root: JSONSchema, prefix: str, *, optional: bool
) -> Iterator[InputField | FieldGroup]:
    properties: Mapping[str, Any] = obj.node.get("properties", {})
    # A model always lists its properties, even none; only a dict-like object lacks the key.
    if "properties" not in obj.node:
        reason = "a free-form mapping (dict, additionalProperties) has no fixed fields to ask for"
        raise UnsupportedField(prefix, reason)
    required = set(obj.node.get("required", ()))
    # A nested model's own default ({"city": "Oslo"}) is where its fields' defaults live.
    defaults = obj.node.get("default")
    for name, prop in properties.items():
        path = f"{prefix}.{name}" if prefix else name
        if "." in name or len(block_id_for(path)) > 255:
            raise UnsupportedField(path, "its name contains '.' or its path is over 255 characters")
        resolved = _resolve(prop, root, path, obj.refs)
        node = dict(resolved.node)
        if isinstance(defaults, Mapping) and name in defaults and "default" not in prop:
            node["default"] = defaults[name]
        label = str(prop.get("title") or " ".join(w.capitalize() for w in name.split("_") if w))
        in_required = name in required
        nullable = resolved.nullable or None in node.get("enum", ())
        slack_optional = optional or not in_required or nullable
        if _is_object(node):
            yield FieldGroup(path, label or name, in_required, nullable)
            # A nested model that may be None makes its fields optional; one that always
            # exists (required, or defaulted to an instance) keeps its fields' own rules.
            inner = _Resolved(node, nullable, resolved.refs)
            yield from _walk_object(inner, root, path, optional=optional or nullable)
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
        if entry.always_answered and int(node.get("minItems", 0)) < 1:
            # An unticked box or an empty list is a real answer, so Slack must accept it.
            entry = replace(entry, optional=True)
        yield entry


def _classify(
    node: Mapping[str, Any], root: JSONSchema, path: str, refs: tuple[str, ...]
) -> dict[str, Any]:
    if "const" in node or "enum" in node:
        return {"kind": "choice", "choices": _choices(node, path)}
    kind = node.get("type")
    if kind == "array":
        return _classify_array(node, root, path, refs)
    if kind == "string":
        fmt = node.get("format")
        if node.get("x-slack") in _ID_PATTERNS:
            return {"kind": node["x-slack"]}
        if fmt in _REFUSED_FORMATS:
            raise UnsupportedField(path, _REFUSED_FORMATS[fmt])
        if fmt in _DATE_KINDS:
            return {"kind": _DATE_KINDS[fmt]}
        if fmt in ("email", "uri", "iri"):
            return {"kind": "email" if fmt == "email" else "url"}
        max_length = node.get("maxLength")
        long_text = max_length is not None and int(max_length) > 150
        return {
            "kind": "text",
            "min_length": node.get("minLength"),
            "max_length": max_length,
            "multiline": long_text or node.get("multiline") is True,
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
    max_items = node.get("maxItems")
    limit = {"max_items": int(max_items) if max_items is not None else None}
    items = _resolve(node.get("items") or {}, root, path, refs).node
    if "const" in items or "enum" in items:
        return {"kind": "choices", "choices": _choices(items, path), **limit}
    if _is_object(items):
        raise UnsupportedField(path, "a list of nested models or mappings cannot be entered")
    if items.get("type") == "string" and items.get("x-slack") in _ID_PATTERNS:
        return {"kind": f"{items['x-slack']}s", **limit}
    if items.get("type") == "string" and "format" not in items:
        return {"kind": "lines"}
    what = items.get("format") or items.get("type") or "Any"
    reason = f"lists of {what} values are not supported (only of str, Literal/Enum or Slack ids)"
    raise UnsupportedField(path, reason)


def _choices(node: Mapping[str, Any], path: str) -> tuple[Choice, ...]:
    choices: dict[str, Choice] = {}
    for value in node["enum"] if "enum" in node else [node["const"]]:
        if value is None:
            continue  # makes the field nullable; see _walk_object
        if not isinstance(value, str | int | float | bool):
            raise UnsupportedField(path, f"option {value!r} is not a string, number or boolean")
        key = value if isinstance(value, str) and value else json.dumps(value)
        if len(key) > 150:
            raise UnsupportedField(path, f"option {key[:30]!r}… is longer than 150 characters")
        if key in choices:
            raise UnsupportedField(path, f"two options would both be sent as {key!r}")
        choices[key] = Choice(value=value, key=key, text=_humanise(value))
    if not choices:
        raise UnsupportedField(path, "it has no options to choose from")
    if len(choices) > MAX_OPTIONS:
        reason = f"it has {len(choices)} options and a Slack menu holds at most {MAX_OPTIONS}"
        raise UnsupportedField(path, reason)
    return tuple(choices.values())


def _humanise(value: Any) -> str:
    if isinstance(value, str) and re.fullmatch(r"[a-z0-9]+(?:[_-][a-z0-9]+)*", value):
        text = re.sub(r"[_-]", " ", value)
        return _clip(text[0].upper() + text[1:], 75)
    return _clip(value if isinstance(value, str) and value else json.dumps(value), 75)


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
