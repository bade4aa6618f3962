"""Many Prefect runs pausing at once (a release pausing its deploys for approval): one run
whose prompt Slack is slow to take holds up no other run's prompt, and every run's prompt
is posted once."""

from __future__ import annotations

import threading

import pytest

from tests.support.prefect import require_prefect

try:
    import prefect  # noqa: F401
except ImportError:
    require_prefect()

from signoff.bot.backends.prefect import PrefectBackend
from signoff.bot.slack import ids
from signoff.bot.testing import ServedBot
from tests.prefect.test_prefect_backend import KEYSET, TARGET_SCHEMA, paused_without_schema
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.xdist_group("prefect-2"), pytest.mark.timeout(900)]

#: the longest Slack takes to answer the slow run's post (less than the client's 30 s
#: timeout, so that the post simply returns late): it answers once the other runs' prompts
#: are done, or after this long, when they are held up behind it
SLOW_SECONDS = 20
OTHERS = 7


def paused(backend: PrefectBackend, name: str) -> str:
    """A run paused for input with its schema stored, as a flow leaves it."""
    run_id = paused_without_schema(backend, name)
    backend.api.create_input(run_id, KEYSET["schema"], TARGET_SCHEMA)
    return run_id


def prompts(bot: ServedBot, run_id: str) -> int:
    return sum(run_id[:8] in m.text for m in bot.slack.channel(bot.channel).messages)


def delivered(bot: ServedBot, run_id: str) -> bool:
    """The bot is done with the run's pause: its prompt posted, and that recorded."""
    return bool(bot.backend.get_record(run_id, f"{ids.CONSUMER}.delivered"))


def test_a_prompt_slack_is_slow_to_take_holds_up_no_other_runs_prompt(bot: ServedBot) -> None:
    # The watcher synced one run at a time: while Slack took its time over one run's
    # post, every other run that paused meanwhile waited for it.
    backend = bot.backend
    runs: list[str] = []
    others_done = threading.Event()
    try:
        slow = paused(backend, "slow-to-post")
        runs.append(slow)
        bot.slack.answer_late(
            "chat.postMessage",
            SLOW_SECONDS,
            when=lambda args: slow[:8] in str(args.get("text")),
            until=others_done,
        )
        # Its post takes effect at once; the bot waits for Slack's answer from now on.
        wait_for(lambda: prompts(bot, slow), timeout=60, what="the slow run's prompt")
        others = [paused(backend, f"paused-with-it-{n}") for n in range(OTHERS)]
        runs += others

        wait_for(
            lambda: all(delivered(bot, run_id) for run_id in others),
            timeout=120,
            what="the other runs' prompts",
        )
        # All handled while the bot still waited for Slack's answer about the slow one.
        assert not delivered(bot, slow)
        others_done.set()

        wait_for(lambda: delivered(bot, slow), timeout=120, what="the slow run's post done")
        assert {run_id: prompts(bot, run_id) for run_id in runs} == dict.fromkeys(runs, 1)
    finally:
        for run_id in runs:
            backend.api.set_state(run_id, {"type": "CANCELLED", "name": "Cancelled"}, force=True)
