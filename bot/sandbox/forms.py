"""Filling in a view the way a person in the Slack client would.

Turns plain Python values into ``view.state.values`` entries in the exact shapes Slack sends
(slack-platform.md §2.2), keeps the initial value of every input nobody touched, and applies
the checks the Slack client makes before it lets a user submit (required fields, text length,
number bounds, email and URL format)::

    state = fill_state(view, {"reason": "Looks good", "priority": "High", "due": date(2025, 1, 31)})
    state["field:priority"]["value"]["selected_option"]["value"]   # "high"

Keys may be a ``block_id``, a field path (``"reason"`` for ``block_id="field:reason"``), an
input's label text, or an ``action_id`` of an element in an actions block.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from signoff.bot.forms.blockkit import STATEFUL_ELEMENT_TYPES
from signoff.bot.sandbox.errors import FieldRejected, UnknownField
from signoff.bot.sandbox.records import JsonDict

__all__ = [
    "BOXES",
    "FIELD_PREFIX",
    "TEXT_BOX",
    "StateValues",
    "client_problems",
    "element_state",
    "fill_state",
    "find_element",
    "initial_state",
    "stateful_elements",
    "text_too_long",
    "typed_problem",
]

#: ``block_id`` prefix of inputs rendered from a model field (``field:<dotted.path>``).
FIELD_PREFIX = "field:"
#: ``block_id -> action_id -> state value``, as in ``view.state.values``.
StateValues = dict[str, dict[str, JsonDict]]
#: Maps a name the test wrote (``"alice"``) to a Slack id (``"U0ALICE"``).
Resolver = Callable[[str], str]

# element type -> (state key, initial-value key, empty value)
_SHAPES: dict[str, tuple[str, str, Any]] = {
    "plain_text_input": ("value", "initial_value", None),
    "email_text_input": ("value", "initial_value", None),
    "url_text_input": ("value", "initial_value", None),
    "number_input": ("value", "initial_value", None),
    "static_select": ("selected_option", "initial_option", None),
    "external_select": ("selected_option", "initial_option", None),
    "radio_buttons": ("selected_option", "initial_option", None),
    "multi_static_select": ("selected_options", "initial_options", []),
    "multi_external_select": ("selected_options", "initial_options", []),
    "checkboxes": ("selected_options", "initial_options", []),
    "datepicker": ("selected_date", "initial_date", None),
    "timepicker": ("selected_time", "initial_time", None),
    "datetimepicker": ("selected_date_time", "initial_date_time", None),
    "users_select": ("selected_user", "initial_user", None),
    "multi_users_select": ("selected_users", "initial_users", []),
    "conversations_select": ("selected_conversation", "initial_conversation", None),
    "multi_conversations_select": ("selected_conversations", "initial_conversations", []),
    "channels_select": ("selected_channel", "initial_channel", None),
    "multi_channels_select": ("selected_channels", "initial_channels", []),
    "rich_text_input": ("rich_text_value", "initial_value", None),
    "file_input": ("files", "", []),
}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_REQUIRED = "Please complete this required field."
#: the most a Slack text box (plain_text_input) holds: its ``max_length`` goes up to 3000,
#: and one without takes no more either
TEXT_BOX = 3000
#: the inputs a person types into, by what the Slack client calls them to the person.
#: Slack documents no length for the email, URL and number boxes; none is taken to hold
#: more than a text box, which also keeps a submission within what a request may carry.
BOXES = {
    "plain_text_input": "text box",
    "email_text_input": "email box",
    "url_text_input": "URL box",
    "number_input": "number box",
}


def stateful_elements(blocks: Iterable[Any]) -> Iterator[tuple[JsonDict, str, str, JsonDict]]:
    """Yield ``(block, block_id, action_id, element)`` for every element that keeps state."""
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "input":
            candidates = [block.get("element")]
        elif kind == "actions":
            candidates = list(block.get("elements", []))
        elif kind == "section":
            candidates = [block.get("accessory")]
        else:
            continue
        for element in candidates:
            if isinstance(element, dict) and element.get("type") in STATEFUL_ELEMENT_TYPES:
                yield (
                    block,
                    str(block.get("block_id", "")),
                    str(element.get("action_id", "")),
                    element,
                )


def initial_state(element: Mapping[str, Any]) -> JsonDict:
    """The state value of an element nobody has touched (its ``initial_*`` value, or empty)."""
    kind = str(element["type"])
    key, initial_key, empty = _SHAPES[kind]
    value = element.get(initial_key) if initial_key else None
    return {"type": kind, key: _copy(value if value is not None else empty)}


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _options(element: Mapping[str, Any]) -> list[JsonDict]:
    options: list[JsonDict] = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return options


def _choose(element: Mapping[str, Any], wanted: Any) -> JsonDict:
    """The option whose value (or text) is ``wanted``, copied from the view."""
    if isinstance(wanted, enum.Enum):
        wanted = wanted.value
    if isinstance(wanted, Mapping):
        wanted = wanted.get("value")
    # True/False pick a yes/no choice, whose option values are JSON ("true"/"false").
    text = ("true" if wanted else "false") if isinstance(wanted, bool) else str(wanted)
    options = _options(element)
    if not options and str(element["type"]).endswith("external_select"):
        return {"text": {"type": "plain_text", "text": text, "emoji": True}, "value": text}
    for field in ("value", "text"):
        for option in options:
            found = option.get("value") if field == "value" else option.get("text", {}).get("text")
            if found == text:
                return _copy(option)  # type: ignore[no-any-return]
    known = ", ".join(repr(o.get("value")) for o in options)
    raise ValueError(f"no option with value or text {text!r} (options: {known})")


def _many(value: Any) -> list[Any]:
    if isinstance(value, str | bytes | Mapping | enum.Enum) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def _rich_text(text: str) -> JsonDict:
    return {
        "type": "rich_text",
        "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
    }


def _file(name: str, index: int) -> JsonDict:
    extension = name.rsplit(".", 1)[-1] if "." in name else "binary"
    return {
        "id": f"F{index:08d}",
        "name": name,
        "title": name,
        "filetype": extension,
        "mimetype": "application/octet-stream",
        "size": 1024,
        "url_private": f"https://files.slack.com/files-pri/T0SANDBOX-F{index:08d}/{name}",
        "url_private_download": f"https://files.slack.com/files-pri/T0SANDBOX-F{index:08d}/download/{name}",
        "permalink": f"https://sandbox.slack.com/files/U0/F{index:08d}/{name}",
    }


def _convert(kind: str, value: Any, resolve: Resolver) -> Any:
    if kind in ("plain_text_input", "email_text_input", "url_text_input"):
        if not isinstance(value, str):
            raise TypeError(f"{kind} takes a str, not {type(value).__name__}")
        return value
    if kind == "number_input":
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
            raise TypeError(f"number_input takes a number or str, not {type(value).__name__}")
        return str(value)
    if kind == "datepicker":
        return value.date().isoformat() if isinstance(value, dt.datetime) else str(value)
    if kind == "timepicker":
        return value.strftime("%H:%M") if isinstance(value, dt.time) else str(value)
    if kind == "datetimepicker":
        if isinstance(value, dt.datetime):
            aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
            return int(aware.timestamp())
        return int(value)
    if kind.startswith("multi_"):  # users, conversations, channels
        return [resolve(str(v)) for v in _many(value)]
    if kind in ("users_select", "conversations_select", "channels_select"):
        return resolve(str(value))
    if kind == "rich_text_input":
        return _rich_text(value) if isinstance(value, str) else value
    if kind == "file_input":
        return [_file(v, i) if isinstance(v, str) else v for i, v in enumerate(_many(value), 1)]
    return value


def element_state(
    element: Mapping[str, Any], value: object, *, resolve: Resolver | None = None
) -> JsonDict:
    """The state value Slack sends when a user sets ``element`` to ``value``.

    Args:
        element: The element as it is in the view.
        value: A plain Python value: ``str`` for text inputs; a number or ``str`` for
            number_input; an option value or option text (or an Enum) for selects, radios and
            checkboxes, a list of them for multi versions, ``True``/``False`` for a checkbox
            group with one option; ``date``/``time``/``datetime`` or strings for pickers; user,
            conversation or channel ids (or names, through ``resolve``); a ``str`` or a
            ``rich_text`` dict for rich_text_input; file names or file dicts for file_input.
            ``None`` means empty.
        resolve: Maps names to ids for user/conversation pickers; identity by default.

    Raises:
        ValueError: No option matches.
        TypeError: The value cannot be typed into this element.
    """
    kind = str(element["type"])
    key, _, empty = _SHAPES[kind]
    if value is None:
        return {"type": kind, key: _copy(empty)}
    if kind in ("static_select", "external_select", "radio_buttons"):
        return {"type": kind, key: _choose(element, value)}
    if kind in ("multi_static_select", "multi_external_select", "checkboxes"):
        options = _options(element)
        if isinstance(value, bool):
            if kind != "checkboxes" or len(options) != 1:
                raise TypeError("True/False only works for a checkbox group with one option")
            return {"type": kind, key: [_copy(options[0])] if value else []}
        return {"type": kind, key: [_choose(element, v) for v in _many(value)]}
    return {"type": kind, key: _convert(kind, value, resolve or str)}


def find_element(blocks: Iterable[Any], key: str) -> tuple[JsonDict, str, str, JsonDict]:
    """Find a stateful element by block_id, field path, input label or action_id.

    Raises:
        UnknownField: Nothing matches ``key``.
    """
    candidates = list(stateful_elements(blocks))

    def label(block: JsonDict) -> str:
        return str((block.get("label") or {}).get("text", "")).strip()

    tests: list[Callable[[tuple[JsonDict, str, str, JsonDict]], bool]] = [
        lambda c: c[1] == key,
        lambda c: c[1] == FIELD_PREFIX + key,
        lambda c: c[0].get("type") == "input" and label(c[0]) == key.strip(),
        lambda c: c[0].get("type") == "input" and label(c[0]).casefold() == key.strip().casefold(),
        lambda c: c[2] == key,
    ]
    for test in tests:
        for candidate in candidates:
            if test(candidate):
                return candidate
    names = [c[1].removeprefix(FIELD_PREFIX) for c in candidates]
    raise UnknownField(f"no input {key!r} in this view; it has: {', '.join(names)}")


def fill_state(
    view: Mapping[str, Any],
    values: Mapping[str, object] | None = None,
    *,
    resolve: Resolver | None = None,
) -> StateValues:
    """The ``state.values`` of ``view`` after a user enters ``values``.

    Elements not mentioned keep what the user entered before (``view["state"]``) or else
    their initial value, as in the Slack client.

    Raises:
        UnknownField: A key matches no element.
        FieldRejected: A value cannot be entered (no such option, wrong type).
    """
    blocks = view.get("blocks", [])
    state: StateValues = {}
    for _, block_id, action_id, element in stateful_elements(blocks):
        state.setdefault(block_id, {})[action_id] = initial_state(element)
    for block_id, actions in (view.get("state") or {}).get("values", {}).items():
        for action_id, value in actions.items():
            if action_id in state.get(block_id, {}):
                state[block_id][action_id] = _copy(value)
    for key, value in (values or {}).items():
        _, block_id, action_id, element = find_element(blocks, key)
        try:
            state[block_id][action_id] = element_state(element, value, resolve=resolve)
        except (ValueError, TypeError) as exc:
            raise FieldRejected(f"{key!r}: {exc}", {block_id: str(exc)}) from exc
    return state


def _is_empty(value: JsonDict) -> bool:
    key = _SHAPES[str(value["type"])][0]
    return value.get(key) in (None, "", [])


def _number_problem(element: Mapping[str, Any], raw: str) -> str | None:
    try:
        number = Decimal(raw)
    except InvalidOperation:
        return "Please enter a number."
    if number.is_nan():  # Decimal reads "NaN", which no bound can be compared with
        return "Please enter a number."
    if not element.get("is_decimal_allowed") and number != number.to_integral_value():
        return "Please enter a whole number."
    low, high = element.get("min_value"), element.get("max_value")
    if (low is not None and number < Decimal(low)) or (high is not None and number > Decimal(high)):
        return f"Please enter a number between {low or '-∞'} and {high or '∞'}."
    return None


def _characters(count: int) -> str:
    return "1 character" if count == 1 else f"{count} characters"


def text_too_long(element: Mapping[str, Any], text: str) -> int | None:
    """The limit ``text`` goes over in the box ``element`` (a text box's ``max_length``, else
    the :data:`TEXT_BOX` any Slack box holds), which the Slack client refuses before
    sending; None when it fits or ``element`` is none of :data:`BOXES`."""
    kind = element.get("type")
    if kind not in BOXES:
        return None
    limit = TEXT_BOX
    if kind == "plain_text_input":
        limit = min(int(element.get("max_length") or TEXT_BOX), TEXT_BOX)
    return limit if len(text) > limit else None


def typed_problem(element: Mapping[str, Any], text: str) -> str | None:
    """What the Slack client says under the box ``element`` (one of :data:`BOXES`) when
    ``text`` is typed into it, refusing to send it; None when it would send it."""
    kind = element.get("type")
    high = text_too_long(element, text)
    if high is not None:
        return f"Please enter no more than {_characters(high)}."
    if kind == "plain_text_input":
        low = element.get("min_length")
        if low is not None and len(text) < low:
            return f"Please enter at least {_characters(low)}."
    elif kind == "number_input":
        return _number_problem(element, text)
    elif kind == "email_text_input" and not _EMAIL.fullmatch(text):
        return "Please enter a valid email address."
    elif kind == "url_text_input":
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return "Please enter a valid URL."
    return None


def client_problems(view: Mapping[str, Any], state: StateValues) -> dict[str, str]:
    """What the Slack client would say before sending this submission (empty: it would send).

    Returns:
        Input ``block_id`` -> the message shown under the input.
    """
    problems: dict[str, str] = {}
    for block, block_id, action_id, element in stateful_elements(view.get("blocks", [])):
        if block.get("type") != "input":
            continue
        value = state.get(block_id, {}).get(action_id) or initial_state(element)
        kind = str(element["type"])
        if _is_empty(value):
            if not block.get("optional", False):
                problems[block_id] = _REQUIRED
            continue
        raw = value.get("value")
        problem = typed_problem(element, raw) if kind in BOXES and isinstance(raw, str) else None
        limit = element.get("max_selected_items") or element.get("max_files")
        chosen = value.get(_SHAPES[kind][0])
        if isinstance(chosen, list) and limit is not None and len(chosen) > limit:
            problem = f"Please select no more than {limit}."
        if problem:
            problems[block_id] = problem
    return problems
