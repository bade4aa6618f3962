"""A flow that asks for the same model twice, for two decisions, with a warning logged
between: the first answer was taken, so it is shown accepted, not as refused by the flow
(which is what asking again for the same model after a warning looks like otherwise)."""

from __future__ import annotations

import json

import pytest

from tests.support.prefect import require_prefect

try:
    import prefect  # noqa: F401
except ImportError:
    require_prefect()

from signoff.bot.backends import PauseStatus, RunState
from signoff.bot.slack import ids
from signoff.bot.testing import ServedBot
from tests.prefect.test_prefect_backend import (
    CAROL,
    buttons,
    fields,
    finished,
    logged,
    replies,
)

pytestmark = [pytest.mark.xdist_group("prefect-2"), pytest.mark.timeout(900)]


def test_a_second_decision_on_the_same_model_is_not_read_as_the_first_refused(
    bot: ServedBot, served_flows: str
) -> None:
    backend = bot.backend
    run = backend.start_run(f"two-approvals/{served_flows}", {}, started_by=CAROL)
    root = bot.root_message(run.id, timeout=120)
    bot.driver.click("alice", root, action_id=ids.PROVIDE_INPUT)
    bot.slack.wait_for(lambda ws: ws.open_view("U0ALICE"), timeout=120)
    bot.driver.submit("alice", {"approved": True, "reason": "tests green"})
    assert "Answer recorded" in json.dumps(bot.outcome("alice", timeout=120).view)

    second = bot.slack.wait_for(
        lambda ws: next((m for m in replies(bot, root) if buttons(m)), None), timeout=120
    )
    logged(backend, run.id, "build approved (tests green): the next step deploys to production")
    # Before: "Alice's answer was not accepted: build approved ...", and the deploy's
    # form started from the build's answer.
    assert "Deploy to production?" in json.dumps(second.blocks)
    bot.driver.click("bob", second, action_id=ids.PROVIDE_INPUT)
    form = bot.slack.wait_for(lambda ws: ws.open_view("U0BOB"), timeout=120)
    assert fields(form)["field:reason"] == "ok"
    bot.driver.submit("bob", {"approved": True, "reason": "go"})
    assert finished(backend, run.id).state is RunState.COMPLETED

    asked = backend.detail(run.id).pauses
    assert [(p.status, p.responder) for p in asked] == [
        (PauseStatus.ACCEPTED, "U0ALICE"),
        (PauseStatus.ACCEPTED, "U0BOB"),
    ]
    assert not [m.text for m in replies(bot, root) if "not accepted" in m.text]
