"""``signoff demo --backend prefect --prefect-url`` on a server a ``signoff serve`` also
watches: each bot handles its own runs and leaves the other's alone. Before, the serving
bot posted the demo's paused runs to its own channel and the demo waited in vain."""

from __future__ import annotations

import logging
import uuid

import pytest

from tests.support.prefect import require_prefect

try:
    import prefect  # noqa: F401
except ImportError:
    require_prefect()

from signoff.bot.backends import Actor
from signoff.bot.backends.prefect import PrefectBackend, PrefectSettings
from signoff.bot.testing import ServedBot, serving
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.xdist_group("prefect"), pytest.mark.timeout(900)]

CAROL, ALICE = Actor("U0CAROL"), Actor("U0ALICE")


def skipped(caplog: pytest.LogCaptureFixture, run_id: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if getattr(r, "action", None) == "prefect_demo_run_skipped"
        and getattr(r, "run_id", None) == run_id
    ]


def test_a_served_bot_and_a_demo_on_one_server_leave_each_others_runs_alone(
    bot: ServedBot, prefect_api_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    session = f"test-{uuid.uuid4().hex[:8]}"
    settings = PrefectSettings.load(api_url=prefect_api_url, reconcile_seconds=2.0)
    demo_backend = PrefectBackend(settings, demo=session)
    try:
        with serving(demo_backend) as demo:
            played = demo_backend.start_run("greet-user/tests", {}, started_by=CAROL)
            served = bot.backend.start_run("greet-user/tests", {}, started_by=CAROL)
            assert played.tags.get("signoff.demo") == session
            assert "signoff.demo" not in served.tags

            # Each run is posted by its own bot, in its own sandbox ...
            demo.root_message(played.id, timeout=120)
            bot.root_message(served.id, timeout=120)
            # ... and the other bot said, once, that it left it alone.
            wait_for(
                lambda: skipped(caplog, played.id) and skipped(caplog, served.id),
                timeout=120,
                what="both bots to log the run they left alone",
            )
            assert not any(played.id[:8] in m.text for m in bot.slack.channel(bot.channel).messages)
            assert not any(
                served.id[:8] in m.text for m in demo.slack.channel(demo.channel).messages
            )
            # Nor does the serving bot list the demo's run as waiting for anyone.
            waiting = {run.id for run, _ in bot.backend.waiting_on(ALICE, limit=100)}
            assert served.id in waiting and played.id not in waiting
            assert {run.id for run, _ in demo_backend.waiting_on(ALICE, limit=100)} == {played.id}

            # A later change of the demo's run (its cancel) is not logged again.
            demo_backend.cancel(played.id, by=CAROL)
            wait_for(
                lambda: "cancelled" in demo.root_message(played.id).text.lower(),
                timeout=120,
                what="the demo's prompt to show its run cancelled",
            )
            assert len(skipped(caplog, played.id)) == 1
            assert not any(played.id[:8] in m.text for m in bot.slack.channel(bot.channel).messages)
            bot.backend.cancel(served.id, by=CAROL)
    finally:
        demo_backend.close()
