"""One input field of a modal: its Block Kit element, prefilled with a starting value.

``bot.forms.modals`` lays the fields out in a view; this module picks each field's element
by its kind (``bot.forms.layout``), sets Block Kit's limits on it (length, range, number of
options), and fits the starting value into it. A value the element cannot show starts it
empty, and the input's hint says what leaving it empty keeps (``shows_value``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic_core import to_jsonable_python
from slack_sdk.models.blocks import (
    CheckboxesElement,
    ConversationMultiSelectElement,
    ConversationSelectElement,
    DatePickerElement,
    DateTimePickerElement,
    EmailInputElement,
    InputBlock,
    InputInteractiveElement,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    RadioButtonsElement,
    StaticMultiSelectElement,
    StaticSelectElement,
    TimePickerElement,
    UrlInputElement,
    UserMultiSelectElement,
    UserSelectElement,
)

from signoff.bot.errors import UnsupportedField
from signoff.bot.forms.blockkit import DATETIME_SECONDS
from signoff.bot.forms.labels import clip
from signoff.bot.forms.layout import (
    ACTION_ID,
    ID_PATTERNS,
    MAX_CHECKBOXES,
    MAX_RADIO,
    MAX_TEXT,
    TICKED,
    Choice,
    InputField,
    block_id_for,
)

#: the most items a multi-select may let a person pick (``max_selected_items``)
MAX_SELECTED = 100

__all__ = ["MAX_SELECTED", "input_block", "shows_value"]


def input_block(entry: InputField, initial: Any) -> InputBlock:
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
            placeholder=_placeholder(entry),
            initial_value=_fit_text(entry, initial),
            multiline=True if entry.multiline or kind == "lines" else None,
            min_length=low if low is not None and 0 < low <= MAX_TEXT else None,
            max_length=high if high is not None and 1 <= high <= MAX_TEXT else None,
        )
    if kind in ("email", "url"):
        cls = EmailInputElement if kind == "email" else UrlInputElement
        return cls(
            action_id=ACTION_ID,
            placeholder=_placeholder(entry),
            initial_value=_fit_text(entry, initial),
        )
    if kind in ("integer", "number", "decimal"):
        return NumberInputElement(
            action_id=ACTION_ID,
            is_decimal_allowed=kind != "integer",
            placeholder=_placeholder(entry),
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


def _placeholder(entry: InputField) -> str | None:
    """What an empty text or number box shows in grey: the field's first example."""
    # Slack's limit for a placeholder is 150 characters.
    return clip(f"e.g. {entry.example}", 150) if entry.example else None


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
    """``number`` in plain digits, or None when they would not fit a Slack input."""
    if number is None or _plain_length(number) > MAX_TEXT:
        # Written out, -1E-999999999 is a gigabyte of zeros, made in seconds with the
        # interpreter lock held (typed as `/runs start f price=-1e-999999999`); past
        # MAX_TEXT Slack's client would refuse to submit it anyway.
        return None
    # Slack wants plain digits: "1000", never "1E+3"; whole-number inputs never get ".0".
    return str(int(number)) if entry.kind == "integer" else format(number, "f")


def _plain_length(number: Decimal) -> int:
    """About how many characters ``format(number, "f")`` writes (a few more at most),
    found without writing it."""
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # a finite number's
    if exponent >= 0:
        return len(digits) + exponent + 1
    return max(len(digits), -exponent + 1) + 2


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
