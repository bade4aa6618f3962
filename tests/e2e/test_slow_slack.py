"""Slack's API answering slowly must not delay the acknowledgements Slack waits for: each
click is acknowledged within Slack's 3 seconds however many calls after earlier clicks are
still waiting on Slack."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from signoff.bot.testing import running_bot
from signoff.engine import Engine, flow, pause_flow_run
from signoff.engine.input import RunInput

#: more clicks than the listener threads of earlier releases (32)
CLICKS = 50


class Go(RunInput):
    go: bool


@flow(name="slow-slack-approve")
def slow_slack_approve() -> bool:
    return pause_flow_run(wait_for_input=Go, timeout=600).go


def test_fifty_clicks_while_slack_answers_slowly_are_each_acknowledged_in_time(
    engine: Engine,
) -> None:
    """With views.open taking 4 s, the 33rd click on waited for a listener thread that
    a slow call held, and its acknowledgement came after Slack had given up."""
    with running_bot(engine=engine) as bot:
        run = engine.submit("slow-slack-approve", {}, started_by="U0CAROL")
        prompt = bot.root_message(run.id)
        bot.slack.answer_late("views.open", 4, times=CLICKS)

        def click(_: int) -> tuple[int, float]:
            began = time.monotonic()
            answer = bot.driver.click("alice", prompt, action_id="provide_input")
            return answer.status, time.monotonic() - began

        with ThreadPoolExecutor(CLICKS) as clicking:
            answers = list(clicking.map(click, range(CLICKS)))
        assert {status for status, _ in answers} == {200}
        slowest = max(took for _, took in answers)
        assert slowest < 3.0, sorted(took for _, took in answers)[-10:]
        bot.slack.wait_for(lambda ws: len(ws.calls("views.open")) >= CLICKS, timeout=60)


def test_stopping_finishes_the_clicks_already_acknowledged(engine: Engine) -> None:
    """Bolt runs a click's work (opening its modal) after acknowledging it. Stopping went
    on without it, stopping the backend (and, in a test, the Slack sandbox) under it: its
    call to Slack then failed ("Failed to send a request", connection refused)."""
    release = threading.Event()
    with running_bot(engine=engine) as bot:
        run = engine.submit("slow-slack-approve", {}, started_by="U0CAROL")
        prompt = bot.root_message(run.id)
        bot.slack.answer_late("views.open", 30, until=release)
        assert bot.driver.click("alice", prompt, action_id="provide_input").status == 200
        bot.slack.wait_for(lambda ws: ws.calls("views.open") or None, timeout=10)
        stopper = threading.Thread(target=bot.server.stop)
        stopper.start()
        stopper.join(1.0)
        assert stopper.is_alive()  # it waits for the click's modal to be opened
        release.set()
        stopper.join(15)
        assert not stopper.is_alive()
        assert not [t for t in threading.enumerate() if t.name.startswith("signoff-listener")]
