"""The view rule (who may see a run's details in Slack), through the engine's API: open
flows stay open; a flow or pause that names people shows its runs to them, to whoever
started or acted on the run, and to admins; a refusal is named and recorded."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, text

from signoff.engine import Engine, RunState, Worker, flow, pause_flow_run
from signoff.engine.actors import Actor, Via
from signoff.engine.input import RunInput
from signoff.engine.permissions import Action
from signoff.engine.runs import Pause
from tests.support.waiting import wait_for


class Go(RunInput):
    approved: bool


@flow(name="vr-open")
def vr_open() -> int:
    return 1


@flow(name="vr-starters", starters=["U_CAROL"])
def vr_starters() -> int:
    return 1


@flow(name="vr-cancellers", cancellers=["S_OPS"])
def vr_cancellers() -> int:
    return 1


@flow(name="vr-audited", viewers=["S_AUDIT"])
def vr_audited() -> int:
    return 1


@flow(name="vr-paused")
def vr_paused() -> bool:
    return pause_flow_run(Go, timeout=60, approvers=["U_PAM"]).approved


def slack(user: str, *groups: str) -> Actor:
    return Actor(user, via=Via.SLACK, groups=frozenset(groups))


def may_view(engine: Engine, actor: Actor, run_id: str) -> bool:
    return engine.refusal(Action.VIEW, actor, run_id) is None


def test_a_run_of_a_flow_that_names_nobody_is_shown_to_anyone(engine: Engine) -> None:
    run = engine.submit("vr-open", started_by="U_SAM")
    assert may_view(engine, slack("U_ANYONE"), run.id)
    assert [r.id for r in engine.visible(slack("U_ANYONE"), [run])] == [run.id]


def test_a_flow_limited_to_starters_shows_its_runs_to_them_and_whoever_started_them(
    make_engine,
) -> None:
    engine = make_engine(admins=["U_ROOT"])
    run = engine.submit("vr-starters", started_by="U_CAROL")
    open_run = engine.submit("vr-open", started_by="U_SAM")
    refused = engine.refusal(Action.VIEW, slack("U_MALLORY"), run.id, record=True)
    assert refused is not None
    assert "runs of 'vr-starters' are shown only to whoever started them" in refused.reason
    assert "U_CAROL" in refused.allowed
    [record] = [r for r in engine.audit_trail(run.id) if r.action == "refused"]
    assert (record.actor_id, record.data["action"]) == ("U_MALLORY", "view")
    # A refused attempt is not acting on the run: it does not let them in.
    assert not may_view(engine, slack("U_MALLORY"), run.id)
    assert may_view(engine, slack("U_CAROL"), run.id)
    assert may_view(engine, slack("U_ROOT"), run.id)
    # A list keeps its order and leaves out only what the person may not view.
    assert [r.id for r in engine.visible(slack("U_MALLORY"), [open_run, run])] == [open_run.id]
    assert [r.id for r in engine.visible(slack("U_ROOT"), [open_run, run])] == [
        open_run.id,
        run.id,
    ]


def test_a_flow_s_cancellers_may_view_its_runs_through_a_group(engine: Engine) -> None:
    run = engine.submit("vr-cancellers", started_by="U_SAM")
    assert may_view(engine, slack("U_OLGA", "S_OPS"), run.id)
    assert may_view(engine, slack("U_SAM"), run.id)
    assert not may_view(engine, slack("U_MALLORY"), run.id)


def test_a_pause_s_approvers_and_whoever_acted_on_it_may_view_the_run(
    engine: Engine, worker: Worker
) -> None:
    run = engine.submit("vr-paused", started_by="U_SAM")
    wait_for(lambda: engine.get_run(run.id).state is RunState.PAUSED, what="the run to pause")
    assert may_view(engine, slack("U_PAM"), run.id)
    assert not may_view(engine, slack("U_NEW"), run.id)
    # Handed on: the new approver may view it, and so may whoever handed it on.
    engine.reassign(run.id, "U_NEW", by="U_PAM")
    assert may_view(engine, slack("U_NEW"), run.id)
    assert may_view(engine, slack("U_PAM"), run.id)
    engine.resume(run.id, {"approved": True}, slack("U_NEW"))
    wait_for(lambda: engine.get_run(run.id).state.is_final, what="the run to end")
    assert may_view(engine, slack("U_NEW"), run.id)
    assert not may_view(engine, slack("U_MALLORY"), run.id)


def test_a_flow_s_viewers_may_view_its_runs_and_do_nothing_else(engine: Engine) -> None:
    """Naming viewers alone limits who sees the runs: to them, and whoever started a run."""
    run = engine.submit("vr-audited", started_by="U_SAM")
    auditor = slack("U_AUDREY", "S_AUDIT")
    assert may_view(engine, auditor, run.id)
    assert may_view(engine, slack("U_SAM"), run.id)
    refused = engine.refusal(Action.VIEW, slack("U_MALLORY"), run.id)
    assert refused is not None and ", its viewers, and admins" in refused.reason
    assert "S_AUDIT" in refused.allowed
    with pytest.raises(ValueError, match="viewers"):
        flow(name="vr-bad-viewers", viewers=[" U_X"])(lambda: None)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_page_of_runs_is_judged_in_two_reads(engine: Engine) -> None:
    """However many runs a page holds, ``visible`` reads the store twice, not per run."""
    runs = [engine.submit("vr-starters", started_by="U_CAROL") for _ in range(6)]
    reads: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)

    event.listen(engine.store.engine, "before_cursor_execute", count)
    try:
        assert engine.visible(slack("U_MALLORY"), runs) == []
    finally:
        event.remove(engine.store.engine, "before_cursor_execute", count)
    assert len(reads) == 2


def test_open_to_all_names_the_runs_whose_flow_and_pauses_name_nobody(
    engine: Engine, worker: Worker
) -> None:
    """What a private channel narrows further (``Engine.open_to_all``): an open flow's runs,
    not those of a flow naming starters or viewers, nor one whose pause names approvers."""
    open_run = engine.submit("vr-open", started_by="U_SAM")
    limited = engine.submit("vr-starters", started_by="U_CAROL")
    audited = engine.submit("vr-audited", started_by="U_SAM")
    paused = engine.submit("vr-paused", started_by="U_SAM")
    wait_for(lambda: engine.get_run(paused.id).state is RunState.PAUSED, what="the run to pause")
    runs = [engine.get_run(r.id) for r in (open_run, limited, audited, paused)]
    assert [r.id for r in engine.open_to_all(runs)] == [open_run.id]
    assert engine.open_to_all([]) == []
    engine.cancel(paused.id, by=slack("U_SAM"))


def test_a_record_of_many_runs_is_read_at_once(engine: Engine) -> None:
    runs = [engine.submit("vr-open", started_by="U_SAM") for _ in range(3)]
    engine.set_metadata(runs[0].id, "slack.thread", {"channel": "C0HR", "ts": "1.5"})
    engine.set_metadata(runs[2].id, "slack.thread", {"channel": "C0GENERAL", "ts": "2.5"})
    engine.set_metadata(runs[1].id, "other", 1)
    assert engine.metadata_of([r.id for r in runs], "slack.thread") == {
        runs[0].id: {"channel": "C0HR", "ts": "1.5"},
        runs[2].id: {"channel": "C0GENERAL", "ts": "2.5"},
    }
    assert engine.metadata_of([], "slack.thread") == {}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("stored", ["'{oops'", "CAST(X'C3' AS TEXT)", "'7'"])
def test_approvers_changed_by_hand_limit_the_run_and_fail_no_list(
    engine: Engine, stored: str
) -> None:
    """A pause's approvers edited outside Signoff (not JSON, not UTF-8, not a list) must
    not fail every list the run is on, nor open the run to everyone."""
    store = engine.store
    run = store.create_run(
        uuid.uuid4().hex, "vr-open", None, b"", {}, RunState.RUNNING, None, "U_SAM"
    )
    pause = Pause.waiting(
        run.id,
        "1",
        datetime.now(UTC),
        None,
        suspend=True,
        schema=None,
        title=None,
        description=None,
        initial={},
        approvers=(),
        forbid_starter=False,
    )
    assert store.open_pause(pause, None)
    assert may_view(engine, slack("U_ANYONE"), run.id)  # a pause anyone may answer
    with store.engine.begin() as conn:
        conn.execute(
            text(f"UPDATE pauses SET approvers = {stored} WHERE run_id = :id"), {"id": run.id}
        )
    assert engine.visible(slack("U_ANYONE"), [run]) == []
    assert [r.id for r in engine.visible(slack("U_SAM"), [run])] == [run.id]
