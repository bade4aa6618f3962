"""Who may act, the audit trail, quorum, escalation and reassignment, through the engine's API."""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
from collections.abc import Collection
from datetime import timedelta
from typing import Any

import pydantic
import pytest
from sqlalchemy import text

from signoff.engine import (
    AlreadyAnswered,
    Engine,
    InputInvalid,
    NotAllowed,
    PauseStatus,
    PauseTimeout,
    ResponderNotAllowed,
    RunState,
    flow,
    pause_flow_run,
    resume_flow_run,
    set_engine,
    suspend_flow_run,
)
from signoff.engine.actors import Actor, Via
from signoff.engine.audit import AuditAction, describe
from signoff.engine.audit_export import write_csv, write_jsonl
from signoff.engine.input import RunInput
from signoff.engine.permissions import Action
from tests.support.holding import wait_until_blocked
from tests.support.waiting import wait_for


class Decision(RunInput):
    approved: bool
    comment: str = ""


@flow(name="ap-guarded", approvers=["U_ALICE", "S_OPS"], starters=["U_CAROL"])
def ap_guarded() -> bool:
    return pause_flow_run(Decision, timeout=30).approved


@flow(name="ap-quorum", approvers=["U_A", "U_B", "U_C"])
def ap_quorum() -> list[str]:
    answers = pause_flow_run(Decision, timeout=30, quorum=2, veto="approved")
    return [f"{a.responder}:{a.value.approved}:{a.via}" for a in answers] + (
        ["vetoed"] if answers.vetoed else []
    )


@flow(name="ap-quorum-short", approvers=["U_A", "U_B"])
def ap_quorum_short() -> str:
    try:
        pause_flow_run(Decision, timeout=1, quorum=2)
    except PauseTimeout as exc:
        return str(exc)
    return "answered"


def test_a_quorum_answered_in_part_says_how_far_it_got_when_time_runs_out(
    engine: Engine,
) -> None:
    """It said "nobody answered in time", though one of the two had."""
    box = run_in_thread(ap_quorum_short)
    run_id = waiting_run(engine, "ap-quorum-short")
    engine.resume(run_id, {"approved": True}, "U_A")
    box["thread"].join(10)
    assert box["result"] == (
        f"run {run_id} waited for 1s for input '1' and got 1 of the 2 answers it needs in time"
    )
    [timed_out] = [r for r in engine.audit_trail(run_id) if r.action == "pause.timed_out"]
    assert timed_out.data == {"answers": 1, "quorum": 2}
    assert describe(timed_out).endswith("pause.timed_out [1] — 1 of 2 answers")


@flow(name="ap-escalate", approvers=["U_A"])
def ap_escalate() -> bool:
    return pause_flow_run(Decision, timeout=30, escalate_after=0.2, escalate_to=["U_BOSS"]).approved


@flow(name="ap-escalate-later", approvers=["U_A", "U_B"])
def ap_escalate_later() -> bool:
    return pause_flow_run(Decision, timeout=60, escalate_after=30, escalate_to=["U_BOSS"]).approved


@flow(name="ap-open-quorum")
def ap_open_quorum() -> list[str]:
    answers = pause_flow_run(Decision, timeout=30, quorum=2)
    return [f"{a.responder}:{a.value.approved}" for a in answers.answers]


@flow(name="ap-suspend-quorum", approvers=["U_A", "U_B"])
def ap_suspend_quorum() -> int:
    answers = suspend_flow_run(Decision, quorum=2)
    return len(answers)


class Directory:
    """Group membership as the bot would report it."""

    def __init__(self, groups: dict[str, set[str]]) -> None:
        self.groups = groups

    def groups_of(self, actor_id: str, candidates: Collection[str]) -> set[str]:
        return {g for g in candidates if actor_id in self.groups.get(g, set())}


def run_in_thread(fn) -> dict:
    box: dict = {}

    def body() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    box["thread"] = thread
    return box


def waiting_run(engine: Engine, flow_name: str) -> str:
    def found() -> str | None:
        runs = engine.list_runs([RunState.PAUSED, RunState.SUSPENDED], flow_name=flow_name)
        return runs[0].id if runs else None

    return wait_for(found, what=f"a waiting run of {flow_name}")


def actions(engine: Engine, run_id: str) -> list[str]:
    return [r.action for r in engine.audit_trail(run_id)]


def test_start_is_refused_to_people_the_flow_does_not_name_and_recorded(engine: Engine) -> None:
    with pytest.raises(NotAllowed, match="only U_CAROL") as refused:
        engine.submit("ap-guarded", started_by=Actor("U_MALLORY", name="Mallory", via=Via.SLACK))
    assert refused.value.action == "start"
    assert "U_CAROL" in refused.value.allowed
    assert engine.list_runs(flow_name="ap-guarded") == []
    [record] = list(engine.audit_records(flow_name="ap-guarded"))
    assert (record.action, record.actor_id, record.actor_name, record.via) == (
        "refused",
        "U_MALLORY",
        "Mallory",
        "slack",
    )
    assert record.data["action"] == "start"
    run = engine.submit("ap-guarded", started_by=Actor("U_CAROL", name="Carol", via=Via.SLACK))
    assert [r.action for r in engine.audit_trail(run.id)] == ["run.started"]


def test_admins_may_start_and_cancel_anything(make_engine) -> None:
    admin_engine = make_engine(admins=["U_ROOT"])
    run = admin_engine.submit("ap-guarded", started_by="U_ROOT")
    cancelled = admin_engine.cancel(run.id, by="U_ROOT")
    assert cancelled.state is RunState.CANCELLED


def test_an_admin_may_take_a_decision_on_by_handing_it_to_themselves(make_engine) -> None:
    """An admin who was no approver was told "it is already yours"."""
    admin_engine = make_engine(admins=["U_ROOT"])
    set_engine(admin_engine)
    try:
        box = run_in_thread(ap_escalate)
        run_id = waiting_run(admin_engine, "ap-escalate")
        handed = admin_engine.reassign(run_id, "U_ROOT", by="U_ROOT")
        assert "U_ROOT" in handed.approvers
        with pytest.raises(NotAllowed, match="already yours"):
            admin_engine.reassign(run_id, "U_A", by="U_A")
        admin_engine.resume(run_id, {"approved": True}, "U_ROOT")
        box["thread"].join(10)
        assert box["result"] is True
    finally:
        set_engine(None)


