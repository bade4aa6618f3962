"""The database tables. This is the only module that defines them, and none leaves the store.

Times are stored in UTC. Values the flow hands back later (parameters, task results) are
pickled; input, schemas and event data are JSON so that any client can read them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from signoff.engine.runs import PauseStatus

metadata = SQLModel.metadata
#: The condition of the pause indexes that hold waiting pauses only. A query is served by
#: them when its WHERE says the same with a literal (``pauses.IS_WAITING``): a bound
#: parameter proves nothing to the planner about which rows it selects.
WAITING_ONLY = f"status = '{PauseStatus.WAITING.value}'"


def _where(condition: str) -> dict[str, Any]:
    """A partial index's condition, on both databases."""
    return {"postgresql_where": text(condition), "sqlite_where": text(condition)}


def _utc_column(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index),
    )


class RunRow(SQLModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_state_updated", "state", "updated_at"),
        Index("ix_runs_started_by_created_id", "started_by", "created_at", "id"),
        # Listing newest first, one page at a time (see SqlStore.list_runs).
        Index("ix_runs_state_created", "state", "created_at", "id"),
        Index("ix_runs_flow_created", "flow_name", "created_at", "id"),
        Index("ix_runs_created", "created_at", "id"),
    )

    id: str = Field(primary_key=True, max_length=32)
    flow_name: str = Field(index=True, max_length=200)
    flow_ref: str | None = Field(default=None, max_length=1000)
    parameters: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    parameters_json: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    state: str = Field(max_length=20)
    state_name: str = Field(max_length=50)
    state_message: str | None = None
    started_by: str | None = Field(default=None, max_length=200)
    owner: str | None = Field(default=None, max_length=64, index=True)
    result: str | None = None
    tags: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    #: the flow's rules when the run started: {"approvers": [...], "cancellers": [...]}
    policy: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = _utc_column()
    updated_at: datetime = _utc_column()
    #: the run whose flow called this run's flow (a nested flow); cancelling it cancels this
    parent_run_id: str | None = Field(default=None, max_length=32, index=True)


