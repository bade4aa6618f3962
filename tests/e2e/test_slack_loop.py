"""The whole loop over real HTTP: engine + served Slack app + the local Slack sandbox."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Literal

import pydantic
import pytest

from signoff.bot.sandbox import SlackSandbox
from signoff.bot.slack.server import Server
from signoff.bot.testing import SIGNING_SECRET, form_errors, outcome, running_bot
from signoff.engine import Engine, PauseStatus, RunState, flow, get_run_logger, pause_flow_run
from signoff.engine.input import RunInput

SECRET = SIGNING_SECRET


class ShirtOrder(RunInput):
    size: Literal["small", "medium", "large", "xlarge"]
    color: Literal["red", "green", "black"]

    @pydantic.validator("color")
    def validate_age(cls, value, values, **kwargs):
        if value == "green" and values["size"] == "small":
            raise ValueError("Green is only in-stock for medium, large, and XL sizes.")
        return value


# Its own name: tests/engine define flows called get-shirt-order inside their functions,
# and the flow registry keeps the latest definition of a name.
@flow(name="slack-shirt-order")
def get_shirt_order():
    logger = get_run_logger()
    shirt_order = None
    while shirt_order is None:
        try:
            shirt_order = pause_flow_run(wait_for_input=ShirtOrder)
        except pydantic.ValidationError as exc:
            logger.error(f"Invalid size and color combination: {exc}")
    logger.info(f"Shirt order: {shirt_order.size}, {shirt_order.color}")


class Budget(RunInput):
    amount: int = pydantic.Field(ge=1, le=100)
    note: str = ""


@flow(approvers=["U0BOB"])
def guarded_spend():
    return pause_flow_run(wait_for_input=Budget).amount


@pytest.fixture
def slack(engine: Engine) -> Iterator[tuple[SlackSandbox, Server]]:
    with running_bot(engine=engine) as bot:
        yield bot.slack, bot.server


def buttons(message) -> list[dict]:
    return [e for b in message.blocks if b.get("type") == "actions" for e in b["elements"]]


def test_shirt_order_loop_through_slack(engine: Engine, slack) -> None:
    sandbox, server = slack
    driver = sandbox.driver(f"{server.url}/slack/events", SECRET)
    run = engine.submit("slack-shirt-order", {}, started_by="U0CAROL")

    root = sandbox.wait_for(lambda ws: ws.channel("C0GENERAL").last, timeout=10)
    assert "slack-shirt-order" in root.text and run.id[:8] in root.text
    assert [b["text"]["text"] for b in buttons(root)] == ["Provide input", "Reassign"]

    driver.click("alice", root, action_id="provide_input")
    view = sandbox.wait_for(lambda ws: ws.open_view("U0ALICE"))
    assert view.view["callback_id"] == "signoff_input"
    reply = driver.submit("alice", {"size": "small", "color": "green"})
    assert reply.status == 200 and reply.response_action == "update"
    # The flow waits in this process, so its model judges the answer at once.
    refused = outcome(sandbox, "alice")
    assert "Not accepted" in json.dumps(refused.view)
    assert "Green is only in-stock" in json.dumps(refused.blocks)
    # The validator's sentence ends with its own full stop: not a second one.
    assert "XL sizes. The run's thread says more" in json.dumps(refused.blocks)

    # The model's own validator refuses; the thread says who sent what and why.
    def rejection(ws):
        return next(
            (
                m
                for m in ws.channel("C0GENERAL").replies.get(root.ts, [])
                if "not accepted" in m.text
            ),
            None,
        )

    note = sandbox.wait_for(rejection, timeout=10)
    assert "<@U0ALICE>" in note.text and "Green is only in-stock" in note.text
    again = sandbox.wait_for(
        lambda ws: next(
            (m for m in ws.channel("C0GENERAL").replies.get(root.ts, []) if buttons(m)), None
        ),
        timeout=10,
    )
    assert "needs input again" in again.text or "again" in str(again.blocks)

    driver.click("bob", again, action_id="provide_input")
    prefilled = sandbox.wait_for(lambda ws: ws.open_view("U0BOB"))
    initial = {
        b["block_id"]: b["element"].get("initial_option", {}).get("value")
        for b in prefilled.view["blocks"]
        if b.get("type") == "input"
    }
    assert initial == {"field:size": "small", "field:color": "green"}
    assert driver.submit("bob", {"color": "red"}).status == 200

    done = _wait(lambda: (r := engine.get_run(run.id)).state.is_final and r)
    assert done.state is RunState.COMPLETED
    pauses = engine.detail(run.id).pauses
    assert [(p.status, p.responder) for p in pauses] == [
        (PauseStatus.REJECTED, "U0ALICE"),
        (PauseStatus.ACCEPTED, "U0BOB"),
    ]
    final = sandbox.wait_for(
        lambda ws: (m := ws.channel("C0GENERAL").last) and "completed" in m.text and m, timeout=10
    )
    assert not buttons(final)
    closed = sandbox.wait_for(
        lambda ws: next(
            (
                m
                for m in ws.channel("C0GENERAL").replies.get(root.ts, [])
                if m.ts == again.ts and not buttons(m)
            ),
            None,
        )
    )
    assert "Answered by <@U0BOB>" in str(closed.blocks)


def test_structural_errors_stay_in_the_modal_and_strangers_are_refused(
    engine: Engine, slack
) -> None:
    sandbox, server = slack
    driver = sandbox.driver(f"{server.url}/slack/events", SECRET)
    run = engine.submit("guarded-spend", {})
    root = sandbox.wait_for(lambda ws: ws.channel("C0GENERAL").last, timeout=10)

    driver.click("alice", root, action_id="provide_input")
    refusal = sandbox.wait_for(lambda ws: ws.ephemeral("U0ALICE"))
    assert "Only <@U0BOB> may answer" in refusal[-1].text
    assert sandbox.open_view("U0ALICE") is None

    driver.click("bob", root, action_id="provide_input")
    sandbox.wait_for(lambda ws: ws.open_view("U0BOB"))
    reply = driver.submit("bob", {"amount": 500}, client_checks=False)
    assert reply.response_action == "update"
    assert form_errors(outcome(sandbox, "bob")) == {"field:amount": "must be at most 100"}
    assert engine.waiting_pause(run.id) is not None  # nothing was resumed

    assert driver.submit("bob", {"amount": 40}).status == 200
    done = _wait(lambda: (r := engine.get_run(run.id)).state.is_final and r)
    assert (done.state, done.result) == (RunState.COMPLETED, "40")


def test_unsigned_wrongly_signed_and_stale_requests_get_401(engine: Engine, slack) -> None:
    sandbox, server = slack
    driver = sandbox.driver(f"{server.url}/slack/events", SECRET)
    body = "command=%2Fruns&text=cancel+x&user_id=U0ALICE&channel_id=C0GENERAL&team_id=T0SANDBOX"
    assert driver.raw(body, {"Content-Type": "application/x-www-form-urlencoded"}).status == 401
    wrong = sandbox.driver(f"{server.url}/slack/events", "not-the-secret")
    assert wrong.slash_command("alice", "/runs", "help").status == 401
    stale = driver.signed_headers(body, timestamp=int(time.time()) - 600)
    assert driver.raw(body, stale).status == 401
    assert sandbox.calls("chat.postMessage") == []
    with urllib.request.urlopen(f"{server.url}/healthz") as health:
        assert health.status == 200


def _wait(condition, timeout: float = 15.0):
    from tests.support.waiting import wait_for

    return wait_for(condition, timeout=timeout)
