"""What the bot posts about runs, and that it posts it exactly once despite Slack and restarts.

Reporting: a model Slack cannot show is reported (and the run cancelled) when the run
pauses; a run failed by a rejected answer says so; the root message follows the run and
keeps who answered each input. Delivery: Slack calls are retried on 429 (after
Retry-After) and 5xx; notifications come from stored events, so an outage delays them
without losing any, and neither a restart nor a redelivered event posts twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Literal

import pydantic
import pytest

from signoff.bot.backends.embedded import EmbeddedBackend
from signoff.bot.slack import ids
from signoff.bot.slack.notifier import SlackNotifier
from signoff.bot.slack.server import Server
from signoff.bot.testing import SIGNING_SECRET, RunningBot, running_bot
from signoff.engine import Engine, RunState, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.running import start, waiting
from tests.support.threads import reply_with
from tests.support.waiting import wait_for


class Shirt(RunInput):
    size: Literal["small", "medium", "large"]
    color: Literal["red", "green"]

    @pydantic.model_validator(mode="after")
    def in_stock(self) -> Shirt:
        if self.color == "green" and self.size == "small":
            raise ValueError("Green is only in stock for medium and large")
        return self


class Amount(RunInput):
    amount: int


class Counts(RunInput):
    counts: dict[str, int]


@flow(name="dl-once")
def dl_once() -> str:
    # No retry loop: a rejected answer fails the run.
    return pause_flow_run(wait_for_input=Shirt, timeout=600).color


@flow(name="dl-retry")
def dl_retry() -> str:
    while True:
        try:
            return pause_flow_run(wait_for_input=Shirt, timeout=600).color
        except pydantic.ValidationError:
            continue


@flow(name="dl-two-steps")
def dl_two_steps() -> int:
    first = pause_flow_run(wait_for_input=Amount, timeout=600, approvers=["U0BOB"])
    second = pause_flow_run(wait_for_input=Amount, timeout=600, approvers=["U0ALICE"])
    return first.amount + second.amount


@flow(name="dl-amount")
def dl_amount(timeout: float = 600) -> int:
    return pause_flow_run(wait_for_input=Amount, timeout=timeout).amount


_LONG_OPTIONS = Literal[tuple(f"option {i} " + "x" * 60 for i in range(100))]  # type: ignore[valid-type]
#: 30 menus of 100 long options: each within Slack's limits, some 630 kB in all
Inventory = pydantic.create_model(  # type: ignore[call-overload]
    "Inventory",
    __base__=RunInput,
    __module__=__name__,
    **{f"f{i}": (list[_LONG_OPTIONS], []) for i in range(30)},
)


class Essay(RunInput):
    essay: str = pydantic.Field(min_length=3001)


@flow(name="dl-too-large")
def dl_too_large() -> int:
    return len(pause_flow_run(wait_for_input=Inventory, timeout=600).model_dump())


@flow(name="dl-unfillable")
def dl_unfillable() -> int:
    return len(pause_flow_run(wait_for_input=Essay, timeout=600).essay)


class OneTimeCode(RunInput):
    otp: pydantic.SecretStr


@flow(name="dl-secret")
def dl_secret() -> str:
    return pause_flow_run(wait_for_input=OneTimeCode, timeout=600).otp.get_secret_value()


@flow(name="dl-unrenderable")
def dl_unrenderable() -> int:
    return sum(pause_flow_run(wait_for_input=Counts, timeout=600).counts.values())


@pytest.fixture
def bot(engine: Engine) -> Iterator[RunningBot]:
    with running_bot(engine=engine) as running:
        yield running


def buttons(message) -> list[dict]:
    return [e for b in message.blocks if b.get("type") == "actions" for e in b["elements"]]


def root_when(bot: RunningBot, ts: str, *needles: str, timeout: float = 10):
    """The root message once its text and blocks contain every needle."""

    def ready(ws):
        message = ws.channel(bot.channel).message(ts)
        shown = message.text + json.dumps(message.blocks)
        return all(n in shown for n in needles) and message

    return bot.slack.wait_for(ready, timeout=timeout)


def answer(bot: RunningBot, user: str, message, values: dict) -> None:
    bot.driver.click(user, message, action_id=ids.PROVIDE_INPUT)
    bot.slack.wait_for(lambda ws: ws.open_view(user), timeout=10)
    assert bot.driver.submit(user, values).status == 200
    bot.outcome(user)
    bot.driver.close(user)  # the person reads what became of the answer and closes it


def finished(engine: Engine, run_id: str):
    return wait_for(lambda: (r := engine.get_run(run_id)).state.is_final and r, timeout=15)


def posts(bot: RunningBot) -> list:
    return [c for c in bot.slack.calls("chat.postMessage") if c.ok]


# -- reporting ----------------------------------------------------------------------------


def test_an_unrenderable_model_is_reported_when_the_run_pauses(
    engine: Engine, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="signoff.bot.slack.notifier")
    run = engine.submit("dl-unrenderable", {})
    root = bot.root_message(run.id)
    note = reply_with(bot, root.ts, "cannot be shown as a Slack form")
    assert "*Counts*" in note.text and "counts" in note.text and "free-form mapping" in note.text
    assert "The run is cancelled" in note.text

    run = finished(engine, run.id)
    assert run.state is RunState.CANCELLED
    assert "input 'Counts' cannot be shown" in (run.state_message or "")
    final = root_when(bot, root.ts, "is *cancelled*", "cannot be shown")
    assert not buttons(final)
    assert bot.slack.calls("views.open") == []  # nobody had to click to find out
    # The log names the field and why, not only that something cannot be asked.
    [logged] = [r for r in caplog.records if getattr(r, "action", "") == "prompt_unrenderable"]
    assert "counts" in logged.getMessage() and "free-form mapping" in logged.getMessage()


def test_a_secret_is_asked_for_on_the_command_line_and_the_run_waits_for_it(
    engine: Engine, bot: RunningBot
) -> None:
    """The bot cancelled the run, as though nobody could answer it, though the README
    gives a one-time code with ``signoff runs resume --input``."""
    run = engine.submit("dl-secret", {})
    root = bot.root_message(run.id)
    note = reply_with(bot, root.ts, "asks for a secret")
    assert f"""`signoff runs resume {run.id[:8]} --input '{{"otp": "..."}}'`""" in note.text
    assert "The run waits for it" in note.text
    assert engine.get_run(run.id).state is RunState.PAUSED
    assert not buttons(bot.slack.channel(bot.channel).message(root.ts))
    engine.resume(run.id, {"otp": "428913"}, responder="U0BOB")
    done = finished(engine, run.id)
    assert (done.state, done.result) == (RunState.COMPLETED, "'428913'")


@pytest.mark.parametrize(
    ("name", "model", "reason"),
    [
        ("dl-too-large", "*Inventory*", "and a modal holds 250,000"),
        ("dl-unfillable", "*Essay*", "a Slack text box holds 3000: nothing fits"),
    ],
)
def test_a_form_slack_would_refuse_or_nobody_could_fill_is_reported_when_the_run_pauses(
    engine: Engine, bot: RunningBot, name: str, model: str, reason: str
) -> None:
    run = engine.submit(name, {})
    root = bot.root_message(run.id)
    note = reply_with(bot, root.ts, "cannot be shown as a Slack form")
    assert model in note.text and reason in note.text
    assert finished(engine, run.id).state is RunState.CANCELLED
    assert bot.slack.calls("views.open") == []  # nobody had to click to find out


def test_a_rejected_answer_that_fails_the_run_says_so(engine: Engine, bot: RunningBot) -> None:
    run = engine.submit("dl-once", {})
    root = bot.root_message(run.id)
    answer(bot, "bob", root, {"size": "small", "color": "green"})

    rejected = reply_with(bot, root.ts, "not accepted")
    assert "<@U0BOB>'s answer" in rejected.text and "Green is only in stock" in rejected.text
    failed = reply_with(bot, root.ts, "is *failed*")
    assert "input rejected by Shirt" in failed.text and "does not ask again" in failed.text
    assert finished(engine, run.id).state is RunState.FAILED

    final = root_when(bot, root.ts, "is *failed*", "Answer from <@U0BOB> was rejected")
    assert not buttons(final)
    thread = bot.slack.channel(bot.channel).thread(root.ts)
    assert not any(buttons(m) for m in thread)  # nothing asks again


def test_the_root_message_follows_the_run_and_keeps_who_answered(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("dl-two-steps", {})
    root = bot.root_message(run.id)
    assert [b["text"]["text"] for b in buttons(root)] == ["Provide input", "Reassign"]
    answer(bot, "bob", root, {"amount": 2})

    second = bot.slack.wait_for(
        lambda ws: next((m for m in ws.channel(bot.channel).thread(root.ts) if buttons(m)), None)
    )
    moved_on = root_when(bot, root.ts, "`1` :white_check_mark: Answered by <@U0BOB>")
    assert not buttons(moved_on)
    answer(bot, "alice", second, {"amount": 3})

    assert finished(engine, run.id).result == "5"
    final = root_when(
        bot, root.ts, "is *completed*", "`2` :white_check_mark: Answered by <@U0ALICE>"
    )
    assert "`1` :white_check_mark: Answered by <@U0BOB>" in json.dumps(final.blocks)
    assert "completed" in final.text and not buttons(final)
    closed = bot.slack.channel(bot.channel).message(second.ts)
    assert not buttons(closed) and "Answered by <@U0ALICE>" in json.dumps(closed.blocks)
    # What was decided stays beside who decided it.
    answered = [e["text"] for b in closed.blocks if b["type"] == "context" for e in b["elements"]]
    assert 'Answer: `{"amount": 3}`' in answered


def test_a_timed_out_run_says_so_on_its_root_message(engine: Engine, bot: RunningBot) -> None:
    run = engine.submit("dl-amount", {"timeout": 1})
    root = bot.root_message(run.id)
    final = root_when(bot, root.ts, "is *timed out*", "Nobody answered in time")
    assert not buttons(final)
    assert finished(engine, run.id).state is RunState.FAILED
    reply_with(bot, root.ts, "nobody answered in time")


def test_a_deleted_first_message_gets_a_new_thread_for_the_run(
    engine: Engine, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    run = engine.submit("dl-retry", {})
    root = bot.root_message(run.id)
    bot.driver.click("bob", root, action_id=ids.PROVIDE_INPUT)
    bot.slack.wait_for(lambda ws: ws.open_view("bob"), timeout=10)
    # Someone deletes the run's message while Bob has its form open: replies to its
    # thread now fail with thread_not_found.
    bot.slack.workspace.delete_message(bot.channel, root.ts)
    with caplog.at_level(logging.WARNING, logger="signoff.bot.slack"):
        assert bot.driver.submit("bob", {"size": "small", "color": "green"}).status == 200
        bot.outcome("bob")
        bot.driver.close("bob")

        # The run's thread starts again under a new first message, which says why.
        new_root = bot.root_message(run.id)
        assert new_root.ts != root.ts and "was deleted" in json.dumps(new_root.blocks)
        rejected = reply_with(bot, new_root.ts, "not accepted")
        assert "Green is only in stock" in rejected.text
        again = bot.slack.wait_for(
            lambda ws: next(
                (m for m in ws.channel(bot.channel).thread(new_root.ts) if buttons(m)), None
            ),
            timeout=10,
        )
        answer(bot, "bob", again, {"size": "medium", "color": "green"})
        assert finished(engine, run.id).state is RunState.COMPLETED
        root_when(bot, new_root.ts, "is *completed*", "Answered by <@U0BOB>")

    gone = [r for r in caplog.records if getattr(r, "action", None) == "thread_gone"]
    assert len(gone) == 1 and getattr(gone[0], "run_id", None) == run.id
    failed = [c for c in bot.slack.calls("chat.postMessage") if c.error == "thread_not_found"]
    assert len(failed) == 1  # noticed once; nothing was tried again in the old thread
    assert [m.ts for m in bot.slack.channel(bot.channel).messages if run.id[:8] in m.text] == [
        new_root.ts
    ]


def test_a_run_from_a_channel_the_bot_cannot_post_in_goes_to_the_default_channel(
    engine: Engine, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """``/runs start`` typed in a direct message between two people, or a private channel
    the app is not in: retrying its first post for ever held up every other run's
    messages behind it."""
    with caplog.at_level(logging.WARNING, logger="signoff.bot.slack"):
        stranded = engine.submit("dl-amount", {}, tags={"slack.channel": "D0ALICEBOB"})
        after = engine.submit("dl-amount", {})
        root = bot.root_message(stranded.id)
        assert "Signoff cannot post in <#D0ALICEBOB> (`channel_not_found`)" in json.dumps(
            root.blocks
        )
        bot.root_message(after.id)  # not held up
        answer(bot, "alice", root, {"amount": 3})
        assert finished(engine, stranded.id).result == "3"
        root_when(bot, root.ts, "is *completed*")
    refused = [c for c in bot.slack.calls("chat.postMessage") if c.error == "channel_not_found"]
    assert len(refused) == 1  # noticed once, not tried again
    moved = [r for r in caplog.records if getattr(r, "action", None) == "run_channel_unavailable"]
    assert [getattr(r, "run_id", None) for r in moved] == [stranded.id]


def test_a_default_channel_that_turns_the_bot_away_is_named_in_one_line_until_it_is_invited(
    engine: Engine, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGNOFF_CHANNEL naming a channel the app is not in: every try logged some 50 lines
    of traceback that never named the setting."""
    caplog.set_level(logging.INFO)
    bot.slack.fail_next("chat.postMessage", times=2, status=200, error="not_in_channel")
    run = engine.submit("dl-amount", {})
    bot.root_message(run.id)  # posted once the app is in the channel
    refused = [
        r for r in caplog.records if getattr(r, "action", "") == "default_channel_unavailable"
    ]
    assert len(refused) == 2
    assert refused[0].levelno == logging.ERROR
    said = f"Slack refuses the bot SIGNOFF_CHANNEL={bot.channel} (not_in_channel)"
    assert refused[0].getMessage().startswith(said)
    assert not [r for r in caplog.records if r.exc_info], "no traceback"
    assert len(posts(bot)) == 1


