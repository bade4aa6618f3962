"""The public API is deliberate: adding or removing a name must change this test."""

from __future__ import annotations

import signoff.bot.sandbox.web
import signoff.engine
import signoff.engine.input


def test_engine_exports() -> None:
    assert sorted(signoff.engine.__all__) == signoff.engine.__all__
    assert signoff.engine.__all__ == [
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
    for name in signoff.engine.__all__:
        assert getattr(signoff.engine, name) is not None


def test_input_exports() -> None:
    assert signoff.engine.input.__all__ == [
        "AutomaticRunInput",
        "RunInput",
        "RunInputMetadata",
        "run_input_from_type",
    ]


def test_audit_exports() -> None:
    import signoff.engine.audit
    import signoff.engine.audit_export

    assert signoff.engine.audit.__all__ == [
        "GENESIS",
        "AuditAction",
        "AuditEntry",
        "AuditRecord",
        "ChainBreak",
        "Verification",
        "chain_hash",
        "describe",
        "entry_fields",
        "render_text",
        "verify",
        "written_with",
    ]
    assert signoff.engine.audit_export.__all__ == [
        "CSV_COLUMNS",
        "ExportRow",
        "export_csv",
        "export_jsonl",
        "write_csv",
        "write_jsonl",
    ]


def test_sandbox_page_exports() -> None:
    assert signoff.bot.sandbox.web.__all__ == [
        "LOOPBACK",
        "Place",
        "SandboxPage",
        "Surface",
        "render_blocks",
        "to_html",
    ]


def test_backends_exports() -> None:
    import signoff.bot.backends
    import signoff.bot.backends.embedded

    assert signoff.bot.backends.__all__ == [
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
    assert signoff.bot.backends.embedded.__all__ == ["EmbeddedBackend", "translated"]


def test_bot_errors_exports() -> None:
    import signoff.bot.errors

    assert signoff.bot.errors.__all__ == [
        "BackendBusy",
        "BackendError",
        "BackendUnavailable",
        "BotError",
        "ChannelUnreadable",
        "CredentialsRefused",
        "FlowUnknown",
        "JsonTooDeep",
        "MembersUnreadable",
        "ModalError",
        "NotPermitted",
        "ParametersInvalid",
        "PayloadError",
        "RunNotChangeable",
        "RunNotFound",
        "RunUnreadable",
        "SettingsError",
        "SlackUnreachable",
        "TamperedMetadata",
        "TokenRefused",
        "UnsupportedField",
    ]


def test_testing_exports() -> None:
    import signoff.bot.testing

    assert signoff.bot.testing.__all__ == [
        "RunningBot",
        "ServedBot",
        "form_errors",
        "outcome",
        "running_bot",
        "serving",
    ]


def test_signoff_is_the_engine_api_with_its_input_models() -> None:
    import signoff
    import signoff.engine.input

    assert signoff.__all__ == [
        *signoff.engine.__all__,
        "AutomaticRunInput",
        "RunInput",
        "__version__",
    ]
    assert signoff.flow is signoff.engine.flow
    assert signoff.RunInput is signoff.engine.input.RunInput
    assert signoff.__version__.count(".") >= 1
