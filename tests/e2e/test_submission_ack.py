"""A submitted form is acknowledged at once, and its outcome replaces the modal afterwards.

The bot answers Slack as soon as the form's values can be read: with the errors inline when
they cannot (``response_action: errors``), otherwise with a "Submitting..." view. The answer
is then stored off the threads that acknowledge, and ``views.update`` shows what came of it. Over real HTTP
against the sandbox, on SQLite and PostgreSQL; the crash test kills a ``signoff serve``
process between the acknowledgement and the answer.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest
from slack_sdk.models.blocks import SectionBlock
from slack_sdk.models.views import View

from signoff.bot.backends import Actor
from signoff.bot.backends.embedded import EmbeddedBackend
from signoff.bot.config import BotSettings
from signoff.bot.sandbox import SlackSandbox
from signoff.bot.slack import ids
from signoff.bot.slack.answering import Answerer, PendingAnswer
from signoff.bot.slack.input_forms import InputForms
from signoff.bot.slack.server import Server
from signoff.bot.testing import SIGNING_SECRET, RunningBot, form_errors, outcome, running_bot
from signoff.engine import Engine, PauseStatus, RunState, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.e2e import once_flows  # noqa: F401  (registers once-amount for the crash test)
from tests.e2e.serve_process import start_serve, wait_until_ready
from tests.support.holding import writes_held
from tests.support.signals import signal_a_thread_but_the_main_one
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
CHANNEL = "C0GENERAL"


class Order(RunInput):
    item: str = pydantic.Field(min_length=3)
    count: int = pydantic.Field(ge=1, le=10)
    note: str = ""


@flow(name="ack-order")
def ack_order() -> str:
    order = pause_flow_run(wait_for_input=Order, timeout=600)
    return f"{order.count} x {order.item}"


@flow(name="ack-two")
def ack_two() -> int:
    answers = pause_flow_run(wait_for_input=Order, timeout=600, quorum=2)
    return len(answers)


@pytest.fixture
def bot(engine: Engine) -> Iterator[RunningBot]:
    with running_bot(engine=engine) as running:
        yield running


def open_form(bot: RunningBot, user: str, run_id: str):
    bot.driver.click(user, bot.root_message(run_id), action_id=ids.PROVIDE_INPUT)
    return bot.slack.wait_for(
        lambda ws: (v := ws.open_view(user)) and v.callback_id == ids.INPUT_VIEW and v,
        timeout=10,
    )


def finished(engine: Engine, run_id: str):
    return wait_for(lambda: (r := engine.get_run(run_id)).state.is_final and r, timeout=15)


def shown(view) -> str:
    return json.dumps(view.view)


def test_an_accepted_answer_is_acknowledged_at_once_and_then_shown_recorded(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("ack-order", {})
    form = open_form(bot, "alice", run.id)
    reply = bot.driver.submit("alice", {"item": "mug", "count": 2})
    assert (reply.status, reply.response_action, reply.problems) == (200, "update", ())
    assert reply.json is not None and reply.json["view"]["callback_id"] == ids.SUBMITTING_VIEW

    recorded = bot.outcome("alice")
    assert recorded.id == form.id  # the same modal, updated in place
    assert "Answer recorded" in shown(recorded) and run.id[:8] in shown(recorded)
    [update] = bot.slack.calls("views.update")
    assert update.ok and update.args["view_id"] == form.id
    assert finished(engine, run.id).result == "'2 x mug'"


def test_a_refusal_shows_the_form_again_with_the_errors_and_the_values_kept(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("ack-order", {})
    open_form(bot, "bob", run.id)
    reply = bot.driver.submit(
        "bob", {"item": "ab", "count": 2, "note": "gift wrap"}, client_checks=False
    )
    assert (reply.status, reply.response_action) == (200, "update")

    again = bot.outcome("bob")
    assert again.callback_id == ids.INPUT_VIEW and again.view["submit"]["text"] == "Submit"
    assert form_errors(again) == {"field:item": "must be at least 3 characters long"}
    initial = {
        b["block_id"]: b["element"].get("initial_value") for b in again.blocks if "element" in b
    }
    assert initial == {"field:item": "ab", "field:count": "2", "field:note": "gift wrap"}
    assert engine.get_pause(run.id, "1").status is PauseStatus.WAITING  # nothing stored

    # Fixing the one field is enough: the rest was kept.
    assert bot.driver.submit("bob", {"item": "abc"}).status == 200
    assert "Answer recorded" in shown(bot.outcome("bob"))
    assert finished(engine, run.id).result == "'2 x abc'"
    assert engine.get_pause(run.id, "1").response == {
        "item": "abc",
        "count": 2,
        "note": "gift wrap",
    }


def test_values_that_cannot_be_read_still_come_back_inline(engine: Engine, bot: RunningBot) -> None:
    run = engine.submit("ack-order", {})
    form = open_form(bot, "alice", run.id)
    reply = bot.driver.submit("alice", {"item": "mug", "count": "2.5"}, client_checks=False)
    assert (reply.response_action, reply.errors) == (
        "errors",
        {"field:count": "Enter a whole number"},
    )
    assert bot.slack.open_view("alice").id == form.id  # still the form, as typed
    assert not bot.slack.calls("views.update")
    assert engine.get_pause(run.id, "1").status is PauseStatus.WAITING


class WatchedBackend(EmbeddedBackend):
    """The embedded backend, counting the pauses it reads."""

    pauses_read = 0

    def get_pause(self, run_id: str, key: str) -> Any:
        self.pauses_read += 1
        return super().get_pause(run_id, key)


def test_a_form_opened_on_one_replica_is_checked_by_another_without_reading_the_database(
    engine: Engine, bot: RunningBot, make_engine: Any
) -> None:
    run = engine.submit("ack-order", {})
    open_form(bot, "alice", run.id)  # on the first replica
    backend = WatchedBackend(make_engine())
    other = Server(backend, bot.server.settings, port=0)
    other.start()
    try:
        driver = bot.slack.driver(f"{other.url}/slack/events", SIGNING_SECRET)
        reply = driver.submit("alice", {"item": "mug", "count": "2.5"}, client_checks=False)
        # The form carried its schema: the second replica read the values with it.
        assert reply.errors == {"field:count": "Enter a whole number"}
        assert backend.pauses_read == 0
        assert driver.submit("alice", {"count": 2}).status == 200
        assert "Answer recorded" in shown(bot.outcome("alice"))
        assert finished(engine, run.id).result == "'2 x mug'"
    finally:
        other.stop()


def test_a_submission_the_bot_fails_to_acknowledge_keeps_the_form_open(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: InputForms, body: dict[str, Any], signature: str | None) -> dict[str, Any]:
        raise RuntimeError("a bug in acknowledging")

    monkeypatch.setattr(InputForms, "acknowledge", broken)
    with running_bot(engine=engine) as bot:
        run = engine.submit("ack-order", {})
        form = open_form(bot, "alice", run.id)
        with caplog.at_level(logging.ERROR, logger="signoff.bot.slack.edge"):
            reply = bot.driver.submit("alice", {"item": "mug", "count": 2})
        # Slack tells the person the form could not be submitted; it stays open to retry.
        assert reply.status == 500
        assert bot.slack.open_view("alice").id == form.id
        assert engine.get_pause(run.id, "1").status is PauseStatus.WAITING
        assert [r.action for r in caplog.records] == ["form_ack_failed"]  # type: ignore[attr-defined]


def test_stale_and_denied_answers_say_why_in_the_modal(engine: Engine, bot: RunningBot) -> None:
    run = engine.submit("ack-order", {}, started_by="U0CAROL")
    open_form(bot, "alice", run.id)
    open_form(bot, "bob", run.id)
    assert bot.driver.submit("alice", {"item": "mug", "count": 1}).status == 200
    assert "Answer recorded" in shown(bot.outcome("alice"))
    late = bot.driver.submit("bob", {"item": "cup", "count": 3})
    assert late.response_action == "update"
    stale = bot.outcome("bob")
    assert "Nothing to do" in shown(stale) and "already answered by <@U0ALICE>" in shown(stale)
    assert finished(engine, run.id).result == "'1 x mug'"

    two = engine.submit("ack-two", {})
    form = open_form(bot, "alice", two.id)
    assert bot.driver.submit("alice", {"item": "mug", "count": 1}).status == 200
    counted = bot.outcome("alice")
    assert "Your answer is 1 of the 2 this input needs" in shown(counted)
    # The same form, still open in another window: a second answer from the same person.
    bot.slack.workspace.open_modal("U0ALICE", form.view)
    assert bot.driver.submit("alice", {"item": "cup", "count": 1}).status == 200
    denied = bot.outcome("alice")
    assert "Not allowed" in shown(denied) and "different people" in shown(denied)
    assert engine.get_pause(two.id, "1").status is PauseStatus.WAITING


class AliceHeldBack(EmbeddedBackend):
    """Alice's answer reaches the engine only once Bob's has been submitted after it: were
    the pool's answers not kept in order, Bob's would be stored first."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.bob_submitted = threading.Event()

    def answer(self, run_id: str, key: str, values: Any, *, responder: Actor) -> Any:
        if responder.id == "U0ALICE":
            assert self.bob_submitted.wait(10), "Bob's answer was never submitted"
        return super().answer(run_id, key, values, responder=responder)


