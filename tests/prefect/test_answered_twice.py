"""A Prefect request answered twice: whoever comes second is told who answered first, in
Slack and by the backend itself (what ``signoff runs resume`` prints), as with the
embedded engine."""

from __future__ import annotations

import json

import pytest

from tests.support.prefect import require_prefect

try:
    import prefect  # noqa: F401
except ImportError:
    require_prefect()

from signoff.bot.backends import Accepted, Actor, Stale, Via
from signoff.bot.slack import ids
from signoff.bot.testing import ServedBot
from tests.prefect.test_prefect_backend import CAROL, finished

pytestmark = [pytest.mark.xdist_group("prefect"), pytest.mark.timeout(900)]


def shown(view) -> str:
    return json.dumps(view.view)


def test_a_second_submission_of_a_prefect_form_names_who_answered_first(bot: ServedBot) -> None:
    backend = bot.backend
    run = backend.start_run("greet-user/tests", {}, started_by=CAROL)
    root = bot.root_message(run.id, timeout=60)
    for user in ("alice", "bob"):
        bot.driver.click(user, root, action_id=ids.PROVIDE_INPUT)
        bot.slack.wait_for(lambda ws, user=user: ws.open_view(user), timeout=120)
    assert bot.driver.submit("alice", {"name": "Ada"}).response_action == "update"
    assert "Answer recorded" in shown(bot.outcome("alice", timeout=120))

    late = bot.driver.submit("bob", {"name": "Bea"})
    assert late.response_action == "update"
    stale = bot.outcome("bob", timeout=120)
    assert "Nothing to do" in shown(stale)
    assert "already answered by <@U0ALICE>" in shown(stale)
    finished(backend, run.id)


def test_a_prefect_request_answered_from_the_cli_names_its_answerer_to_a_slack_click(
    bot: ServedBot,
) -> None:
    backend = bot.backend
    run = backend.start_run("greet-user/tests", {}, started_by=CAROL)
    root = bot.root_message(run.id, timeout=60)
    pause = backend.waiting_pause(run.id)
    assert pause is not None
    # Bob presses the prompt as he saw it before the bot heard of her answer and took its
    # button off: the bot stops following Prefect, so that it cannot hear of it first.
    for watcher in backend._watchers:
        watcher.stop()
    alice = Actor("U0ALICE", via=Via.CLI)
    assert isinstance(backend.answer(run.id, pause.key, {"name": "Ada"}, responder=alice), Accepted)

    # Asked again (a second terminal, or an answer racing hers): the backend names her, in
    # the engine's words, which `signoff runs resume` prints when it loses such a race.
    again = backend.answer(run.id, pause.key, {"name": "Bea"}, responder=Actor("U0BOB"))
    assert isinstance(again, Stale)
    assert f"input {pause.key!r} of run {run.id} was already answered by U0ALICE" in again.reason

    before = len(bot.slack.ephemeral("bob"))
    bot.driver.click("bob", root, action_id=ids.PROVIDE_INPUT)
    [told] = bot.slack.wait_for(lambda ws: ws.ephemeral("U0BOB")[before:], timeout=60)
    assert told.text == "This input was already answered by <@U0ALICE>."
    finished(backend, run.id)
