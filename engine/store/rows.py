"""Mapping table rows to the engine's domain values."""

from __future__ import annotations

import dataclasses
import functools
from collections import namedtuple
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

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
from signoff.engine.store import lenient
from signoff.engine.store.undecodable import reading_leniently

T = TypeVar("T")
#: how many of the values of a run's rows that cannot be read a message names
_REASONS_SHOWN = 5

_STATES = frozenset(s.value for s in RunState)
#: what stands in for a state that cannot be read: crashed, final (nothing offers to act)
_NO_STATE = RunState.CRASHED.value


def utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def shaped(convert: Callable[[Any], T]) -> Callable[[Any], T]:
    """``convert``, failing with a ``ValueError`` (which has a read made again to name the
    value, see ``undecodable``) on a stored value not of the shape Signoff stores."""

    @functools.wraps(convert)
    def converted(row: Any) -> T:
        try:
            return convert(row)
        except (LookupError, TypeError, AttributeError) as exc:
            raise ValueError(f"a stored value is not of its shape: {exc!r}") from exc

    return converted


def to_run(row: Any) -> Run:
    """The run of a runs row. On a read made again for a value that could not be read (see
    ``undecodable``), ``RunUnreadable`` naming the run and its columns that cannot be."""
    return _to_run(readable(row, RUN) if reading_leniently() else row)


