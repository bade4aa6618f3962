"""A flow called from another flow asks in Slack, and the answer reaches the outer flow."""

from __future__ import annotations

from signoff.bot.testing import running_bot
from signoff.engine import Engine, PauseStatus, RunState, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.waiting import wait_for


class Sign(RunInput):
    approve: bool
    note: str = ""


@flow(name="nested-ask", approvers=["U0BOB"])
def nested_ask(change: str) -> bool:
    return pause_flow_run(wait_for_input=Sign).approve


@flow(name="nested-release")
def nested_release(change: str) -> str:
    approved = nested_ask(change)
    return f"{change}: {'shipped' if approved else 'held'}"


def test_a_pause_in_a_nested_flow_is_answered_through_slack(engine: Engine) -> None:
    with running_bot(engine=engine) as bot:
        parent = engine.submit("nested-release", {"change": "CHG-7"}, started_by="U0CAROL")
        child = wait_for(
            lambda: next(iter(engine.list_runs(flow_name="nested-ask")), None),
            what="the nested run",
        )
        prompt = bot.root_message(child.id)
        assert "nested-ask" in prompt.text
        # The nested run is asked for with the starter and approvers of the outer one.
        assert engine.get_run(child.id).started_by == "U0CAROL"
        bot.driver.click("bob", prompt, action_id="provide_input")
        bot.slack.wait_for(lambda ws: ws.open_view("U0BOB"))
        assert bot.driver.submit("bob", {"approve": True}).status == 200
        done = wait_for(lambda: (r := engine.get_run(parent.id)).state.is_final and r, timeout=15)
        assert (done.state, done.result) == (RunState.COMPLETED, "'CHG-7: shipped'")
        assert engine.get_run(child.id).state is RunState.COMPLETED
        (pause,) = engine.detail(child.id).pauses
        assert (pause.status, pause.responder) == (PauseStatus.ACCEPTED, "U0BOB")
