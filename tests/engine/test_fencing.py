"""A run's execution writes only while the run is still its own: a run cancelled while its
flow runs stays cancelled, a run another process took over is left to that process, and a
run waits on one pause at a time."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import text

from signoff.engine import (
    AlreadyWaiting,
    Engine,
    RunCancelled,
    RunNotWaiting,
    RunState,
    RunTakenOver,
    Worker,
    cancel_flow_run,
    flow,
    pause_flow_run,
    resume_flow_run,
    suspend_flow_run,
    task,
)
from signoff.engine.heard import Heard
from tests.engine.test_pause import start, waiting
from tests.support.waiting import wait_for

pytestmark = pytest.mark.usefixtures("tasks_left_on_closed_loops_collected")

GO = threading.Event()


@flow(name="cancelled-then-pauses")
def cancelled_then_pauses() -> int:
    GO.wait(10)
    return pause_flow_run(int, timeout=None)


@flow(name="cancelled-then-suspends")
def cancelled_then_suspends() -> int:
    GO.wait(10)
    return suspend_flow_run(int)


@flow(name="taken-over-then-pauses")
def taken_over_then_pauses() -> int:
    GO.wait(10)
    return pause_flow_run(int, timeout=None)


@flow(name="taken-over-then-completes")
def taken_over_then_completes() -> str:
    GO.wait(10)
    return "done here"


REFUSED = threading.Event()


async def pause_or_refusal(key: str) -> object:
    try:
        return await pause_flow_run(int, key=key, timeout=None)
    except AlreadyWaiting as exc:
        REFUSED.set()
        return exc


@flow(name="two-pauses-at-once")
async def two_pauses_at_once() -> list[object]:
    return list(await asyncio.gather(pause_or_refusal("first"), pause_or_refusal("second")))


@pytest.fixture(autouse=True)
def closed_gate() -> None:
    GO.clear()
    REFUSED.clear()


def running(engine: Engine, flow_name: str) -> str:
    return wait_for(
        lambda: next(iter(engine.list_runs([RunState.RUNNING], flow_name=flow_name)), None),
        what=f"a running run of {flow_name}",
    ).id


@pytest.mark.parametrize("called", [cancelled_then_pauses, cancelled_then_suspends])
def test_a_run_cancelled_while_its_flow_runs_is_not_paused_by_it_afterwards(
    engine: Engine, called: Callable[[], int]
) -> None:
    thread, box = start(called)
    run_id = running(engine, called.name)  # type: ignore[attr-defined]
    cancel_flow_run(run_id, by="U0ALICE")
    GO.set()
    thread.join(10)
    assert isinstance(box.get("error"), RunCancelled)
    assert engine.get_run(run_id).state is RunState.CANCELLED
    assert engine.waiting_pause(run_id) is None
    assert not engine.list_runs([RunState.PAUSED, RunState.SUSPENDED])
    with pytest.raises(RunNotWaiting, match="cancelled"):
        resume_flow_run(run_id, {"value": 1})


def take_over(other: Engine, run_id: str) -> None:
    """What a worker does to a run whose process it took for dead (it stopped beating)."""
    assert other.store.transition(
        run_id, RunState.RUNNING, "Running", expect=(RunState.RUNNING,), owner=other.process_id
    )


def test_a_process_taken_for_dead_does_not_pause_a_run_another_process_took_over(
    engine: Engine, make_engine: Callable[..., Engine]
) -> None:
    other = make_engine()
    thread, box = start(taken_over_then_pauses)
    run_id = running(engine, "taken-over-then-pauses")
    take_over(other, run_id)
    GO.set()
    thread.join(10)
    assert isinstance(box.get("error"), RunTakenOver)
    assert "run by another process" in str(box["error"])
    run = other.get_run(run_id)
    assert (run.state, run.owner) == (RunState.RUNNING, other.process_id)
    assert other.waiting_pause(run_id) is None


def test_a_process_taken_for_dead_does_not_complete_a_run_another_process_took_over(
    engine: Engine, make_engine: Callable[..., Engine], caplog: pytest.LogCaptureFixture
) -> None:
    other = make_engine()
    thread, box = start(taken_over_then_completes)
    run_id = running(engine, "taken-over-then-completes")
    take_over(other, run_id)
    with caplog.at_level(logging.WARNING, logger="signoff.engine.runner"):
        GO.set()
        thread.join(10)
    assert box == {"result": "done here"}  # the caller holds what its own call returned
    run = other.get_run(run_id)
    assert (run.state, run.owner, run.result) == (RunState.RUNNING, other.process_id, None)
    dropped = [r for r in caplog.records if getattr(r, "action", None) == "run_outcome_dropped"]
    assert [(r.run_id, r.outcome) for r in dropped] == [(run_id, "completed")]  # type: ignore[attr-defined]


AFTER_THE_ANSWER: list[int] = []


@flow(name="taken-over-while-paused")
def taken_over_while_paused() -> int:
    value = pause_flow_run(int, timeout=None)
    AFTER_THE_ANSWER.append(value)  # stands for a deploy: it must happen once
    return value


def paused_then_taken_over(engine: Engine, other: Engine) -> tuple[threading.Thread, dict, str]:
    """A flow paused in ``engine``'s process, which ``other`` took for dead while it was
    paused (as a worker does when heartbeats stop, in an outage of the database)."""
    AFTER_THE_ANSWER.clear()
    thread, box = start(taken_over_while_paused)
    run_id = waiting(engine, "taken-over-while-paused").run_id
    assert other.store.transition(
        run_id, RunState.SUSPENDED, "Suspended", expect=(RunState.PAUSED,), owner=None
    )
    return thread, box, run_id


@pytest.mark.parametrize("where", ["here", "elsewhere"])
def test_a_flow_taken_for_dead_while_paused_does_not_go_on_when_answered(
    engine: Engine, make_engine: Callable[..., Engine], where: str
) -> None:
    other = make_engine()
    other.claim_ownership()
    thread, box, run_id = paused_then_taken_over(engine, other)
    (engine if where == "here" else other).resume(run_id, {"value": 7}, "alice")
    thread.join(10)
    assert isinstance(box.get("error"), RunTakenOver)
    # Answered as a suspended run: the run is queued to run again, in one process only.
    assert AFTER_THE_ANSWER == []
    run = other.get_run(run_id)
    assert (run.state, run.owner) == (RunState.SCHEDULED, None)


def test_a_flow_taken_for_dead_does_not_take_the_answer_meant_for_the_new_owner(
    engine: Engine, make_engine: Callable[..., Engine]
) -> None:
    other = make_engine()
    other.claim_ownership()
    thread, box, run_id = paused_then_taken_over(engine, other)
    # The new owner ran the flow again, and it waits at the same pause, in that process.
    assert other.store.transition(
        run_id,
        RunState.PAUSED,
        "Paused",
        expect=(RunState.SUSPENDED,),
        owner=other.process_id,
    )
    other.resume(run_id, {"value": 7}, "alice")
    thread.join(10)
    assert isinstance(box.get("error"), RunTakenOver)
    assert AFTER_THE_ANSWER == []
    run = other.get_run(run_id)
    assert (run.state, run.owner) == (RunState.RUNNING, other.process_id)


@flow(name="taken-over-while-paused-async")
async def taken_over_while_paused_async() -> int:
    value = await pause_flow_run(int, timeout=None)
    AFTER_THE_ANSWER.append(value)  # stands for a deploy: it must happen once
    await asyncio.to_thread(GO.wait, 10)  # the run stays RUNNING until the test has looked
    return value


def test_a_flow_stalled_while_paused_stops_when_its_own_process_runs_the_run_again(
    engine: Engine, make_engine: Callable[..., Engine]
) -> None:
    # The process stood still (SIGSTOP, a long GC pause) while its flow was paused: another
    # process took it for dead and answered, queueing the run to run again, and this very
    # process's worker claimed it. The run's owner is this process again, but the stalled
    # flow's answer was meant for the re-run: it stops, and the rest of the flow runs once.
    AFTER_THE_ANSWER.clear()
    other = make_engine()
    other.claim_ownership()
    loop = asyncio.new_event_loop()
    thread, box = start(loop.run_until_complete, taken_over_while_paused_async())
    run_id = waiting(engine, "taken-over-while-paused-async").run_id
    stalled, revive = threading.Event(), threading.Event()
    loop.call_soon_threadsafe(lambda: (stalled.set(), revive.wait(10)))
    worker = Worker(engine)
    try:
        assert stalled.wait(10)
        assert other.store.transition(
            run_id, RunState.SUSPENDED, "Suspended", expect=(RunState.PAUSED,), owner=None
        )
        other.resume(run_id, {"value": 7}, "alice")
        worker.start()
        wait_for(lambda: AFTER_THE_ANSWER, what="the re-run past the pause")
        revive.set()
        wait_for(
            lambda: not thread.is_alive() or len(AFTER_THE_ANSWER) > 1,
            what="the stalled flow to stop, or to go on",
        )
        GO.set()
        thread.join(10)
        wait_for(lambda: engine.get_run(run_id).state.is_final, what="the re-run to end the run")
    finally:
        GO.set()
        revive.set()
        worker.stop()
        thread.join(10)
        loop.close()
    assert AFTER_THE_ANSWER == [7]
    assert isinstance(box.get("error"), RunTakenOver)
    run = engine.get_run(run_id)
    assert (run.state, run.result) == (RunState.COMPLETED, "7")


DEPLOYS: list[str] = []


@task
def deploy_step() -> str:
    DEPLOYS.append("deployed")  # a side effect that must happen once
    return "deployed"


@flow(name="missed-heartbeats-then-runs-a-task")
def missed_heartbeats_then_runs_a_task() -> str:
    GO.wait(10)
    return deploy_step()


@pytest.mark.parametrize("taken_over", [True, False])
def test_a_process_that_missed_heartbeats_runs_no_task_of_a_run_taken_over_meanwhile(
    engine: Engine, make_engine: Callable[..., Engine], taken_over: bool
) -> None:
    DEPLOYS.clear()
    other = make_engine()
    thread, box = start(missed_heartbeats_then_runs_a_task)
    run_id = running(engine, "missed-heartbeats-then-runs-a-task")
    # Heartbeats fail for a moment (the database had an outage), long enough that another
    # process may judge this one dead; then they work again.
    lapses = engine.heartbeat_lapses()
    rename(engine, "processes", "processes_away")
    wait_for(lambda: engine.heartbeat_lapses() > lapses, what="a failed heartbeat")
    rename(engine, "processes_away", "processes")
    if taken_over:
        take_over(other, run_id)
    GO.set()
    thread.join(10)
    if taken_over:
        assert isinstance(box.get("error"), RunTakenOver)
        assert DEPLOYS == []  # the new owner deploys, not this process as well
    else:
        assert box.get("result") == "deployed"
        assert DEPLOYS == ["deployed"]
        assert engine.get_run(run_id).state is RunState.COMPLETED


def rename(engine: Engine, old: str, new: str) -> None:
    with engine.store.engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


def test_a_second_pause_while_the_run_waits_on_one_is_refused_by_name(engine: Engine) -> None:
    box: dict[str, object] = {}
    thread = threading.Thread(target=lambda: box.update(result=asyncio.run(two_pauses_at_once())))
    thread.start()
    pause = waiting(engine, "two-pauses-at-once")
    # Answered once the other pause was refused: answered before, the run would be running
    # again and the other pause would open in turn.
    assert REFUSED.wait(10)
    resume_flow_run(pause.run_id, {"value": 7}, key=pause.key)
    thread.join(10)
    results = box["result"]
    assert isinstance(results, list)
    refused = next(r for r in results if isinstance(r, AlreadyWaiting))
    assert refused.run_id == pause.run_id
    assert f"already waits for input {pause.key!r}" in str(refused)
    assert 7 in results
    assert engine.get_run(pause.run_id).state is RunState.COMPLETED


@flow(name="queued-elsewhere")
def queued_elsewhere() -> None:
    return None


def test_a_process_forgets_cancellations_of_runs_it_does_not_run_but_not_its_own(
    engine: Engine, make_engine: Callable[..., Engine]
) -> None:
    # A replica hears every run's cancellation; what it keeps must not grow with them.
    now = [0.0]
    engine.heard = Heard(grace=60.0, clock=lambda: now[0])
    thread, box = start(cancelled_then_pauses)
    mine = running(engine, "cancelled-then-pauses")
    other = make_engine()
    elsewhere = [other.submit("queued-elsewhere").id for _ in range(20)]
    for run_id in elsewhere:
        other.cancel(run_id, by="U0ALICE")
    wait_for(lambda: all(engine.is_cancelled(r) for r in elsewhere), what="cancellations heard")
    now[0] = 61.0
    cancel_flow_run(mine, by="U0ALICE")  # heard after the grace: the others lapse
    assert not any(engine.is_cancelled(r) for r in elsewhere)
    assert len(engine.heard) == 1
    now[0] = 200.0
    later = other.submit("queued-elsewhere").id
    other.cancel(later, by="U0ALICE")
    wait_for(lambda: engine.is_cancelled(later), what="a later cancellation heard")
    # The run executing here still knows it was cancelled, however long ago it heard.
    assert engine.is_cancelled(mine)
    assert len(engine.heard) == 2
    GO.set()
    thread.join(10)
    assert isinstance(box.get("error"), RunCancelled)
