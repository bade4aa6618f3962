"""Prefect's exceptions as code written for it catches and makes them (prefect-semantics.md
§1.2, §1.4): a second resume is a NotPausedError, and FlowPauseTimeout and NotPausedError
can be made from a message alone, as Prefect makes them."""

from __future__ import annotations

import pytest

from signoff.engine import (
    Actor,
    AlreadyAnswered,
    Engine,
    EngineError,
    FlowPauseTimeout,
    NotPausedError,
    PauseTimeout,
    RunNotWaiting,
    RunState,
    RunSuspended,
    flow,
    pause_flow_run,
    resume_flow_run,
    suspend_flow_run,
)
from tests.support.running import start, waiting


def test_a_second_resume_is_a_not_paused_error_naming_who_answered(engine: Engine) -> None:
    """Prefect: "If it is not paused: NotPausedError(...). A double resume also ends here." """

    @flow(name="resumed-twice")
    def resumed_twice() -> int:
        return suspend_flow_run(int)

    with pytest.raises(RunSuspended) as suspended:
        resumed_twice()
    run_id = suspended.value.run_id
    resume_flow_run(run_id, {"value": 1}, responder="alice")
    with pytest.raises(NotPausedError) as again:
        resume_flow_run(run_id, {"value": 2}, responder="bob")
    # Still the message that says who won, which the bot and the CLI show.
    assert str(again.value) == f"input '1' of run {run_id} was already answered by alice"
    assert isinstance(again.value, AlreadyAnswered)
    assert (again.value.run_id, again.value.key, again.value.responder) == (run_id, "1", "alice")
    assert engine.get_pause(run_id, "1").response == {"value": 1}  # the second changed nothing


def test_a_second_resume_of_a_pause_is_caught_as_prefect_code_catches_it(
    engine: Engine,
) -> None:
    @flow(name="paused-once")
    def paused_once() -> int:
        return pause_flow_run(int, timeout=60)

    thread, box = start(paused_once)
    pause = waiting(engine, "paused-once")
    resume_flow_run(pause.run_id, {"value": 1})
    outcome = "resumed twice"
    try:
        resume_flow_run(pause.run_id, {"value": 2})
    except NotPausedError as exc:  # as written for Prefect
        outcome = str(exc)
    thread.join(10)
    assert box == {"result": 1}
    assert outcome == f"input '1' of run {pause.run_id} was already answered by {Actor.python().id}"


def test_flow_pause_timeout_made_from_a_message_as_prefect_makes_it(engine: Engine) -> None:
    made = FlowPauseTimeout("Flow run was paused and never resumed.")
    assert str(made) == "Flow run was paused and never resumed."
    assert (made.run_id, made.key, made.timeout) == (None, None, None)
    assert str(FlowPauseTimeout()) == "Nobody answered the pause in time."
    # Signoff's own form is unchanged.
    own = PauseTimeout("r1", "approve", 60)
    assert str(own) == "run r1 waited for 60s for input 'approve' and nobody answered in time"
    assert (own.run_id, own.key, own.timeout) == ("r1", "approve", 60)

    def stand_in_pause(*_args: object, **_kwargs: object) -> int:
        # A test's stand-in for pause_flow_run, as code written for Prefect mocks it.
        raise FlowPauseTimeout("Flow run was paused and never resumed.")

    @flow(name="falls-back")
    def falls_back() -> str:
        try:
            return str(stand_in_pause(int, timeout=1))
        except FlowPauseTimeout as exc:
            return f"nobody answered: {exc}"

    assert falls_back() == "nobody answered: Flow run was paused and never resumed."

    @flow(name="lets-it-escape")
    def lets_it_escape() -> int:
        return stand_in_pause(int)

    with pytest.raises(FlowPauseTimeout):
        lets_it_escape()
    failed = engine.list_runs(flow_name="lets-it-escape")[0]
    assert (failed.state, failed.state_message) == (
        RunState.FAILED,
        "Flow run was paused and never resumed.",
    )


def test_not_paused_error_made_from_a_message_as_prefect_makes_it() -> None:
    made = NotPausedError("Cannot resume a run that isn't paused!")
    assert str(made) == "Cannot resume a run that isn't paused!"
    assert (made.run_id, made.state) == (None, None)
    assert isinstance(made, RunNotWaiting) and isinstance(made, EngineError)
    assert str(NotPausedError()) == "The run is not waiting for input."
    with pytest.raises(NotPausedError, match="isn't paused"):
        raise NotPausedError("Cannot resume a run that isn't paused!")
    own = RunNotWaiting("r1", "completed")
    assert str(own) == "run r1 is not waiting for input (it is completed)"
    assert (own.run_id, own.state) == ("r1", "completed")
