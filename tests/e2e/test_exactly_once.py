"""Each prompt reaches Slack exactly once, whatever happens between the call and its answer.

Faults are injected at the HTTP boundary: the sandbox stores a message and answers late
(past the client's timeout, or never, because the poster was killed with SIGKILL), or
answers 429 with a Retry-After longer than the consumer's lease while two replicas run.
Also: a run answered before Slack heard of it still gets its thread, and when the poster
dies another replica takes over within seconds.

The README's reliability figures come from these tests.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from signoff.bot.backends.embedded import EmbeddedBackend
from signoff.bot.config import BotSettings
from signoff.bot.errors import PostInFlight
from signoff.bot.sandbox import SlackSandbox
from signoff.bot.slack import ids
from signoff.bot.slack.posting import Poster
from signoff.bot.slack.server import Server
from signoff.bot.testing import SIGNING_SECRET
from signoff.engine import DurableConsumer, Engine, EngineSettings, RunState, Worker
from tests.e2e import once_flows  # noqa: F401  (registers the flows)
from tests.e2e.serve_process import start_serve
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
CHANNEL = "C0GENERAL"


def settings_for(slack: SlackSandbox, **overrides: object) -> BotSettings:
    return BotSettings.load(
        bot_token=slack.token,
        signing_secret=SIGNING_SECRET,
        api_url=slack.api_url,
        channel=CHANNEL,
        **overrides,
    )


def roots_of(slack: SlackSandbox, run_id: str) -> list:
    """Top-level messages about a run (its thread roots): exactly one is right."""
    return [m for m in slack.channel(CHANNEL).messages if run_id[:8] in m.text]


def prompt_recorded(engine: Engine, run_id: str) -> bool:
    return bool(engine.get_metadata(run_id, ids.PROMPTS))


def answer(slack: SlackSandbox, server: Server, run_id: str, amount: int) -> None:
    driver = slack.driver(f"{server.url}/slack/events", SIGNING_SECRET)
    [root] = roots_of(slack, run_id)
    driver.click("alice", root, action_id=ids.PROVIDE_INPUT)
    slack.wait_for(lambda ws: ws.open_view("U0ALICE"), timeout=10)
    assert driver.submit("alice", {"amount": amount}).status == 200


@pytest.fixture
def slack() -> Iterator[SlackSandbox]:
    with SlackSandbox() as sandbox:
        yield sandbox


def test_a_post_answered_after_the_client_timeout_is_not_repeated(
    engine: Engine, slack: SlackSandbox
) -> None:
    # Slack stores the message at once but answers after 3 s; the client gives up after 1 s.
    slack.answer_late("chat.postMessage", 3)
    server = Server(EmbeddedBackend(engine), settings_for(slack, api_timeout=1), port=0)
    server.start()
    try:
        run = engine.submit("once-amount", {})
        wait_for(lambda: prompt_recorded(engine, run.id), timeout=20, what="the prompt recorded")
        assert len(roots_of(slack, run.id)) == 1
        answer(slack, server, run.id, 5)
        assert wait_for(lambda: engine.get_run(run.id).state is RunState.COMPLETED, timeout=15)
    finally:
        server.stop()
    assert len(roots_of(slack, run.id)) == 1
    # The timed-out call was looked up in the channel, not made again.
    assert len([c for c in slack.calls("chat.postMessage") if not c.args.get("thread_ts")]) == 1
    assert slack.calls("conversations.history")


def test_two_replicas_under_rate_limiting_post_each_prompt_once(
    database_url: str, slack: SlackSandbox
) -> None:
    # A Retry-After longer than the lease: a replica that did not renew its lease while
    # waiting would lose it mid-batch, and the other would post the same prompts.
    slack.fail_next("chat.postMessage", times=3, status=429, retry_after=4)
    assert DurableConsumer.LEASE_SECONDS < 4
    engines = [
        Engine(EngineSettings.load(database_url=database_url, heartbeat_seconds=0.5))
        for _ in range(2)
    ]
    servers = [Server(EmbeddedBackend(e), settings_for(slack), port=0) for e in engines]
    for server in servers:
        server.start()
    try:
        runs = [engines[0].submit("once-amount", {}) for _ in range(3)]
        for run in runs:
            wait_for(
                lambda run=run: prompt_recorded(engines[0], run.id), timeout=60, what="prompts"
            )
        assert [len(roots_of(slack, r.id)) for r in runs] == [1, 1, 1]
    finally:
        for server in servers:
            server.stop()
        for engine in engines:
            engine.close()
    assert [c.status for c in slack.calls("chat.postMessage")].count(429) == 3


def test_a_run_answered_before_slack_heard_of_it_gets_its_thread(
    engine: Engine, slack: SlackSandbox
) -> None:
    server = Server(EmbeddedBackend(engine), settings_for(slack), port=0)
    server.start()
    server.stop()  # the bot has subscribed once; now it is down
    worker = Worker(engine)
    worker.start()
    try:
        run = engine.submit("once-amount", {})
        wait_for(lambda: engine.get_run(run.id).state is RunState.PAUSED, timeout=15)
        engine.resume(run.id, {"amount": 3}, responder="U0CAROL")  # as `signoff runs resume`
        wait_for(lambda: engine.get_run(run.id).state is RunState.COMPLETED, timeout=15)
    finally:
        worker.stop()
    restarted = Server(EmbeddedBackend(engine), settings_for(slack), port=0)
    restarted.start()
    try:

        def settled_root():
            roots = roots_of(slack, run.id)
            shown = json.dumps([m.blocks for m in roots]) + "".join(m.text for m in roots)
            return roots if "completed" in shown and "<@U0CAROL>" in shown else None

        [root] = slack.wait_for(lambda ws: settled_root(), timeout=20)
    finally:
        restarted.stop()
    assert not [b for b in root.blocks if b.get("type") == "actions"]  # no live button


# -- other processes: the poster is a `signoff serve` subprocess, killed with SIGKILL -------


def holds_slack_lease(engine: Engine) -> bool:
    with engine.store.engine.connect() as conn:
        from sqlalchemy import text

        row = conn.execute(
            text("SELECT lease_owner FROM event_cursors WHERE consumer = :c"), {"c": ids.CONSUMER}
        ).first()
    return row is not None and row[0] is not None


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def test_kill_9_after_slack_stored_the_prompt_posts_no_second_copy(
    engine: Engine, database_url: str, slack: SlackSandbox, tmp_path: Path
) -> None:
    slack.answer_late("chat.postMessage", 60)  # stored at once, answered never (in time)
    poster = start_serve(slack, database_url, tmp_path, CHANNEL)
    try:
        wait_for(lambda: holds_slack_lease(engine), timeout=60, what="the poster to subscribe")
        run = engine.submit("once-amount", {})
        slack.wait_for(lambda ws: roots_of(slack, run.id), timeout=30)
        kill(poster)  # Slack has the message; Signoff never heard back
    finally:
        if poster.poll() is None:
            kill(poster)
    assert not prompt_recorded(engine, run.id)
    server = Server(EmbeddedBackend(engine), settings_for(slack), port=0)
    server.start()
    try:
        wait_for(lambda: prompt_recorded(engine, run.id), timeout=30, what="the prompt adopted")
        answer(slack, server, run.id, 9)
        assert wait_for(lambda: engine.get_run(run.id).state is RunState.COMPLETED, timeout=30)
    finally:
        server.stop()
    assert len(roots_of(slack, run.id)) == 1
    assert engine.get_run(run.id).result == "9"


def test_after_the_poster_dies_another_replica_posts_within_five_seconds(
    engine: Engine, database_url: str, slack: SlackSandbox, tmp_path: Path
) -> None:
    poster = start_serve(slack, database_url, tmp_path, CHANNEL)
    standby = Server(EmbeddedBackend(engine), settings_for(slack), port=0)
    try:
        wait_for(lambda: holds_slack_lease(engine), timeout=60, what="the poster to subscribe")
        standby.start()  # second in line: the poster holds the lease
        first = engine.submit("once-amount", {})
        slack.wait_for(lambda ws: roots_of(slack, first.id), timeout=30)
        kill(poster)
        died = time.monotonic()
        run = engine.submit("once-amount", {})
        slack.wait_for(lambda ws: roots_of(slack, run.id), timeout=30)
        silence = time.monotonic() - died
    finally:
        if poster.poll() is None:
            kill(poster)
        standby.stop()
    # The lease (3 s) runs out and the standby, trying every second, takes over.
    assert silence <= 5.0, f"Slack was silent for {silence:.1f} s after the poster died"
    assert len(roots_of(slack, first.id)) == 1 and len(roots_of(slack, run.id)) == 1


def test_a_post_another_process_is_making_is_waited_for_not_made_twice(
    engine: Engine, slack: SlackSandbox
) -> None:
    """Two replicas handed the same change at once (on Prefect no lease keeps them apart):
    the second finds the first's fresh claim and nothing in Slack yet. It posted a second
    copy; now it gives the change back, and adopts the first's post when handed it again."""
    backend = EmbeddedBackend(engine)
    client = slack.client(timeout=5)
    first, second = (Poster(backend, client, lambda: None) for _ in range(2))
    run = engine.submit("once-amount", {})
    # The first replica has claimed the post; its call has not reached Slack yet.
    claim = {"at": time.time(), "channel": CHANNEL, "thread_ts": None, "by": first.token}
    assert backend.add_record(run.id, ids.posting_key("root"), claim)
    with pytest.raises(PostInFlight) as raised:
        second.post(run.id, "root", CHANNEL, f"run {run.id}")
    assert (raised.value.run_id, raised.value.post_id) == (run.id, "root")
    assert not slack.calls("chat.postMessage")
    posted = first.post(run.id, "root", CHANNEL, f"run {run.id}")
    assert second.post(run.id, "root", CHANNEL, f"run {run.id}") == posted
    assert len(slack.calls("chat.postMessage")) == 1

    # A claim older than the client's timeout is not waited for: that call has ended.
    other = engine.submit("once-amount", {})
    stale = {**claim, "at": time.time() - 5 - Poster.IN_FLIGHT_MARGIN_SECONDS}
    assert backend.add_record(other.id, ids.posting_key("root"), stale)
    second.post(other.id, "root", CHANNEL, f"run {other.id}")
    assert len(roots_of(slack, other.id)) == 1