def test_answers_to_one_prompt_are_stored_in_the_order_they_were_acknowledged(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("ack-order", {})
    forms = {user: open_form(bot, user, run.id) for user in ("alice", "bob")}
    pause = engine.waiting_pause(run.id)
    assert pause is not None and pause.schema is not None
    backend = AliceHeldBack(engine)
    answers = Answerer(backend, bot.server.client)

    def acknowledged(user: str, item: str) -> PendingAnswer:
        return PendingAnswer(
            run.id,
            pause.key,
            {"item": item, "count": 1},
            Actor(f"U0{user.upper()}", name=user),
            view_id=forms[user].id,
            metadata="",
            schema=pause.schema,
        )

    answers.submit(acknowledged("alice", "first"))
    answers.submit(acknowledged("bob", "second"))
    backend.bob_submitted.set()
    answers.stop()

    assert finished(engine, run.id).result == "'1 x first'"
    assert "Answer recorded" in shown(bot.outcome("alice"))
    assert "already answered by <@U0ALICE>" in shown(bot.outcome("bob"))


def test_many_people_answering_one_prompt_at_once_all_get_an_outcome(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("ack-order", {})
    form = open_form(bot, "alice", run.id)
    pause = engine.waiting_pause(run.id)
    assert pause is not None and pause.schema is not None
    answers = Answerer(EmbeddedBackend(engine), bot.server.client)
    people = [f"person{i}" for i in range(48)]
    together = threading.Barrier(16)

    def acknowledge(mine: list[str]) -> None:
        together.wait(10)
        for user in mine:
            answers.submit(
                PendingAnswer(
                    run.id,
                    pause.key,
                    {"item": user, "count": 1},
                    Actor(f"U{user.upper()}", name=user),
                    view_id=form.id,
                    metadata="",
                    schema=pause.schema,
                )
            )

    # As the HTTP threads acknowledge: sixteen at a time, each handing answers on.
    threads = [threading.Thread(target=acknowledge, args=(people[i::16],)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    stopping = threading.Thread(target=answers.stop, daemon=True)
    stopping.start()
    stopping.join(30)

    assert not stopping.is_alive(), "answers to one prompt waited on each other for ever"
    assert len(bot.slack.calls("views.update")) == len(people)  # an outcome for everyone
    assert finished(engine, run.id).state is RunState.COMPLETED


def test_a_modal_closed_before_the_outcome_is_logged_and_the_answer_kept(
    engine: Engine, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    run = engine.submit("ack-order", {})
    open_form(bot, "alice", run.id)
    bot.slack.fail_next("views.update", status=200, error="not_found")
    with caplog.at_level(logging.WARNING, logger="signoff.bot.slack.answering"):
        assert bot.driver.submit("alice", {"item": "mug", "count": 4}).status == 200
        assert finished(engine, run.id).result == "'4 x mug'"
        record = wait_for(
            lambda: next(
                (
                    r
                    for r in caplog.records
                    if getattr(r, "action", "") == "answer_view_not_updated"
                ),
                None,
            ),
            timeout=10,
        )
    assert record.run_id == run.id and "not_found" in record.getMessage()


class UnsendableOutcome(Answerer):
    """Answers as the bot does, and then has an outcome that slack_sdk refuses to send (a
    title past 24 characters), as a refusal longer than a section once was."""

    def outcome(self, pending: PendingAnswer) -> View | None:
        super().outcome(pending)
        return View(type="modal", title="x" * 30, blocks=[SectionBlock(text="recorded")])


def test_an_outcome_that_cannot_be_sent_is_logged_and_the_modal_moves_on(
    engine: Engine, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    run = engine.submit("ack-order", {})
    form = open_form(bot, "alice", run.id)
    pause = engine.waiting_pause(run.id)
    assert pause is not None and pause.schema is not None
    answers = UnsendableOutcome(EmbeddedBackend(engine), bot.server.client)
    with caplog.at_level(logging.ERROR, logger="signoff.bot.slack.answering"):
        answers.submit(
            PendingAnswer(
                run.id,
                pause.key,
                {"item": "mug", "count": 3},
                Actor("U0ALICE", name="alice"),
                view_id=form.id,
                metadata="",
                schema=pause.schema,
            )
        )
        answers.stop()

    assert finished(engine, run.id).result == "'3 x mug'"  # the answer counted
    # The person is told where to look, rather than left on the form (or "Submitting...").
    notice = bot.slack.open_view("alice")
    assert notice is not None and "cannot show what became of your answer" in shown(notice)
    # and the log says why, under the same key as any other outcome not shown.
    failed = [r for r in caplog.records if getattr(r, "action", "") == "answer_view_not_updated"]
    assert [(r.levelname, r.run_id) for r in failed] == [("ERROR", run.id)]
    assert failed[0].exc_info is not None


def test_a_replayed_submission_changes_nothing(
    engine: Engine, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    run = engine.submit("ack-order", {})
    open_form(bot, "alice", run.id)
    sent: list[tuple[bytes | str, dict[str, str] | None]] = []
    post = bot.driver.raw

    def keep(body: bytes | str, headers: dict[str, str] | None = None):
        sent.append((body, headers))
        return post(body, headers)

    bot.driver.raw = keep  # type: ignore[method-assign]  (records the exact signed bytes)
    assert bot.driver.submit("alice", {"item": "mug", "count": 2}).status == 200
    assert "Answer recorded" in shown(bot.outcome("alice"))
    assert finished(engine, run.id).result == "'2 x mug'"

    # The same signed bytes again, within Slack's five minutes: acknowledged like the
    # original, then recognised before any answer and dropped.
    with caplog.at_level(logging.INFO, logger="signoff.bot.slack.answering"):
        assert post(*sent[-1]).status == 200
        wait_for(
            lambda: any(getattr(r, "action", "") == "request_replayed" for r in caplog.records),
            timeout=10,
        )
    assert len(bot.slack.calls("views.update")) == 1
    assert [r.action for r in engine.audit_trail(run.id)].count("answer.received") == 1
    assert "Answer recorded" in shown(bot.slack.open_view("alice"))


# -- a crash between the acknowledgement and the answer -------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_crash_between_the_ack_and_the_answer_leaves_the_prompt_answerable(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    with SlackSandbox() as slack:
        port = free_port()
        serve = start_serve(slack, database_url, tmp_path, CHANNEL, port)
        try:
            wait_until_ready(port)
            driver = slack.driver(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET)
            run = engine.submit("once-amount", {})
            root = slack.wait_for(
                lambda ws: next(
                    (m for m in ws.channel(CHANNEL).messages if run.id[:8] in m.text), None
                ),
                timeout=60,
            )
            driver.click("alice", root, action_id=ids.PROVIDE_INPUT)
            slack.wait_for(lambda ws: ws.open_view("alice"), timeout=10)
            with writes_held(database_url):
                reply = driver.submit("alice", {"amount": 5})
                # Acknowledged, though the answer cannot be stored yet; then the process dies.
                assert (reply.status, reply.response_action) == (200, "update")
                assert slack.open_view("alice").callback_id == ids.SUBMITTING_VIEW
                serve.send_signal(signal.SIGKILL)
                serve.wait(10)
        finally:
            if serve.poll() is None:
                serve.send_signal(signal.SIGKILL)
                serve.wait(10)

        # Nothing was stored, and the modal says "Submitting..." (the person closes it).
        pause = engine.get_pause(run.id, "1")
        assert (pause.status, pause.responder) == (PauseStatus.WAITING, None)
        assert slack.open_view("alice").callback_id == ids.SUBMITTING_VIEW
        settings = BotSettings.load(
            bot_token=slack.token,
            signing_secret=SIGNING_SECRET,
            api_url=slack.api_url,
            channel=CHANNEL,
        )
        server = Server(EmbeddedBackend(engine), settings, port=0)
        server.start()
        try:
            # The prompt in the channel is still open: the person answers again.
            driver = slack.driver(f"{server.url}/slack/events", SIGNING_SECRET)
            driver.close("alice")
            driver.click("alice", root, action_id=ids.PROVIDE_INPUT)
            slack.wait_for(lambda ws: ws.open_view("alice"), timeout=10)
            assert driver.submit("alice", {"amount": 6}).status == 200
            assert "Answer recorded" in json.dumps(outcome(slack, "alice", timeout=20).view)
            done = wait_for(lambda: (r := engine.get_run(run.id)).state.is_final and r, timeout=30)
        finally:
            server.stop()
    assert (done.state, done.result) == (RunState.COMPLETED, "6")


def test_serve_stops_on_sigterm_whichever_thread_the_signal_reaches(
    database_url: str, tmp_path: Path
) -> None:
    """An orchestrator's SIGTERM may reach any thread of ``signoff serve``; it stops
    cleanly either way (it used to sleep on until killed)."""
    with SlackSandbox() as slack:
        port = free_port()
        serve = start_serve(slack, database_url, tmp_path, CHANNEL, port)
        try:
            wait_until_ready(port)
            signal_a_thread_but_the_main_one(serve.pid, signal.SIGTERM)
            began = time.monotonic()
            assert serve.wait(timeout=20) == 0
            took = time.monotonic() - began
        finally:
            if serve.poll() is None:
                serve.kill()
                serve.wait(10)
    (log,) = tmp_path.glob("serve-*.log")
    # Should it take too long, the log's timestamps show which step of stopping took it.
    assert took < 10, log.read_text()[-4000:]
    # It says why it stopped, and that it did, as the worker does.
    actions = [line.split()[3] for line in log.read_text().splitlines() if line[:2] == "20"]
    assert "serve_stopping" in actions and actions[-1] == "serve_stopped", actions
    assert "stopping on SIGTERM" in log.read_text()


def test_serve_starts_without_a_warning_when_its_token_is_in_the_environment(
    database_url: str, tmp_path: Path
) -> None:
    """Bolt reads SLACK_BOT_TOKEN from the environment itself and warned at every start
    that it would not use it, which trains operators to skip warnings."""
    with SlackSandbox() as slack:
        port = free_port()
        serve = start_serve(slack, database_url, tmp_path, CHANNEL, port)
        try:
            wait_until_ready(port)
            serve.send_signal(signal.SIGTERM)
            assert serve.wait(timeout=20) == 0
        finally:
            if serve.poll() is None:
                serve.kill()
                serve.wait(10)
    (log,) = tmp_path.glob("serve-*.log")
    assert not [line for line in log.read_text().splitlines() if " WARNING " in line]
