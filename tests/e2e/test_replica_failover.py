"""Two ``signoff serve`` replicas on one PostgreSQL database, as an operations team runs
them: the one a waiting run lives in is killed with SIGKILL, and the person's click and
form go to the one left. The answer resumes the run within the owner timeout, and the
audit trail names the person who decided."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from signoff.bot.sandbox import Message, SlackSandbox
from signoff.bot.slack import ids
from signoff.bot.testing import SIGNING_SECRET
from signoff.engine import Engine, Run, RunState
from tests.e2e import once_flows  # noqa: F401  (registers once-amount)
from tests.e2e.serve_process import start_serve, wait_until_ready
from tests.support.holding import writes_held
from tests.support.waiting import wait_for

CHANNEL = "C0GENERAL"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def owner_pid(engine: Engine, run_id: str) -> int | None:
    """The pid of the replica whose worker holds the run."""
    with engine.store.engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT p.pid FROM runs r JOIN processes p ON p.id = r.owner WHERE r.id = %(id)s",
            {"id": run_id},
        ).first()
    return int(row[0]) if row is not None else None


def prompted_run(engine: Engine, slack: SlackSandbox) -> tuple[Run, Message]:
    """A run of ``once-amount`` waiting for its amount, and the message that asks for it."""
    run = engine.submit("once-amount", {})
    wait_for(lambda: engine.get_run(run.id).state is RunState.PAUSED, timeout=30)
    root = slack.wait_for(
        lambda ws: next((m for m in ws.channel(CHANNEL).messages if run.id[:8] in m.text), None),
        timeout=30,
    )
    return run, root


@pytest.fixture
def slack() -> Iterator[SlackSandbox]:
    with SlackSandbox() as sandbox:
        yield sandbox


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_run_whose_replica_was_killed_is_answered_through_the_other(
    engine: Engine, database_url: str, slack: SlackSandbox, tmp_path: Path
) -> None:
    ports = [free_port(), free_port()]
    replicas = [start_serve(slack, database_url, tmp_path, CHANNEL, port) for port in ports]
    try:
        for port in ports:
            wait_until_ready(port)
        run, root = prompted_run(engine, slack)
        pid = owner_pid(engine, run.id)
        [dead] = [r for r in replicas if r.pid == pid]
        [(alive, port)] = [(r, p) for r, p in zip(replicas, ports, strict=True) if r is not dead]
        dead.send_signal(signal.SIGKILL)
        dead.wait(10)

        # At once, before the survivor can know the other is gone.
        driver = slack.driver(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET)
        assert driver.click("alice", root, action_id=ids.PROVIDE_INPUT).status == 200
        slack.wait_for(lambda ws: ws.open_view("alice"), timeout=10)
        reply = driver.submit("alice", {"amount": 7})
        assert reply.status == 200
        # Owner timeout 1 s (serve_process); a worker looks every half of it.
        wait_for(
            lambda: engine.get_run(run.id).state is RunState.COMPLETED,
            timeout=15,
            what="the run answered through the surviving replica to complete",
        )
        assert engine.get_run(run.id).result == "7"
        assert slack.open_view("alice").view["title"]["text"] == "Answer recorded"
        assert alive.poll() is None
    finally:
        for replica in replicas:
            if replica.poll() is None:
                replica.send_signal(signal.SIGTERM)
                replica.wait(15)
    answers = [r for r in engine.audit_trail(run.id) if r.action.startswith("answer.received")]
    assert [(r.actor_id, r.via) for r in answers] == [("U0ALICE", "slack")]
    assert all(replica.returncode in (0, -signal.SIGKILL) for replica in replicas)


def test_a_run_waiting_when_serve_is_stopped_is_answered_after_the_restart(
    engine: Engine, database_url: str, slack: SlackSandbox, tmp_path: Path
) -> None:
    port = free_port()
    serve = start_serve(slack, database_url, tmp_path, CHANNEL, port)
    try:
        wait_until_ready(port)
        run, root = prompted_run(engine, slack)
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(10) == 0  # a clean stop, as systemd and compose expect
        assert engine.get_run(run.id).state is RunState.SUSPENDED

        serve = start_serve(slack, database_url, tmp_path, CHANNEL, port)
        wait_until_ready(port)
        driver = slack.driver(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET)
        assert driver.click("alice", root, action_id=ids.PROVIDE_INPUT).status == 200
        slack.wait_for(lambda ws: ws.open_view("alice"), timeout=10)
        assert driver.submit("alice", {"amount": 3}).status == 200
        wait_for(lambda: engine.get_run(run.id).state is RunState.COMPLETED, timeout=15)
        assert engine.get_run(run.id).result == "3"
    finally:
        if serve.poll() is None:
            serve.send_signal(signal.SIGTERM)
            assert serve.wait(10) == 0


def test_a_stopping_serve_says_it_suspended_its_waiting_runs_before_it_says_it_stopped(
    engine: Engine, database_url: str, slack: SlackSandbox, tmp_path: Path
) -> None:
    """serve logged "serve stopped", then went on to suspend its waiting runs, so an
    operator (or a log check) took its last line for the end while it still wrote; the
    worker says them in this order."""
    port = free_port()
    serve = start_serve(slack, database_url, tmp_path, CHANNEL, port)
    try:
        wait_until_ready(port)
        prompted_run(engine, slack)
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(10) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait(10)
    (log,) = tmp_path.glob("serve-*.log")
    actions = [line.split()[3] for line in log.read_text().splitlines() if line[:2] == "20"]
    assert actions[-2:] == ["paused_runs_suspended", "serve_stopped"], actions


def test_an_answer_in_flight_when_serve_is_stopped_is_kept(
    engine: Engine, database_url: str, slack: SlackSandbox, tmp_path: Path
) -> None:
    port = free_port()
    serve = start_serve(slack, database_url, tmp_path, CHANNEL, port)
    try:
        wait_until_ready(port)
        run, root = prompted_run(engine, slack)
        driver = slack.driver(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET)
        driver.click("alice", root, action_id=ids.PROVIDE_INPUT)
        slack.wait_for(lambda ws: ws.open_view("alice"), timeout=10)
        [log] = tmp_path.glob("serve-*.log")
        with writes_held(database_url):
            reply = driver.submit("alice", {"amount": 4})
            assert (reply.status, reply.response_action) == (200, "update")  # "Submitting..."
            serve.send_signal(signal.SIGTERM)
            wait_for(lambda: "serve_stopping" in log.read_text(), timeout=10)
        assert serve.wait(15) == 0
        # The acknowledged answer was stored, the person told so, and the flow, still
        # in the process, went on with it before the process ended.
        assert slack.open_view("alice").view["title"]["text"] == "Answer recorded"
        assert engine.get_run(run.id).state is RunState.COMPLETED
        assert engine.get_run(run.id).result == "4"
    finally:
        if serve.poll() is None:
            serve.send_signal(signal.SIGTERM)
            assert serve.wait(10) == 0
