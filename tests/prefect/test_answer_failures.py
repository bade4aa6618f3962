"""An answer to a Prefect run when the connection to Prefect fails, or the run moves on,
at the moment Signoff resumes the run: the answer's responder is kept when the resume took
effect, a record of one that did not never blocks a later answer, and a run that stopped
waiting in between is said so, by its id, as the embedded engine says it.

The bot reaches Prefect through an ``Interposer`` (``tests/support/interposing.py``) that
holds or cuts the resume request itself; everything else is the session's real server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.support.prefect import require_prefect

try:
    import prefect  # noqa: F401
except ImportError:
    require_prefect()

from signoff.bot.backends import Accepted, Actor, Refused, RunState, Stale
from signoff.bot.backends.prefect import PrefectBackend, PrefectSettings
from signoff.bot.errors import BackendUnavailable
from signoff.bot.slack import ids
from signoff.bot.testing import serving
from tests.prefect.test_prefect_backend import CAROL, KEYSET, finished
from tests.support.forwarding import free_port
from tests.support.interposing import Interposer, interposing
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.xdist_group("prefect-2"), pytest.mark.timeout(900)]

ALICE, BOB = Actor("U0ALICE"), Actor("U0BOB")
RESUME = rb"^POST /api/flow_runs/[0-9a-f-]+/resume "
#: how long the form test's pause stays open: time to prompt, open the form and submit it
OPEN_SECONDS = 20
#: what Prefect stores for ``class UserName(RunInput): name: str``
USER_NAME = {
    "title": "UserName",
    "type": "object",
    "properties": {"name": {"title": "Name", "type": "string"}},
    "required": ["name"],
}


class Through:
    """A backend that reaches the session's Prefect through an interposer on ``port``."""

    def __init__(self, api_url: str, **settings: Any) -> None:
        self.upstream = ("127.0.0.1", int(urlparse(api_url).port or 80))
        self.port = free_port()
        url = f"http://127.0.0.1:{self.port}/api"
        self.backend = PrefectBackend(PrefectSettings.load(api_url=url, **settings))

    def interposer(self) -> Interposer:
        return Interposer(self.port, self.upstream)


@pytest.fixture
def through(prefect_api_url: str) -> Iterator[Through]:
    found = Through(prefect_api_url, answer_claim_seconds=1.0)
    try:
        yield found
    finally:
        found.backend.close()


def greeting(backend: PrefectBackend) -> tuple[str, str]:
    """A greet-user run, once it waits: its id and its request's key."""
    run = backend.start_run("greet-user/tests", {}, started_by=CAROL)
    pause = wait_for(lambda: backend.waiting_pause(run.id), timeout=60, what="the pause")
    return run.id, pause.key


def answering(backend: PrefectBackend, run_id: str, key: str, values: dict, who: Actor):
    """``backend.answer`` in a thread: a list that gets its outcome (or its error)."""
    outcome: list[object] = []

    def answer() -> None:
        try:
            outcome.append(backend.answer(run_id, key, values, responder=who))
        except Exception as exc:
            outcome.append(exc)

    threading.Thread(target=answer, daemon=True).start()
    return outcome


def test_an_answer_whose_resume_took_effect_keeps_its_responder_though_the_response_was_lost(
    prefect_backend: PrefectBackend, through: Through
) -> None:
    # The record of who answered was deleted: the run said "answered outside Signoff".
    direct = prefect_backend
    run_id, key = greeting(direct)
    with interposing(through.port, through.upstream) as interposer:
        lost = interposer.next_request(RESUME, "lose_response")
        answer = through.backend.answer(run_id, key, {"name": "Ada"}, responder=ALICE)
        assert lost.seen.is_set()
    assert isinstance(answer, Accepted), answer
    assert finished(direct, run_id).state is RunState.COMPLETED
    [asked] = direct.detail(run_id).pauses
    assert (asked.responder, asked.response, asked.answered_outside) == (
        "U0ALICE",
        {"name": "Ada"},
        False,
    )
    assert [r.actor_id for r in direct.audit_trail(run_id) if r.action == "answer.received"] == [
        "U0ALICE"
    ]


