"""The public API is deliberate: adding or removing a name must change this test."""

from __future__ import annotations

import engine
import engine.input


def test_engine_exports() -> None:
    assert sorted(engine.__all__) == engine.__all__
    assert engine.__all__ == [
        "AlreadyAnswered",
        "ConfigurationError",
        "DurableConsumer",
        "Engine",
        "EngineError",
        "EngineSettings",
        "Event",
        "EventKind",
        "Flow",
        "FlowImportError",
        "FlowNotFound",
        "FlowPauseTimeout",
        "InputInvalid",
        "InvalidParameters",
        "InvalidTransition",
        "LogEntry",
        "MissingContext",
        "Pause",
        "PauseExpired",
        "PauseStatus",
        "PauseTimeout",
        "ResponderNotAllowed",
        "Run",
        "RunCancelled",
        "RunDetail",
        "RunNotFound",
        "RunNotWaiting",
        "RunObserver",
        "RunState",
        "RunSuspended",
        "StateChange",
        "StoreError",
        "Task",
        "TaskRun",
        "UnstorableValue",
        "Worker",
        "cancel_flow_run",
        "flow",
        "get_engine",
        "get_run_logger",
        "load_flows",
        "model_errors",
        "pause_flow_run",
        "resume_flow_run",
        "schema_errors",
        "set_engine",
        "suspend_flow_run",
        "task",
    ]
    for name in engine.__all__:
        assert getattr(engine, name) is not None


def test_input_exports() -> None:
    assert engine.input.__all__ == ["AutomaticRunInput", "RunInput", "run_input_from_type"]