def test_answer_rules_with_groups_resolved_by_the_directory(engine: Engine) -> None:
    engine.set_group_directory(Directory({"S_OPS": {"U_OPS1"}}))
    box = run_in_thread(ap_guarded)
    run_id = waiting_run(engine, "ap-guarded")
    with pytest.raises(ResponderNotAllowed, match="only U_ALICE, S_OPS may answer"):
        engine.resume(run_id, {"approved": True}, Actor("U_EVE", name="Eve", via=Via.SLACK))
    assert engine.get_pause(run_id, "1").status is PauseStatus.WAITING
    engine.resume(run_id, {"approved": True, "comment": "ok"}, Actor("U_OPS1", via=Via.SLACK))
    box["thread"].join(10)
    assert box["result"] is True
    trail = engine.audit_trail(run_id)
    assert [r.action for r in trail] == [
        "run.started",
        "refused",
        "answer.received",
        "answer.accepted",
    ]
    assert trail[1].actor_id == "U_EVE" and trail[1].data["input"] == {"approved": True}
    assert trail[2].data["input"] == {"approved": True, "comment": "ok"}
    assert trail[2].via == "slack"


def test_cancel_default_rule_starter_approvers_admins(engine: Engine) -> None:
    box = run_in_thread(ap_guarded)
    run_id = waiting_run(engine, "ap-guarded")
    # Called from Python here, so started by whoever ran it (the local user).
    with pytest.raises(NotAllowed, match="only whoever started it, its approvers") as refused:
        engine.cancel(run_id, by=Actor("U_EVE", via=Via.SLACK))
    assert refused.value.action == "cancel"
    assert engine.get_run(run_id).state is RunState.PAUSED
    engine.cancel(run_id, by=Actor("U_ALICE", name="Alice", via=Via.SLACK))
    box["thread"].join(10)
    trail = engine.audit_trail(run_id)
    assert [r.action for r in trail][-2:] == ["refused", "run.cancelled"]
    assert trail[-1].actor_name == "Alice"


#: released by the test once it has tried to cancel the run between its pauses
_DEPLOYING = threading.Event()


@flow(name="ap-pause-approvers")
def ap_pause_approvers() -> str:
    pause_flow_run(wait_for_input=Decision, approvers=["U_BOB"])
    _DEPLOYING.wait(30)  # running, between the approval and what comes after
    return "deployed"


def test_a_run_between_its_pauses_is_cancelled_only_by_those_its_decisions_name(
    engine: Engine,
) -> None:
    """A flow that names its approvers on each pause (and none of its own) could be
    cancelled by anyone whenever it was not waiting: a deploy approved by its approver,
    then stopped by any passer-by in /runs."""
    _DEPLOYING.clear()
    box = run_in_thread(ap_pause_approvers)
    run_id = waiting_run(engine, "ap-pause-approvers")
    engine.resume(run_id, {"approved": True}, "U_BOB")
    wait_for(lambda: engine.get_run(run_id).state is RunState.RUNNING, what="the run going on")
    with pytest.raises(NotAllowed, match="its approvers \\(U_BOB\\)"):
        engine.cancel(run_id, by=Actor("U_EVE", via=Via.SLACK))
    refusal = engine.refusal(Action.CANCEL, Actor("U_EVE", via=Via.SLACK), run_id)
    assert refusal is not None and "U_BOB" in refusal.allowed
    assert engine.refusal(Action.CANCEL, Actor("U_BOB", via=Via.SLACK), run_id) is None
    engine.cancel(run_id, by=Actor("U_BOB", via=Via.SLACK))
    _DEPLOYING.set()
    box["thread"].join(10)
    assert engine.get_run(run_id).state is RunState.CANCELLED


@flow(name="ap-called-decision")
def ap_called_decision() -> bool:
    return ap_guarded()  # its run waits on the decision of the flow it called


def test_a_run_waiting_on_a_decision_of_a_flow_it_called_is_cancelled_by_that_rule(
    engine: Engine,
) -> None:
    """Eve, refused cancelling the called flow's run (U_ALICE decides it), cancelled the
    run that called it, which names no approvers, and that cancelled the decision too."""
    box = run_in_thread(ap_called_decision)
    child = waiting_run(engine, "ap-guarded")
    (parent,) = engine.list_runs(flow_name="ap-called-decision")
    eve = Actor("U_EVE", via=Via.SLACK)
    for run_id in (child, parent.id):
        with pytest.raises(NotAllowed, match="its approvers \\(U_ALICE, S_OPS\\)"):
            engine.cancel(run_id, by=eve)
    assert engine.refusal(Action.CANCEL, eve, parent.id) is not None
    assert engine.get_run(child).state is RunState.PAUSED
    assert actions(engine, parent.id)[-1] == "refused"
    engine.cancel(parent.id, by=Actor("U_ALICE", via=Via.SLACK))
    box["thread"].join(10)
    assert engine.get_run(child).state is RunState.CANCELLED


def test_invalid_input_is_recorded_with_the_values_sent(engine: Engine) -> None:
    box = run_in_thread(ap_guarded)
    run_id = waiting_run(engine, "ap-guarded")
    with pytest.raises(InputInvalid):
        engine.resume(run_id, {"approved": "maybe"}, "U_ALICE")
    record = engine.audit_trail(run_id)[-1]
    assert record.action == "answer.invalid"
    assert record.data["input"] == {"approved": "maybe"}
    assert "approved" in record.data["errors"]
    engine.cancel(run_id, by="U_ALICE")
    box["thread"].join(10)


#: text an answer may carry that a careless encoding would change or refuse
AWKWARD = (
    "nul \x00, quotes \" ', backslash \\, emoji \U0001f680, é, new\nline, tab\t; " + "long " * 2000
)