def test_a_record_left_by_an_answer_prefect_never_got_blocks_no_later_answer(
    prefect_backend: PrefectBackend, through: Through
) -> None:
    # Prefect went away as the resume was sent: the record of Alice's answer stayed (its
    # deletion failed too), and every later answer was "already answered by U0ALICE".
    direct = prefect_backend
    run_id, key = greeting(direct)
    with interposing(through.port, through.upstream) as interposer:
        cut = interposer.next_request(RESUME, "cut")
        with pytest.raises(BackendUnavailable) as told:
            through.backend.answer(run_id, key, {"name": "Ada"}, responder=ALICE)
        assert cut.seen.is_set()
    assert direct.get_run(run_id).state is RunState.PAUSED

    with interposing(through.port, through.upstream):
        waiting = wait_for(
            lambda: through.backend.waiting_pause(run_id),
            timeout=30,
            what="the request to wait again",
        )
        assert waiting.key == key and waiting.responder is None
        answer = through.backend.answer(run_id, key, {"name": "Bea"}, responder=BOB)
        assert isinstance(answer, Accepted), answer
    assert finished(direct, run_id).state is RunState.COMPLETED
    [asked] = direct.detail(run_id).pauses
    assert (asked.responder, asked.response) == ("U0BOB", {"name": "Bea"})
    assert run_id in str(told.value)  # Alice was told which answer may not have been taken


def test_an_answer_being_sent_still_holds_its_request_against_another_replica(
    prefect_backend: PrefectBackend, prefect_api_url: str
) -> None:
    # Two replicas at once: while Alice's resume is on its way (held), Bob's answer through
    # another replica is told she answered, and does not take her claim over.
    direct, alices = prefect_backend, Through(prefect_api_url)
    try:
        run_id, key = greeting(direct)
        with interposing(alices.port, alices.upstream) as interposer:
            held = interposer.next_request(RESUME, "hold")
            outcome = answering(alices.backend, run_id, key, {"name": "Ada"}, ALICE)
            assert held.seen.wait(30)
            second = direct.answer(run_id, key, {"name": "Bea"}, responder=BOB)
            held.release.set()
            [first] = wait_for(lambda: outcome, timeout=30, what="Alice's answer's outcome")
    finally:
        alices.backend.close()
    assert isinstance(second, Stale) and "already answered by U0ALICE" in second.reason, second
    assert isinstance(first, Accepted), first
    assert finished(direct, run_id).state is RunState.COMPLETED
    assert direct.detail(run_id).pauses[0].responder == "U0ALICE"


def test_a_run_answered_in_prefect_as_the_answer_is_sent_is_said_so_naming_the_run(
    prefect_backend: PrefectBackend, through: Through
) -> None:
    # The answer was refused in Prefect's own words: "Cannot resume a flow run that is not
    # paused.", without the run.
    direct = prefect_backend
    run_id, key = greeting(direct)
    with interposing(through.port, through.upstream) as interposer:
        held = interposer.next_request(RESUME, "hold")
        outcome = answering(through.backend, run_id, key, {"name": "Ada"}, ALICE)
        assert held.seen.wait(30)
        resumed = direct.api._call(
            "POST", f"/flow_runs/{run_id}/resume", body={"run_input": {"name": "Bea"}}
        )
        assert resumed.json()["status"] == "ACCEPT", resumed.text
        held.release.set()
        [answer] = wait_for(lambda: outcome, timeout=30, what="the answer's outcome")
    assert isinstance(answer, Stale), answer
    assert answer.reason == (
        f"input {key!r} of run {run_id} was already answered by someone outside Signoff "
        "(in Prefect's UI or API)"
    )
    assert finished(direct, run_id).state is RunState.COMPLETED
    assert direct.detail(run_id).pauses[0].answered_outside


