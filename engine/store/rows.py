"""Mapping table rows to the engine's domain values."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections import namedtuple
from datetime import UTC, datetime
from typing import Any

from signoff.engine.errors import RunUnreadable
from signoff.engine.runs import (
    Delegation,
    Event,
    EventKind,
    GivenAnswer,
    LogEntry,
    Pause,
    PauseStatus,
    Run,
    RunState,
    StateChange,
    TaskRun,
)
from signoff.engine.store.undecodable import NotUtf8, first_not_utf8, reading_leniently

#: the runs table's JSON columns, which a read of runs made again (see ``to_listed_run``)
#: selects as text: SQLAlchemy would decode them as it reads the row, failing the read
RUN_JSON_COLUMNS = ("parameters_json", "tags", "policy")
#: the runs table's times, also selected as text then (SQLAlchemy parses them on SQLite)
RUN_TIME_COLUMNS = ("created_at", "updated_at")
#: what a time that cannot be read is listed as (as an unreadable audit record's)
_NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)
_STATES = frozenset(s.value for s in RunState)


def utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def check_decoded(run_id: Any, row: Any, of: str = "") -> None:
    """On a read made again for text SQLite could not decode (see ``undecodable``): raise
    ``RunUnreadable`` when ``row``, run ``run_id``'s or ``of`` it (``"task's "``), holds
    some, rather than make a run of bytes."""
    if reading_leniently():
        column = first_not_utf8(row)
        if column is not None:
            raise RunUnreadable(run_id, f"its {of}{column} is not UTF-8 text")


def to_run(row: Any) -> Run:
    """The run of a runs row. On a read made again for a value that could not be read (see
    ``undecodable``), ``RunUnreadable`` naming the run and its columns that cannot be."""
    if reading_leniently():
        values, reasons = _read_leniently(row)
        if reasons:
            raise RunUnreadable(values["id"], "; ".join(reasons))
        row = _row_type(tuple(values))(**values)
    return _to_run(row)


def _to_run(row: Any) -> Run:
    return Run(
        id=row.id,
        flow_name=row.flow_name,
        state=RunState(row.state),
        state_name=row.state_name,
        state_message=row.state_message,
        parameters=dict(row.parameters_json or {}),
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        started_by=row.started_by,
        owner=row.owner,
        result=row.result,
        tags=dict(row.tags or {}),
        approvers=tuple((row.policy or {}).get("approvers") or ()),
        cancellers=tuple((row.policy or {}).get("cancellers") or ()),
    )


def to_listed_run(row: Any) -> Run:
    """``to_run`` for a listing. On a read made again for a value that could not be read
    (text SQLite could not decode, or text that is not what its column holds: see
    ``undecodable``), a run whose row holds some is listed with stand-ins for those values
    and the reason in ``Run.unreadable``: one such row does not fail the page. Its text is
    shown as its bytes escaped; a state that cannot be read as crashed (final: nothing
    offers to act on the run); a time as 1970. Nothing stored is changed."""
    if not reading_leniently():
        return to_run(row)
    values, reasons = _read_leniently(row)
    run = _to_run(_row_type(tuple(values))(**values))
    if not reasons:
        return run
    return dataclasses.replace(run, unreadable="; ".join(reasons))


def _read_leniently(row: Any) -> tuple[dict[str, Any], list[str]]:
    """A runs row read again with its JSON columns and times as text: its values, with
    stand-ins for those that cannot be read, and why each cannot."""
    values = dict(zip(row._fields, row, strict=True))
    bad = [name for name, value in values.items() if type(value) is NotUtf8]
    not_json, not_time = [], []
    for name in RUN_JSON_COLUMNS:
        value = values.get(name)
        if isinstance(value, str):  # NotUtf8 is bytes: named above
            try:
                values[name] = json.loads(value)
            except ValueError:
                not_json.append(name)
    for name in RUN_TIME_COLUMNS:
        value = values.get(name)
        if isinstance(value, str):  # PostgreSQL's driver hands over a datetime
            try:
                values[name] = datetime.fromisoformat(value)
            except ValueError:
                not_time.append(name)
    state = values.get("state")
    unknown_state = isinstance(state, str) and state not in _STATES
    reasons = []
    if bad:
        reasons.append(f"its {_names(bad)} {'is' if len(bad) == 1 else 'are'} not UTF-8 text")
    if not_json:
        reasons.append(f"its {_names(not_json)} {'is' if len(not_json) == 1 else 'are'} not JSON")
    if unknown_state:
        reasons.append(f"its state {str(state)[:50]!r} is not a state a run can be in")
    if not_time:
        reasons.append(f"its {_names(not_time)} {'is' if len(not_time) == 1 else 'are'} not a time")
    for name in [*bad, *not_json, *not_time, *(["state"] if unknown_state else [])]:
        value = values[name]
        if name in RUN_JSON_COLUMNS:
            values[name] = None
        elif name in RUN_TIME_COLUMNS:
            values[name] = _NO_TIME
        elif name == "state":
            values[name] = RunState.CRASHED.value
        elif type(value) is NotUtf8:
            values[name] = bytes(value).decode("utf-8", "backslashreplace")
    return values, reasons


def _names(columns: list[str]) -> str:
    return ", ".join(columns[:-1]) + " and " + columns[-1] if len(columns) > 1 else columns[0]


@functools.cache
def _row_type(fields: tuple[str, ...]) -> Any:
    """A row of ``fields`` (a listed run's values once stand-ins replace some)."""
    return namedtuple("ListedRow", fields)


def to_state(event_row: Any) -> StateChange:
    """A STATE_CHANGED event row as an entry of the run's history."""
    data = event_row.data or {}
    return StateChange(
        state=RunState(data["state"]),
        name=data["name"],
        message=data.get("message"),
        at=utc(event_row.at),
    )


def to_task(row: Any) -> TaskRun:
    return TaskRun(
        key=row.key,
        task_name=row.task_name,
        state=RunState(row.state),
        attempts=row.attempts,
        result=row.result_preview,
        error=row.error,
        started_at=utc(row.started_at),
        ended_at=utc_or_none(row.ended_at),
    )


def to_pause(row: Any) -> Pause:
    return Pause(
        run_id=row.run_id,
        key=row.key,
        suspend=bool(row.suspend),
        status=PauseStatus(row.status),
        schema=row.input_schema,
        title=row.title,
        description=row.description,
        initial=dict(row.initial or {}),
        approvers=tuple(row.approvers or ()),
        forbid_starter=bool(row.forbid_starter),
        created_at=utc(row.created_at),
        deadline=utc_or_none(row.deadline),
        response=row.response,
        responder=row.responder,
        answered_at=utc_or_none(row.answered_at),
        errors=dict(row.errors or {}),
        quorum=int(row.quorum or 1),
        veto=row.veto,
        answers=tuple(to_given_answer(a) for a in row.answers or ()),
        escalate_at=utc_or_none(row.escalate_at),
        escalate_to=tuple(row.escalate_to or ()),
        escalated_at=utc_or_none(row.escalated_at),
        notify=row.notify or "channel",
        confirm=bool(row.confirm),
        delegations=tuple(
            Delegation(by=d["by"], to=d["to"], at=datetime.fromisoformat(d["at"]))
            for d in row.delegations or ()
        ),
    )


def to_given_answer(stored: dict[str, Any]) -> GivenAnswer:
    return GivenAnswer(
        responder=stored.get("responder"),
        name=stored.get("name"),
        via=stored.get("via"),
        input=stored.get("input"),
        at=datetime.fromisoformat(stored["at"]),
    )


def given_answer_json(answer: GivenAnswer) -> dict[str, Any]:
    return {
        "responder": answer.responder,
        "name": answer.name,
        "via": answer.via,
        "input": answer.input,
        "at": answer.at.isoformat(),
    }


def to_log(row: Any) -> LogEntry:
    return LogEntry(at=utc(row.at), level=row.level, message=row.message, task_key=row.task_key)


def to_event(row: Any) -> Event:
    return Event(
        id=int(row.id),
        run_id=row.run_id,
        kind=EventKind(row.kind),
        at=utc(row.at),
        data=dict(row.data or {}),
    )
