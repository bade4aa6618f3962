"""A Slack user group's id is refused wherever a person acts: it may be named among a
rule's approvers, but answering, starting, cancelling or handing on as ``S0SRE`` let the
group's id match the approver list with nobody in the group, and put a group in the audit
trail as who decided."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text as sql

from signoff import resume_flow_run
from signoff.engine import (
    Actor,
    Engine,
    NotAPerson,
    RunState,
    Via,
    Worker,
    cancel_flow_run,
    flow,
    pause_flow_run,
    suspend_flow_run,
)
from signoff.engine.input import RunInput
from tests.support.running import start, waiting
from tests.support.waiting import wait_for


class Approval(RunInput):
    approve: bool
    reason: str


# As the README's deploy-production: Bob, or a member of the SRE group.
@flow(name="ga-deploy", approvers=["U0BOB", "S0SRE"])
def ga_deploy() -> str:
    answer = pause_flow_run(wait_for_input=Approval, timeout=60)
    return f"{answer.approve}: {answer.reason}"


@flow(name="ga-plain")
def ga_plain() -> str:
    return "done"


ANSWER = {"approve": True, "reason": "tested"}


def test_a_group_id_does_not_answer_start_cancel_or_hand_on_and_nothing_is_stored(
    engine: Engine,
) -> None:
    thread, box = start(ga_deploy)
    pause = waiting(engine, "ga-deploy")
    trail = engine.audit_trail(pause.run_id)

    refusals = [
        lambda: resume_flow_run(pause.run_id, ANSWER, responder="S0SRE"),
        lambda: engine.resume(pause.run_id, ANSWER, Actor("S0SRE", via=Via.SLACK)),
        lambda: cancel_flow_run(pause.run_id, by="S0SRE"),
        lambda: engine.reassign(pause.run_id, "U0CAROL", by="S0SRE"),
        lambda: engine.submit("ga-plain", started_by="S0SRE"),
    ]
    for refuse in refusals:
        with pytest.raises(NotAPerson) as refused:
            refuse()
        assert refused.value.actor_id == "S0SRE"
        assert str(refused.value) == (
            "actor id 'S0SRE' is a Slack user group's id, not one person's: rules may name "
            "a group, but a person acts (name one of its members)"
        )
        assert isinstance(refused.value, ValueError)  # as the other ids an Actor refuses
    # A decision is handed to one person, not to a group.
    with pytest.raises(NotAPerson, match=r"^the id to reassign to 'S0SRE' is a Slack user group"):
        engine.reassign(pause.run_id, "S0SRE", by="U0BOB")

    assert engine.audit_trail(pause.run_id) == trail  # no answer, refusal or hand-over
    assert engine.get_pause(pause.run_id, pause.key).answered_by == ()
    assert engine.get_run(pause.run_id).state is RunState.PAUSED
    assert engine.list_runs(flow_name="ga-plain") == []
    assert [run.id for run in engine.list_runs(flow_name="ga-deploy")] == [pause.run_id]

    # A member of the group answers for it; people of any other name still act: local
    # operators, names in capitals (no digit: no Slack id), Slack users.
    resume_flow_run(pause.run_id, ANSWER, responder=Actor("U0CAROL", groups=frozenset({"S0SRE"})))
    thread.join(10)
    assert box == {"result": "True: tested"}
    for name in ("alice", "bob", "SAM", "SRE", "S1", "U0BOB", "W0CAROL", "s3"):
        run = engine.submit("ga-plain", started_by=Actor.operator(name))
        assert run.started_by == name
    assert engine.submit("ga-plain", started_by=Actor.python()).started_by == Actor.python().id


@flow(name="ga-child")
def ga_child() -> str:
    return "child done"


@flow(name="ga-legacy-parent")
def ga_legacy_parent() -> str:
    went_on = suspend_flow_run(int, timeout=60)
    return f"{went_on}: {ga_child()}"


def test_a_stored_run_started_by_a_group_id_says_so_when_it_starts_a_nested_flow(
    engine: Engine, make_engine: Callable[..., Engine]
) -> None:
    """A run stored before group ids were refused, whose starter is ``S0SRE``: its nested
    flow, started as by its parent's starter, failed with the Actor's bare "actor id 'S0SRE'
    is a Slack user group's id", naming neither run. Now the run ends failed, naming itself
    and why, and its stored starter stays as it was."""
    thread, box = start(ga_legacy_parent)
    pause = waiting(engine, "ga-legacy-parent")
    thread.join(10)
    run_id = pause.run_id
    with engine.store.engine.begin() as conn:
        conn.execute(sql("UPDATE runs SET started_by = 'S0SRE' WHERE id = :id"), {"id": run_id})
    engine.resume(run_id, {"value": 1}, "U0ALICE")
    worker = Worker(engine)
    worker.start()
    try:
        done = wait_for(
            lambda: (r := engine.get_run(run_id)).state.is_final and r,
            what="the legacy run to end",
        )
    finally:
        worker.stop()
    assert done.state is RunState.FAILED
    assert done.state_message is not None
    assert f"run {run_id} was started by 'S0SRE', a Slack user group's id" in done.state_message
    assert "ga-child" in done.state_message
    assert done.started_by == "S0SRE"  # stored data kept as it was
    assert engine.list_runs(flow_name="ga-child") == []
