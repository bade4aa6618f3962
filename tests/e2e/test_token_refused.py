"""A bot token Slack stops taking while ``serve`` runs (revoked, the app uninstalled): each
try to post says so in one line naming ``SLACK_BOT_TOKEN`` and Slack's answer, and the
change is kept, so the run's thread appears once a valid token is in place."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from signoff.bot.testing import RunningBot, running_bot
from signoff.engine import Engine, RunState
from tests.e2e.test_delivery import answer, finished, posts, root_when


@pytest.fixture
def bot(engine: Engine) -> Iterator[RunningBot]:
    with running_bot(engine=engine) as running:
        yield running


@pytest.mark.parametrize("error", ["invalid_auth", "token_revoked"])
def test_a_bot_token_refused_mid_run_is_named_in_one_line_and_the_prompt_still_comes(
    engine: Engine, bot: RunningBot, caplog: pytest.LogCaptureFixture, error: str
) -> None:
    """Each try logged ``event_delivery_failed`` with a slack_sdk traceback that named
    neither the variable nor what to do."""
    caplog.set_level(logging.INFO)
    bot.slack.fail_next("chat.postMessage", times=2, status=200, error=error)
    run = engine.submit("dl-amount", {})
    root = bot.root_message(run.id, timeout=30)
    refused = [r for r in caplog.records if getattr(r, "action", "") == "bot_token_refused"]
    assert len(refused) == 2
    assert refused[0].levelno == logging.ERROR
    assert (
        refused[0].getMessage().startswith(f"Slack refuses the token in SLACK_BOT_TOKEN ({error})")
    )
    assert refused[0].run_id == run.id  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if r.exc_info], "no traceback"
    assert len(posts(bot)) == 1

    # An update refused the same way is kept too: the root message ends up right.
    bot.slack.fail_next("chat.update", times=1, status=200, error=error)
    answer(bot, "bob", root, {"amount": 6})
    assert finished(engine, run.id).state is RunState.COMPLETED
    root_when(bot, root.ts, "is *completed*", "Answered by <@U0BOB>", timeout=30)
    assert not [r for r in caplog.records if r.exc_info], "no traceback"
