"""A bug in a listener that already acknowledged: Slack has its 200 at once, the person who
acted is told Signoff failed (not that the command does not exist, 3 seconds later), the
failure is logged with its traceback, and the next request is served as usual."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence

import pytest

from signoff.bot.backends import Run, RunState
from signoff.bot.backends.embedded import EmbeddedBackend
from signoff.bot.slack import ids
from signoff.bot.slack.failures import FAILED_TEXT, failed_text, log_failure
from signoff.bot.testing import ServedBot, serving
from signoff.engine import Engine
from tests.e2e.test_hostile import forged_click


class BrokenListing(EmbeddedBackend):
    """A backend with a bug in listing runs (every other call works)."""

    def list_runs(
        self,
        states: Sequence[RunState] | None = None,
        *,
        flow_name: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Run]:
        raise RuntimeError("a bug in listing runs")


@pytest.fixture
def bot(engine: Engine) -> Iterator[ServedBot]:
    with serving(BrokenListing(engine)) as served:
        yield served


def test_a_command_whose_listener_fails_after_acknowledging_says_so_at_once(
    bot: ServedBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="signoff.bot.slack.failures")
    for attempt in range(3):
        began = time.monotonic()
        answer = bot.driver.slash_command("alice", "/runs", "all")
        # Slack waits 3 s for the acknowledgement; it came well before, and is not
        # "no such command".
        assert answer.status == 200
        assert time.monotonic() - began < 2.5
        assert "no command" not in answer.body.decode()
        told = bot.slack.wait_for(lambda ws, n=attempt: ws.ephemeral("alice")[n:] or None)
        assert told[-1].text == FAILED_TEXT
    failures = [r for r in caplog.records if getattr(r, "action", None) == "listener_failed"]
    assert len(failures) == 3
    assert failures[0].exc_info is not None and "a bug in listing runs" in str(
        failures[0].exc_info[1]
    )
    # What does not list runs still works.
    shown = bot.driver.slash_command("alice", "/runs", "help")
    assert shown.status == 200


def test_a_button_whose_listener_fails_after_acknowledging_tells_the_person(
    bot: ServedBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="signoff.bot.slack.failures")
    before = len(bot.slack.workspace.calls("response_url"))
    forged_click(bot, ids.MORE_RUNS, "all|")  # "More": lists the next page
    told = bot.slack.wait_for(lambda ws: ws.calls("response_url")[before:] or None)
    assert told[-1].args["text"] == FAILED_TEXT
    assert any(getattr(r, "action", None) == "listener_failed" for r in caplog.records)


def test_a_call_slack_refuses_after_acknowledging_names_the_log_entry_it_made(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """The person was pointed at ``listener_failed``, which the log did not have: a call
    Slack refuses is logged as ``slack_call_refused``."""
    caplog.set_level(logging.WARNING, logger="signoff.bot.slack.failures")
    with serving(EmbeddedBackend(engine)) as bot:
        bot.slack.fail_next("chat.postEphemeral", status=200, error="not_in_channel")
        bot.slack.fail_next("views.open", status=200, error="expired_trigger_id")
        before = len(bot.slack.workspace.calls("response_url"))
        forged_click(bot, ids.REASSIGN, "")  # refused with a private note, which fails
        forged_click(bot, ids.PROVIDE_INPUT, "")  # a notice in a form, which fails
        bot.slack.wait_for(lambda ws: ws.calls("response_url")[before + 1 :] or None)
    texts = {call.args["text"] for call in bot.slack.workspace.calls("response_url")[before:]}
    assert texts == {
        ":warning: Signoff could not finish that: Slack refused one of its calls "
        "(`not_in_channel`). Its log has the details (`slack_call_refused`).",
        # Nothing an operator can mend: the person is told what to do.
        ":hourglass: That click expired before Signoff could open its form "
        "(`expired_trigger_id`): Slack allows 3 seconds. Click again.",
    }
    refused = [r for r in caplog.records if getattr(r, "action", None) == "slack_call_refused"]
    assert len(refused) == 2
    assert not [r for r in caplog.records if getattr(r, "action", None) == "listener_failed"]


def test_a_bot_token_slack_refuses_on_a_click_is_named_to_the_person_and_in_the_log(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A revoked token read as any refused call (`slack_call_refused`, a warning that did
    not name SLACK_BOT_TOKEN), though no click works again until it is replaced."""
    caplog.set_level(logging.WARNING, logger="signoff.bot.slack.failures")
    with serving(EmbeddedBackend(engine)) as bot:
        bot.slack.fail_next("views.open", status=200, error="token_revoked")
        before = len(bot.slack.workspace.calls("response_url"))
        forged_click(bot, ids.PROVIDE_INPUT, "")
        told = bot.slack.wait_for(lambda ws: ws.calls("response_url")[before:] or None)
    assert told[-1].args["text"] == (
        ":warning: Signoff could not finish that: Slack refuses its bot token "
        "(`token_revoked`). Whoever runs Signoff must set a valid `SLACK_BOT_TOKEN`; its log "
        "has the details (`bot_token_refused`)."
    )
    refused = [r for r in caplog.records if getattr(r, "action", None) == "bot_token_refused"]
    assert len(refused) == 1 and refused[0].levelno == logging.ERROR
    assert "SLACK_BOT_TOKEN" in refused[0].getMessage()


