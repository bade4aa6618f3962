"""Reading a row edited outside Signoff so that what cannot be read in it is named.

A read of a run's rows (the run, its pauses, tasks, log records, state history) that met a
value it could not read (text SQLite could not decode, JSON that is not, a state that is
none, a time that is not one, JSON not of the shape Signoff stores) is made once more
(``undecodable.read_again_if_unreadable``) with the JSON columns and times selected as
text (``as_text``). ``read`` then decodes such a row's values itself, names each that
cannot be read and why, and puts a stand-in in its place: a listing lists a run with some,
any other read refuses the run (``RunUnreadable``). Nothing stored is changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Text, cast, type_coerce
from sqlalchemy import types as sqltypes

from signoff.engine.store.undecodable import NotUtf8

#: what a time that cannot be read is listed as (as an unreadable audit record's)
NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)
#: what a conversion fails with on a value not of the shape Signoff stores
SHAPE_ERRORS = (ValueError, LookupError, TypeError, AttributeError)


def as_text(columns: Iterable[Any], prefix: str = "") -> tuple[Any, ...]:
    """``columns`` (labelled ``prefix`` + name) with the JSON ones cast to their text and
    the times handed over as stored: SQLAlchemy would decode both as it reads the row,
    failing the whole read on one value. (PostgreSQL's driver still hands a datetime.)"""
    return tuple(
        (
            cast(c, Text)
            if isinstance(c.type, sqltypes.JSON)
            else type_coerce(c, Text)
            if isinstance(c.type, DateTime)
            else c
        ).label(prefix + c.name)
        for c in columns
    )


@dataclass(frozen=True)
class RowKind:
    """What the rows of one table hold, as ``read`` checks them."""

    #: how a message names a row of it among the run's (``"pause 'go'"``); "" for the run
    name: Callable[[Mapping[str, Any]], str]
    #: the column holding the id of the run the row is of
    run_id: str = "run_id"
    json: tuple[str, ...] = ()
    times: tuple[str, ...] = ()
    #: column -> the values it can hold, and what those are (``"a state a run can be in"``)
    choices: Mapping[str, tuple[frozenset[str], str]] = field(default_factory=dict)
    #: column -> the conversion the row's domain value makes of it, which fails on a value
    #: not of the shape Signoff stores (``SHAPE_ERRORS``)
    shapes: Mapping[str, Callable[[Any], object]] = field(default_factory=dict)
    #: column -> what stands in for a choice that cannot be read
    stand_ins: Mapping[str, object] = field(default_factory=dict)


def read(row: Any, kind: RowKind) -> tuple[dict[str, Any], list[str]]:
    """``row``, of ``kind``, read again with its JSON columns and times as text: its values,
    with stand-ins for those that cannot be read, and why each cannot (phrased as of the
    run: "its tags is not JSON", "the status 'x' of its pause 'go' is not ...")."""
    values = dict(zip(row._fields, row, strict=True))
    not_utf8 = [name for name, value in values.items() if type(value) is NotUtf8]
    not_json, not_time, not_choice, not_shape = [], [], [], []
    for name in kind.json:
        value = values.get(name)
        if isinstance(value, str):  # NotUtf8 is bytes: named above
            try:
                values[name] = json.loads(value)
            except ValueError:
                not_json.append(name)
    for name in kind.times:
        value = values.get(name)
        if isinstance(value, str):  # PostgreSQL's driver hands over a datetime
            try:
                values[name] = datetime.fromisoformat(value)
            except ValueError:
                not_time.append(name)
    for name, (allowed, _) in kind.choices.items():
        value = values.get(name)
        if isinstance(value, str) and value not in allowed:
            not_choice.append(name)
    unread = {*not_utf8, *not_json, *not_time, *not_choice}
    for name, convert in kind.shapes.items():
        if name not in unread:
            try:
                convert(values.get(name))
            except SHAPE_ERRORS as exc:
                not_shape.append((name, exc))
    was = {name: str(values[name])[:50] for name in not_choice}
    for name in [*unread, *(name for name, _ in not_shape)]:
        _stand_in(values, kind, name)
    of = kind.name(values)  # once its own key, say, is a stand-in if need be

    def the(columns: list[str]) -> str:
        names = ", ".join(columns[:-1]) + " and " + columns[-1] if columns[1:] else columns[0]
        return f"the {names} of its {of}" if of else f"its {names}"

    reasons = []
    if not_utf8:
        reasons.append(f"{the(not_utf8)} {_is(not_utf8)} not UTF-8 text")
    if not_json:
        reasons.append(f"{the(not_json)} {_is(not_json)} not JSON")
    for name in not_choice:
        reasons.append(f"{the([f'{name} {was[name]!r}'])} is not {kind.choices[name][1]}")
    if not_time:
        reasons.append(f"{the(not_time)} {_is(not_time)} not a time")
    for name, failure in not_shape:
        said = f"{type(failure).__name__}: {failure}"[:100]
        reasons.append(f"{the([name])} is not as Signoff stores it ({said})")
    return values, reasons


def _stand_in(values: dict[str, Any], kind: RowKind, name: str) -> None:
    if name in kind.json:
        values[name] = None
    elif name in kind.times:
        values[name] = NO_TIME
    elif name in kind.stand_ins:
        values[name] = kind.stand_ins[name]
    elif type(values[name]) is NotUtf8:
        values[name] = bytes(values[name]).decode("utf-8", "backslashreplace")


def _is(columns: list[str]) -> str:
    return "is" if len(columns) == 1 else "are"


__all__ = ["NO_TIME", "SHAPE_ERRORS", "RowKind", "as_text", "read"]
