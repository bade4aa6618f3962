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
from signoff.bot.slack.failures import FAILED_TEXT
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
        f"(`{code}`). Its log has the details (`slack_call_refused`)."
        for code in ("not_in_channel", "expired_trigger_id")
    }
    refused = [r for r in caplog.records if getattr(r, "action", None) == "slack_call_refused"]
    assert len(refused) == 2
    assert not [r for r in caplog.records if getattr(r, "action", None) == "listener_failed"]
