"""A Block Kit modal generated from a pydantic model's JSON schema.

``bot.forms.layout.schema_layout`` reads the schema into input fields and headings; this module
turns that layout into a ``slack_sdk`` view and checks it against Block Kit's limits
(``bot.forms.blockkit``). Each input block has ``block_id = block_id_for(path)`` and
``action_id = "value"``. Failures raise ``bot.errors.ModalError`` or its
``UnsupportedField``, which names the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

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
    PlainTextObject,
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

from signoff.bot.errors import ModalError, UnsupportedField
from signoff.bot.forms.blockkit import DATETIME_SECONDS, VIEW_SIZE_LIMIT, check_view, view_size
from signoff.bot.forms.labels import clip
from signoff.bot.forms.layout import (
    ACTION_ID,
    ID_PATTERNS,
    MAX_BLOCKS,
    MAX_CHECKBOXES,
    MAX_RADIO,
    MAX_TEXT,
    TICKED,
    Choice,
    FieldGroup,
    InputField,
    JSONSchema,
    block_id_for,
    schema_layout,
)
from signoff.bot.forms.mrkdwn import markdown_to_mrkdwn

#: the most items a multi-select may let a person pick (``max_selected_items``)
MAX_SELECTED = 100
#: Slack's limit on a view's ``private_metadata``, which the bot's forms may fill
MAX_METADATA = 3000

#: What starts an input's hint that shows an error (see ``build_input_view``'s ``errors``).
ERROR_MARK = "⚠️ "

__all__ = [
    "ACTION_ID",
    "ERROR_MARK",
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
    "shows_value",
]


def check_renderable(
    schema: JSONSchema, *, description: str | None = None, context: bool = True
) -> None:
    """Checks that a model's JSON schema can be shown as a modal.

    Counts the blocks as they will be sent: one per input and nested-model heading, plus
    the context line, the description (at least one section; it gives way down to that
    when the inputs need the room) and the divider between them and the inputs. Measures
    the view too, with the longest title and ``private_metadata`` a form may carry, since
    Slack refuses one over ``VIEW_SIZE_LIMIT`` bytes whatever its parts.

    Args:
        schema: The model's JSON schema.
        description: The Markdown shown above the inputs, if any.
        context: Whether the modal has a context line (the bot's forms always do).

    Raises:
        UnsupportedField: Naming the first field that cannot be shown, and why; ``field`` is
            ``""`` when the model as a whole is the problem (too many blocks).
    """
    _renderable_layout(schema, description=description, context=context)
    try:
        # Built as it will be sent, so that what only Block Kit's rules refuse is caught
        # now, when the flow asks, and not when someone clicks.
        build_input_view(
            schema,
            title="x" * 24,
            description=description,
            context="check" if context else None,
            callback_id="check",
            private_metadata="x" * MAX_METADATA,
        )
    except UnsupportedField:
        raise
    except ModalError as exc:
        raise UnsupportedField("", str(exc)) from exc


def _renderable_layout(
    schema: JSONSchema, *, description: str | None, context: bool
) -> tuple[InputField | FieldGroup, ...]:
    layout = schema_layout(schema)
    around = int(context) + int(bool(description and description.strip()))
    needed = len(layout) + around + int(bool(around and layout))
    if needed > MAX_BLOCKS:
        extra = f" ({len(layout)} for the fields, {needed - len(layout)} around them)"
        raise UnsupportedField(
            "", f"it needs {needed} blocks{extra if around else ''}; a modal holds {MAX_BLOCKS}"
        )
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
    errors: Mapping[str, str] | None = None,
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
        errors: Messages keyed by input ``block_id`` (as ``errors_for_view`` gives them),
            shown in place of the input's hint. A view sent with ``views.update`` cannot
            carry Slack's own inline errors, which only a synchronous response can.

    Returns:
        The modal, already validated by ``slack_sdk``.

    Raises:
        UnsupportedField: If the schema cannot be shown as a modal.
        ModalError: If the title or submit label is empty, or the view breaks a Block Kit rule.
    """
    layout = _renderable_layout(schema, description=description, context=bool(context))
    if not title.strip() or not submit.strip():
        raise ModalError("a modal needs a non-empty title and submit label")
    prefill = to_jsonable_python(initial or {})  # accepts model_dump() in python mode too
    fields: list[Block] = []
    for entry in layout:
        if isinstance(entry, FieldGroup):
            fields.append(HeaderBlock(text=clip(entry.title, 150)))
        else:
            block = _input_block(entry, _initial_for(entry, prefill))
            error = errors.get(block.block_id or "") if errors else None
            if error:
                block.hint = PlainTextObject(text=clip(f"{ERROR_MARK}{error}", 2000))
            fields.append(block)
    head: list[Block] = []
    if context:
        head.append(ContextBlock(elements=[MarkdownTextObject(text=clip(context, MAX_TEXT))]))
    # _renderable_layout made sure at least one section fits.
    budget = max(MAX_BLOCKS - len(fields) - len(head) - 1, 1)
    head.extend(_description_sections(description, budget) if description else [])
    if head and fields:
        head.append(DividerBlock())
    view = View(
        type="modal",
        callback_id=callback_id,
        title=clip(title, 24),
        submit=clip(submit, 24),
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
    if too_large := _too_large(payload):
        raise ModalError(too_large)
    # slack_sdk.models misses some limits Slack enforces (see bot.forms.blockkit).
    if problems := check_view(payload):
        raise ModalError("the modal breaks Block Kit rules: " + "; ".join(problems))


def _too_large(payload: Mapping[str, Any]) -> str | None:
    """Why Slack would refuse ``payload`` as too large, naming the field that takes most."""
    size = view_size(payload)
    if size <= VIEW_SIZE_LIMIT:
        return None
    inputs = [b for b in payload.get("blocks") or [] if b.get("type") == "input"]
    biggest = max(inputs, key=view_size, default=None)
    most = ""
    if biggest is not None:
        name = str(biggest.get("block_id", "")).removeprefix(block_id_for(""))
        most = f" (the largest field, {name!r}, takes {view_size(biggest):,})"
    return f"it is {size:,} bytes as sent to Slack, and a modal holds {VIEW_SIZE_LIMIT:,}{most}"


def _description_sections(description: str, budget: int) -> list[Block]:
    chunks = _split(markdown_to_mrkdwn(description), MAX_TEXT)
    if len(chunks) > budget:
        # The inputs are what the person must fill in, so the prose gives way.
        chunks = chunks[: max(budget, 0)]
        if chunks:
            chunks[-1] = clip(chunks[-1] + " …", MAX_TEXT)
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


def _initial_for(entry: InputField, prefill: Any) -> Any:
    value: Any = prefill
    for key in entry.path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return entry.default
        value = value[key]
    return value


# --- elements -------------------------------------------------------------------------------


def _input_block(entry: InputField, initial: Any) -> InputBlock:
    hint = entry.hint
    if _is_default(entry, initial) and not shows_value(entry, initial):
        # Left empty, it answers that value (``submissions``): the person is told so.
        kept = f"Left empty, this keeps its starting value, which the form cannot show ({_sized(initial)})."
        hint = f"{kept} {hint}" if hint else kept
    return InputBlock(
        block_id=block_id_for(entry.path),
        label=clip(entry.label, 2000),
        hint=clip(hint, 2000) if hint else None,
        element=_element(entry, initial),
        optional=entry.optional,
    )


def shows_value(entry: InputField, value: Any) -> bool:
    """Whether ``entry``'s input can start out holding ``value``; otherwise it starts empty.

    Slack's text box holds 3,000 characters and a list's items one line each; a number
    input starts within its range, a choice among its options. Nothing (None, "", []) is
    shown as an empty input.
    """
    if value is None or value in ("", []):
        return True
    kind = entry.kind
    if kind in ("text", "lines", "email", "url"):
        return _fit_text(entry, value) is not None
    if kind in ("integer", "number", "decimal"):
        return _fit_number(entry, value) is not None
    if kind == "choice":
        return bool(_fit_choices(entry, [value]))
    if kind == "choices":
        return isinstance(value, list) and len(_fit_choices(entry, value)) == len(value)
    return True


def _is_default(entry: InputField, value: Any) -> bool:
    return value is not None and _json_key(value) == _json_key(entry.default)


def _sized(value: Any) -> str:
    if isinstance(value, list):
        return f"{len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, str):
        return f"{len(value):,} characters"
    return clip(json.dumps(to_jsonable_python(value)), 60)


def _element(entry: InputField, initial: Any) -> InputInteractiveElement:
    kind = entry.kind
    if kind in ("text", "lines"):
        low, high = entry.min_length, entry.max_length
        if low is not None and high is not None and low > high:
            raise UnsupportedField(
                entry.path, f"it must be at least {low} and at most {high} long: nothing fits"
            )
        if low is not None and low > MAX_TEXT:
            # Slack would take no min_length over its box's size, and no answer could pass.
            raise UnsupportedField(
                entry.path,
                f"it must be at least {low} long and a Slack text box holds {MAX_TEXT}: "
                "nothing fits",
            )
        return PlainTextInputElement(
            action_id=ACTION_ID,
            initial_value=_fit_text(entry, initial),
            multiline=True if entry.multiline or kind == "lines" else None,
            min_length=low if low is not None and 0 < low <= MAX_TEXT else None,
            max_length=high if high is not None and 1 <= high <= MAX_TEXT else None,
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
        yes = Option(value=TICKED, text="Yes")
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
            max_selected_items=_most_selected(entry),
        )
    if kind == "date":
        return DatePickerElement(action_id=ACTION_ID, initial_date=_fit_date(initial))
    if kind == "time":
        return TimePickerElement(action_id=ACTION_ID, initial_time=_fit_time(initial))
    if kind == "datetime":
        return DateTimePickerElement(action_id=ACTION_ID, initial_date_time=_fit_epoch(initial))
    return _id_picker(entry, initial)


def _id_picker(entry: InputField, initial: Any) -> InputInteractiveElement:
    kind, cap = entry.kind, _most_selected(entry)
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


def _most_selected(entry: InputField) -> int | None:
    """A multi-select's ``max_selected_items``: the model's bound, within the 100 Slack
    allows (a bound above that only limits what a form cannot reach anyway)."""
    return min(entry.max_items, MAX_SELECTED) if entry.max_items else None


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
    if entry.number_or_text and isinstance(value, int | float) and not isinstance(value, bool):
        value = repr(value)  # a float | str that starts as a number shows it as typed
    if entry.kind == "lines" and isinstance(value, list):
        if not all(isinstance(v, str) and not _LINE_BREAK.search(v) for v in value):
            # One item per line: an item holding a line break would come back as two.
            return None
        value = "\n".join(value)
    limit = min(entry.max_length or MAX_TEXT, MAX_TEXT)
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


#: what ``str.splitlines`` splits a submitted list's text at
_LINE_BREAK = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


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
    # Slack takes 10 digits only: a moment before September 2001 is left out, as any
    # initial value the input cannot show is.
    return seconds if seconds in DATETIME_SECONDS else None


def _fit_id(kind: str, value: Any) -> str | None:
    return value if isinstance(value, str) and ID_PATTERNS[kind].match(value) else None


def _fit_ids(kind: str, value: Any) -> list[str] | None:
    ids = [v for v in value if _fit_id(kind, v)] if isinstance(value, list) else []
    return ids or None
