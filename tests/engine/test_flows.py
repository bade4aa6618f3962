"""Flows and tasks: names, parameters, records, logs."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from signoff.engine import (
    Engine,
    InvalidParameters,
    MissingContext,
    RunState,
    flow,
    get_run_logger,
    task,
)


@task
def double(x: int) -> int:
    get_run_logger().info("doubling %s", x)
    return x * 2


@task
async def triple(x: int) -> int:
    return x * 3


def test_flow_names_default_from_the_function(engine: Engine) -> None:
    @flow
    def get_shirt_order() -> None: ...

    @flow(name="custom")
    def other() -> None: ...

    assert (get_shirt_order.name, other.name) == ("get-shirt-order", "custom")


def test_sync_flow_records_parameters_states_tasks_and_logs(engine: Engine) -> None:
    @flow
    def compute(n: int, label: str = "x") -> int:
        get_run_logger().info("start %s", label)
        return double(n) + double(n + 1)

    assert compute("4") == 18  # "4" is coerced from the type hint
    detail = engine.detail(engine.list_runs()[0].id)
    assert detail.run.parameters == {"n": 4, "label": "x"}
    assert detail.run.result == "18"
    assert [h.state for h in detail.history] == [RunState.RUNNING, RunState.COMPLETED]
    assert [(t.key, t.result) for t in detail.tasks] == [("double-1", "8"), ("double-2", "10")]
    assert [(log.task_key, log.message) for log in detail.logs] == [
        (None, "start x"),
        ("double-1", "doubling 4"),
        ("double-2", "doubling 5"),
    ]


def test_async_flow_with_async_and_sync_tasks(engine: Engine) -> None:
    @flow
    async def mixed(n: int) -> int:
        return await triple(n) + double(n)

    assert asyncio.run(mixed(2)) == 10
    assert [t.key for t in engine.detail(engine.list_runs()[0].id).tasks] == [
        "triple-1",
        "double-1",
    ]


def test_bad_parameters_name_the_field_and_record_nothing(engine: Engine) -> None:
    @flow
    def typed(n: int) -> None: ...

    with pytest.raises(InvalidParameters, match="invalid parameters for flow 'typed': n: "):
        typed("abc")
    with pytest.raises(InvalidParameters) as missing:
        typed()
    assert str(missing.value) == (
        "invalid parameters for flow 'typed': missing a required argument: 'n'"
    )
    with pytest.raises(InvalidParameters) as prefects:
        typed(1, return_state=True)
    assert str(prefects.value) == (
        "invalid parameters for flow 'typed': got an unexpected keyword argument "
        "'return_state': return_state is Prefect's; calling a Signoff flow returns its "
        "result or raises its error (its run's state is stored: signoff runs show)"
    )
    assert engine.list_runs() == []


def test_failed_flow_records_the_error(engine: Engine) -> None:
    @flow
    def boom() -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        boom()
    run = engine.list_runs()[0]
    assert (run.state, run.state_message) == (RunState.FAILED, "RuntimeError: disk full")


def test_a_log_call_whose_arguments_do_not_fit_is_kept_not_fatal(engine: Engine) -> None:
    @flow(name="loose-logs")
    def loose() -> str:
        log = get_run_logger()
        log.info("got %s", 1, 2)  # noqa: PLE1205 - one too many: logging goes on, so do we
        log.info("%(who)s approved", {"who": "bob"})  # one mapping, as logging takes it
        log.warning("x" * 100_010)
        return "done"

    assert loose() == "done"
    (run,) = engine.list_runs(flow_name="loose-logs")
    first, mapped, long = [entry.message for entry in engine.detail(run.id).logs]
    assert first.startswith("got %s (1, 2) (the arguments do not fit the message: not all")
    assert mapped == "bob approved"
    assert long == "x" * 100_000 + "… (10 characters more)"


def test_a_log_argument_that_cannot_be_shown_is_kept_not_fatal(engine: Engine) -> None:
    """An argument whose __repr__ raises failed the run: the fallback for a call that
    cannot be formatted called it again. ``logging`` reports such a call and goes on."""

    class Opaque:
        def __repr__(self) -> str:
            raise RuntimeError("repr broken")

    @flow(name="opaque-logs")
    def opaque() -> str:
        get_run_logger().info("deploying %r to %s", Opaque(), "eu")
        return "done"

    assert opaque() == "done"
    (run,) = engine.list_runs(flow_name="opaque-logs")
    assert run.state is RunState.COMPLETED
    (line,) = [entry.message for entry in engine.detail(run.id).logs]
    assert line == (
        "deploying %r to %s (<Opaque that cannot be shown: repr broken>, 'eu') "
        "(the arguments do not fit the message: repr broken)"
    )


def test_a_logged_exception_keeps_its_traceback_with_the_run(engine: Engine) -> None:
    """``log.exception(...)`` stores the traceback after the message, as Prefect's run logs
    (and any logging handler) show it; the message alone would not say what went wrong."""

    @task
    def lookup() -> None:
        try:
            {}["region"]
        except KeyError:
            get_run_logger().exception("lookup failed for %s", "eu")

    @flow(name="logs-exceptions")
    def logs_exceptions() -> str:
        lookup()
        log = get_run_logger()
        try:
            raise ValueError("bad version")
        except ValueError as exc:
            log.error("as an exception", exc_info=exc)
        log.error("no exception being handled", exc_info=True)
        return "done"

    assert logs_exceptions() == "done"
    (run,) = engine.list_runs(flow_name="logs-exceptions")
    in_task, given, nothing = [entry.message for entry in engine.detail(run.id).logs]
    assert in_task.startswith("lookup failed for eu\nTraceback (most recent call last):\n")
    assert in_task.endswith("\nKeyError: 'region'")
    assert given.startswith("as an exception\nTraceback (most recent call last):\n")
    assert given.endswith("\nValueError: bad version")
    assert nothing == "no exception being handled"


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message today")


def test_a_failure_is_recorded_and_raised_as_it_was_whatever_its_message(
    engine: Engine,
) -> None:
    @task
    def unprintable() -> None:
        raise Unprintable()

    @flow(name="fails-oddly")
    def oddly(long: bool) -> None:
        if long:
            raise ValueError("x" * 20_000)
        unprintable()

    with pytest.raises(Unprintable):  # the flow's own error, not one from recording it
        oddly(False)
    with pytest.raises(ValueError):
        oddly(True)
    runs = {r.parameters["long"]: r for r in engine.list_runs(flow_name="fails-oddly")}
    short, long = runs[False], runs[True]
    assert (
        short.state_message
        == "Unprintable: (its message cannot be shown: RuntimeError: no message today)"
    )
    assert engine.detail(short.id).tasks[0].error == short.state_message
    assert long.state_message == "ValueError: " + "x" * 9_988 + "… (10,012 characters more)"


def test_a_task_called_with_arguments_it_cannot_take_fails_at_once(engine: Engine) -> None:
    """Not retried (it could only fail the same way) nor recorded as a task run, as
    Prefect binds a call's parameters before it makes a task run; Prefect's call options
    say what to do instead."""
    attempts: list[int] = []

    @task(retries=3)
    def add(x: int) -> int:
        attempts.append(x)
        return x + 1

    @task(retries=3)
    async def add_later(x: int) -> int:
        attempts.append(x)
        return x + 1

    @flow(name="bad-task-calls")
    def bad_task_calls(how: str) -> int:
        if how == "too many":
            return add(1, 2)  # type: ignore[call-arg]
        if how == "async":
            return asyncio.run(add_later(y=1))  # type: ignore[call-arg]
        return add(1, return_state=True)  # type: ignore[call-arg]

    with pytest.raises(TypeError) as too_many:
        bad_task_calls("too many")
    assert (
        str(too_many.value)
        == "task 'add' cannot take these arguments: too many positional arguments"
    )
    with pytest.raises(TypeError, match=r"^task 'add-later' cannot take these arguments: "):
        bad_task_calls("async")
    with pytest.raises(TypeError) as prefects:
        bad_task_calls("return state")
    assert str(prefects.value) == (
        "task 'add': return_state is Prefect's; calling a Signoff task returns its result or "
        "raises its error (its state is stored with the run: signoff runs show)"
    )
    assert attempts == []
    for run in engine.list_runs(flow_name="bad-task-calls"):
        assert run.state is RunState.FAILED
        assert engine.detail(run.id).tasks == ()  # no task run, so no retries either


def test_retry_options_take_what_prefect_takes_and_refuse_the_rest_by_name(
    engine: Engine,
) -> None:
    """``retries=None`` (Prefect's default) and a list of delays failed at decoration with
    "'<' not supported between ..."; a NaN delay replaced the task's own error with
    time.sleep's, and a huge one failed at the first retry."""
    failures = [ValueError("flaky"), ValueError("flaky again")]

    @task(retries=None, retry_delay_seconds=None)
    def plain() -> int:
        return 1

    @task(retries=3, retry_delay_seconds=[0, 0.0])
    def flaky() -> str:
        if failures:
            raise failures.pop(0)
        return "built"

    @flow(name="listed-delays")
    def listed_delays() -> str:
        return f"{plain()} {flaky()}"

    assert (plain.retries, plain.retry_delays) == (0, ())
    assert flaky.retry_delays == (0.0, 0.0)
    assert listed_delays() == "1 built"
    (run,) = engine.list_runs(flow_name="listed-delays")
    assert [t.attempts for t in engine.detail(run.id).tasks] == [1, 3]
    # As Prefect's exponential_backoff does: a function of retries gives the list.
    backoff = task(retries=3, retry_delay_seconds=lambda n: [2**i for i in range(n)])(plain.fn)
    assert backoff.retry_delays == (1.0, 2.0, 4.0)

    def build() -> None: ...

    refused = {
        (TypeError, "retries is a whole number, not '2'"): {"retries": "2"},
        (TypeError, "retries is a whole number, not True"): {"retries": True},
        (ValueError, "retries must not be negative, not -1"): {"retries": -1},
        (
            TypeError,
            "retry_delay_seconds is seconds (a number, a list of them, or a function "
            "giving that list), not '1'",
        ): {"retries": 1, "retry_delay_seconds": "1"},
        (ValueError, "a retry delay is between 0 and 31,622,400 seconds (a year), not nan"): {
            "retries": 1,
            "retry_delay_seconds": float("nan"),
        },
        (ValueError, "not 1e+300"): {"retries": 1, "retry_delay_seconds": [1, 1e300]},
        (ValueError, "retry_delay_seconds lists 51 delays; at most 50"): {
            "retry_delay_seconds": [1] * 51
        },
    }
    for (error, message), options in refused.items():
        with pytest.raises(error) as caught:
            task(**options)(build)
        assert str(caught.value).startswith("task 'build': "), options
        assert message in str(caught.value), options


def test_tasks_outside_flows_are_plain_calls_that_may_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """As a Prefect task called outside a flow, one that logs can be called to try it."""

    @task
    def inc(x: int) -> int:
        return x + 1

    @task
    async def noted(x: int) -> int:
        get_run_logger().warning("noting %s", x)
        return x

    assert inc(1) == 2
    with caplog.at_level("INFO", logger="signoff.engine.flow_runs"):
        assert double(3) == 6
        assert asyncio.run(noted(4)) == 4
    assert [(r.getMessage(), getattr(r, "task", None)) for r in caplog.records] == [
        ("doubling 3", "double"),
        ("noting 4", "noted"),
    ]
    with pytest.raises(MissingContext, match=r"^get_run_logger\(\) can only be called inside a "):
        get_run_logger()


def test_prefects_task_and_flow_members_say_what_to_do_instead() -> None:
    @flow
    def plain() -> None: ...

    with pytest.raises(AttributeError) as submit:
        double.submit(1)
    assert str(submit.value) == (
        "Task.submit is Prefect's: call the task itself; an async task's calls run "
        "concurrently under asyncio.gather"
    )
    with pytest.raises(AttributeError, match=r"^Task\.map is Prefect's: call the task itself"):
        double.map([1, 2])
    with pytest.raises(AttributeError, match=r"^Flow\.serve is Prefect's: Signoff's workers"):
        plain.serve()
    with pytest.raises(AttributeError, match="^'Task' object has no attribute 'nothing'$"):
        double.nothing  # noqa: B018
    assert not hasattr(plain, "deploy") and hasattr(plain, "fn")


@flow(name="future-annotations")
def future_annotations(when: dt.datetime, count: int = 1) -> str:
    return f"{when.isoformat()} x{count}"


def test_a_flow_in_a_module_with_postponed_annotations_takes_its_parameters_by_type() -> None:
    """This module has ``from __future__ import annotations``: the hints are strings naming
    what this module imports (``dt``), read in this module, not in the engine's."""
    given = future_annotations.validate_parameters({"when": "2026-01-02T03:04:05Z"})
    assert given == {"when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "count": 1}
    schema = future_annotations.parameters_schema()
    assert schema is not None and schema["properties"]["when"]["format"] == "date-time"
    with pytest.raises(InvalidParameters, match="when"):
        future_annotations.validate_parameters({"when": "soon"})


@flow(name="bytes-default")
def bytes_default(blob: bytes = b"\xff") -> int:
    return len(blob)


def test_a_default_json_cannot_show_is_left_out_of_the_schema_without_a_warning(
    recwarn: pytest.WarningsRecorder,
) -> None:
    schema = bytes_default.parameters_schema()
    assert schema is not None and "default" not in schema["properties"]["blob"]
    assert not [w for w in recwarn if "PydanticJsonSchemaWarning" in w.category.__name__]


def test_prefects_flow_options_signoff_lacks_are_named_as_not_supported() -> None:
    def body() -> None: ...

    for option, value, why in [
        ("retries", 1, "flow retries are not implemented yet"),
        ("timeout_seconds", 60, "flow timeouts are not implemented yet"),
        ("log_prints", True, "print\\(\\) is not captured; log with get_run_logger\\(\\)"),
    ]:
        with pytest.raises(TypeError, match=f"^@flow\\({option}=...\\) is not supported: {why}"):
            flow(**{option: value})(body)
    with pytest.raises(TypeError, match="unexpected keyword argument 'aprovers'"):
        flow(aprovers=["U0BOB"])(body)  # a typo is not a Prefect option


def test_prefects_task_options_signoff_lacks_are_named_as_not_supported() -> None:
    # As for @flow: "task() got an unexpected keyword argument 'log_prints'" read as a typo.
    for option, value, why in [
        ("log_prints", True, "print\\(\\) is not captured; log with get_run_logger\\(\\)"),
        ("persist_result", True, "a task's result is always stored"),
        ("cache_key_fn", None, "a task's result is always stored"),
        ("timeout_seconds", 5, "task timeouts are not implemented yet"),
        ("tags", ["db"], "Signoff's tasks do not have this Prefect option"),
    ]:
        with pytest.raises(TypeError, match=f"^@task\\({option}=...\\) is not supported: {why}"):
            task(**{option: value})
    with pytest.raises(TypeError, match="unexpected keyword argument 'retires'"):
        task(retires=2)  # a typo is not a Prefect option