@shaped
def _to_run(row: Any) -> Run:
    return Run(
        id=row.id,
        flow_name=row.flow_name,
        state=RunState(row.state),
        state_name=row.state_name,
        state_message=row.state_message,
        parameters=_mapping(row.parameters_json),
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        started_by=row.started_by,
        owner=row.owner,
        result=row.result,
        tags=_mapping(row.tags),
        approvers=_people(row.policy, "approvers"),
        cancellers=_people(row.policy, "cancellers"),
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
    values, reasons = lenient.read(row, RUN)
    run = _to_run(_row_type(tuple(values))(**values))
    if not reasons:
        return run
    return dataclasses.replace(run, unreadable="; ".join(reasons))


def readable(row: Any, kind: lenient.RowKind) -> Any:
    """``row``, of ``kind``, read again with its JSON columns and times as text (see
    ``lenient``), decoded; ``RunUnreadable`` naming the run, the row and why, when some
    value in it cannot be read."""
    values, reasons = lenient.read(row, kind)
    if reasons:
        raise RunUnreadable(values[kind.run_id], "; ".join(reasons))
    return _row_type(tuple(values))(**values)


def unreadable(run_id: str, found: Iterable[tuple[lenient.RowKind, Iterable[Any]]]) -> None:
    """On a read made again (see ``undecodable``) of a run's rows of each kind ``found``:
    ``RunUnreadable`` naming every one of them that holds a value that cannot be read, and
    why (the first few: a log of thousands may have been edited)."""
    if not reading_leniently():
        return
    reasons = [r for kind, rows in found for row in rows for r in lenient.read(row, kind)[1]]
    if len(reasons) > _REASONS_SHOWN:
        more = len(reasons) - _REASONS_SHOWN
        reasons = [*reasons[:_REASONS_SHOWN], f"and {more} more value(s) that cannot be read"]
    if reasons:
        raise RunUnreadable(run_id, "; ".join(reasons))


def _mapping(value: Any) -> dict[str, Any]:
    if value is not None and not isinstance(value, dict):
        raise TypeError(f"an object was stored as {type(value).__name__}")
    return dict(value or {})


def _listed(value: Any) -> tuple[Any, ...]:
    if value is not None and not isinstance(value, list | tuple):
        raise TypeError(f"a list was stored as {type(value).__name__}")
    return tuple(value or ())


def _people(policy: Any, who: str) -> tuple[str, ...]:
    """The ``approvers`` or ``cancellers`` of a run's stored ``policy``."""
    return _listed(_mapping(policy).get(who))


@functools.cache
def _row_type(fields: tuple[str, ...]) -> Any:
    """A row of ``fields`` (a row's values once decoded, stand-ins replacing some)."""
    return namedtuple("ReadRow", fields)


def to_state(event_row: Any) -> StateChange:
    """A STATE_CHANGED event row as an entry of the run's history."""
    return _to_state(readable(event_row, STATE_ENTRY) if reading_leniently() else event_row)


@shaped
def _to_state(event_row: Any) -> StateChange:
    state, name, message = _state_data(event_row.data)
    return StateChange(state=state, name=name, message=message, at=utc(event_row.at))


def _state_data(data: Any) -> tuple[RunState, str, str | None]:
    stored = _mapping(data)
    return RunState(stored["state"]), stored["name"], stored.get("message")


def to_task(row: Any) -> TaskRun:
    return _to_task(readable(row, TASK) if reading_leniently() else row)


@shaped
def _to_task(row: Any) -> TaskRun:
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
    """The pause of a pauses row. On a read made again for a value that could not be read
    (see ``undecodable``), ``RunUnreadable`` naming its run, the pause and the value."""
    return _to_pause(readable(row, PAUSE) if reading_leniently() else row)


@shaped
def _to_pause(row: Any) -> Pause:
    return Pause(
        run_id=row.run_id,
        key=row.key,
        suspend=bool(row.suspend),
        status=PauseStatus(row.status),
        schema=row.input_schema,
        title=row.title,
        description=row.description,
        initial=_mapping(row.initial),
        approvers=_listed(row.approvers),
        forbid_starter=bool(row.forbid_starter),
        created_at=utc(row.created_at),
        deadline=utc_or_none(row.deadline),
        response=row.response,
        responder=row.responder,
        answered_at=utc_or_none(row.answered_at),
        errors=_mapping(row.errors),
        quorum=_count(row.quorum),
        veto=row.veto,
        answers=_answers(row.answers),
        escalate_at=utc_or_none(row.escalate_at),
        escalate_to=_listed(row.escalate_to),
        escalated_at=utc_or_none(row.escalated_at),
        notify=row.notify or "channel",
        confirm=bool(row.confirm),
        delegations=_delegations(row.delegations),
    )


def _count(value: Any) -> int:
    return int(value or 1)


def _answers(value: Any) -> tuple[GivenAnswer, ...]:
    return tuple(to_given_answer(a) for a in _listed(value))


def _delegations(value: Any) -> tuple[Delegation, ...]:
    return tuple(
        Delegation(by=d["by"], to=d["to"], at=datetime.fromisoformat(d["at"]))
        for d in _listed(value)
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
    if reading_leniently():
        row = readable(row, LOG)
    return LogEntry(at=utc(row.at), level=row.level, message=row.message, task_key=row.task_key)


def to_event(row: Any) -> Event:
    """The event of an events row; ``ValueError`` or ``TypeError`` on one edited outside
    Signoff (its reader then reads the page again to step past it: see ``event_rows``)."""
    data = row.data
    return Event(
        id=int(row.id),
        run_id=row.run_id,
        kind=EventKind(row.kind),
        at=utc(row.at),
        # dict(...) of a list of pairs would pass for a mapping; None is an empty one
        data=dict(data) if type(data) is dict else _mapping(data),
    )


def _text(value: Any) -> str:
    """A key as a message names it (a stand-in's escaped bytes, if need be)."""
    return repr(value if isinstance(value, str) else str(value))


#: what each kind of a run's rows holds, as a read made again checks it (see ``lenient``)
RUN = lenient.RowKind(
    name=lambda _: "",
    run_id="id",
    json=("parameters_json", "tags", "policy"),
    times=("created_at", "updated_at"),
    choices={"state": (_STATES, "a state a run can be in")},
    shapes={
        "parameters_json": _mapping,
        "tags": _mapping,
        "policy": lambda p: (_people(p, "approvers"), _people(p, "cancellers")),
    },
    stand_ins={"state": _NO_STATE},
)
PAUSE = lenient.RowKind(
    name=lambda v: f"pause {_text(v['key'])}",
    json=(
        *("input_schema", "initial", "approvers", "response", "errors", "answers"),
        *("escalate_to", "delegations"),
    ),
    times=("created_at", "deadline", "answered_at", "escalate_at", "escalated_at"),
    choices={"status": (frozenset(s.value for s in PauseStatus), "a status a pause can be in")},
    shapes={
        **dict.fromkeys(("initial", "errors"), _mapping),
        **dict.fromkeys(("approvers", "escalate_to"), _listed),
        **{"quorum": _count, "answers": _answers, "delegations": _delegations},
    },
)
TASK = lenient.RowKind(
    name=lambda v: f"task {_text(v['key'])}",
    json=("inner_calls",),
    times=("started_at", "ended_at"),
    choices={"state": (_STATES, "a state a task can be in")},
)
LOG = lenient.RowKind(name=lambda v: f"log record {v['id']}", times=("at",))
STATE_ENTRY = lenient.RowKind(
    name=lambda v: f"state history entry {v['id']}",
    json=("data",),
    times=("at",),
    shapes={"data": _state_data},
)
#: an event is named by its reader ("event 7 of run ..."), not by the reasons
EVENT = lenient.RowKind(
    name=lambda _: "",
    json=("data",),
    times=("at",),
    choices={"kind": (frozenset(k.value for k in EventKind), "a kind of event")},
    shapes={"data": _mapping},
)
