"""A durable consumer made with a backlog first hears of the questions already waiting.

The Slack app's consumer is one: runs that waited for input before the app first served
the database get their threads, where it used to start at the newest event and never
hear of them."""

from __future__ import annotations

import threading
from collections.abc import Callable

from signoff.engine import (
    Engine,
    Event,
    EventKind,
    PauseStatus,
    flow,
    pause_flow_run,
    suspend_flow_run,
)
from tests.support.running import start, waiting
from tests.support.waiting import wait_for


class Recorder:
    """Records what it is handed; raises for the runs in ``refuse``, as a down Slack would."""

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.seen: list[Event] = []
        self.refuse = refuse
        self.lock = threading.Lock()

    def on_event(self, event: Event) -> None:
        if event.run_id in self.refuse:
            raise ConnectionError("Slack is down")
        with self.lock:
            self.seen.append(event)

    def questions(self) -> list[str]:
        with self.lock:
            return [e.run_id for e in self.seen if e.kind is EventKind.WAITING_FOR_INPUT]


@flow(name="backlog-asks")
def backlog_asks() -> bool:
    return pause_flow_run(wait_for_input=bool, timeout=60)


@flow(name="backlog-suspends")
def backlog_suspends() -> bool:
    return suspend_flow_run(wait_for_input=bool, timeout=600)


def _three_runs(engine: Engine) -> tuple[str, str, str, threading.Thread]:
    """A run answered and done, a run suspended, a run whose flow waits here: in that
    order, before any consumer is made."""
    thread, box = start(backlog_asks)
    done = waiting(engine, "backlog-asks")
    engine.resume(done.run_id, {"value": True})
    thread.join(10)
    assert box == {"result": True}
    start(backlog_suspends)[0].join(10)
    suspended = waiting(engine, "backlog-suspends")
    thread, _ = start(backlog_asks)
    waits = wait_for(
        lambda: next(
            (
                p
                for r in engine.list_runs(flow_name="backlog-asks")
                if r.id != done.run_id and (p := engine.waiting_pause(r.id))
            ),
            None,
        ),
        what="the second run to wait",
    )
    return done.run_id, suspended.run_id, waits.run_id, thread


def test_a_new_consumer_hears_first_of_the_questions_already_waiting(engine: Engine) -> None:
    done, suspended, waits, thread = _three_runs(engine)
    without = Recorder()
    engine.subscribe("backlog-none", without)
    heard = Recorder()
    engine.subscribe("backlog-slack", heard, backlog=10)
    wait_for(lambda: len(heard.questions()) == 2, what="the waiting questions")
    # Oldest first; the run answered before the consumer was made is not among them.
    assert heard.questions() == [suspended, waits]
    engine.resume(waits, {"value": False}, "dana")
    thread.join(10)
    wait_for(
        lambda: any(e.kind is EventKind.INPUT_RECEIVED for e in heard.seen),
        what="the answer's event",
    )
    kinds = [(e.run_id, e.kind) for e in heard.seen]
    assert kinds.index((waits, EventKind.WAITING_FOR_INPUT)) < kinds.index(
        (waits, EventKind.INPUT_RECEIVED)
    )
    assert done not in {e.run_id for e in heard.seen}
    # A consumer made without a backlog hears only what happens after it was made.
    wait_for(lambda: without.seen, what="the answer's event, without a backlog")
    assert EventKind.WAITING_FOR_INPUT not in {e.kind for e in without.seen}


def test_a_backlog_is_delivered_once_across_restarts(
    engine: Engine, make_engine: Callable[..., Engine]
) -> None:
    """Delivered in part when its process stops (Slack refuses the second question), the
    backlog goes on from there in the next process, and is not delivered again after."""
    _, suspended, waits, thread = _three_runs(engine)
    first_process = make_engine()
    first = Recorder(refuse=frozenset({waits}))
    consumer = first_process.subscribe("backlog-restart", first, backlog=10)
    wait_for(lambda: first.questions() == [suspended], what="the first question")
    first_process.close()
    assert consumer.owner is None

    second_process = make_engine()
    second = Recorder()
    second_process.subscribe("backlog-restart", second, backlog=10)
    wait_for(lambda: second.questions() == [waits], what="the rest of the backlog")
    second_process.close()

    third_process = make_engine()
    third = Recorder()
    third_process.subscribe("backlog-restart", third, backlog=10)
    engine.resume(waits, {"value": True})
    thread.join(10)
    wait_for(lambda: third.seen, what="the answer's event")
    assert third.questions() == []


def test_a_question_answered_before_the_backlog_is_read_is_still_in_it(engine: Engine) -> None:
    """Answered between the consumer's making and its first read, a question that waited
    when it was made is still delivered (the application posts it as answered), then the
    answer."""
    thread, _ = start(backlog_asks)
    pause = waiting(engine, "backlog-asks")
    store = engine.store
    assert store.lease_cursor("backlog-race", "holder", 30.0, backlog=10) is not None
    engine.resume(pause.run_id, {"value": True})
    thread.join(10)
    assert engine.get_pause(pause.run_id, pause.key).status is PauseStatus.ACCEPTED
    backlog = store.cursor_backlog("backlog-race", "holder")
    assert [(e.run_id, e.kind) for e in backlog or []] == [
        (pause.run_id, EventKind.WAITING_FOR_INPUT)
    ]
    assert store.advance_backlog("backlog-race", "holder", None)
    assert store.cursor_backlog("backlog-race", "holder") is None
    # Not the holder: nothing to deliver, and it cannot move the backlog on.
    assert store.cursor_backlog("backlog-race", "another") == []
    assert not store.advance_backlog("backlog-race", "another", None)


def test_a_consumer_made_when_nothing_waits_has_no_backlog(engine: Engine) -> None:
    store = engine.store
    assert store.lease_cursor("backlog-empty", "holder", 30.0, backlog=10) is not None
    assert store.cursor_backlog("backlog-empty", "holder") is None


def test_a_backlog_holds_only_the_newest_questions(engine: Engine) -> None:
    """Thousands of runs suspended long before: a channel gets the newest few, not all."""
    _, suspended, waits, thread = _three_runs(engine)
    heard = Recorder()
    engine.subscribe("backlog-newest", heard, backlog=1)
    wait_for(lambda: heard.questions(), what="the newest question")
    engine.resume(waits, {"value": True})
    thread.join(10)
    wait_for(
        lambda: any(e.kind is EventKind.INPUT_RECEIVED for e in heard.seen),
        what="the answer's event",
    )
    assert heard.questions() == [waits]
    assert suspended not in {e.run_id for e in heard.seen}
