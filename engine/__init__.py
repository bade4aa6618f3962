"""Signoff's embedded flow engine: flows and tasks that can wait for a person's input.

Example::

    from signoff.engine import flow, get_run_logger, pause_flow_run
    from signoff.engine.input import RunInput

    class Approval(RunInput):
        approved: bool

    @flow
    def deploy(version: str) -> None:
        answer = pause_flow_run(wait_for_input=Approval, timeout=600)
        get_run_logger().info("approved=%s", answer.approved)

The engine knows nothing of Slack: applications observe runs through ``RunObserver``
and act on them through ``Engine`` (or the module-level functions below).
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from signoff.engine.actors import Actor, GroupDirectory, Via
from signoff.engine.audit import AuditAction, AuditRecord, Verification
from signoff.engine.errors import (
    AlreadyAnswered,
    AlreadyWaiting,
    AuditRecordUnreadable,
    CannotSuspend,
    ConfigurationError,
    ConsumerInUse,
    ConsumerNotFound,
    DatabaseBusy,
    DatabaseNotFound,
    DatabaseUnavailable,
    DeliverLater,
    EngineError,
    FlowChanged,
    FlowImportError,
    FlowNotFound,
    FlowPauseTimeout,
    InputInvalid,
    InvalidParameters,
    InvalidTransition,
    LeaseLost,
    MissingContext,
    NotAllowed,
    NotAPerson,
    NotPausedError,
    NotSignoffDatabase,
    PauseExpired,
    PauseTimeout,
    ResponderNotAllowed,
    RunCancelled,
    RunNotFound,
    RunNotWaiting,
    RunSuspended,
    RunTakenOver,
    RunUnreadable,
    SchemaOutdated,
    SchemaRevisionLost,
    SchemaTooNew,
    StoreError,
    UnloadableValue,
    UnstorableValue,
)
from signoff.engine.events import DurableConsumer, RunObserver
from signoff.engine.permissions import Action, Refusal
from signoff.engine.quorum import Answered, Answers
from signoff.engine.redaction import hide_secrets
from signoff.engine.registry import find_flow, registered_flows
from signoff.engine.registry import load as load_flows
from signoff.engine.runs import (
    ConsumerLag,
    Delegation,
    EngineStats,
    Event,
    EventKind,
    GivenAnswer,
    LogEntry,
    Pause,
    PauseStatus,
    Run,
    RunDetail,
    RunState,
    StateChange,
    TaskRun,
    run_id_text,
)

if TYPE_CHECKING:
    from signoff.engine.flows import Flow, flow
    from signoff.engine.logs import get_run_logger
    from signoff.engine.pausing import (
        apause_flow_run,
        asuspend_flow_run,
        pause_flow_run,
        suspend_flow_run,
    )
    from signoff.engine.refusals import model_errors
    from signoff.engine.runtime import Engine, get_engine, set_engine
    from signoff.engine.schema import SchemaStatus, schema_status, upgrade_schema
    from signoff.engine.settings import EngineSettings
    from signoff.engine.tasks import Task, task
    from signoff.engine.validation import schema_errors
    from signoff.engine.workers import Worker

#: The names above that bring in the database layer, jsonschema or pydantic settings, by
#: the module that defines them. Each is imported when first used (PEP 562), so that what
#: needs none of them (the ``signoff`` command's start and ``--help``, code that only
#: catches the errors or reads a ``Run``) does not pay for them.
_LAZY = {
    "signoff.engine.flows": ("Flow", "flow"),
    "signoff.engine.logs": ("get_run_logger",),
    "signoff.engine.pausing": (
        "apause_flow_run",
        "asuspend_flow_run",
        "pause_flow_run",
        "suspend_flow_run",
    ),
    "signoff.engine.runtime": ("Engine", "get_engine", "set_engine"),
    "signoff.engine.schema": ("SchemaStatus", "schema_status", "upgrade_schema"),
    "signoff.engine.settings": ("EngineSettings",),
    "signoff.engine.tasks": ("Task", "task"),
    "signoff.engine.refusals": ("model_errors",),
    "signoff.engine.validation": ("schema_errors",),
    "signoff.engine.workers": ("Worker",),
}
_HOMES = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


def resume_flow_run(
    flow_run_id: str | uuid.UUID,
    run_input: Mapping[str, Any] | None = None,
    responder: str | Actor | None = None,
    *,
    key: str | None = None,
    responder_groups: Iterable[str] = (),
) -> Pause:
    """Answer the pause a run waits on, as ``responder`` (by default the login name of
    whoever runs this code, as a run started from Python is theirs); returns the answered
    pause.

    The input is checked against the JSON schema stored with the pause before anything
    is stored; when two answers race, exactly one wins. With ``key``, only that pause is
    answered (a stale form cannot answer a later question). ``flow_run_id`` is the run's
    id, a unique prefix of it, or (as Prefect takes it) a ``uuid.UUID``. Values may be
    Python's (a ``Decimal``, a ``date``, a ``UUID``, an enum member): each is checked and
    stored as its JSON text, as a form sends it.

    Example::

        resume_flow_run(run_id, {"size": "large", "color": "red"}, responder="alice")

    Raises:
        RunNotFound, RunNotWaiting, PauseExpired: there is nothing to answer.
        InputInvalid: the input breaks the schema; ``errors`` names each field.
        AlreadyAnswered: someone answered first; it names them. (Also a
            ``RunNotWaiting``, as Prefect's second resume is a ``NotPausedError``.)
        ResponderNotAllowed: ``responder`` may not answer this pause (recorded in the
            audit trail, like every answer).
        NotAPerson: ``responder`` is a user group's id (``S0SRE``): a person answers,
            and a group among the approvers counts through its members.
        TypeError: ``run_input`` is no mapping of names, or holds a value with no JSON
            form (an arbitrary object).
    """
    from signoff.engine.runtime import get_engine

    return get_engine().resume(
        run_id_text(flow_run_id),
        run_input,
        responder,
        key=key,
        responder_groups=responder_groups,
    )


async def aresume_flow_run(
    flow_run_id: str | uuid.UUID,
    run_input: Mapping[str, Any] | None = None,
    responder: str | Actor | None = None,
    *,
    key: str | None = None,
    responder_groups: Iterable[str] = (),
) -> Pause:
    """``resume_flow_run`` as a coroutine; the database work runs off the event loop.

    (``await resume_flow_run(...)`` works too: the pause it returns may be awaited.)
    """
    import asyncio  # here: it takes longer to import than the rest of this module

    return await asyncio.to_thread(
        resume_flow_run,
        flow_run_id,
        run_input,
        responder,
        key=key,
        responder_groups=responder_groups,
    )


def cancel_flow_run(flow_run_id: str | uuid.UUID, by: str | Actor | None = None) -> Run:
    """Cancel a run that has not finished; a paused flow stops where it waits.

    Raises:
        NotAllowed: ``by`` may not cancel it (see ``engine.permissions``).
        NotAPerson: ``by`` is a user group's id.
    """
    from signoff.engine.runtime import get_engine

    return get_engine().cancel(flow_run_id, by)


__all__ = [
    "Action",
    "Actor",
    "AlreadyAnswered",
    "AlreadyWaiting",
    "Answered",
    "Answers",
    "AuditAction",
    "AuditRecord",
    "AuditRecordUnreadable",
    "CannotSuspend",
    "ConfigurationError",
    "ConsumerInUse",
    "ConsumerLag",
    "ConsumerNotFound",
    "DatabaseBusy",
    "DatabaseNotFound",
    "DatabaseUnavailable",
    "Delegation",
    "DeliverLater",
    "DurableConsumer",
    "Engine",
    "EngineError",
    "EngineSettings",
    "EngineStats",
    "Event",
    "EventKind",
    "Flow",
    "FlowChanged",
    "FlowImportError",
    "FlowNotFound",
    "FlowPauseTimeout",
    "GivenAnswer",
    "GroupDirectory",
    "InputInvalid",
    "InvalidParameters",
    "InvalidTransition",
    "LeaseLost",
    "LogEntry",
    "MissingContext",
    "NotAPerson",
    "NotAllowed",
    "NotPausedError",
    "NotSignoffDatabase",
    "Pause",
    "PauseExpired",
    "PauseStatus",
    "PauseTimeout",
    "Refusal",
    "ResponderNotAllowed",
    "Run",
    "RunCancelled",
    "RunDetail",
    "RunNotFound",
    "RunNotWaiting",
    "RunObserver",
    "RunState",
    "RunSuspended",
    "RunTakenOver",
    "RunUnreadable",
    "SchemaOutdated",
    "SchemaRevisionLost",
    "SchemaStatus",
    "SchemaTooNew",
    "StateChange",
    "StoreError",
    "Task",
    "TaskRun",
    "UnloadableValue",
    "UnstorableValue",
    "Verification",
    "Via",
    "Worker",
    "apause_flow_run",
    "aresume_flow_run",
    "asuspend_flow_run",
    "cancel_flow_run",
    "find_flow",
    "flow",
    "get_engine",
    "get_run_logger",
    "hide_secrets",
    "load_flows",
    "model_errors",
    "pause_flow_run",
    "registered_flows",
    "resume_flow_run",
    "schema_errors",
    "schema_status",
    "set_engine",
    "suspend_flow_run",
    "task",
    "upgrade_schema",
]

if __name__ == "engine":  # the reference examples' short name: be signoff.engine itself
    from signoff import short_names

    short_names.take("engine")