def test_a_run_whose_channel_turns_the_bot_away_goes_on_in_the_default_channel(
    engine: Engine, bot: RunningBot
) -> None:
    """The app removed from a run's channel (or the channel archived) after its first post:
    the run's thread starts again in the default channel, with its button."""
    bot.slack.workspace.add_channel("C0OPS", "ops")
    run = engine.submit("dl-two-steps", {}, tags={"slack.channel": "C0OPS"})
    first = bot.root_message(run.id, channel="C0OPS")
    bot.slack.fail_next("chat.postMessage", status=200, error="not_in_channel")
    answer(bot, "bob", first, {"amount": 1})
    # The reply that the first input was answered, and Alice's prompt, come here instead.
    moved = bot.root_message(run.id)
    assert "cannot post in <#C0OPS> (`not_in_channel`)" in json.dumps(moved.blocks)
    prompt = bot.slack.wait_for(
        lambda ws: next(
            (m for m in [moved, *ws.channel(bot.channel).thread(moved.ts)] if buttons(m)), None
        ),
        timeout=10,
    )
    answer(bot, "alice", prompt, {"amount": 2})
    assert finished(engine, run.id).result == "3"


# -- delivery -----------------------------------------------------------------------------


def test_a_rate_limited_post_is_retried_after_retry_after(engine: Engine, bot: RunningBot) -> None:
    bot.slack.fail_next("chat.postMessage", status=429, retry_after=1)
    run = engine.submit("dl-amount", {})
    bot.root_message(run.id)
    limited, ok = bot.slack.calls("chat.postMessage")
    assert (limited.status, limited.error, ok.ok) == (429, "ratelimited", True)
    assert ok.at - limited.at >= 1.0  # Retry-After was honoured
    assert len(posts(bot)) == 1


