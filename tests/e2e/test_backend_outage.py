"""While the backend cannot be read (the database or the Prefect server is down), a click
and the Home tab say so to the person, instead of nothing happening."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from signoff.bot.backends.embedded import EmbeddedBackend
from signoff.bot.errors import BackendUnavailable
from signoff.bot.slack import ids
from signoff.bot.slack.server import Server
from signoff.bot.testing import SIGNING_SECRET, RunningBot, running_bot
from signoff.engine import Engine, flow, pause_flow_run
from tests.engine.test_reconnect import pg_url, refuse_connections  # noqa: F401 - a fixture
from tests.support.holding import writes_held


@flow(name="outage-ask")
def outage_ask() -> int:
    return pause_flow_run(int, timeout=600)


class Outage(EmbeddedBackend):
    """The embedded backend, unreadable while ``down`` is set (as when its store is)."""

    down = threading.Event()

    def _check(self) -> None:
        if self.down.is_set():
            raise BackendUnavailable("embedded", "the database did not answer")

    def get_run(self, run_id: str) -> Any:
        self._check()
        return super().get_run(run_id)

    def waiting_on(self, actor: Any, limit: int = 20) -> Any:
        self._check()
        return super().waiting_on(actor, limit)


@pytest.fixture
def bot(engine: Engine) -> Iterator[RunningBot]:
    with running_bot(engine=engine) as running:
        yield running


def test_a_click_and_the_home_tab_say_when_runs_cannot_be_read(
    engine: Engine, bot: RunningBot, make_engine: Any
) -> None:
    run = engine.submit("outage-ask", {})
    prompt = bot.root_message(run.id)
    backend = Outage(make_engine())
    other = Server(backend, bot.server.settings, port=0)
    other.start()
    try:
        driver = bot.slack.driver(f"{other.url}/slack/events", SIGNING_SECRET)
        Outage.down.set()
        driver.click("alice", prompt, action_id=ids.PROVIDE_INPUT)
        notice = bot.slack.wait_for(lambda ws: ws.open_view("alice"), timeout=10)
        assert "Signoff cannot read this run just now" in json.dumps(notice.view)
        assert "the database did not answer" in json.dumps(notice.view)
        driver.open_home("bob")
        home = bot.slack.wait_for(lambda ws: ws.home_view("bob"), timeout=10)
        assert "Signoff cannot read runs just now" in json.dumps(home.view)
        Outage.down.clear()
        driver.open_home("bob")
        bot.slack.wait_for(
            lambda ws: "Waiting on you" in json.dumps(ws.home_view("bob").view), timeout=10
        )
    finally:
        Outage.down.clear()
        other.stop()


def test_runs_typed_while_the_database_is_down_says_so_and_does_nothing(pg_url: str) -> None:  # noqa: F811
    """With PostgreSQL refusing connections, the replay check before every listener failed
    and Slack got a 503: '/runs' ended in Slack's own error, not a word from Signoff."""
    with running_bot(database_url=pg_url) as bot:
        refuse_connections(pg_url, True)
        try:
            reply = bot.driver.slash_command("alice", "/runs", "start outage-ask")
        finally:
            refuse_connections(pg_url, False)
        assert (reply.status, reply.problems) == (200, ())
        (said,) = bot.slack.workspace.ephemeral("U0ALICE")
        assert "Signoff cannot reach its database just now" in said.text
        assert "nothing was done" in said.text
        assert bot.engine.list_runs() == []


def test_runs_typed_while_another_writer_holds_the_database_says_it_is_busy_within_3_s(
    engine: Engine, database_url: str, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """The replay check waited for its turn to write: '/runs' ended in Slack's timeout error
    (after 3 s) for as long as another process was writing (an upgrade, a busy replica)."""
    with caplog.at_level(logging.WARNING), writes_held(database_url, table="once_keys"):
        started = time.monotonic()
        reply = bot.driver.slash_command("alice", "/runs", "start outage-ask")
        assert time.monotonic() - started < 3.0, "Slack shows a timeout after 3 s"
        # A click or the Home tab: Slack shows its own error for a 503, at once.
        home = bot.driver.open_home("bob")
        assert home.status == 503
    assert (reply.status, reply.problems) == (200, ())
    (said,) = bot.slack.workspace.ephemeral("U0ALICE")
    assert "busy" in said.text and "nothing was done" in said.text and "Try again" in said.text
    assert [r for r in caplog.records if getattr(r, "action", None) == "replay_check_busy"]
    # Typed again, it starts the run, once: the first command did nothing, even later.
    bot.driver.slash_command("alice", "/runs", "start outage-ask")
    bot.slack.wait_for(lambda ws: len(ws.ephemeral("U0ALICE")) == 2, timeout=10)
    assert [r.flow_name for r in bot.engine.list_runs()] == ["outage-ask"]


def test_metrics_say_the_database_is_down_rather_than_go_quiet(pg_url: str) -> None:  # noqa: F811
    """The database's gauges vanished from /metrics while it was down, so an alert on them
    went quiet instead of firing; ``signoff_backend_up`` says 0 then."""
    from tests.e2e.test_observability import get, sample

    with running_bot(database_url=pg_url) as bot:
        assert sample(get(f"{bot.server.url}/metrics")[2], "signoff_backend_up") == 1
        refuse_connections(pg_url, True)
        try:
            status, _, down = get(f"{bot.server.url}/metrics")
        finally:
            refuse_connections(pg_url, False)
        assert status == 200
        assert "signoff_backend_up 0.0" in down
        assert "signoff_waiting_inputs" not in down
        assert "signoff_slack_api_calls_total" in down  # this process's own counts stay
        assert sample(get(f"{bot.server.url}/metrics")[2], "signoff_backend_up") == 1