def paused_until(backend: PrefectBackend, deadline: datetime) -> str:
    """A run paused for a ``UserName`` until ``deadline``, by no flow process (none fails
    it at the deadline, as a suspended run's has none)."""
    api = backend.api
    flow_id = api.deployment_by_name("greet-user", "tests")["flow_id"]
    details = {"pause_key": "1", "run_input_keyset": KEYSET, "pause_timeout": deadline.isoformat()}
    created = api._json(
        "POST",
        "/flow_runs/",
        body={
            "flow_id": flow_id,
            "name": "answered-as-it-expires",
            "state": {"type": "PAUSED", "name": "Paused", "state_details": details},
        },
    )
    run_id = str(created["id"])
    assert api.create_input(run_id, KEYSET["schema"], USER_NAME)
    return run_id


def test_a_pause_that_expires_as_the_answer_is_sent_says_it_closed_naming_the_run(
    prefect_backend: PrefectBackend, through: Through
) -> None:
    # Prefect's "The flow run pause has timed out and can no longer resume." came back as
    # a field error: the form showed it under its input, as if the value were wrong.
    direct = prefect_backend
    deadline = datetime.now(UTC) + timedelta(seconds=5)
    run_id = paused_until(direct, deadline)
    key = wait_for(lambda: direct.waiting_pause(run_id), timeout=30, what="the pause").key
    with interposing(through.port, through.upstream) as interposer:
        held = interposer.next_request(RESUME, "hold")
        outcome = answering(through.backend, run_id, key, {"name": "Ada"}, ALICE)
        assert held.seen.wait(30)
        wait_for(lambda: datetime.now(UTC) > deadline, timeout=30, what="the deadline")
        held.release.set()
        [answer] = wait_for(lambda: outcome, timeout=30, what="the answer's outcome")
    assert not isinstance(answer, Refused), answer
    assert isinstance(answer, Stale), answer
    assert answer.reason == f"input {key!r} of run {run_id} closed at {deadline:%H:%M} UTC"
    assert direct.get_run(run_id).state is RunState.FAILED


def test_a_form_submitted_as_its_pause_expires_says_the_input_closed_not_a_field_error(
    prefect_backend: PrefectBackend, through: Through
) -> None:
    # The form came back with Prefect's "The flow run pause has timed out and can no
    # longer resume." under its input, as though the name typed were wrong.
    direct = prefect_backend
    with interposing(through.port, through.upstream) as interposer, serving(through.backend) as bot:
        # Paused once the bot is up: its prompt comes from the pause's event, in a second
        # or two; the deadline leaves room for that many times over, not the 45 s it was.
        deadline = datetime.now(UTC) + timedelta(seconds=OPEN_SECONDS)
        run_id = paused_until(direct, deadline)
        root = bot.root_message(run_id, timeout=30)
        bot.driver.click("alice", root, action_id=ids.PROVIDE_INPUT)
        bot.slack.wait_for(lambda ws: ws.open_view("alice"), timeout=30)
        # Submitted moments before the deadline; the resume held until after it (for less
        # than the client's 10 s timeout).
        soon = deadline - timedelta(seconds=3)
        assert datetime.now(UTC) < soon, "the form opened too late to be submitted in time"
        wait_for(lambda: datetime.now(UTC) > soon, timeout=60, what="the deadline to near")
        held = interposer.next_request(RESUME, "hold")
        assert bot.driver.submit("alice", {"name": "Ada"}).response_action == "update"
        assert held.seen.wait(30)
        wait_for(lambda: datetime.now(UTC) > deadline, timeout=60, what="the deadline")
        held.release.set()
        told = bot.outcome("alice", timeout=60)
    shown = json.dumps(told.view)
    assert "Nothing to do" in shown and "Nobody answered in time" in shown, shown
    assert f"Run `{run_id[:8]}`" in shown
    assert not any(b.get("type") == "input" for b in told.view["blocks"]), shown
