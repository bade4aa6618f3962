"""Reading a submitted input modal back into the model's JSON, and putting errors on it.

The modal comes from ``bot.forms.modals.build_input_view``; both sides use
``bot.forms.modals.schema_layout`` so every block id and element kind agrees.

What a person's answer becomes, per input kind:

===============  ===========================================================================
text/email/url   the string; an empty box is "no answer"
lines            list of non-blank lines, stripped (once each for a set); always sent
                 (``[]`` when empty)
integer          ``int``; "Enter a whole number" if the text is not one
number           ``int`` when whole, else ``float``
decimal          a plain digit string (``"12.50"``), so no precision is lost
boolean          ``True`` when ticked, else ``False``; always sent (a bool that may be None
                 is a Yes/No choice instead)
choice(s)        the option's JSON value (``3`` stays an int); choices always sent as a list
date             ``"YYYY-MM-DD"``
time             ``"HH:MM:00"``: ISO 8601 without a zone, which pydantic reads as a naive
                 ``time`` in the person's own clock
datetime         ``"YYYY-MM-DDTHH:MM:SSZ"``, UTC; without the ``Z`` for a ``NaiveDatetime``,
                 which refuses a zone
user(s)          ``"U…"`` ids; channel(s) ``"C…"``/``"G…"``/``"D…"`` ids; lists always sent
===============  ===========================================================================

"No answer" leaves the key out so the model's default applies, except that a nullable
field becomes ``None`` when it is required or its default (shown in the form) is not None
and not ``""`` (an empty box shows that). A nullable list whose default is None answers None
when left empty, not ``[]``, and so does one emptied of the items it showed; a nullable
bool is a Yes/No choice, None when neither is chosen. A nested model that may be absent (not required, or ``Optional``) is left out (or
``None``) when none of its fields were answered.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from signoff.bot.forms.elements import shows_value
from signoff.bot.forms.layout import (
    ACTION_ID,
    TICKED,
    FieldGroup,
    InputField,
    JSONSchema,
    block_id_for,
    schema_layout,
)
from signoff.bot.forms.zones import datetime_zone, time_offset

__all__ = ["errors_for_view", "parse_submission"]

StateValues = Mapping[str, Mapping[str, Mapping[str, Any]]]
"""``view["state"]["values"]``: block id → action id → element state."""

_SCALAR_KEYS = {
    "date": "selected_date",
    "time": "selected_time",
    "datetime": "selected_date_time",
    "user": "selected_user",
    "channel": "selected_conversation",
}
_LIST_KEYS = {"users": "selected_users", "channels": "selected_conversations"}
_TEXT_KINDS = ("text", "email", "url")
#: The most digits a number's whole part may have: past it Python will not write an int
#: out, and Signoff's stores refuse it. The engine's ``numbers.MAX_DIGITS``, which refuses
#: the same numbers from the command line and Python (forms may not import the engine).
MAX_DIGITS = 4300


class _Unparsable(ValueError):
    """An answer Slack accepted but the model cannot use; the message is shown to the person."""


def parse_submission(
    schema: JSONSchema, state_values: StateValues
) -> tuple[dict[str, Any], dict[str, str]]:
    """Turns a modal's submitted state into JSON for the input model.

    Args:
        schema: The input model's JSON schema, as given to ``build_input_view``.
        state_values: ``view["state"]["values"]`` from the ``view_submission`` payload.

    Returns:
        ``(data, errors)``: ``data`` is nested like the model, in JSON types, ready for
        JSON-schema validation and ``model_validate``; ``errors`` maps block ids to messages
        for answers that could not be read (e.g. "Enter a whole number").
    """
    layout = schema_layout(schema)
    values: dict[str, Any] = {}
    answered: set[str] = set()
    errors: dict[str, str] = {}
    for entry in layout:
        if isinstance(entry, FieldGroup):
            continue
        state = state_values.get(block_id_for(entry.path), {}).get(ACTION_ID) or {}
        try:
            value = _read(entry, state)
        except _Unparsable as exc:
            errors[block_id_for(entry.path)] = str(exc)
            continue
        if (value is None or value == []) and not shows_value(entry, entry.default):
            # Its input started empty, unable to show its default (too long, a line break
            # in an item, out of its range): left so, it answers that default, which the
            # answer's check then judges like any other value.
            value = entry.default
        if value == [] and entry.nullable and entry.default != []:
            # A list that may be None: starting as None, it shows empty, and left so it stays
            # None; emptied of the items it showed, it answers None (below), as an emptied
            # optional box does, not the [] the person may not have meant.
            value = None
        if value is not None:
            values[entry.path] = value
            # An unticked box, an empty list or a default left as prefilled is sent, but
            # does not count as filling a group in.
            if value is not False and value not in ([], entry.default):
                answered.add(entry.path)
        elif entry.nullable and _emptied(entry):
            values[entry.path] = None
    # Deepest groups first, so an unanswered inner model is settled before its parent.
    for group in sorted(
        (e for e in layout if isinstance(e, FieldGroup)), key=lambda g: -g.path.count(".")
    ):
        inside = f"{group.path}."
        # A model the form showed filled in (its default) is sent as shown, so the model
        # checks those values rather than falling back to its default unchecked; one that
        # may be None, emptied of all it showed, answers None (not the values taken out).
        if group.prefilled:
            if group.nullable and _emptied_group(inside, layout, values):
                for path in [p for p in values if p.startswith(inside)]:
                    del values[path]
                values[group.path] = None
            continue
        if any(path.startswith(inside) for path in answered):
            continue
        if group.nullable or not group.in_required:
            for path in [p for p in values if p.startswith(inside)]:
                del values[path]
            if group.nullable and group.in_required:
                values[group.path] = None
        elif not any(path.startswith(inside) for path in values):
            # A model it needs, left empty: given as an empty one, so that each field it
            # lacks is named under its own input at once, not the model as a whole under
            # its first (and the next field only after that one is filled in).
            values[group.path] = {}
    return _nest(values), errors


def errors_for_view(schema: JSONSchema, field_errors: Mapping[str, str]) -> dict[str, str]:
    """Places validation errors on the modal's input blocks.

    An error for a field with its own input goes on that input; one for a list item
    (``tags.2``) on the list's input, saying which (``item 3: ...``); one for a nested model (``address``) on its first
    input; anything else (``""`` for the whole model, unknown paths) on the first input.

    Args:
        schema: The input model's JSON schema.
        field_errors: Dotted field path → message.

    Returns:
        Block id → message, ready for ``ack(response_action="errors", errors=...)``. Several
        messages for one block are joined with "; ". Empty when the modal has no inputs.
    """
    paths = [e.path for e in schema_layout(schema) if isinstance(e, InputField)]
    if not paths:
        return {}
    placed: dict[str, list[str]] = {}
    for path, message in field_errors.items():
        target = _target(path, paths)
        shown = placed.setdefault(block_id_for(target), [])
        if (said := _about_item(path, target, message)) not in shown:
            shown.append(said)
    return {block_id: "; ".join(messages) for block_id, messages in placed.items()}


def _about_item(path: str, target: str, message: str) -> str:
    """``message`` about ``path``, shown on ``target``'s input: one input holds a whole
    list, so an error about one of its items (``tags.2``) says which (``item 3: ...``)."""
    if not path.startswith(f"{target}."):
        return message
    item = path.removeprefix(f"{target}.").split(".")[0]
    return f"item {int(item) + 1}: {message}" if item.isdigit() else message


def _target(path: str, paths: list[str]) -> str:
    if path in paths:
        return path
    owners = [p for p in paths if path.startswith(f"{p}.")]
    if owners:
        return max(owners, key=len)
    inside = [p for p in paths if path and p.startswith(f"{path}.")]
    return inside[0] if inside else paths[0]


def _nothing(value: Any) -> bool:
    """What an input left empty (or unticked) gives; a 0 is something."""
    return value is None or value is False or value in ("", [])


def _emptied_group(
    inside: str, layout: Sequence[FieldGroup | InputField], values: Mapping[str, Any]
) -> bool:
    """Whether every input of a prefilled model (paths under ``inside``) that showed
    something was emptied, and nothing else in it filled in."""
    entries = [e for e in layout if isinstance(e, InputField) and e.path.startswith(inside)]
    showed = any(not _nothing(e.default) for e in entries)
    return showed and all(_nothing(values.get(e.path)) for e in entries)


def _emptied(entry: InputField) -> bool:
    """Whether a field that may be None, left empty, answers None rather than its default.

    A required field has no default to fall back on. One whose default the form showed
    was emptied by the person, who must not get back the value they took out. But ``""``
    shows as an empty box, so a box left so gives it back (by leaving the field out).
    """
    if entry.default is None:
        return entry.in_required
    return not (entry.default == "" and entry.kind in _TEXT_KINDS)


def _read(entry: InputField, state: Mapping[str, Any]) -> Any:
    kind = entry.kind
    if kind in _TEXT_KINDS:
        text = state.get("value") or None
        if entry.number_or_text and text is not None and _PLAIN_NUMBER.fullmatch(text.strip()):
            # ``float | str``: a number typed is the number, as JSON would carry it.
            number = float(text)
            if math.isfinite(number):
                return number
        return text
    if kind == "lines":
        text = state.get("value") or ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        # A set takes a line typed twice once, as the model would (its schema's
        # uniqueItems would otherwise refuse what the model accepts).
        return list(dict.fromkeys(lines)) if entry.unique else lines
    if kind in ("integer", "number", "decimal"):
        return _number(kind, state.get("value"))
    if kind == "boolean":
        ticked = state.get("selected_options") or []
        if any(not isinstance(o, Mapping) or o.get("value") != TICKED for o in ticked):
            # Only a forged or stale submission can send another option.
            raise _Unparsable("Tick the box or leave it empty")
        return bool(ticked)
    if kind == "choice":
        selected = state.get("selected_option")
        return _choice(entry, selected) if selected else None
    if kind == "choices":
        return [_choice(entry, option) for option in state.get("selected_options") or []]
    if kind in _LIST_KEYS:
        return list(state.get(_LIST_KEYS[kind]) or [])
    value = state.get(_SCALAR_KEYS[kind])
    if value is None or value == "":
        return None
    if kind == "time":
        # In the zone of the time the form started from, whose clock time it showed.
        zone = time_offset(entry.default) or ""
        return (f"{value}:00" if len(str(value)) == 5 else str(value)) + zone
    if kind == "datetime":
        try:
            moment = datetime.fromtimestamp(int(value), tz=UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            # Slack's picker sends seconds since 1970; nothing else is a moment.
            raise _Unparsable("Choose a date and time between the years 1 and 9999") from None
        if entry.naive:
            return moment.replace(tzinfo=None).isoformat()
        # The same moment in the offset of the one it started from, as a time keeps its
        # zone: its date and hour are then the ones the flow's author reads.
        started_in = datetime_zone(entry.default)
        if started_in is not None:
            return moment.astimezone(started_in).isoformat()
        return moment.isoformat().replace("+00:00", "Z")
    return str(value)


#: a number in ASCII digits, with an optional sign, point and exponent
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _number(kind: str, text: Any) -> Any:
    if text is None or str(text).strip() == "":
        return None
    written = str(text).strip()
    try:
        # As Slack's number input sends it: Decimal alone would also read "1_0" as 10 and
        # other scripts' digits, which only a forged submission sends.
        number = Decimal(written) if _PLAIN_NUMBER.fullmatch(written) else Decimal("NaN")
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise _Unparsable("Enter a number")
    if number and number.adjusted() >= MAX_DIGITS:
        # Writing out 1e999999 takes seconds and a megabyte; JSON cannot hold it either.
        raise _Unparsable("Enter a smaller number")
    if kind == "decimal" and -number.as_tuple().exponent > MAX_DIGITS:  # type: ignore[operator]
        raise _Unparsable("Enter fewer decimal places")
    if kind == "number" and not math.isfinite(float(number)):
        raise _Unparsable("Enter a smaller number")  # past what a float holds (1e309)
    if kind == "number" and number and float(number) == 0:
        # Closer to zero than a float holds (1e-400): read as 0 it would be another answer.
        raise _Unparsable("Enter a number further from zero")
    whole = number == number.to_integral()
    if kind == "integer":
        if not whole:
            raise _Unparsable("Enter a whole number")
        return int(number)
    if kind == "decimal":
        return format(number, "f")
    return int(number) if whole else float(number)


def _choice(entry: InputField, option: Mapping[str, Any]) -> Any:
    key = option.get("value")
    for choice in entry.choices:
        if choice.key == key:
            return choice.value
    # Only a stale modal (the model changed since it was opened) can send this.
    raise _Unparsable("Choose one of the options")


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, leaf = path.split(".")
        target = nested
        for key in parents:
            child = target.get(key)
            if not isinstance(child, dict):
                child = target[key] = {}
            target = child
        target[leaf] = value
    return nested
