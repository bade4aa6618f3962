"""The backends the Slack side runs on, behind one interface (``Backend``).

- ``bot.backends.embedded.EmbeddedBackend``: Signoff's own engine.

The Slack side imports this package (the interface and its values) and never an
implementation; the CLI, the demo and ``bot.testing`` choose one. Errors are ``bot.errors``'
``BackendError`` tree.
"""

from __future__ import annotations

from signoff.bot.backends.interface import (
    LISTED_RECORDS,
    Backend,
    ChangeObserver,
    GroupDirectory,
    Watch,
)
from signoff.bot.backends.model import (
    JSON,
    SYSTEM,
    Accepted,
    Action,
    Actor,
    Answer,
    AuditRecord,
    BackendStats,
    ConsumerLag,
    Delegation,
    Denied,
    Event,
    EventKind,
    GivenAnswer,
    LogEntry,
    Pause,
    PauseStatus,
    Refusal,
    Refused,
    Run,
    RunDetail,
    RunState,
    Stale,
    StartForm,
    StateChange,
    TaskRun,
    Via,
)

__all__ = [
    "JSON",
    "LISTED_RECORDS",
    "SYSTEM",
    "Accepted",
    "Action",
    "Actor",
    "Answer",
    "AuditRecord",
    "Backend",
    "BackendStats",
    "ChangeObserver",
    "ConsumerLag",
    "Delegation",
    "Denied",
    "Event",
    "EventKind",
    "GivenAnswer",
    "GroupDirectory",
    "LogEntry",
    "Pause",
    "PauseStatus",
    "Refusal",
    "Refused",
    "Run",
    "RunDetail",
    "RunState",
    "Stale",
    "StartForm",
    "StateChange",
    "TaskRun",
    "Via",
    "Watch",
]
