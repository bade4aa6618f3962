"""Mapping table rows to the engine's domain values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.runs import (
    Event,
    EventKind,
    LogEntry,
    Pause,
    PauseStatus,
    Run,
    RunState,
    StateChange,
    TaskRun,
)


def utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def to_run(row: Any) -> Run:
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
    )


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
    )


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