def test_any_text_in_an_answer_is_stored_exactly_and_the_chain_still_verifies(
    engine: Engine,
) -> None:
    box = run_in_thread(ap_guarded)
    run_id = waiting_run(engine, "ap-guarded")
    alice = Actor("U_ALICE", name='Zoë "Z" O\'Brien \\ \U0001f680', via=Via.SLACK)
    engine.resume(run_id, {"approved": True, "comment": AWKWARD}, alice)
    box["thread"].join(10)
    assert box["result"] is True
    assert engine.get_pause(run_id, "1").response == {"approved": True, "comment": AWKWARD}
    (received,) = [r for r in engine.audit_trail(run_id) if r.action == "answer.received"]
    assert received.data["input"]["comment"] == AWKWARD
    assert received.actor_name == alice.name
    assert engine.verify_audit().ok


def test_quorum_needs_distinct_people_and_gives_every_answer(engine: Engine) -> None:
    box = run_in_thread(ap_quorum)
    run_id = waiting_run(engine, "ap-quorum")
    first = engine.resume(run_id, {"approved": True}, Actor("U_A", via=Via.SLACK))
    assert first.status is PauseStatus.WAITING and first.answered_by == ("U_A",)
    assert engine.get_pause(run_id, "1").answered_by == ("U_A",)
    with pytest.raises(ResponderNotAllowed, match="already answered"):
        engine.resume(run_id, {"approved": True}, Actor("U_A", via=Via.SLACK))
    engine.resume(run_id, {"approved": True}, Actor("U_B", via=Via.CLI))
    box["thread"].join(10)
    assert box["result"] == ["U_A:True:slack", "U_B:True:cli"]
    assert actions(engine, run_id).count("answer.received") == 2
    # The flow accepted the quorum's answers together: its record names everyone's.
    (accepted,) = [r for r in engine.audit_trail(run_id) if r.action == "answer.accepted"]
    assert accepted.data["responders"] == ["U_A", "U_B"]
    assert actions(engine, run_id).count("refused") == 1


def test_a_quorum_open_to_anyone_counts_each_person_once_the_caller_too(
    engine: Engine,
) -> None:
    box = run_in_thread(ap_open_quorum)
    run_id = waiting_run(engine, "ap-open-quorum")
    # Without a name, the answer is whoever runs this code's, once.
    me = Actor.python().id
    engine.resume(run_id, {"approved": True})
    with pytest.raises(ResponderNotAllowed, match=f"{me} already answered"):
        engine.resume(run_id, {"approved": True})
    assert engine.get_pause(run_id, "1").answered_by == (me,)
    engine.resume(run_id, {"approved": False}, "U_Y")
    box["thread"].join(10)
    assert box["result"] == [f"{me}:True", "U_Y:False"]


@flow(name="ap-not-mine", forbid_starter=True)
def ap_not_mine() -> bool:
    return pause_flow_run(Decision, timeout=30).approved


def test_an_answer_without_a_name_is_the_callers_and_cannot_pass_forbid_starter(
    engine: Engine,
) -> None:
    """The starter was refused under their own name, and then answered by leaving it out:
    accepted, with nobody in the audit trail."""
    box = run_in_thread(ap_not_mine)  # started from Python: by whoever runs this code
    run_id = waiting_run(engine, "ap-not-mine")
    with pytest.raises(ResponderNotAllowed, match="the person who started a run may not"):
        resume_flow_run(run_id, {"approved": True})
    engine.resume(run_id, {"approved": True}, "U_OTHER")
    box["thread"].join(10)
    assert box["result"] is True
    refused = [r for r in engine.audit_trail(run_id) if r.action == "refused"]
    assert [(r.actor_id, r.via) for r in refused] == [(Actor.python().id, Via.PYTHON)]


class Reasoned(RunInput):
    approved: bool
    reason: str = ""

    @pydantic.field_validator("reason")
    @classmethod
    def not_bad(cls, reason: str) -> str:
        if reason == "bad":
            raise ValueError("reason may not be 'bad'")
        return reason


@flow(name="ap-reasoned-quorum", approvers=["U_A", "U_B", "U_C"])
def ap_reasoned_quorum() -> str:
    try:
        pause_flow_run(Reasoned, timeout=30, quorum=2)
    except pydantic.ValidationError:
        return "refused"
    return "accepted"


def test_a_quorum_refused_by_its_model_names_whose_answer_was_refused(engine: Engine) -> None:
    """The refusal named whoever answered last (here Bob, whose answer was fine)."""
    box = run_in_thread(ap_reasoned_quorum)
    run_id = waiting_run(engine, "ap-reasoned-quorum")
    engine.resume(run_id, {"approved": True, "reason": "bad"}, "U_A")
    engine.resume(run_id, {"approved": True, "reason": "fine"}, "U_B")
    box["thread"].join(10)
    assert box["result"] == "refused"
    (rejected,) = [r for r in engine.audit_trail(run_id) if r.action == "answer.rejected"]
    assert rejected.data["responder"] == "U_A"
    assert rejected.data["responders"] == ["U_A", "U_B"]
    assert "reason may not be 'bad'" in json.dumps(rejected.data)
    events = engine.store.events_after(0, limit=1000)
    (event,) = [e for e in events if e.run_id == run_id and e.kind.value == "input_rejected"]
    assert (event.data["responder"], event.data["response"]) == (
        "U_A",
        {"approved": True, "reason": "bad"},
    )


def test_a_late_answer_to_a_quorum_names_everyone_who_answered_it(engine: Engine) -> None:
    """It named only the last of them ("already answered by U_B")."""
    box = run_in_thread(ap_reasoned_quorum)
    run_id = waiting_run(engine, "ap-reasoned-quorum")
    engine.resume(run_id, {"approved": True}, "U_A")
    engine.resume(run_id, {"approved": True}, "U_B")
    box["thread"].join(10)
    with pytest.raises(AlreadyAnswered) as late:
        engine.resume(run_id, {"approved": True}, "U_C")
    assert str(late.value) == f"input '1' of run {run_id} was already answered by U_A and U_B"
    assert late.value.responders == ("U_A", "U_B")


def test_quorum_ends_early_on_a_veto(engine: Engine) -> None:
    box = run_in_thread(ap_quorum)
    run_id = waiting_run(engine, "ap-quorum")
    engine.resume(run_id, {"approved": False, "comment": "not today"}, "U_C")
    box["thread"].join(10)
    assert box["result"] == ["U_C:False:python", "vetoed"]


