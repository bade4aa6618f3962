"""What the command line says when an operator acts on a decision that is not theirs
alone: a group's member cancelling or handing it on, a quorum's refused answer, a
hand-over the rules refuse."""

from __future__ import annotations

import pydantic
import pytest

from signoff.engine import Actor, Engine, RunState, Worker, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.cli.in_process import run_cli
from tests.support.running import start, waiting


@flow(name="for-sre")
def for_sre() -> bool:
    return bool(pause_flow_run(wait_for_input=bool, approvers=["S0SRE"], timeout=60))


@pytest.fixture(autouse=True)
def same_database(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", engine.settings.database_url)


@pytest.mark.parametrize("command", ["reassign", "cancel"])
def test_a_groups_member_may_hand_on_or_cancel_what_they_may_answer(
    engine: Engine, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """`--group` was only on `runs resume`: carol, in S0SRE, could answer the run from the
    command line but not hand it on or cancel it ("No such option '--group'")."""
    thread, _box = start(for_sre)
    pause = waiting(engine, "for-sre")
    to = ("--to", "dave") if command == "reassign" else ()
    # Without the group, carol may not: she may not answer it either.
    status, _out, err = run_cli(capsys, "runs", command, pause.run_id, *to, "--as", "carol")
    assert (status, err.splitlines()[-1][:21]) == (1, "error: carol may not "), err
    status, out, err = run_cli(
        capsys, "runs", command, pause.run_id, *to, "--as", "carol", "--group", "S0SRE"
    )
    assert status == 0, err
    if command == "reassign":
        assert out == f"input '1' of {pause.run_id} is now dave's to answer\n"
        assert "dave" in engine.get_pause(pause.run_id, pause.key).approvers
        engine.cancel(pause.run_id, Actor.system())
    else:
        assert out == f"cancelled {pause.run_id} by carol\n"
        assert engine.get_run(pause.run_id).state is RunState.CANCELLED
    thread.join(10)


@flow(name="not-the-starter", approvers=["alice", "bob"], forbid_starter=True)
def not_the_starter() -> bool:
    return bool(pause_flow_run(wait_for_input=bool, timeout=60))


def test_a_refused_hand_over_names_who_it_was_to_go_to(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said "alice may not reassign run ...: the person who started a run may not
    answer it": alice may hand it on; zed, who started it, may not have it."""
    run = engine.submit("not-the-starter", {}, started_by="zed")
    worker = Worker(engine)
    worker.start()
    try:
        waiting(engine, "not-the-starter")
        status, out, err = run_cli(
            capsys, "runs", "reassign", run.id, "--to", "zed", "--as", "alice"
        )
    finally:
        worker.stop()
    barred = "zed started it, and the person who started a run may not answer it"
    assert (status, out, err.splitlines()[-1]) == (
        1, "", f"error: zed may not be handed run {run.id}: {barred}"
    )  # fmt: skip
    refused = engine.audit_trail(run.id)[-1]
    assert (refused.action, refused.actor_id, dict(refused.data)) == (
        "refused", "alice", {"action": "reassign", "rule": barred, "to": "zed"}
    )  # fmt: skip


@flow(name="two-of-three", approvers=["alice", "bob", "carol"])
def two_of_three() -> int:
    return len(pause_flow_run(wait_for_input=bool, timeout=60, quorum=2))


def test_a_hand_over_to_someone_who_answered_names_them(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    thread, _box = start(two_of_three)
    pause = waiting(engine, "two-of-three")
    engine.resume(pause.run_id, {"value": True}, responder="bob")
    status, _out, err = run_cli(
        capsys, "runs", "reassign", pause.run_id, "--to", "bob", "--as", "alice"
    )
    assert (status, err.splitlines()[-1]) == (
        1,
        f"error: bob may not be handed run {pause.run_id}: bob has already answered this input",
    )
    engine.resume(pause.run_id, {"value": True}, responder="carol")
    thread.join(10)


class Checked(RunInput):
    amount: int

    @pydantic.field_validator("amount")
    @classmethod
    def small(cls, value: int) -> int:
        if value > 100:
            raise ValueError("too big")
        return value


@flow(name="checked-two-of-three", approvers=["alice", "bob", "carol"])
def checked_two_of_three() -> str:
    try:
        pause_flow_run(Checked, timeout=60, quorum=2)
    except pydantic.ValidationError:
        return "refused"
    return "accepted"


def test_a_quorums_refused_answer_is_blamed_on_who_gave_it(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """Carol's answer was too big, Bob's fine; Bob's completed the quorum and was told
    "the flow refused the answer ... as bob: amount: too big"."""
    thread, box = start(checked_two_of_three)
    pause = waiting(engine, "checked-two-of-three")
    resume = ("runs", "resume", pause.run_id, "--input")
    status, out, err = run_cli(capsys, *resume, '{"amount": 999}', "--as", "carol")
    assert (status, out[:17]) == (0, "recorded answer 1"), err
    status, out, err = run_cli(capsys, *resume, '{"amount": 1}', "--as", "bob")
    assert (status, out, err.splitlines()[-1]) == (
        1,
        "",
        f"error: the flow refused the 2 answers to {pause.run_id} (input '1'), judged "
        "together once yours as bob completed them: amount: too big (in carol's answer)",
    )
    thread.join(10)
    assert box == {"result": "refused"}
    refused = engine.get_pause(pause.run_id, pause.key)
    assert refused.errors == {"amount": "too big (in carol's answer)"}
    [record] = [r for r in engine.audit_trail(pause.run_id) if r.action == "answer.rejected"]
    assert (record.data["responder"], record.data["errors"]) == (
        "carol",
        {"amount": "too big (in carol's answer)"},
    )


@flow(name="unguarded-two-of-three", approvers=["alice", "bob", "carol"])
def unguarded_two_of_three() -> str:
    pause_flow_run(Checked, timeout=60, quorum=2)
    return "accepted"


def test_a_run_failed_by_a_quorums_refused_answer_says_whose_it_was(engine: Engine) -> None:
    """The flow does not catch the refusal, so the run fails: its message, shown by `runs
    show` and in Slack, names whose answer the model refused, not only pydantic's reason."""
    thread, _box = start(unguarded_two_of_three)
    pause = waiting(engine, "unguarded-two-of-three")
    engine.resume(pause.run_id, {"amount": 999}, responder="carol")
    engine.resume(pause.run_id, {"amount": 1}, responder="bob")
    thread.join(10)
    run = engine.get_run(pause.run_id)
    assert (run.state, run.state_message) == (
        RunState.FAILED,
        "input rejected by Checked: amount: too big (in carol's answer)",
    )
