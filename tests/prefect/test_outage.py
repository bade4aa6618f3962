"""Signoff's Prefect watcher while the server cannot be reached (restarting, down): it
keeps trying, and says so in one line a try rather than a traceback each time."""

from __future__ import annotations

import json
import logging
import socket
import uuid
from urllib.parse import urlparse

import pytest

from signoff.bot.backends import Actor, RunState
from signoff.bot.backends.model import Event
from signoff.bot.backends.prefect import PrefectBackend, PrefectSettings
from signoff.bot.slack import ids
from signoff.bot.testing import ServedBot, serving
from tests.support.forwarding import forwarding, free_port
from tests.support.waiting import wait_for


class _Nobody:
    def on_event(self, event: Event) -> None:
        raise AssertionError(f"nothing can be delivered from an unreachable server: {event}")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_server_is_logged_a_line_a_try_without_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="signoff.bot.backends.prefect")
    url = f"http://127.0.0.1:{_closed_port()}/api"
    backend = PrefectBackend(PrefectSettings.load(api_url=url, reconcile_seconds=0.2))
    watch = backend.watch("outage-test", _Nobody())
    watcher = backend._watchers[0]
    run_id = str(uuid.uuid4())
    try:
        watch.start()
        watcher.poke(run_id)  # as an event would: that run's sync fails too

        def tried(action: str, times: int) -> bool:
            return sum(getattr(r, "action", None) == action for r in caplog.records) >= times

        wait_for(
            lambda: tried("prefect_reconcile_failed", 2) and tried("prefect_sync_failed", 2),
            timeout=30,
            what="two failed reconciliations and two failed syncs",
        )
    finally:
        watch.stop()
        backend.close()
    failed = [
        r
        for r in caplog.records
        if getattr(r, "action", None) in ("prefect_reconcile_failed", "prefect_sync_failed")
    ]
    assert all(r.exc_info is None and r.levelno == logging.WARNING for r in failed)
    assert all("cannot be reached" in r.error for r in failed)  # type: ignore[attr-defined]
    synced = [r for r in failed if r.action == "prefect_sync_failed"]  # type: ignore[attr-defined]
    assert {r.run_id for r in synced} == {run_id}  # type: ignore[attr-defined]


def _form(bot: ServedBot, user: str) -> object:
    """``user``'s open view once it is a form (it has an input)."""
    return bot.slack.wait_for(
        lambda ws: (
            (view := ws.open_view(user)) is not None
            and any(b.get("type") == "input" for b in view.view["blocks"])
            and view
        ),
        timeout=120,
    )


@pytest.mark.xdist_group("prefect-2")
@pytest.mark.timeout(900)
def test_a_form_submitted_while_prefect_is_down_names_the_run_and_is_answered_once_it_is_back(
    prefect_api_url: str,
) -> None:
    # The notice said "Your answer was not recorded: ..." without naming the run (a person
    # may have several forms open); nothing is stored, so answering again goes through.
    upstream = ("127.0.0.1", int(urlparse(prefect_api_url).port or 80))
    port = free_port()
    settings = PrefectSettings.load(api_url=f"http://127.0.0.1:{port}/api", reconcile_seconds=2.0)
    backend, direct = (
        PrefectBackend(settings),
        PrefectBackend(PrefectSettings.load(api_url=prefect_api_url)),
    )
    try:
        run = direct.start_run("greet-user/tests", {}, started_by=Actor("U0CAROL"))
        with serving(backend) as bot:
            with forwarding(port, upstream):
                root = bot.root_message(run.id, timeout=60)
                bot.driver.click("alice", root, action_id=ids.PROVIDE_INPUT)
                _form(bot, "U0ALICE")
            bot.driver.submit("alice", {"name": "Ada"})
            told = json.dumps(bot.outcome("alice", timeout=60).view)
            assert f"Your answer to run `{run.id[:8]}` was not recorded" in told
            assert "cannot be reached" in told and "please answer again" in told
            assert direct.get_run(run.id).state is RunState.PAUSED

            with forwarding(port, upstream):
                bot.driver.click("alice", root, action_id=ids.PROVIDE_INPUT)
                _form(bot, "U0ALICE")
                bot.driver.submit("alice", {"name": "Ada"})
                assert "Answer recorded" in json.dumps(bot.outcome("alice", timeout=60).view)
                [asked] = wait_for(
                    lambda: (p := direct.detail(run.id).pauses)[0].responder and p,
                    timeout=60,
                    what="the answer recorded",
                )
                assert (asked.responder, asked.response) == ("U0ALICE", {"name": "Ada"})
    finally:
        backend.close()
        direct.close()