def test_quorum_on_a_suspended_run(engine: Engine) -> None:
    from signoff.engine import RunSuspended, Worker

    with pytest.raises(RunSuspended) as suspended:
        ap_suspend_quorum()
    run_id = suspended.value.run_id
    engine.resume(run_id, {"approved": True}, "U_A")
    assert engine.get_run(run_id).state is RunState.SUSPENDED
    engine.resume(run_id, {"approved": True}, "U_B")
    worker = Worker(engine)
    worker.start()
    try:
        wait_for(lambda: engine.get_run(run_id).state is RunState.COMPLETED, what="completed")
    finally:
        worker.stop()
    assert engine.get_run(run_id).result == "2"


def test_a_quorum_that_is_no_number_of_people_is_refused_alike_on_either_database(
    engine: Engine,
) -> None:
    @flow(name="ap-bad-quorum")
    def bad(quorum: Any) -> None:
        pause_flow_run(Decision, timeout=30, quorum=quorum)

    for quorum in (0, -1, True, 2.5, "2"):
        with pytest.raises(ValueError, match=r"^quorum must be a whole number of people"):
            bad(quorum)
    # Past what a pause can wait for: on PostgreSQL this was the database's own error
    # ("integer out of range"), and SQLite stored a pause no one could ever complete.
    for quorum in (1001, 10**12):
        with pytest.raises(ValueError, match=rf"^quorum must be .* up to 1,000 \(got {quorum}\)"):
            bad(quorum)
    assert engine.list_runs([RunState.PAUSED], flow_name="ap-bad-quorum") == []


def test_veto_must_name_a_bool_field(engine: Engine) -> None:
    @flow(name="ap-bad-veto")
    def bad() -> None:
        pause_flow_run(Decision, quorum=2, veto="comment")

    with pytest.raises(ValueError, match="veto='comment' must name a bool field"):
        bad()


def test_escalation_options_that_cannot_work_are_refused_by_name(engine: Engine) -> None:
    @flow(name="ap-bad-escalation")
    def bad(after: object, to: list[str]) -> None:
        pause_flow_run(Decision, escalate_after=after, escalate_to=to)  # type: ignore[arg-type]

    for after in (0, -5, float("inf"), 4e9):
        with pytest.raises(ValueError, match=r"^escalate_after must be more than 0 and up to "):
            bad(after, ["U_BOSS"])
    with pytest.raises(TypeError, match=r"^escalate_after must be a number of seconds"):
        bad("1h", ["U_BOSS"])
    with pytest.raises(ValueError, match="escalate_after needs escalate_to"):
        bad(60, [])


def test_a_slack_id_in_lowercase_is_refused_saying_how_slack_spells_it(engine: Engine) -> None:
    # Ids match exactly: approvers=["u0bob"] let nobody answer, as Slack's ids are uppercase.
    for option in ("approvers", "starters", "cancellers"):
        with pytest.raises(ValueError, match=rf"^{option} id 'u0bob' would match nobody: "):
            flow(name=f"ap-lower-{option}", **{option: ["U0ALICE", "u0bob"]})(lambda: None)

    @flow(name="ap-lower-pause")
    def lower(approvers: Any = None, escalate_to: Any = ()) -> None:
        pause_flow_run(
            Decision,
            timeout=30,
            approvers=approvers,
            escalate_after=60 if escalate_to else None,
            escalate_to=escalate_to,
        )

    with pytest.raises(ValueError, match=r"\(did you mean S0OPS\?\)$"):
        lower(approvers=["s0ops"])
    with pytest.raises(ValueError, match=r"^escalate_to id 'w0boss' .* uppercase"):
        lower(approvers=["U0ALICE"], escalate_to=["w0boss"])
    # names that are no Slack id stay anyone's to use
    flow(name="ap-lower-names", approvers=["alice", "user1", "sam2", "SAM", "U0BOB"])(lambda: None)


def test_a_decision_handed_to_a_slack_id_in_lowercase_is_refused_and_stays_put(
    engine: Engine,
) -> None:
    """reassign(to="u0bob") took the decision from its approver and gave it to an id no
    Slack user has: nobody could answer it any more."""
    box = run_in_thread(ap_guarded)
    run_id = waiting_run(engine, "ap-guarded")
    with pytest.raises(ValueError, match=r"^the id to reassign to 'u0bob' .*did you mean U0BOB"):
        engine.reassign(run_id, "u0bob", "U_ALICE")
    assert engine.waiting_pause(run_id).approvers == ("U_ALICE", "S_OPS")
    engine.resume(run_id, {"approved": True}, "U_ALICE")
    box["thread"].join(10)
    assert box["result"] is True


def test_who_may_act_is_a_list_of_ids_and_anything_else_is_refused_by_name(
    engine: Engine,
) -> None:
    # One id given as text would be read letter by letter: "U0BOB" as U, 0, B, O, B.
    for option in ("approvers", "starters", "cancellers"):
        with pytest.raises(TypeError, match=rf"^{option} must be a list .*\[\'U0BOB\'\]"):
            flow(name=f"ap-bad-{option}", **{option: "U0BOB"})(lambda: None)
    with pytest.raises(ValueError, match=r"^approvers holds an empty id \(id 2\)"):
        flow(name="ap-bad-empty", approvers=["U0BOB", ""])(lambda: None)
    with pytest.raises(ValueError, match=r"^starters holds ' U0BOB' \(id 1\), with spaces"):
        flow(name="ap-bad-spaces", starters=[" U0BOB"])(lambda: None)
    with pytest.raises(TypeError, match=r"^cancellers holds 7 \(id 1\)"):
        flow(name="ap-bad-number", cancellers=[7])(lambda: None)

    @flow(name="ap-bad-pause")
    def bad(approvers: Any = None, escalate_after: float | None = None, escalate_to: Any = ()):
        pause_flow_run(
            Decision,
            timeout=30,
            approvers=approvers,
            escalate_after=escalate_after,
            escalate_to=escalate_to,
        )

    with pytest.raises(TypeError, match=r"^approvers must be a list .*\['S0SRE'\]"):
        bad(approvers="S0SRE")
    with pytest.raises(TypeError, match=r"^escalate_to must be a list .*\['S0ONCALL'\]"):
        bad(escalate_after=60, escalate_to="S0ONCALL")
    with pytest.raises(ValueError, match=r"^escalate_to holds an empty id \(id 1\)"):
        bad(escalate_after=60, escalate_to=[" "])
    # An empty list would either drop the flow's approvers or be ignored: neither is sure.
    with pytest.raises(ValueError, match=r"^approvers is empty: name who may answer"):
        bad(approvers=[])
    assert engine.list_runs([RunState.PAUSED], flow_name="ap-bad-pause") == []