def test_rate_limits_past_the_clients_retries_are_a_warning_and_the_prompt_still_comes(
    engine: Engine, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """Once the client's own retries were spent, Slack's 429 reached the event consumer,
    which logged it at ERROR with a traceback, as a fault, once per burst."""
    caplog.set_level(logging.INFO)
    bot.slack.fail_next("chat.postMessage", times=6, status=429, retry_after=0)
    run = engine.submit("dl-amount", {})
    bot.root_message(run.id)
    assert [c.status for c in bot.slack.calls("chat.postMessage")] == [429] * 6 + [200]
    [deferred] = [
        r for r in caplog.records if getattr(r, "action", "") == "event_delivery_deferred"
    ]
    assert deferred.levelno == logging.WARNING
    assert "Slack rate-limits chat.postMessage" in deferred.getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(posts(bot)) == 1


def test_server_errors_are_retried(engine: Engine, bot: RunningBot) -> None:
    run = engine.submit("dl-amount", {})
    root = bot.root_message(run.id)
    bot.slack.fail_next("views.open", status=503)
    bot.slack.fail_next("chat.update", status=500)
    answer(bot, "alice", root, {"amount": 1})  # the form opened despite the 503
    root_when(bot, root.ts, "is *completed*")
    assert [c.status for c in bot.slack.calls("views.open")] == [503, 200]
    assert bot.slack.calls("chat.update")[0].status == 500


def test_an_outage_delays_the_prompt_but_loses_nothing(
    engine: Engine, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    # A post is not retried by the client (it may have been made), so each 502 fails the
    # delivery: the event stays unacknowledged and the durable consumer tries it again
    # (with backoff) until Slack is back. Said as a warning per try: it was an ERROR with
    # a traceback each time, a flood through any outage.
    caplog.set_level(logging.WARNING)
    bot.slack.fail_next("chat.postMessage", times=3, status=502)
    run = engine.submit("dl-amount", {})
    root = bot.root_message(run.id, timeout=30)
    assert [c.status for c in bot.slack.calls("chat.postMessage")] == [502, 502, 502, 200]
    deferred = [r for r in caplog.records if getattr(r, "action", "") == "event_delivery_deferred"]
    assert len(deferred) == 3 and "Slack is unavailable (HTTP 502 on chat.postMessage)" in (
        deferred[0].getMessage()
    )
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    answer(bot, "bob", root, {"amount": 6})
    root_when(bot, root.ts, "is *completed*", "Answered by <@U0BOB>")
    assert len(posts(bot)) == 1


def _about(run_id: str):
    """Matches a Slack call whose text is about ``run_id``."""
    return lambda args: run_id[:8] in str(args.get("text") or "")


def test_a_message_slack_refuses_as_written_goes_as_plain_text_and_holds_up_nothing(
    engine: Engine, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """Slack refusing one run's prompt for what it holds (``invalid_blocks``) was retried
    for ever, and every later change of every run waited behind it: no prompt came."""
    caplog.set_level(logging.INFO)
    first = engine.submit("dl-amount", {})
    bot.slack.fail_next(
        "chat.postMessage", 1, status=200, error="invalid_blocks", when=_about(first.id)
    )
    engine.notify()
    plain = bot.root_message(first.id)
    assert plain.blocks == [] or buttons(plain) == []
    assert "Slack refused this message as Signoff wrote it (`invalid_blocks`)" in plain.text
    assert f"`/runs show {first.id[:8]}`" in plain.text
    # Answered from /runs or the CLI all the same; its thread follows it.
    engine.resume(first.id, {"amount": 3}, "U0BOB")
    assert finished(engine, first.id).state is RunState.COMPLETED

    # Refused even as plain text: the change is skipped, said once, and the next run's
    # prompt comes.
    second = engine.submit("dl-amount", {})
    bot.slack.fail_next(
        "chat.postMessage", 2, status=200, error="msg_too_long", when=_about(second.id)
    )
    skipped = wait_for(
        lambda: [r for r in caplog.records if getattr(r, "action", "") == "slack_change_skipped"],
        what="the refused change to be skipped",
    )
    assert [(r.run_id, r.levelno) for r in skipped] == [(second.id, logging.ERROR)]
    third = engine.submit("dl-amount", {})
    assert buttons(bot.root_message(third.id))
    assert "msg_too_long" in skipped[0].getMessage()
    assert not [r for r in caplog.records if getattr(r, "action", "") == "event_delivery_failed"]


def test_a_prompt_slack_no_longer_lets_the_bot_edit_is_left_as_it_is(
    engine: Engine, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """``cant_update_message`` (an old message, another app's) was retried for ever."""
    caplog.set_level(logging.WARNING)
    run = engine.submit("dl-amount", {})
    bot.root_message(run.id)
    bot.slack.fail_next("chat.update", 50, status=200, error="cant_update_message")
    engine.resume(run.id, {"amount": 4}, "U0BOB")
    assert finished(engine, run.id).state is RunState.COMPLETED
    later = engine.submit("dl-amount", {})
    assert buttons(bot.root_message(later.id))
    gone = [r for r in caplog.records if getattr(r, "action", "") == "message_gone"]
    assert gone and all(r.error == "cant_update_message" for r in gone)
    assert not [r for r in caplog.records if getattr(r, "action", "") == "event_delivery_failed"]


def test_a_run_already_waiting_when_the_bot_first_starts_gets_its_thread(engine: Engine) -> None:
    """The bot's first start on a database whose runs already wait (started from the CLI
    or a script before Slack was set up): each gets its thread and button, and is answered
    from Slack; a run answered before then gets none."""
    thread, box = start(dl_amount)
    before = waiting(engine, "dl-amount")
    engine.resume(before.run_id, {"amount": 1})
    thread.join(10)
    assert box == {"result": 1}
    thread, box = start(dl_amount)
    waits = wait_for(
        lambda: next(
            (
                p
                for r in engine.list_runs(flow_name="dl-amount")
                if (p := engine.waiting_pause(r.id))
            ),
            None,
        ),
        what="the second run to wait",
    )
    with running_bot(engine=engine) as bot:
        root = bot.root_message(waits.run_id)
        answer(bot, "bob", root, {"amount": 5})
        root_when(bot, root.ts, "is *completed*", "Answered by <@U0BOB>")
        thread.join(10)
        assert box == {"result": 5}
        assert [c.args.get("text") for c in posts(bot)] == [root.text]


def test_a_restarted_bot_posts_no_second_prompt(engine: Engine, bot: RunningBot) -> None:
    run = engine.submit("dl-amount", {})
    root = bot.root_message(run.id)
    bot.server.stop()  # possibly before the consumer stored that it delivered the event

    restarted = Server(EmbeddedBackend(engine), bot.server.settings, port=0)
    restarted.start()
    try:
        bot.driver = bot.slack.driver(f"{restarted.url}/slack/events", SIGNING_SECRET)
        answer(bot, "bob", root, {"amount": 8})
        root_when(bot, root.ts, "is *completed*", "Answered by <@U0BOB>")
    finally:
        restarted.stop()
    assert len(posts(bot)) == 1
    assert finished(engine, run.id).result == "8"


def test_every_event_delivered_again_posts_nothing_new(engine: Engine, bot: RunningBot) -> None:
    retried = engine.submit("dl-retry", {})
    failed = engine.submit("dl-once", {})
    cancelled = engine.submit("dl-unrenderable", {})
    retried_root = bot.root_message(retried.id)
    answer(bot, "alice", retried_root, {"size": "small", "color": "green"})
    again = bot.slack.wait_for(
        lambda ws: next(
            (m for m in ws.channel(bot.channel).thread(retried_root.ts) if buttons(m)), None
        )
    )
    answer(bot, "bob", again, {"color": "red"})
    answer(bot, "bob", bot.root_message(failed.id), {"size": "small", "color": "green"})
    for run in (retried, failed, cancelled):
        finished(engine, run.id)
    root_when(bot, retried_root.ts, "is *completed*")
    reply_with(bot, bot.root_message(failed.id).ts, "is *failed*")
    reply_with(bot, bot.root_message(cancelled.id).ts, "is *cancelled*")

    def snapshot():
        channel = bot.slack.channel(bot.channel)
        everything = [*channel.messages, *(m for t in channel.replies.values() for m in t)]
        return sorted((m.ts, m.text, json.dumps(m.blocks)) for m in everything)

    before, posted = snapshot(), len(posts(bot))
    replay = SlackNotifier(EmbeddedBackend(engine), bot.slack.client(), bot.channel)
    for event in engine.store.events_after(0, limit=10_000):
        replay.on_event(event)
    assert len(posts(bot)) == posted
    assert snapshot() == before
    assert engine.get_run(cancelled.id).state is RunState.CANCELLED
