"""A flow accepting an answer from another process goes on at once; the verdict follows."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from signoff.engine import (
    Engine,
    Event,
    EventKind,
    PauseStatus,
    flow,
    pause_flow_run,
    suspend_flow_run,
)
from signoff.engine.input import RunInput
from signoff.engine.runtime import SLOW_CLOSE_SECONDS
from signoff.engine.store.riders import ATTEMPTS, Rider
from tests.support.closing import StopAfterTheLook
from tests.support.waiting import wait_for


class Deploy(RunInput):
    approved: bool


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Event] = []

    def on_event(self, event: Event) -> None:
        self.seen.append(event)


def start_waiting_flow(engine: Engine, next_line: threading.Event) -> tuple[str, dict]:
    """A flow that waits for a Deploy, then blocks on its next line until ``next_line``."""

    @flow
    def deploy() -> bool:
        answer = pause_flow_run(wait_for_input=Deploy)
        box["next line"] = True
        next_line.wait(20)
        return answer.approved

    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", deploy()), daemon=True)
    thread.start()
    box["thread"] = thread
    pause = wait_for(lambda: (r := engine.list_runs(limit=1)) and engine.waiting_pause(r[0].id))
    return pause.run_id, box


def test_the_verdict_is_stored_while_the_flow_goes_on_and_before_its_next_state(
    engine: Engine, make_engine
) -> None:
    other = make_engine()  # another process: it stores the answer, the flow judges it
    recorder = Recorder()
    other.add_observer(recorder)
    next_line = threading.Event()
    run_id, box = start_waiting_flow(engine, next_line)

    other.resume(run_id, {"approved": True}, responder="dana")
    wait_for(lambda: box.get("next line"))
    # The flow is busy on its next line and writes nothing: the verdict is stored anyway.
    pause = wait_for(
        lambda: (p := other.get_pause(run_id, "1")).status is PauseStatus.ACCEPTED and p
    )
    assert pause.responder == "dana"
    next_line.set()
    box["thread"].join(10)
    assert box["result"] is True

    wait_for(lambda: any(e.data.get("state") == "completed" for e in recorder.seen))
    kinds = [
        e.kind.value if e.kind is not EventKind.STATE_CHANGED else e.data["state"]
        for e in recorder.seen
        if e.run_id == run_id
    ]
    assert kinds[kinds.index("input_received") :] == [
        "input_received",
        "running",
        "input_accepted",
        "completed",
    ]
    actions = [r.action for r in other.audit_records() if r.run_id == run_id]
    assert actions.index("answer.received") < actions.index("answer.accepted")
    assert other.verify_audit().ok


def test_a_queued_verdict_is_stored_when_the_engine_closes(engine: Engine, make_engine) -> None:
    """Closing the process stores what it queued: nothing it accepted is lost."""

    @flow
    def later() -> None:
        suspend_flow_run(wait_for_input=Deploy)

    with pytest.raises(Exception, match="suspended"):
        later()
    run = engine.list_runs(limit=1)[0]
    engine.resume(run.id, {"approved": True}, responder="dana")
    answered = engine.get_pause(run.id, "1")
    assert answered.status is PauseStatus.ANSWERED  # the flow has not judged it yet

    first = make_engine()
    first.store.accept_later(answered, flow_name="later")
    first.close()  # at once: the queued verdict is stored on the way out
    assert engine.get_pause(run.id, "1").status is PauseStatus.ACCEPTED


def test_closing_as_the_queue_thread_finds_no_stop_yet_is_prompt(
    engine: Engine, make_engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A close just after the thread storing queued writes looked for the stop lost its
    wake-up: the thread slept on, and close waited 10 s for it, then warned ("closing the
    engine: the database took 10.0 s")."""
    held = StopAfterTheLook("signoff-riders")
    engine.store.riders._closed, engine.store.riders._wake = held.events()
    other = make_engine()  # another process: it stores the answer, the flow queues its verdict
    next_line = threading.Event()
    run_id, box = start_waiting_flow(engine, next_line)
    other.resume(run_id, {"approved": True}, responder="dana")
    assert held.looked.wait(10), "the queue's thread never looked for the stop"
    next_line.set()
    box["thread"].join(10)
    assert box["result"] is True

    caplog.set_level(logging.WARNING, logger="signoff.engine.runtime")
    began = time.monotonic()
    engine.close()
    took = time.monotonic() - began
    assert took < SLOW_CLOSE_SECONDS, f"close took {took:.1f} s"
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert other.get_pause(run_id, "1").status is PauseStatus.ACCEPTED


def test_a_queued_write_that_fails_is_tried_again_and_at_last_dropped_with_a_log(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    failures = {"flaky": 2, "broken": ATTEMPTS + 10}
    done: list[str] = []

    def write(name: str):
        def run(_conn: object, _now: object) -> None:
            if failures[name] > 0:
                failures[name] -= 1
                raise RuntimeError(f"{name} write failed")

        return run

    caplog.set_level(logging.WARNING, logger="signoff.engine.store.riders")
    engine.store.riders.add(
        Rider(write("flaky"), {"run_id": "flaky"}, lambda: done.append("flaky"))
    )
    wait_for(lambda: done == ["flaky"])
    engine.store.riders.add(Rider(write("broken"), {"run_id": "broken"}, lambda: done.append("x")))
    dropped = wait_for(
        lambda: [r for r in caplog.records if getattr(r, "action", "") == "queued_write_dropped"]
    )
    assert dropped[0].run_id == "broken"
    assert done == ["flaky"] and not engine.store.riders.pending()


def test_the_next_write_carries_queued_ones_and_its_own_failures_are_not_theirs(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Queued writes go in the process's next write transaction. When that write fails for
    its own reason they are rolled back with it and queued again, without losing a try."""
    from signoff.engine.store import riders

    monkeypatch.setattr(riders, "CARRY_WINDOW", 60.0)  # the background thread keeps out
    stored: list[str] = []
    engine.store.riders.add(
        Rider(
            lambda _conn, _now: stored.append("written"),
            {"run_id": "r"},
            lambda: stored.append("committed"),
        )
    )
    for _ in range(ATTEMPTS + 2):
        with pytest.raises(ValueError), engine.store._write():
            raise ValueError("this write's own mistake")
    assert stored == ["written"] * (ATTEMPTS + 2) and engine.store.riders.pending()

    @flow(name="carries-the-queued-write")
    def carrier() -> None:
        return None

    run = engine.submit("carries-the-queued-write", {})  # the next write that succeeds
    assert stored[-2:] == ["written", "committed"] and not engine.store.riders.pending()
    assert engine.get_run(run.id).flow_name == "carries-the-queued-write"
