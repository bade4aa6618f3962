"""Answers that race: two at once, one after another process took the run over, one for a
question already answered, and one after the run finished."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import pydantic
import pytest
from sqlalchemy import text

from signoff.engine import (
    AlreadyAnswered,
    Engine,
    NotAllowed,
    PauseStatus,
    RunCancelled,
    RunState,
    flow,
    pause_flow_run,
    resume_flow_run,
    task,
)
from signoff.engine.input import RunInput
from tests.support.holding import wait_until_blocked
from tests.support.running import start, waiting
from tests.support.waiting import wait_for


class Approval(RunInput):
    approved: bool
    reason: str = pydantic.Field(default="", max_length=20)


def test_two_racing_resumes_exactly_one_wins(engine: Engine) -> None:
    @flow
    def deploy():
        return pause_flow_run(wait_for_input=Approval)

    thread, box = start(deploy)
    pause = waiting(engine)
    barrier = threading.Barrier(8)
    outcomes: list = []

    def answer(who: str) -> None:
        barrier.wait()
        try:
            resume_flow_run(pause.run_id, {"approved": True}, responder=who, key=pause.key)
            outcomes.append(("won", who))
        except AlreadyAnswered as exc:
            outcomes.append(("lost", exc))

    racers = [threading.Thread(target=answer, args=(f"user{i}",)) for i in range(8)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(10)
    winners = [who for verdict, who in outcomes if verdict == "won"]
    assert len(winners) == 1
    losers = [exc for verdict, exc in outcomes if verdict == "lost"]
    assert len(losers) == 7
    assert all(f"already answered by {winners[0]}" in str(exc) for exc in losers)
    thread.join(10)
    assert engine.get_pause(pause.run_id, pause.key).responder == winners[0]
    # The losers wrote nothing: one answer in the trail, and the chain still verifies.
    trail = [r.action for r in engine.audit_trail(pause.run_id)]
    assert trail.count("answer.received") == 1
    assert engine.verify_audit().ok


def test_an_answer_here_after_another_process_took_the_run_over_schedules_it(
    engine: Engine,
) -> None:
    # The answering process holds the waiting flow, but it was judged gone (a long stall)
    # and its run taken over: the answer sends the run to a worker, as from anywhere else.
    @flow
    def deploy():
        return pause_flow_run(wait_for_input=Approval).approved

    thread, box = start(deploy)
    pause = waiting(engine)
    assert engine.store.transition(
        pause.run_id,
        RunState.SUSPENDED,
        "Suspended",
        "the process that was waiting is gone",
        expect=(RunState.PAUSED,),
        owner=None,
    )
    answered = resume_flow_run(pause.run_id, {"approved": True}, responder="alice")
    assert answered.status is PauseStatus.ANSWERED
    assert engine.get_run(pause.run_id).state is RunState.SCHEDULED
    thread.join(10)


def test_a_stale_answer_never_answers_the_next_question(engine: Engine) -> None:
    @flow
    def hold():
        pause_flow_run(wait_for_input=Approval)
        pause_flow_run(wait_for_input=Approval)

    thread, box = start(hold)
    first = waiting(engine)
    resume_flow_run(first.run_id, {"approved": True}, responder="alice", key="1")
    second = wait_for(lambda: engine.get_pause(first.run_id, "2"))
    with pytest.raises(AlreadyAnswered, match="input '1' of run .* already answered by alice"):
        resume_flow_run(first.run_id, {"approved": False}, responder="bob", key="1")
    assert engine.get_pause(first.run_id, "2").status is PauseStatus.WAITING
    assert second.status is PauseStatus.WAITING
    engine.cancel(first.run_id)
    thread.join(10)
    assert isinstance(box["error"], RunCancelled)


def test_the_loser_of_two_answers_learns_who_won_even_once_the_run_finished(
    engine: Engine,
) -> None:
    @flow(name="answered-once")
    def answered_once():
        return pause_flow_run(wait_for_input=Approval).approved

    thread, box = start(answered_once)
    pause = waiting(engine, "answered-once")
    resume_flow_run(pause.run_id, {"approved": True}, responder="alice")
    thread.join(10)
    assert engine.get_run(pause.run_id).state is RunState.COMPLETED
    # The second answer, without a key (as the CLI gives it), arrives after the flow ended.
    with pytest.raises(AlreadyAnswered, match="already answered by alice"):
        resume_flow_run(pause.run_id, {"approved": False}, responder="bob")


def race(fn: Callable[..., None], *calls: tuple[Any, ...]) -> None:
    """Call ``fn`` once per argument tuple, each on a thread of its own, and wait for all."""
    racers = [threading.Thread(target=fn, args=args) for args in calls]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(10)


class MeetingDirectory:
    """Group membership for S_OPS whose first ``meet`` look-ups wait for each other, so that
    that many callers all pass the rule before any of them writes."""

    def __init__(self, members: set[str], meet: int) -> None:
        self.members = members
        self.barrier = threading.Barrier(meet, timeout=10)
        self.calls = 0
        self.lock = threading.Lock()

    def groups_of(self, actor_id: str, candidates) -> set[str]:
        with self.lock:
            self.calls += 1
            first = self.calls <= self.barrier.parties
        if first:
            self.barrier.wait()
        return {g for g in candidates if g == "S_OPS" and actor_id in self.members}


def test_one_person_handing_a_decision_to_two_people_at_once_hands_it_to_one(
    engine: Engine, make_engine
) -> None:
    @flow(name="handed-twice", approvers=["S_OPS"])
    def handed_twice():
        return pause_flow_run(wait_for_input=Approval).approved

    other = make_engine()
    directory = MeetingDirectory({"U_OPS1"}, meet=2)
    for each in (engine, other):
        each.set_group_directory(directory)
    thread, box = start(handed_twice)
    pause = waiting(engine, "handed-twice")
    outcomes: dict[str, object] = {}

    def hand(to: str, by_engine: Engine) -> None:
        try:
            outcomes[to] = by_engine.reassign(pause.run_id, to, by="U_OPS1").approvers
        except NotAllowed as exc:
            outcomes[to] = exc

    race(hand, ("U_X", engine), ("U_Y", other))
    # Both passed the rule before either wrote; the second to write finds the decision
    # already handed on, and is refused as it would be a moment later.
    [(winner, approvers)] = [(to, o) for to, o in outcomes.items() if isinstance(o, tuple)]
    [refused] = [o for o in outcomes.values() if isinstance(o, NotAllowed)]
    assert approvers == ("S_OPS", winner)
    assert f"U_OPS1 handed it to {winner}" in str(refused)
    assert engine.get_pause(pause.run_id, pause.key).approvers == ("S_OPS", winner)
    handed = [r for r in engine.audit_trail(pause.run_id) if r.action == "pause.reassigned"]
    assert [r.data["to"] for r in handed] == [winner]
    engine.cancel(pause.run_id, by=winner)
    thread.join(10)


class HandOverFirstDirectory:
    """S_OPS membership; the answering thread's first look-up waits until the decision was
    handed on, so that its answer is judged on the pause as it was before the hand-over
    and written after it."""

    def __init__(self, members: set[str]) -> None:
        self.members = members
        self.handed_on = threading.Event()
        self.held_once = False

    def groups_of(self, actor_id: str, candidates) -> set[str]:
        if threading.current_thread().name == "answering" and not self.held_once:
            self.held_once = True
            assert self.handed_on.wait(10)
        return {g for g in candidates if g == "S_OPS" and actor_id in self.members}


@pytest.mark.parametrize("quorum", [1, 2])
def test_an_answer_judged_before_its_giver_handed_the_decision_on_is_refused(
    engine: Engine, make_engine, quorum: int
) -> None:
    """Whoever hands a decision on may not answer it: an answer checked before the hand-over
    committed and stored after it was stored all the same (and on a quorum, counted beside
    the answer of the person it was handed to)."""

    @flow(name=f"handed-while-answering-{quorum}", approvers=["S_OPS", "U_B"])
    def handed_while_answering():
        answer = pause_flow_run(wait_for_input=Approval, quorum=quorum if quorum > 1 else None)
        return answer if quorum == 1 else [a.responder for a in answer]

    other = make_engine()  # the answer comes from another process: it reads, judges, writes
    directory = HandOverFirstDirectory({"U_OPS1"})
    for each in (engine, other):
        each.set_group_directory(directory)
    thread, box = start(handed_while_answering)
    pause = waiting(engine, f"handed-while-answering-{quorum}")
    refused: list[BaseException] = []

    def answer() -> None:
        try:
            other.resume(pause.run_id, {"approved": True}, "U_OPS1")
        except NotAllowed as exc:
            refused.append(exc)

    answering = threading.Thread(target=answer, name="answering")
    answering.start()
    wait_for(lambda: directory.held_once, what="the answer to be judged")
    engine.reassign(pause.run_id, "U_X", by="U_OPS1")
    directory.handed_on.set()
    answering.join(10)
    assert len(refused) == 1 and "U_OPS1" in str(refused[0])
    stored = engine.get_pause(pause.run_id, pause.key)
    assert (stored.status, stored.answered_by) == (PauseStatus.WAITING, ())
    trail = [(r.action, r.actor_id) for r in engine.audit_trail(pause.run_id)]
    assert ("answer.received", "U_OPS1") not in trail
    assert ("pause.reassigned", "U_OPS1") in trail
    engine.cancel(pause.run_id, by="U_B")
    thread.join(10)


def test_the_answer_that_completes_a_quorum_beside_another_returns_both(
    engine: Engine, make_engine
) -> None:
    """Two answers to a quorum of two, both judged before either was stored: the one stored
    second completes it, and what it returns (and the person who gave it sees: "answered
    by") holds both answers, not only its own."""

    @flow(name="two-at-once", approvers=["S_OPS"])
    def two_at_once():
        return [a.responder for a in pause_flow_run(wait_for_input=Approval, quorum=2)]

    other = make_engine()
    directory = MeetingDirectory({"U_OPS1", "U_OPS2"}, meet=2)
    for each in (engine, other):
        each.set_group_directory(directory)
    thread, box = start(two_at_once)
    pause = waiting(engine, "two-at-once")
    returned = {}

    def answer(by: str, by_engine: Engine) -> None:
        returned[by] = by_engine.resume(pause.run_id, {"approved": True}, by)

    race(answer, ("U_OPS1", engine), ("U_OPS2", other))
    thread.join(10)
    assert sorted(box["result"]) == ["U_OPS1", "U_OPS2"]
    [counted] = [p for p in returned.values() if p.status is PauseStatus.WAITING]
    [completing] = [p for p in returned.values() if p.status is not PauseStatus.WAITING]
    assert sorted(a.responder for a in completing.answers) == ["U_OPS1", "U_OPS2"]
    assert completing.answered_at is not None
    # The first stored counts as "1 of 2", as it stood when it was stored.
    assert [a.responder for a in counted.answers] == [completing.answers[0].responder]


go_on = threading.Event()
rolled_out: list[str] = []


@task
def roll_out() -> None:
    rolled_out.append("rolled out")


@flow(name="race-cancel-next-task")
def cancelled_before_its_task() -> str:
    go_on.wait(10)
    roll_out()
    return "deployed"


def _inside(thread: threading.Thread, function: str) -> bool:
    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        if frame.f_code.co_name == function:
            return True
        frame = frame.f_back
    return False


# PostgreSQL only: a row lock holds the cancel's commit back, where the race is.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_task_does_not_start_while_this_process_stores_a_cancel_of_its_run(
    engine: Engine,
) -> None:
    """``cancel`` returned, the run was stored cancelled, and yet its next task ran: it
    started between the cancel's commit and this process hearing of it."""
    thread, box = start(cancelled_before_its_task)
    run = wait_for(
        lambda: next(iter(engine.list_runs(flow_name="race-cancel-next-task")), None),
        what="the run",
    )
    db = engine.store.engine
    holding = db.connect()
    holding.execute(text("SELECT id FROM runs WHERE id = :run FOR UPDATE"), {"run": run.id})
    canceller = threading.Thread(target=engine.cancel, args=(run.id, "U_A"))
    canceller.start()
    wait_until_blocked(db, "the cancel to wait for the run's row")
    go_on.set()
    wait_for(
        lambda: rolled_out or _inside(thread, "is_cancelled"),
        what="the flow to reach its next task",
    )
    holding.commit()
    holding.close()
    canceller.join(10)
    thread.join(10)
    assert rolled_out == []
    assert isinstance(box.get("error"), RunCancelled)
    assert engine.get_run(run.id).state is RunState.CANCELLED


@flow(name="race-quorum-cancelled", approvers=["U_A", "U_B"])
def quorum_cancelled_elsewhere() -> int:
    return len(pause_flow_run(wait_for_input=None, timeout=60, quorum=2))


def test_a_cancel_from_another_process_is_a_cancel_to_the_flow_not_a_take_over(
    engine: Engine, make_engine: Callable[..., Engine]
) -> None:
    """Another process completed the quorum and cancelled the run before this one heard
    of either: the flow, reading its answered pause and its run, stopped with
    RunTakenOver ("run taken over by another process") instead of RunCancelled."""
    thread, box = start(quorum_cancelled_elsewhere)
    pause = waiting(engine, "race-quorum-cancelled")
    engine.dispatcher.stop()  # this process hears nothing of what the other does
    other = make_engine()
    other.resume(pause.run_id, None, "U_A")
    other.resume(pause.run_id, None, "U_B")
    other.cancel(pause.run_id, "U_A")
    engine.waiters.wake(pause.run_id)  # a wake-up, as the events would have given
    thread.join(10)
    assert isinstance(box.get("error"), RunCancelled)
    assert engine.get_run(pause.run_id).state is RunState.CANCELLED