class TaskRunRow(SQLModel, table=True):
    __tablename__ = "task_runs"
    __table_args__ = (UniqueConstraint("run_id", "key", name="uq_task_runs_run_key"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", max_length=32)
    key: str = Field(max_length=300)
    task_name: str = Field(max_length=200)
    state: str = Field(max_length=20)
    attempts: int = 1
    result: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    result_preview: str | None = None
    error: str | None = None
    started_at: datetime = _utc_column()
    ended_at: datetime | None = _utc_column(nullable=True)
    #: the pause and task calls made inside the task (``{"pauses": 1, "tasks": {"x": 2}}``;
    #: null: none): a re-run that reuses the task's result counts them as made, so that the
    #: calls after it get the keys they had
    inner_calls: Any = Field(default=None, sa_column=Column(JSON, nullable=True))


class PauseRow(SQLModel, table=True):
    __tablename__ = "pauses"
    __table_args__ = (
        UniqueConstraint("run_id", "key", name="uq_pauses_run_key"),
        # Waiting pauses only (migration 0012 says why). The timers' two name in their
        # condition what only the timers' sweeps ask, so no lookup of a run can use them.
        Index("ix_pauses_waiting_run", "run_id", "id", **_where(WAITING_ONLY)),
        Index(
            "ix_pauses_waiting_deadline",
            "deadline",
            **_where(f"{WAITING_ONLY} AND deadline IS NOT NULL"),
        ),
        Index(
            "ix_pauses_waiting_escalate",
            "escalate_at",
            **_where(f"{WAITING_ONLY} AND escalate_at IS NOT NULL AND escalated_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", max_length=32)
    key: str = Field(max_length=200)
    suspend: bool = False
    status: str = Field(max_length=20)
    input_schema: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    title: str | None = Field(default=None, max_length=200)
    description: str | None = None
    initial: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    approvers: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    forbid_starter: bool = False
    created_at: datetime = _utc_column()
    deadline: datetime | None = _utc_column(nullable=True)
    response: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    responder: str | None = Field(default=None, max_length=200)
    answered_at: datetime | None = _utc_column(nullable=True)
    errors: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    #: how many different people must answer
    quorum: int = 1
    #: a bool field of the input: an answer with it false ends a quorum at once
    veto: str | None = Field(default=None, max_length=200)
    #: the answers so far: [{"responder", "name", "via", "input", "at"}]
    answers: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    escalate_at: datetime | None = _utc_column(nullable=True)
    escalate_to: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    escalated_at: datetime | None = _utc_column(nullable=True)
    #: "channel" (the run's thread) or "dm" (also each approver directly)
    notify: str = Field(default="channel", max_length=20)
    #: the person answering confirms before the answer counts
    confirm: bool = False
    #: [{"from", "to", "at"}]
    delegations: Any = Field(default=None, sa_column=Column(JSON, nullable=True))


class AuditRow(SQLModel, table=True):
    """One record of the audit trail. Never updated or deleted; ``seq`` has no gaps."""

    __tablename__ = "audit_records"
    __table_args__ = (
        Index("ix_audit_records_run_seq", "run_id", "seq"),
        Index("ix_audit_records_actor_seq", "actor_id", "seq"),
    )

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    at: datetime = _utc_column(index=True)
    action: str = Field(max_length=40)
    run_id: str | None = Field(default=None, max_length=32)
    flow_name: str | None = Field(default=None, max_length=200, index=True)
    actor_id: str | None = Field(default=None, max_length=200)
    actor_name: str | None = Field(default=None, max_length=200)
    via: str | None = Field(default=None, max_length=10)
    key: str | None = Field(default=None, max_length=200)
    data: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class LogRow(SQLModel, table=True):
    __tablename__ = "logs"

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", index=True, max_length=32)
    task_key: str | None = Field(default=None, max_length=300)
    level: str = Field(max_length=10)
    message: str
    at: datetime = _utc_column()


class EventRow(SQLModel, table=True):
    __tablename__ = "events"

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    run_id: str = Field(index=True, max_length=32)
    kind: str = Field(max_length=40)
    data: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    at: datetime = _utc_column()


class ProcessRow(SQLModel, table=True):
    """A live engine process that may own runs; its heartbeat proves it is alive."""

    __tablename__ = "processes"

    id: str = Field(primary_key=True, max_length=64)
    hostname: str = Field(max_length=255)
    pid: int
    started_at: datetime = _utc_column()
    heartbeat_at: datetime = _utc_column()
    #: how long without a heartbeat before this process counts as gone, as it declared when
    #: it registered (replicas may beat at different rates); None in a row stored before
    #: processes declared it, which each observer judges by its own owner timeout
    owner_timeout_seconds: float | None = None


class CursorRow(SQLModel, table=True):
    """How far a named consumer has read the events table, and who holds it."""

    __tablename__ = "event_cursors"

    consumer: str = Field(primary_key=True, max_length=100)
    position: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = _utc_column(nullable=True)
    #: the backlog of a consumer made with one: the questions (``WAITING_FOR_INPUT``) of
    #: the pauses that waited when it was made, events up to ``backlog_until``, delivered
    #: before the events after ``position``; ``backlog_after``: how far it got. Both NULL
    #: once caught up (or when made without one).
    backlog_after: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    backlog_until: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class MetadataRow(SQLModel, table=True):
    """Small JSON values that applications attach to a run (e.g. where its Slack message is)."""

    __tablename__ = "run_metadata"

    run_id: str = Field(foreign_key="runs.id", primary_key=True, max_length=32)
    key: str = Field(primary_key=True, max_length=300)
    value: Any = Field(default=None, sa_column=Column(JSON, nullable=True))


class OnceKeyRow(SQLModel, table=True):
    """A key claimed once until it expires (e.g. a request already handled by a replica)."""

    __tablename__ = "once_keys"

    key: str = Field(primary_key=True, max_length=200)
    expires_at: datetime = _utc_column(index=True)