def test_slack_failing_or_busy_while_a_form_opens_is_told_as_such_not_as_a_bug(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A 5xx after the client's retries is Slack's outage (it was told as Slack refusing
    the call); a 429 asking for more time than a click's trigger_id lives is not waited
    out (the retry could only fail with ``expired_trigger_id``, seconds later)."""
    caplog.set_level(logging.WARNING, logger="signoff.bot.slack.failures")
    with serving(EmbeddedBackend(engine)) as bot:
        ws = bot.slack.workspace
        bot.slack.fail_next("views.open", 4, status=503)  # the client tries 3 times more
        before = len(ws.calls("response_url"))
        forged_click(bot, ids.PROVIDE_INPUT, "")
        # After the client's retries, with their backoff.
        told = bot.slack.wait_for(lambda ws: ws.calls("response_url")[before:] or None, 30)
        assert told[-1].args["text"] == (
            ":warning: Signoff could not finish that: Slack is not answering properly right "
            "now (HTTP 503). Try again in a minute; its log has the details "
            "(`slack_unavailable`)."
        )

        opened = len(ws.calls("views.open"))
        bot.slack.fail_next("views.open", status=429, retry_after=5)
        began = time.monotonic()
        forged_click(bot, ids.PROVIDE_INPUT, "")
        told = bot.slack.wait_for(lambda ws: ws.calls("response_url")[before + 1 :] or None)
        assert time.monotonic() - began < 3
        assert told[-1].args["text"] == (
            ":hourglass: Slack asked Signoff to slow down, so that was not done. "
            "Try again in a few seconds."
        )
        assert len(ws.calls("views.open")) == opened + 1
    actions = [getattr(r, "action", None) for r in caplog.records]
    assert actions.count("slack_unavailable") == 1 and actions.count("slack_rate_limited") == 1
    assert "listener_failed" not in actions


@pytest.mark.parametrize(
    "error",
    [ConnectionResetError(104, "Connection reset by peer"), TimeoutError("timed out")],
    ids=["reset", "timeout"],
)
def test_a_dropped_connection_to_slack_is_told_as_slack_unreachable(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    """urllib raises these unwrapped; they were told and logged as a bug in Signoff."""
    caplog.set_level(logging.WARNING, logger="signoff.bot.slack.failures")
    assert "Slack could not be reached" in failed_text(error)
    log_failure(error)
    assert [getattr(r, "action", None) for r in caplog.records] == ["slack_unreachable"]
