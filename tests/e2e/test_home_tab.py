"""The Home tab with many runs of every kind: within Slack's limits for a view, whatever the
runs' names and failures hold."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from signoff.bot.testing import RunningBot, running_bot
from signoff.engine import Engine, RunState, flow
from tests.support.waiting import wait_for

#: what a flow that calls a web service may well raise: the error page it got back
ERROR_PAGE = "<html><head><title>502 Bad Gateway</title></head><body>" + "<p>&nbsp;</p>" * 300


@flow(name="home-fetch")
def home_fetch() -> None:
    raise RuntimeError(ERROR_PAGE)


@pytest.fixture
def bot(engine: Engine) -> Iterator[RunningBot]:
    with running_bot(engine=engine) as running:
        yield running


def test_a_run_that_failed_with_an_error_page_is_listed_within_a_sections_length(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("home-fetch", {}, started_by="U0ALICE")
    wait_for(lambda: engine.get_run(run.id).state is RunState.FAILED, timeout=15)

    bot.driver.open_home("alice")
    # Published at all: the sandbox, as Slack, refuses a section longer than 3000 characters.
    home = bot.slack.wait_for(
        lambda ws: (h := ws.home_view("alice")) and "502 Bad Gateway" in json.dumps(h.view) and h,
        timeout=10,
    )
    line = next(b["text"]["text"] for b in home.view["blocks"] if run.id[:8] in json.dumps(b))
    assert "is *failed*: RuntimeError: &lt;html&gt;" in line and line.endswith("…")