def test_an_id_with_spaces_around_it_is_refused_as_no_one(engine: Engine) -> None:
    # " U_A" would count as a second person beside "U_A" in a quorum, and as no one the
    # run's starter or an approver is.
    box = run_in_thread(ap_open_quorum)
    run_id = waiting_run(engine, "ap-open-quorum")
    engine.resume(run_id, {"approved": True}, "U_A")
    for spaced in (" U_A", "U_A "):
        with pytest.raises(ValueError, match=r"^actor id '.*' has spaces around it"):
            engine.resume(run_id, {"approved": True}, spaced)
    with pytest.raises(ValueError, match=r"names group ' S_OPS', with spaces"):
        Actor("U_B", groups=frozenset({" S_OPS"}))
    assert engine.get_pause(run_id, "1").answered_by == ("U_A",)
    engine.resume(run_id, {"approved": False}, "U_B")
    box["thread"].join(10)
    assert box["result"] == ["U_A:True", "U_B:False"]


def test_a_decision_is_not_handed_to_an_id_with_spaces_around_it(engine: Engine) -> None:
    box = run_in_thread(ap_guarded)
    run_id = waiting_run(engine, "ap-guarded")
    with pytest.raises(NotAllowed, match=r"'U_DAVE ' has spaces around it"):
        engine.reassign(run_id, "U_DAVE ", by="U_ALICE")
    # Nothing changed: U_ALICE may still answer it.
    assert engine.get_pause(run_id, "1").approvers == ("U_ALICE", "S_OPS")
    engine.resume(run_id, {"approved": True}, "U_ALICE")
    box["thread"].join(10)
    assert box["result"] is True


def test_escalation_adds_approvers_once(engine: Engine, make_engine) -> None:
    # Escalation 30 s away, swept by hand: with ap-escalate's 0.2 s, a slow machine's
    # timer could escalate before U_BOSS's first answer, which is then let in.
    box = run_in_thread(ap_escalate_later)
    run_id = waiting_run(engine, "ap-escalate-later")
    with pytest.raises(ResponderNotAllowed):
        engine.resume(run_id, {"approved": True}, "U_BOSS")
    other = make_engine()
    due = engine.store.clock() + timedelta(seconds=31)
    # Two processes sweep at once: one escalates.
    results = [engine.escalate_due_pauses(due), other.escalate_due_pauses(due)]
    assert sorted(len(r) for r in results) == [0, 1]
    assert engine.get_pause(run_id, "1").approvers == ("U_A", "U_B", "U_BOSS")
    engine.resume(run_id, {"approved": True}, "U_BOSS")
    box["thread"].join(10)
    assert box["result"] is True
    escalations = [r for r in engine.audit_trail(run_id) if r.action == "pause.escalated"]
    assert len(escalations) == 1 and escalations[0].data["added"] == ["U_BOSS"]


@flow(name="ap-escalate-open")
def ap_escalate_open() -> bool:
    return pause_flow_run(
        Decision, timeout=60, escalate_after=1, escalate_to=["U_DAVE", "U_ERIN"]
    ).approved


def test_escalating_a_pause_anyone_may_answer_adds_nobody_and_says_so(engine: Engine) -> None:
    """Its trail said "added U_DAVE, U_ERIN" (data {"added": [...]}), while its approvers
    rightly stayed empty: they were told, not added."""
    box = run_in_thread(ap_escalate_open)
    run_id = waiting_run(engine, "ap-escalate-open")
    assert engine.escalate_due_pauses(engine.store.clock() + timedelta(seconds=2)) == [run_id]
    assert engine.get_pause(run_id, "1").approvers == ()
    [record] = [r for r in engine.audit_trail(run_id) if r.action == "pause.escalated"]
    assert (record.data["added"], record.data["notified"]) == ([], ["U_DAVE", "U_ERIN"])
    assert describe(record).endswith("pause.escalated [1] — to U_DAVE, U_ERIN")
    engine.resume(run_id, {"approved": True}, "U_ZED")  # still anyone's to answer
    box["thread"].join(10)
    assert box["result"] is True


# PostgreSQL only: on SQLite a writer holds the whole database, not a row.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_an_escalation_does_not_undo_a_hand_over_made_while_it_ran(engine: Engine) -> None:
    """The escalation read the approvers unlocked and wrote them back with its own added:
    a hand-over committed in between was undone (U_DAVE, handed the decision, was refused,
    and so was U_A, who had handed it on)."""
    box = run_in_thread(ap_escalate_later)
    run_id = waiting_run(engine, "ap-escalate-later")
    db = engine.store.engine
    # A hand-over from U_A to U_DAVE, written and not committed yet.
    handing = db.connect()
    handing.execute(
        text("UPDATE pauses SET approvers = CAST(:to AS json) WHERE run_id = :run"),
        {"to": '["U_B", "U_DAVE"]', "run": run_id},
    )
    escalated: dict[str, list[str]] = {}
    due = engine.store.clock() + timedelta(seconds=31)
    sweep = threading.Thread(target=lambda: escalated.update(runs=engine.escalate_due_pauses(due)))
    sweep.start()
    wait_until_blocked(db, "the escalation to wait for the row the hand-over holds")
    handing.commit()
    handing.close()
    sweep.join(10)
    assert escalated == {"runs": [run_id]}
    assert engine.get_pause(run_id, "1").approvers == ("U_B", "U_DAVE", "U_BOSS")
    engine.resume(run_id, {"approved": True}, "U_DAVE")
    box["thread"].join(10)
    assert box["result"] is True


