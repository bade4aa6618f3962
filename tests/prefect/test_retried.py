"""A flow Prefect retries asks again under the key it asked before (Prefect forgets fired
pause keys on a retry): the second request is a request of its own, prompted and answered
in Slack, and the first request's answer does not answer it."""

from __future__ import annotations

import json

import pytest

from tests.support.prefect import require_prefect

try:
    import prefect  # noqa: F401
except ImportError:
    require_prefect()

from signoff.bot.backends import Actor, PauseStatus, RunState, Stale
from signoff.bot.slack import ids
from signoff.bot.testing import ServedBot
from tests.prefect.test_prefect_backend import (
    CAROL,
    buttons,
    finished,
    replies,
    reply_saying,
)

pytestmark = [pytest.mark.xdist_group("prefect-2"), pytest.mark.timeout(900)]


def test_a_retried_flow_that_asks_again_gets_a_new_prompt_the_first_answer_cannot_answer(
    bot: ServedBot, served_flows: str
) -> None:
    # The retry's request was read as the first one, answered: no prompt was posted, the
    # run waited until its pause timed out, and an answer was refused as already given.
    backend = bot.backend
    run = backend.start_run(f"retry-pause/{served_flows}", {}, started_by=CAROL)
    root = bot.root_message(run.id, timeout=120)
    bot.driver.click("alice", root, action_id=ids.PROVIDE_INPUT)
    bot.slack.wait_for(lambda ws: ws.open_view("U0ALICE"), timeout=120)
    bot.driver.submit("alice", {"n": 3})

    note = reply_saying(bot, root, "not accepted")
    assert "<@U0ALICE>" in note.text and "3 is too small" in note.text
    again = bot.slack.wait_for(
        lambda ws: next((m for m in replies(bot, root) if buttons(m)), None), timeout=60
    )
    assert "needs input again" in json.dumps(again.blocks)
    # Alice's answer was to the first request only: Bob's to it is refused, naming her.
    late = backend.answer(run.id, "paused-1", {"n": 40}, responder=Actor("U0BOB"))
    assert isinstance(late, Stale) and "already answered by U0ALICE" in late.reason

    bot.driver.click("bob", again, action_id=ids.PROVIDE_INPUT)
    bot.slack.wait_for(lambda ws: ws.open_view("U0BOB"), timeout=120)
    bot.driver.submit("bob", {"n": 30})
    assert finished(backend, run.id).state is RunState.COMPLETED
    asked = backend.detail(run.id).pauses
    assert [(p.status, p.responder, p.response) for p in asked] == [
        (PauseStatus.REJECTED, "U0ALICE", {"n": 3}),
        (PauseStatus.ACCEPTED, "U0BOB", {"n": 30}),
    ]
