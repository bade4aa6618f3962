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

from signoff.bot.backends import Accepted, Actor, AuditRecord, Stale, Via
from signoff.bot.cli.on_backend import audit_line
from signoff.bot.slack import ids
from signoff.bot.testing import ServedBot
from tests.prefect.test_prefect_backend import CAROL, finished
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.xdist_group("prefect-2"), pytest.mark.timeout(900)]


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


def test_a_form_submitted_after_an_answer_in_prefect_says_it_was_answered_outside_signoff(
    bot: ServedBot,
) -> None:
    """Answered through Prefect's own API (as its UI does), the request has no Signoff
    responder: the form's outcome and the run's message said "answered by someone"."""
    backend = bot.backend
    run = backend.start_run("greet-user/tests", {}, started_by=CAROL)
    root = bot.root_message(run.id, timeout=60)
    bot.driver.click("bob", root, action_id=ids.PROVIDE_INPUT)
    bot.slack.wait_for(lambda ws: ws.open_view("bob"), timeout=120)
    resumed = backend.api._call(
        "POST", f"/flow_runs/{run.id}/resume", body={"run_input": {"name": "Ada"}}
    )
    assert resumed.json()["status"] == "ACCEPT", resumed.text

    assert bot.driver.submit("bob", {"name": "Bea"}).response_action == "update"
    stale = shown(bot.outcome("bob", timeout=120))
    assert "already answered by someone outside Signoff" in stale
    finished(backend, run.id)
    status = bot.slack.wait_for(
        lambda ws: (
            "outside Signoff" in json.dumps((m := ws.channel(bot.channel).message(root.ts)).blocks)
            and m
        ),
        timeout=120,
    )
    assert "Answered by someone outside Signoff" in json.dumps(status.blocks)


def test_a_form_submitted_for_a_run_deleted_in_prefect_says_the_run_is_gone(
    bot: ServedBot,
) -> None:
    """The form said "Something went wrong ... The prompt stays open; please answer
    again", while the bot closed that prompt as deleted."""
    backend = bot.backend
    run = backend.start_run("greet-user/tests", {}, started_by=CAROL)
    root = bot.root_message(run.id, timeout=60)
    bot.driver.click("bob", root, action_id=ids.PROVIDE_INPUT)
    bot.slack.wait_for(lambda ws: ws.open_view("bob"), timeout=120)
    assert backend.api._call("DELETE", f"/flow_runs/{run.id}").status_code == 204

    assert bot.driver.submit("bob", {"name": "Bea"}).response_action == "update"
    told = shown(bot.outcome("bob", timeout=120))
    assert "no longer exists" in told
    assert "answer again" not in told


def test_an_answer_given_in_prefect_is_audited_as_from_outside_signoff(bot: ServedBot) -> None:
    """Resumed through Prefect's API (as its UI does), the trail held only the flow's
    "answer accepted", with no responder line: an auditor could take it for an answer
    given through Signoff."""
    backend = bot.backend
    run = backend.start_run("greet-user/tests", {}, started_by=CAROL)
    bot.root_message(run.id, timeout=60)
    resumed = backend.api._call(
        "POST", f"/flow_runs/{run.id}/resume", body={"run_input": {"name": "Ada"}}
    )
    assert resumed.json()["status"] == "ACCEPT", resumed.text
    finished(backend, run.id)

    def accepted() -> AuditRecord | None:
        trail = backend.audit_trail(run.id)
        return next((r for r in trail if r.action == "answer.accepted"), None)

    record = wait_for(accepted, timeout=120, what="the flow's verdict in the trail")
    assert "answer.received" not in [r.action for r in backend.audit_trail(run.id)]
    # As `signoff runs show` prints it ...
    assert audit_line(record).endswith(
        "answer.accepted [paused-1] — answered outside Signoff, in Prefect's UI or API: who "
        "answered is unknown"
    )
    # ... and as `/runs show` does in Slack.
    before = len(bot.slack.ephemeral("alice"))
    bot.driver.slash_command("alice", "/runs", f"show {run.id}")
    [shown_run] = bot.slack.wait_for(lambda ws: ws.ephemeral("U0ALICE")[before:], timeout=60)
    assert (
        "answer accepted by the flow `paused-1` (answered outside Signoff, in Prefect's UI or "
        "API: who answered is unknown)" in shown_run.text
    ), shown_run.text