def test_an_escalation_due_with_no_worker_to_apply_it_lets_its_people_answer(
    engine: Engine,
) -> None:
    """Escalations are timers a worker fires: with none running, U_BOSS was refused an
    hour after the pause said they could answer."""
    box = run_in_thread(ap_escalate_later)
    run_id = waiting_run(engine, "ap-escalate-later")
    pause = engine.get_pause(run_id, "1")
    assert pause is not None and pause.escalate_at is not None
    due = pause.escalate_at + timedelta(seconds=1)
    # Its escalation is due, and nothing has applied it.
    engine.store.clock = lambda: due  # type: ignore[method-assign]
    answered = engine.resume(run_id, {"approved": True}, "U_BOSS")
    assert answered.responder == "U_BOSS"
    box["thread"].join(10)
    assert box["result"] is True
    escalations = [r for r in engine.audit_trail(run_id) if r.action == "pause.escalated"]
    assert [r.data["added"] for r in escalations] == [["U_BOSS"]]
    assert engine.get_pause(run_id, "1").approvers == ("U_A", "U_B", "U_BOSS")


@flow(name="ap-escalate-barred", approvers=["U_A", "U_B"], forbid_starter=True)
def ap_escalate_barred() -> bool:
    return pause_flow_run(
        Decision, timeout=120, escalate_after=60, escalate_to=["U_B", "U_STARTER", "U_BOSS"]
    ).approved


def test_escalation_adds_no_one_who_could_never_answer(engine: Engine) -> None:
    """The starter a pause forbids, and whoever handed it on, were added and told they
    "may answer it now", and refused when they tried."""
    from signoff.engine import Worker

    run = engine.submit("ap-escalate-barred", started_by="U_STARTER")
    worker = Worker(engine)
    worker.start()
    try:
        run_id = waiting_run(engine, "ap-escalate-barred")
        engine.reassign(run_id, "U_C", by="U_B")
        escalated = engine.escalate_due_pauses(engine.store.clock() + timedelta(seconds=61))
        assert escalated == [run_id]
        [record] = [r for r in engine.audit_trail(run_id) if r.action == "pause.escalated"]
        assert record.data["added"] == ["U_BOSS"]
        assert "U_STARTER" not in engine.get_pause(run_id, "1").approvers
        engine.resume(run_id, {"approved": True}, "U_BOSS")
        wait_for(lambda: engine.get_run(run.id).state is RunState.COMPLETED, what="the run")
    finally:
        worker.stop()


def test_escalation_timer_is_stored_and_fires_from_a_worker(engine: Engine) -> None:
    from signoff.engine import Worker

    box = run_in_thread(ap_escalate)
    run_id = waiting_run(engine, "ap-escalate")
    wait_for(
        lambda: any(job.startswith(f"escalate:{run_id}") for job, _ in engine.timers.pending()),
        what="the stored escalation timer",
    )
    worker = Worker(engine)
    worker.start()
    try:
        wait_for(
            lambda: engine.get_pause(run_id, "1").escalated_at is not None,
            what="the escalation",
        )
    finally:
        worker.stop()
    engine.resume(run_id, {"approved": False}, "U_BOSS")
    box["thread"].join(10)
    assert box["result"] is False


def test_an_escalation_found_due_after_the_deadline_is_not_made(engine: Engine) -> None:
    """No worker ran between a pause's escalation time and its deadline: the worker that
    started after both escalated it (mentioning on-call for a question already expired,
    and auditing it), then timed it out."""
    # Escalation 30 s away, so that its own timer cannot make it before the sweeps here.
    box = run_in_thread(ap_escalate_later)
    run_id = waiting_run(engine, "ap-escalate-later")
    pause = engine.get_pause(run_id, "1")
    assert pause.deadline is not None and pause.escalate_at is not None
    assert engine.escalate_due_pauses(pause.deadline + timedelta(seconds=1)) == []
    assert "pause.escalated" not in [r.action for r in engine.audit_trail(run_id)]
    # In time, it is made.
    assert engine.escalate_due_pauses(pause.escalate_at + timedelta(seconds=1)) == [run_id]
    engine.resume(run_id, {"approved": True}, "U_BOSS")
    box["thread"].join(10)
    assert box["result"] is True


def test_reassign_hands_the_decision_over(engine: Engine) -> None:
    box = run_in_thread(ap_guarded)
    run_id = waiting_run(engine, "ap-guarded")
    with pytest.raises(NotAllowed, match="reassign"):
        engine.reassign(run_id, "U_EVE", by="U_EVE")
    pause = engine.reassign(run_id, "U_DAVE", by=Actor("U_ALICE", name="Alice", via=Via.SLACK))
    assert pause.approvers == ("S_OPS", "U_DAVE")
    assert pause.delegations[0].by == "U_ALICE" and pause.delegations[0].to == "U_DAVE"
    with pytest.raises(ResponderNotAllowed):
        engine.resume(run_id, {"approved": True}, "U_ALICE")
    engine.resume(run_id, {"approved": True}, "U_DAVE")
    box["thread"].join(10)
    record = next(r for r in engine.audit_trail(run_id) if r.action == "pause.reassigned")
    assert record.actor_id == "U_ALICE" and record.data["to"] == "U_DAVE"


def test_who_answered_a_quorum_has_no_decision_left_to_hand_over(
    engine: Engine, make_engine
) -> None:
    box = run_in_thread(ap_quorum)
    run_id = waiting_run(engine, "ap-quorum")
    engine.resume(run_id, {"approved": True}, "U_A")
    # U_A's answer counts; handing the pause on would let U_A pick the second person too.
    with pytest.raises(NotAllowed, match="U_A already answered it"):
        engine.reassign(run_id, "U_D", by="U_A")
    assert engine.get_pause(run_id, "1").approvers == ("U_A", "U_B", "U_C")
    refused = engine.audit_trail(run_id)[-1]
    assert (refused.action, refused.actor_id, refused.data["to"]) == ("refused", "U_A", "U_D")
    # Someone who has not answered yet still may, and so may an admin.
    engine.reassign(run_id, "U_D", by="U_B")
    make_engine(admins=["U_ROOT"]).reassign(run_id, "U_E", by="U_ROOT")
    engine.resume(run_id, {"approved": True}, "U_D")
    box["thread"].join(10)
    assert box["result"] == ["U_A:True:python", "U_D:True:python"]


def test_a_quorum_is_never_handed_to_fewer_people_than_it_needs(engine: Engine) -> None:
    box = run_in_thread(ap_quorum)
    run_id = waiting_run(engine, "ap-quorum")
    # Handed to someone who may already answer, it would wait on U_B and U_C alone.
    with pytest.raises(NotAllowed, match="U_B may already answer it, and it needs 2 different"):
        engine.reassign(run_id, "U_B", by="U_A")
    assert engine.get_pause(run_id, "1").approvers == ("U_A", "U_B", "U_C")
    refused = engine.audit_trail(run_id)[-1]
    assert (refused.action, refused.actor_id, refused.data["to"]) == ("refused", "U_A", "U_B")
    engine.reassign(run_id, "U_D", by="U_A")
    engine.resume(run_id, {"approved": True}, "U_B")
    engine.resume(run_id, {"approved": True}, "U_D")
    box["thread"].join(10)
    assert box["result"] == ["U_B:True:python", "U_D:True:python"]

    # A quorum anyone may answer would become one person's alone: it could never end.
    box = run_in_thread(ap_open_quorum)
    run_id = waiting_run(engine, "ap-open-quorum")
    with pytest.raises(
        NotAllowed, match="anyone may answer it, and it needs 2 different people: U_D alone"
    ):
        engine.reassign(run_id, "U_D", by="U_A")
    assert engine.get_pause(run_id, "1").approvers == ()
    engine.resume(run_id, {"approved": True}, "U_A")
    engine.resume(run_id, {"approved": False}, "U_D")
    box["thread"].join(10)
    assert box["result"] == ["U_A:True", "U_D:False"]


def test_a_group_member_who_handed_the_decision_on_may_no_longer_answer_it(
    engine: Engine,
) -> None:
    engine.set_group_directory(Directory({"S_OPS": {"U_OPS1", "U_OPS2"}}))
    box = run_in_thread(ap_guarded)
    run_id = waiting_run(engine, "ap-guarded")
    ops1 = Actor("U_OPS1", via=Via.SLACK)
    # U_OPS1 answers through the group, which stays an approver for the rest of it.
    assert [run.id for run, _ in engine.waiting_on(ops1)] == [run_id]
    assert engine.reassign(run_id, "U_DAVE", by=ops1).approvers == ("U_ALICE", "S_OPS", "U_DAVE")
    with pytest.raises(ResponderNotAllowed, match="U_OPS1 handed it to U_DAVE"):
        engine.resume(run_id, {"approved": True}, ops1)
    assert engine.waiting_on(ops1) == []
    with pytest.raises(NotAllowed, match="reassign"):
        engine.reassign(run_id, "U_EVE", by=ops1)
    # The rest of the group still may, and so may the person it was handed to, who may
    # also hand it back.
    assert [run.id for run, _ in engine.waiting_on(Actor("U_OPS2", via=Via.SLACK))] == [run_id]
    engine.reassign(run_id, "U_OPS1", by="U_DAVE")
    engine.resume(run_id, {"approved": True}, ops1)
    box["thread"].join(10)
    assert box["result"] is True


def test_verify_finds_an_edited_and_a_deleted_record(engine: Engine) -> None:
    for _ in range(3):
        engine.submit("ap-guarded", started_by="U_CAROL")
    assert engine.verify_audit().ok
    assert engine.verify_audit().checked == 3
    with engine.store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET actor_id = 'U_MALLORY' WHERE seq = 2"))
    broken = engine.verify_audit()
    assert not broken.ok and broken.broken.seq == 2
    assert "changed after it was written" in broken.broken.reason
    with engine.store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET actor_id = 'U_CAROL' WHERE seq = 2"))
        conn.execute(text("DELETE FROM audit_records WHERE seq = 2"))
    broken = engine.verify_audit()
    assert broken.broken.seq == 2 and "missing" in broken.broken.reason


def test_a_process_that_trusts_the_chain_head_finds_it_moved(
    engine: Engine, make_engine, caplog: pytest.LogCaptureFixture
) -> None:
    # Two processes' stores. On PostgreSQL one that appended twice in a row takes its own
    # last record as the head; when the other appended in between, its INSERT finds the
    # head moved and the records are chained again in the same transaction.
    other = make_engine()
    caplog.set_level(logging.DEBUG, logger="signoff.engine.store.audit")
    for _ in range(3):
        engine.submit("ap-guarded", started_by="U_CAROL")
    other.submit("ap-guarded", started_by="U_CAROL")
    engine.submit("ap-guarded", started_by="U_CAROL")
    result = engine.verify_audit()
    assert result.ok, result.broken
    assert result.checked == 5
    if not engine.store.is_sqlite:
        assert any(getattr(r, "action", None) == "audit_head_moved" for r in caplog.records)


def test_chain_stays_whole_under_concurrent_writers(engine: Engine, make_engine) -> None:
    other = make_engine()
    barrier = threading.Barrier(8)

    def submit(which: Engine) -> None:
        barrier.wait()
        for _ in range(5):
            which.submit("ap-guarded", started_by="U_CAROL")

    threads = [
        threading.Thread(target=submit, args=(engine if i % 2 else other,)) for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    result = engine.verify_audit()
    assert result.ok, result.broken
    assert result.checked == 40


def test_export_filters_and_formats(engine: Engine) -> None:
    run = engine.submit("ap-guarded", started_by="U_CAROL")
    with pytest.raises(NotAllowed):
        engine.submit("ap-guarded", started_by="U_X")
    out = io.StringIO()
    assert write_jsonl(engine.audit_records(flow_name="ap-guarded"), out) == 2
    first = json.loads(out.getvalue().splitlines()[0])
    assert first["run_id"] == run.id and first["action"] == "run.started"
    csv_out = io.StringIO()
    later = engine.store.clock() + timedelta(hours=1)
    assert write_csv(engine.audit_records(since=later), csv_out) == 0
    assert csv_out.getvalue().startswith("seq,at,action,")


def test_streamed_export_matches_the_records_field_for_field(engine: Engine) -> None:
    run = engine.submit("ap-guarded", started_by="U_CAROL")
    # Quotes, a backslash and non-ASCII text: each escaped its own way in JSON and CSV.
    odd = Actor("U_ZOE", name='Zoë "the auditor" O\'Brien \\ ✓', via=Via.CLI)
    data = {"input": {"note": 'naïve ✓ \\ "quoted"\ttab', "n": [1, 2.5, None, True]}}
    assert engine.record_once(run.id, "odd", AuditAction.REMINDER_SENT, data=data, actor=odd)
    expected = io.StringIO()
    write_jsonl(engine.audit_records(), expected)
    streamed = io.StringIO()
    assert engine.export_audit(streamed) == 2
    assert [json.loads(line) for line in streamed.getvalue().splitlines()] == [
        json.loads(line) for line in expected.getvalue().splitlines()
    ]
    assert json.loads(streamed.getvalue().splitlines()[1])["actor_name"] == odd.name
    expected_csv, streamed_csv = io.StringIO(), io.StringIO()
    write_csv(engine.audit_records(), expected_csv)
    assert engine.export_audit(streamed_csv, fmt="csv") == 2

    def rows(text: str) -> list[dict[str, object]]:
        parsed: list[dict[str, object]] = [dict(r) for r in csv.DictReader(io.StringIO(text))]
        for row in parsed:
            row["data"] = json.loads(str(row["data"]))
        return parsed

    assert rows(streamed_csv.getvalue()) == rows(expected_csv.getvalue())
    assert engine.export_audit(io.StringIO(), flow_name="no-such-flow") == 0


def test_a_name_a_spreadsheet_would_run_as_a_formula_is_exported_to_csv_as_text(
    engine: Engine,
) -> None:
    run = engine.submit("ap-guarded", started_by="U_CAROL")
    sly = Actor("U_SLY", name='=HYPERLINK("https://evil.example","open me")', via=Via.SLACK)
    assert engine.record_once(run.id, "sly", AuditAction.REMINDER_SENT, actor=sly)
    for export in (
        lambda out: engine.export_audit(out, fmt="csv"),
        lambda out: write_csv(engine.audit_records(), out),
    ):
        out = io.StringIO()
        export(out)
        names = [row["actor_name"] for row in csv.DictReader(io.StringIO(out.getvalue()))]
        assert names[-1] == "'" + str(sly.name)
    lines = io.StringIO()
    engine.export_audit(lines)
    assert json.loads(lines.getvalue().splitlines()[-1])["actor_name"] == sly.name
    assert engine.verify_audit().ok


def test_waiting_on_lists_only_what_each_person_may_answer_newest_first(engine: Engine) -> None:
    made = []
    for _ in range(2):
        with pytest.raises(Exception, match="suspended"):
            ap_suspend_quorum()
        made.append(engine.list_runs([RunState.SUSPENDED], flow_name="ap-suspend-quorum")[0].id)
    older, newer = made
    alice, bob = Actor("U_A", via=Via.SLACK), Actor("U_B", via=Via.SLACK)
    engine.resume(newer, {"approved": True}, alice)  # one of the two answers it needs

    def listed(actor: Actor, limit: int = 20) -> list[str]:
        return [run.id for run, _ in engine.waiting_on(actor, limit=limit)]

    assert listed(alice) == [older]  # she already answered the newer one
    assert listed(bob) == [newer, older]
    assert listed(bob, limit=1) == [newer]
    assert listed(Actor("U_NOT_AN_APPROVER", via=Via.SLACK)) == []
    [(run, pause)] = engine.waiting_on(alice)
    assert (run.flow_name, pause.status, pause.quorum) == (
        "ap-suspend-quorum",
        PauseStatus.WAITING,
        2,
    )


@flow(name="ap-no-self-approval", forbid_starter=True)
def ap_no_self_approval() -> bool:
    return pause_flow_run(Decision, timeout=30).approved


def test_whoever_calls_a_flow_from_python_started_it_and_may_not_approve_it(
    engine: Engine,
) -> None:
    """The trail said they started it, but the run said nobody had: forbid_starter let the
    person who ran the script approve their own run."""
    box = run_in_thread(ap_no_self_approval)
    run_id = waiting_run(engine, "ap-no-self-approval")
    me = Actor.python().id
    assert engine.get_run(run_id).started_by == me
    assert [r.id for r in engine.list_runs(started_by=me, flow_name="ap-no-self-approval")] == [
        run_id
    ]
    with pytest.raises(ResponderNotAllowed, match="started a run may not answer it"):
        engine.resume(run_id, {"approved": True}, me)
    engine.resume(run_id, {"approved": True}, "U_OTHER")
    box["thread"].join(10)
    assert box["result"] is True


def test_a_quorum_open_to_anyone_counts_a_slack_id_once_whatever_its_case(
    engine: Engine,
) -> None:
    """Answered as "U0ALICE" and again as "u0alice", the quorum of two was met by one
    person: ids match exactly, and a lowercase Slack id was refused only where rules name
    ids. It is refused as an actor's id too, saying how Slack spells it."""
    box = run_in_thread(ap_open_quorum)
    run_id = waiting_run(engine, "ap-open-quorum")
    engine.resume(run_id, {"approved": True}, "U0ALICE")
    message = r"^actor id 'u0alice' would match nobody: .*\(did you mean U0ALICE\?\)$"
    with pytest.raises(ValueError, match=message):
        engine.resume(run_id, {"approved": True}, "u0alice")
    with pytest.raises(ValueError, match=message):
        engine.resume(run_id, {"approved": True}, Actor("u0alice", via=Via.SLACK))
    with pytest.raises(ValueError, match=r"^actor 'U0BOB''s group 's0ops' would match nobody"):
        Actor("U0BOB", groups=frozenset({"s0ops"}))
    pause = engine.get_pause(run_id, "1")
    assert (pause.status, pause.answered_by) == (PauseStatus.WAITING, ("U0ALICE",))
    engine.resume(run_id, {"approved": False}, "U0BOB")
    box["thread"].join(10)
    assert box["result"] == ["U0ALICE:True", "U0BOB:False"]
