"""Signoff on a real Prefect server: real flows pause, suspend, loop and time out, and
people answer them in the local Slack sandbox. Nothing of Prefect is mocked."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.prefect import require_prefect

try:
    import prefect  # noqa: F401
except ImportError:
    require_prefect()  # skips (or fails in CI) with the command that installs the extra

from signoff.bot.backends import (
    SYSTEM,
    Accepted,
    Actor,
    Event,
    EventKind,
    PauseStatus,
    Refused,
    RunState,
    Stale,
)
from signoff.bot.backends.prefect import PrefectBackend, PrefectSettings
from signoff.bot.backends.prefect.delivery import Delivery
from signoff.bot.backends.prefect.watcher import Watcher
from signoff.bot.errors import RunNotFound
from signoff.bot.slack import ids
from signoff.bot.slack.notifier import SlackNotifier
from signoff.bot.testing import ServedBot, form_errors, serving
from tests.support.waiting import wait_for

# One worker runs them all against the session's server; the first one also waits for the
# server to start (minutes on a loaded machine).
pytestmark = [pytest.mark.xdist_group("prefect"), pytest.mark.timeout(900)]

CHANNEL = "C0GENERAL"
CAROL, ALICE = Actor("U0CAROL"), Actor("U0ALICE")
#: starts the runs of the paging test only, so other tests never mistake them for theirs
PAGER = Actor("U0PAGER")


class _Nobody:
    """Refuses anything about ``run_id`` (deleted); other tests' runs share the server."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def on_event(self, event: Event) -> None:
        if event.run_id == self.run_id:
            raise AssertionError(f"a deleted run has nothing to deliver: {event}")


def buttons(message) -> list[dict]:
    return [e for b in message.blocks if b.get("type") == "actions" for e in b["elements"]]


def replies(bot: ServedBot, root) -> list:
    return bot.slack.channel(CHANNEL).replies.get(root.ts, [])


def reply_saying(bot: ServedBot, root, text: str, timeout: float = 60):
    """Wait for the first reply in ``root``'s thread that contains ``text``."""
    return bot.slack.wait_for(
        lambda ws: next(
            (m for m in ws.channel(CHANNEL).replies.get(root.ts, []) if text in m.text), None
        ),
        timeout=timeout,
    )


def finished(backend: PrefectBackend, run_id: str, timeout: float = 60):
    return wait_for(
        lambda: (r := backend.get_run(run_id)).state.is_final and r,
        timeout=timeout,
        what=f"Prefect run {run_id} to finish",
    )


def logged(backend: PrefectBackend, run_id: str, text: str) -> None:
    """Wait for ``text`` in the run's logs (Prefect ships a run's logs in batches)."""
    wait_for(
        lambda: text in [e.message for e in backend.detail(run_id).logs],
        timeout=60,
        what=f"{text!r} in the logs of {run_id}",
    )


def fields(view) -> dict[str, object]:
    """Each input block's initial value, by block id."""
    found: dict[str, object] = {}
    for block in view.view["blocks"]:
        if block.get("type") == "input":
            element = block["element"]
            found[block["block_id"]] = element.get("initial_value") or element.get(
                "initial_option", {}
            ).get("value")
    return found


def runs(bot: ServedBot, user: str, text: str):
    before = len(bot.slack.ephemeral(user))
    reply = bot.driver.slash_command(user, "/runs", text)
    assert reply.status == 200
    return bot.slack.wait_for(lambda ws: ws.ephemeral(user)[before:][-1], timeout=30)


def test_a_paused_prefect_run_is_answered_in_slack(bot: ServedBot) -> None:
    backend = bot.backend
    run = backend.start_run("greet-user/tests", {}, started_by=CAROL)
    root = bot.root_message(run.id, timeout=60)
    assert "greet-user" in root.text
    assert [b["text"]["text"] for b in buttons(root)] == ["Provide input", "Reassign"]

    bot.driver.click("alice", root, action_id=ids.PROVIDE_INPUT)
    view = bot.slack.wait_for(lambda ws: ws.open_view("U0ALICE"), timeout=120)
    # The schema Prefect stored, with with_initial_data's value as the default.
    assert fields(view) == {"field:name": "anonymous"}
    assert "Who are you?" in json.dumps(view.view["blocks"])
    assert bot.driver.submit("alice", {"name": "Ada"}).response_action == "update"
    assert "Answer recorded" in json.dumps(bot.outcome("alice", timeout=120).view)

    done = finished(backend, run.id)
    assert done.state is RunState.COMPLETED
    detail = backend.detail(run.id)
    logged(backend, run.id, "Hello, Ada!")
    [asked] = detail.pauses
    assert (asked.status, asked.responder, asked.response) == (
        PauseStatus.ACCEPTED,
        "U0ALICE",
        {"name": "Ada"},
    )
    bot.slack.wait_for(
        lambda ws: (
            "Answered by <@U0ALICE>" in json.dumps(ws.channel(CHANNEL).message(root.ts).blocks)
            and "completed" in ws.channel(CHANNEL).message(root.ts).text
        ),
        timeout=30,
    )


def test_the_validation_loop_shows_who_sent_what_and_asks_again_prefilled(bot: ServedBot) -> None:
    backend = bot.backend
    run = backend.start_run("get-shirt-order/tests", {}, started_by=CAROL)
    root = bot.root_message(run.id, timeout=60)
    bot.driver.click("alice", root, action_id=ids.PROVIDE_INPUT)
    bot.slack.wait_for(lambda ws: ws.open_view("U0ALICE"), timeout=120)
    bot.driver.submit("alice", {"size": "small", "color": "green"})

    note = reply_saying(bot, root, "not accepted")
    assert "<@U0ALICE>" in note.text
    assert "Green is only in stock" in note.text
    assert "size=small" in note.text and "color=green" in note.text
    again = bot.slack.wait_for(
        lambda ws: next(
            (m for m in ws.channel(CHANNEL).replies.get(root.ts, []) if buttons(m)), None
        ),
        timeout=60,
    )
    bot.driver.click("bob", again, action_id=ids.PROVIDE_INPUT)
    prefilled = bot.slack.wait_for(lambda ws: ws.open_view("U0BOB"), timeout=120)
    assert fields(prefilled) == {"field:size": "small", "field:color": "green"}
    bot.driver.submit("bob", {"color": "red"})

    done = finished(backend, run.id)
    assert done.state is RunState.COMPLETED
    inputs = backend.detail(run.id).pauses
    assert [(i.status, i.responder) for i in inputs] == [
        (PauseStatus.REJECTED, "U0ALICE"),
        (PauseStatus.ACCEPTED, "U0BOB"),
    ]
    logged(backend, run.id, "Shirt order: small, red")

    # The flow's verdicts are in the trail, as the engine keeps them.
    def verdicts() -> set[tuple[str, object]]:
        trail = backend.audit_trail(run.id)
        return {
            (r.action, r.data.get("responder")) for r in trail if r.action.startswith("answer.")
        }

    wait_for(
        lambda: {("answer.rejected", "U0ALICE"), ("answer.accepted", "U0BOB")} <= verdicts(),
        what="the verdicts in the audit trail",
    )


def test_prefects_schema_check_comes_back_field_by_field(prefect_backend: PrefectBackend) -> None:
    backend = prefect_backend
    run = backend.start_run("get-shirt-order/tests", {}, started_by=CAROL)
    waiting = wait_for(lambda: backend.waiting_pause(run.id), timeout=60, what="the pause")
    answer = backend.answer(run.id, waiting.key, {"size": "tiny", "color": "red"}, responder=ALICE)
    assert isinstance(answer, Refused)
    assert list(answer.errors) == ["size"]
    # Nothing was stored: the run still waits, and a good answer goes through.
    assert backend.waiting_pause(run.id).key == waiting.key
    backend.cancel(run.id, by=CAROL)
    assert finished(backend, run.id).state is RunState.CANCELLED


#: the flow run inputs of a first pause, as Prefect names them
KEYSET = {part: f"paused-1-{part}" for part in ("schema", "description", "response")}


def paused_without_schema(backend: PrefectBackend, name: str) -> str:
    """A run paused for input whose schema is not stored (as between the flow's pause and
    its storing the schema, or for good when its process died in between)."""
    api = backend.api
    flow_id = api.deployment_by_name("get-shirt-order", "tests")["flow_id"]
    created = api._json(
        "POST",
        "/flow_runs/",
        body={
            "flow_id": flow_id,
            "name": name,
            "state": {
                "type": "PAUSED",
                "name": "Paused",
                "state_details": {"pause_key": "1", "run_input_keyset": KEYSET},
            },
        },
    )
    return str(created["id"])


#: what Prefect stores for ``class Target(RunInput): host: IPv4Address; ticket: str =
#: Field(pattern=...)``
TARGET_SCHEMA = {
    "title": "Target",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "host": {"title": "Host", "type": "string", "format": "ipv4"},
        "ticket": {"title": "Ticket", "type": "string", "pattern": "^[A-Z]+-[0-9]+$"},
    },
    "required": ["host", "ticket"],
}


def test_the_form_refuses_every_value_the_model_would_refuse_each_under_its_field(
    bot: ServedBot,
) -> None:
    # Prefect's own check names only its first error, in JSON Schema's words, and checks no
    # format: "not-an-ip" went through, the form said "Answer recorded", and the flow
    # failed on the model's ValidationError.
    backend = bot.backend
    run_id = paused_without_schema(backend, "typed-answers")
    backend.api.create_input(run_id, KEYSET["schema"], TARGET_SCHEMA)
    try:
        root = bot.root_message(run_id, timeout=60)
        bot.driver.click("alice", root, action_id=ids.PROVIDE_INPUT)
        bot.slack.wait_for(lambda ws: ws.open_view("U0ALICE"), timeout=60)
        bot.driver.submit("alice", {"host": "10.0.0.300", "ticket": "ops 12"})
        assert form_errors(bot.outcome("alice", timeout=60)) == {
            "field:host": "must be an IPv4 address",
            "field:ticket": "must match the pattern ^[A-Z]+-[0-9]+$",
        }
        bot.driver.submit("alice", {"host": "not-an-ip", "ticket": "OPS-12"})
        assert form_errors(bot.outcome("alice", timeout=60)) == {
            "field:host": "must be an IPv4 address"
        }
        waiting = backend.waiting_pause(run_id)
        assert waiting is not None and waiting.key == "paused-1"
    finally:
        backend.api.set_state(run_id, {"type": "CANCELLED", "name": "Cancelled"}, force=True)


def test_a_pause_whose_schema_is_not_stored_yet_waits_for_nothing_until_it_is(
    prefect_backend: PrefectBackend,
) -> None:
    # Prefect's flow pauses first and stores its input's schema just after; in between,
    # an answer would be refused with "schema not found", and a form would have no fields.
    backend = prefect_backend
    api = backend.api
    keyset = KEYSET
    run_id = paused_without_schema(backend, "schema-not-stored-yet")
    try:
        assert backend.waiting_pause(run_id) is None
        early = backend.answer(
            run_id, "paused-1", {"size": "small", "color": "red"}, responder=ALICE
        )
        assert isinstance(early, Stale) and "does not wait for input" in early.reason
        schema = {
            "title": "ShirtOrder",
            "type": "object",
            "properties": {"size": {"type": "string", "enum": ["small", "large"]}},
            "required": ["size"],
        }
        api.create_input(run_id, keyset["schema"], schema)
        waiting = backend.waiting_pause(run_id)
        assert waiting is not None and waiting.key == "paused-1" and waiting.wants_input
        answer = backend.answer(run_id, waiting.key, {"size": "tiny"}, responder=ALICE)
        assert isinstance(answer, Refused) and list(answer.errors) == ["size"]
    finally:
        backend.cancel(run_id, by=CAROL)


def test_a_pause_whose_schema_never_comes_is_reported_as_unanswerable(
    prefect_api_url: str,
) -> None:
    # The flow's process died between pausing and storing the schema: nobody can answer the
    # run, in Slack or in Prefect's UI. After the wait, the thread says so, with no button.
    settings = PrefectSettings.load(
        api_url=prefect_api_url, reconcile_seconds=2.0, schema_wait_seconds=1.0
    )
    backend = PrefectBackend(settings)
    try:
        with serving(backend) as bot:
            run_id = paused_without_schema(backend, "schema-never-stored")
            root = bot.root_message(run_id, timeout=60)
            assert "cannot ask for input" in root.text
            assert not buttons(root)
            note = reply_saying(bot, root, "Nobody can answer", timeout=30)
            assert "did not store the input's schema within 1 s" in note.text
            assert f"/runs cancel {run_id[:8]}" in note.text
            waiting = backend.waiting_pause(run_id)
            assert waiting is not None and waiting.unanswerable is not None
            answer = backend.answer(run_id, waiting.key, {"size": "small"}, responder=ALICE)
            assert isinstance(answer, Stale) and "cannot be answered" in answer.reason
            # As the note says: Prefect cannot look a prefix up, so the backend finds it.
            cancelled = runs(bot, "carol", f"cancel {run_id[:8]}")
            assert cancelled.text.startswith("Cancelled"), cancelled.text
            assert finished(backend, run_id).state is RunState.CANCELLED
    finally:
        backend.close()


def test_a_malformed_schema_stored_by_the_flow_is_reported_and_the_run_stays_cancellable(
    bot: ServedBot,
) -> None:
    # Prefect stores whatever the flow sent as the schema, and its server fails on every
    # answer to a broken one. Reading such a run failed with a TypeError: no prompt, a
    # traceback every retry, and neither /runs show nor cancel worked.
    backend = bot.backend
    api = backend.api
    broken = paused_without_schema(backend, "schema-properties-a-list")
    api.create_input(broken, KEYSET["schema"], {"type": "object", "properties": ["size"]})
    not_an_object = paused_without_schema(backend, "schema-a-string")
    api.create_input(not_an_object, KEYSET["schema"], "size")

    root = bot.root_message(broken, timeout=60)
    assert "cannot ask for input" in root.text and not buttons(root)
    note = reply_saying(bot, root, "cannot be shown as a Slack form")
    assert "its schema is malformed: properties is" in note.text
    [asked] = backend.detail(broken).pauses
    assert asked.status is PauseStatus.WAITING and asked.initial == {}

    other = bot.root_message(not_an_object, timeout=60)
    assert "cannot ask for input" in other.text and not buttons(other)
    note = reply_saying(bot, other, "Nobody can answer")
    assert 'is not a JSON object ("size")' in note.text
    refused = backend.answer(not_an_object, "paused-1", {"size": "small"}, responder=ALICE)
    assert isinstance(refused, Stale) and "cannot be answered" in refused.reason

    # Its process may be alive (it is asked to stop); this one has none, so it is ended here.
    assert backend.cancel(broken, by=CAROL).state_name == "Cancelling"
    api.set_state(broken, {"type": "CANCELLED", "name": "Cancelled"}, force=True)
    backend.cancel(not_an_object, by=CAROL)
    assert finished(backend, not_an_object).state is RunState.CANCELLED


def test_the_audit_trail_is_in_the_order_things_happened(prefect_backend: PrefectBackend) -> None:
    # An answer is recorded once Prefect accepted it; the watcher, woken by the run's
    # Resuming event, could record "answer.accepted" first, and the trail read backwards.
    backend = prefect_backend
    run_id = paused_without_schema(backend, "audit-order")
    try:
        submitted = datetime.now(UTC)
        backend.records.audit(run_id, "answer.accepted", SYSTEM, key="paused-1")
        backend.records.audit(run_id, "answer.received", ALICE, key="paused-1", at=submitted)
        assert [r.action for r in backend.audit_trail(run_id)] == [
            "answer.received",
            "answer.accepted",
        ]
    finally:
        backend.cancel(run_id, by=CAROL)


def test_a_run_deleted_in_prefect_is_dropped_not_retried_for_ever(
    prefect_backend: PrefectBackend, caplog: pytest.LogCaptureFixture
) -> None:
    # Prefect emits no event when a run is deleted; one the watcher was about to sync
    # failed with "no run with id" and was retried, with a traceback, for as long as the
    # bot ran.
    backend = prefect_backend
    run_id = paused_without_schema(backend, "deleted")
    wait_for(
        lambda: backend.api._call("DELETE", f"/flow_runs/{run_id}").status_code == 204,
        timeout=30,
        what="the run deleted",
    )
    backend.watch("deleted-test", _Nobody(run_id)).start()
    [watcher] = backend._watchers
    caplog.set_level(logging.INFO, logger="signoff.bot.backends.prefect.watcher")
    watcher.poke(run_id)
    # This run's: the server is shared, and other tests' runs are deleted meanwhile.
    wait_for(
        lambda: any(
            getattr(r, "action", None) == "prefect_run_gone" and r.run_id == run_id
            for r in caplog.records
        ),
        timeout=30,
        what="the deleted run dropped",
    )
    # The stream replays the run's events from before it was deleted (and again after each
    # reconnection): they are ignored, not read from Prefect to be found gone once more.
    watcher._on_message(
        json.dumps(
            {
                "type": "event",
                "event": {
                    "occurred": datetime.now(UTC).isoformat(),
                    "resource": {"prefect.resource.id": f"prefect.flow-run.{run_id}"},
                },
            }
        )
    )
    assert run_id not in watcher._due
    gone = [r for r in caplog.records if getattr(r, "action", None) == "prefect_run_gone"]
    assert [r.run_id for r in gone].count(run_id) == 1
    failed = [r for r in caplog.records if getattr(r, "action", None) == "prefect_sync_failed"]
    assert not [r for r in failed if r.run_id == run_id]


def stored_events(backend: PrefectBackend, run_id: str) -> list[object]:
    found = backend.api._json(
        "POST",
        "/events/filter",
        body={"filter": {"any_resource": {"id": [f"prefect.flow-run.{run_id}"]}}},
    )
    return list(found.get("events") or [])


def test_a_run_that_paused_just_before_the_event_stream_connected_is_synced_at_once(
    prefect_backend: PrefectBackend,
) -> None:
    # The server takes the stream's filter some time after it is sent; a run that paused
    # before then was only found by the next reconciliation (30 s by default), so its
    # prompt came that much later. The stream now replays the last minute first.
    backend = prefect_backend
    run_id = paused_without_schema(backend, "paused-before-connect")
    wait_for(lambda: stored_events(backend, run_id), timeout=30, what="the pause stored")
    synced: list[str] = []
    watcher = Watcher(
        api_url=backend.settings.api_url,
        api_key=None,
        sync=lambda run: synced.append(run) or "seen",
        candidates=lambda since: [],  # reconciliation finds nothing: events alone
        reconcile_seconds=3600,
    )
    watcher.start()
    try:
        wait_for(lambda: run_id in synced, timeout=30, what="the paused run synced")
    finally:
        watcher.stop()


def delete_in_prefect(backend: PrefectBackend, run_id: str) -> None:
    wait_for(
        lambda: backend.api._call("DELETE", f"/flow_runs/{run_id}").status_code == 204,
        timeout=30,
        what="the run deleted",
    )


@pytest.fixture
def slow_bot(prefect_api_url: str) -> Iterator[ServedBot]:
    """A bot whose reconciliation (which finds deleted runs) waits an hour after its first."""
    backend = PrefectBackend(PrefectSettings.load(api_url=prefect_api_url, reconcile_seconds=3600))
    try:
        with serving(backend) as served:
            yield served
    finally:
        backend.close()


def test_a_button_of_a_run_deleted_in_prefect_says_so_and_the_prompt_loses_its_buttons(
    slow_bot: ServedBot,
) -> None:
    # Pressed before the bot hears of the deletion: its watcher is stopped first, since a
    # late event about the run (from the process that ran it, say) would find it gone.
    bot = slow_bot
    backend = bot.backend
    asked = backend.start_run("greet-user/tests", {}, started_by=CAROL)
    handed = backend.start_run("greet-user/tests", {}, started_by=CAROL)
    asked_root = bot.root_message(asked.id, timeout=60)
    handed_root = bot.root_message(handed.id, timeout=60)
    for run in (asked, handed):
        # Deleted before the bot stored where its prompt is, the run is found gone by that
        # write, and its prompt closed before anyone could press it.
        wait_for(
            lambda run=run: backend.get_record(run.id, f"{ids.CONSUMER}.delivered"),
            timeout=30,
            what="the prompt recorded as delivered",
        )
    for watcher in backend._watchers:
        watcher.stop()
    delete_in_prefect(backend, asked.id)
    delete_in_prefect(backend, handed.id)

    bot.driver.click("alice", asked_root, action_id=ids.PROVIDE_INPUT)
    notice = bot.slack.wait_for(lambda ws: ws.open_view("U0ALICE"), timeout=30)
    assert "no longer exists" in json.dumps(notice.view)
    bot.driver.click("bob", handed_root, action_id=ids.REASSIGN)
    told = bot.slack.wait_for(lambda ws: ws.ephemeral("U0BOB"), timeout=30)
    assert "no longer exists" in told[-1].text

    for root, run in ((asked_root, asked), (handed_root, handed)):
        closed = bot.slack.wait_for(
            lambda ws, root=root: not buttons(m := ws.channel(CHANNEL).message(root.ts)) and m,
            timeout=30,
        )
        assert run.id[:8] in closed.text and "deleted" in closed.text
        assert "greet-user" in json.dumps(closed.blocks)  # what it was about stays
        assert "was deleted" in json.dumps(closed.blocks)


def test_a_run_deleted_in_prefect_closes_its_prompt_without_anyone_pressing_it(
    bot: ServedBot,
) -> None:
    # Prefect emits no event for a deletion, and the run's records (where its prompt is)
    # go with it: the prompt kept its buttons until someone pressed one.
    backend = bot.backend
    run = backend.start_run("greet-user/tests", {}, started_by=CAROL)
    root = bot.root_message(run.id, timeout=60)
    assert buttons(root)
    wait_for(
        lambda: backend.get_record(run.id, f"{ids.CONSUMER}.delivered"),
        timeout=30,
        what="the prompt recorded as delivered",
    )
    delete_in_prefect(backend, run.id)

    closed = bot.slack.wait_for(
        lambda ws: not buttons(m := ws.channel(CHANNEL).message(root.ts)) and m, timeout=30
    )
    assert run.id[:8] in closed.text and "was deleted" in closed.text
    assert "greet-user" in json.dumps(closed.blocks)  # what it was about stays
    assert "was deleted" in json.dumps(closed.blocks)


class _Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def on_event(self, event: Event) -> None:
        self.events.append(event)


def test_a_run_deleted_while_the_bot_was_stopped_is_found_when_it_starts_again(
    prefect_api_url: str, prefect_backend: PrefectBackend
) -> None:
    # The run's records went with it, and nothing of it is paused or ended any more: only
    # the copy kept apart from the run says there is a prompt to close.
    backend = prefect_backend
    run = backend.start_run("greet-user/tests", {}, started_by=CAROL)
    with serving(backend) as first:
        root = first.root_message(run.id, timeout=60)
        wait_for(
            lambda: backend.get_record(run.id, f"{ids.CONSUMER}.delivered"),
            timeout=30,
            what="the prompt recorded as delivered",
        )
    delete_in_prefect(backend, run.id)
    restarted = PrefectBackend(PrefectSettings.load(api_url=prefect_api_url, reconcile_seconds=2))
    recorder = _Recorder()
    try:
        restarted.watch(ids.CONSUMER, recorder, kept=SlackNotifier.KEPT).start()
        deleted = wait_for(
            lambda: next((e for e in recorder.events if e.run_id == run.id), None),
            timeout=30,
            what="the deletion delivered",
        )
        assert deleted.kind is EventKind.RUN_DELETED
        assert deleted.data["records"][ids.THREAD] == {"channel": CHANNEL, "ts": root.ts}
    finally:
        restarted.close()


def test_a_pause_handed_to_someone_reaches_them_directly(bot: ServedBot) -> None:
    """The record that a direct message went out is a flow run input of the run, whose key
    Prefect takes in lowercase only: named with the person's Slack id (capitals), it was
    refused, the message never went, and the run's delivery failed for ever."""
    backend = bot.backend
    run = backend.start_run("wait-for-go/tests", {}, started_by=CAROL)
    root = bot.root_message(run.id, timeout=60)
    bot.driver.click("bob", root, action_id=ids.REASSIGN)
    assert bot.slack.wait_for(lambda ws: ws.open_view("U0BOB"), timeout=60)
    reply = bot.driver.submit("bob", {"to": "U0ALICE"})
    assert (reply.status, reply.response_action) == (200, "update")
    assert "<@U0BOB> handed input" in reply_saying(bot, root, "handed input").text
    dm = bot.slack.wait_for(lambda ws: ws.channel("U0ALICE").last, timeout=60)
    assert "asked you to decide" in dm.text
    bot.driver.click("alice", dm, action_id=ids.PROVIDE_INPUT)
    assert bot.slack.wait_for(lambda ws: ws.open_view("U0ALICE"), timeout=120)
    bot.driver.submit("alice", {})
    assert finished(backend, run.id).state is RunState.COMPLETED
    [asked] = backend.detail(run.id).pauses
    assert asked.responder == "U0ALICE"


def test_a_pause_without_input_gets_a_continue_button(bot: ServedBot) -> None:
    backend = bot.backend
    run = backend.start_run("wait-for-go/tests", {}, started_by=CAROL)
    root = bot.root_message(run.id, timeout=60)
    bot.driver.click("alice", root, action_id=ids.PROVIDE_INPUT)
    view = bot.slack.wait_for(lambda ws: ws.open_view("U0ALICE"), timeout=120)
    assert fields(view) == {}
    bot.driver.submit("alice", {})
    assert finished(backend, run.id).state is RunState.COMPLETED
    logged(backend, run.id, "went on")


def test_an_unanswered_pause_times_out_and_the_prompt_says_so(bot: ServedBot) -> None:
    backend = bot.backend
    run = backend.start_run("quick-timeout/tests", {"seconds": 8}, started_by=CAROL)
    root = bot.root_message(run.id, timeout=60)
    assert finished(backend, run.id).state is RunState.FAILED
    [asked] = backend.detail(run.id).pauses
    assert asked.status is PauseStatus.TIMED_OUT
    bot.slack.wait_for(
        lambda ws: (
            "Nobody answered in time" in json.dumps(ws.channel(CHANNEL).message(root.ts).blocks)
        ),
        timeout=30,
    )
    assert not buttons(bot.slack.channel(CHANNEL).message(root.ts))


def test_runs_lists_shows_and_cancels_prefect_runs(bot: ServedBot) -> None:
    backend = bot.backend
    run = backend.start_run("greet-user/tests", {}, started_by=CAROL)
    root = bot.root_message(run.id, timeout=60)

    listing = runs(bot, "carol", "")
    assert run.id[:8] in json.dumps(listing.blocks)
    logged(backend, run.id, "Pausing flow, execution will continue when this flow run is resumed.")
    shown = runs(bot, "carol", f"show {run.id}")
    assert "paused" in shown.text.lower() and "Pausing flow" in shown.text
    # What Slack shows of a run's id is enough, as with the embedded engine.
    assert runs(bot, "carol", f"show {run.id[:8]}").text == shown.text
    unknown = runs(bot, "carol", "show 0000ffff")
    assert "no run with id '0000ffff'" in unknown.text and "give the whole id" in unknown.text

    cancelled = runs(bot, "carol", f"cancel {run.id}")
    assert cancelled.text.startswith("Cancelled")
    assert finished(backend, run.id).state is RunState.CANCELLED
    bot.slack.wait_for(
        lambda ws: "cancelled" in ws.channel(CHANNEL).message(root.ts).text,
        timeout=30,
    )
    assert not buttons(bot.slack.channel(CHANNEL).message(root.ts))


def test_cancelling_a_paused_run_nothing_stops_closes_its_prompt(bot: ServedBot) -> None:
    # A flow run without a deployment (``python flow.py``) has no runner or worker to act on
    # Cancelling: Prefect shows it Cancelling until its pause times out, and its prompt
    # kept saying it waits for input, with its buttons, after "/runs cancel" said Cancelled.
    backend = bot.backend
    run_id = paused_without_schema(backend, "cancelled-in-process")
    backend.api.create_input(run_id, KEYSET["schema"], TARGET_SCHEMA)
    try:
        root = bot.root_message(run_id, timeout=60)
        assert buttons(root)
        assert runs(bot, "carol", f"cancel {run_id[:8]}").text.startswith("Cancelled")
        assert backend.get_run(run_id).state_name == "Cancelling"
        closed = bot.slack.wait_for(
            lambda ws: not buttons(m := ws.channel(CHANNEL).message(root.ts)) and m,
            timeout=30,
        )
        assert "cancelling" in closed.text
        assert "`paused-1` :no_entry_sign: Cancelled" in json.dumps(closed.blocks)
    finally:
        backend.api.set_state(run_id, {"type": "CANCELLED", "name": "Cancelled"}, force=True)


def test_runs_page_newest_first_from_a_run_id(prefect_backend: PrefectBackend) -> None:
    started = [
        prefect_backend.start_run("deploy-release/tests", {"version": f"0.{i}"}, started_by=PAGER)
        for i in range(3)
    ]
    try:
        mine = {r.id for r in started}
        seen: list[str] = []
        page = prefect_backend.list_runs(flow_name="deploy-release", limit=2)
        while page and not mine <= set(seen):
            seen += [r.id for r in page]
            page = prefect_backend.list_runs(flow_name="deploy-release", limit=2, before=seen[-1])
        assert len(seen) == len(set(seen)), "a run was listed on two pages"
        assert [i for i in seen if i in mine] == [r.id for r in reversed(started)]
        with pytest.raises(RunNotFound):
            prefect_backend.list_runs(before="not-a-run")
    finally:
        for run in started:
            prefect_backend.cancel(run.id, by=PAGER)


def test_runs_expected_at_the_same_moment_are_each_listed_once_across_pages(
    prefect_backend: PrefectBackend, prefect_api_url: str
) -> None:
    """A cron tick schedules many runs for one moment; Prefect's sort leaves their order
    open, and paging from one of them dropped some (29 made, 26 listed)."""
    import httpx

    api = prefect_api_url.rstrip("/")
    flows = {f["id"]: f["name"] for f in httpx.post(f"{api}/flows/filter", json={}).json()}
    deployments = httpx.post(f"{api}/deployments/filter", json={}).json()
    deployment = next(d["id"] for d in deployments if flows[d["flow_id"]] == "deploy-release")
    tick = {"type": "SCHEDULED", "state_details": {"scheduled_time": "2031-01-01T00:00:00Z"}}

    def create(version: str) -> str | None:
        created = httpx.post(
            f"{api}/deployments/{deployment}/create_flow_run",
            json={"parameters": {"version": version}, "state": tick},
        )
        # A busy Prefect server answers 503 for a moment; the run is then asked for again.
        return str(created.json()["id"]) if created.status_code < 300 else None

    made = [wait_for(lambda v=str(i): create(v), what="a scheduled run") for i in range(7)]
    try:
        seen: list[str] = []
        page = prefect_backend.list_runs([RunState.SCHEDULED], flow_name="deploy-release", limit=2)
        while page:
            seen += [r.id for r in page]
            page = prefect_backend.list_runs(
                [RunState.SCHEDULED], flow_name="deploy-release", limit=2, before=seen[-1]
            )
        assert len(seen) == len(set(seen)), "a run was listed on two pages"
        assert sorted(i for i in seen if i in made) == sorted(made)
    finally:
        for run_id in made:
            httpx.post(
                f"{api}/flow_runs/{run_id}/set_state",
                json={"state": {"type": "CANCELLED"}, "force": True},
            )


def test_a_suspended_run_started_from_slack_resumes_on_prefect(bot: ServedBot) -> None:
    backend = bot.backend
    started = runs(bot, "carol", "start deploy-release/tests version=1.2")
    assert started.text.startswith("Started")
    run = wait_for(
        lambda: next(
            (r for r in backend.list_runs([RunState.SUSPENDED]) if r.started_by == "U0CAROL"),
            None,
        ),
        timeout=60,
        what="the suspended run",
    )
    assert run.parameters == {"version": "1.2"}
    root = bot.root_message(run.id, timeout=60)
    bot.driver.click("bob", root, action_id=ids.PROVIDE_INPUT)
    bot.slack.wait_for(lambda ws: ws.open_view("U0BOB"), timeout=120)
    bot.driver.submit("bob", {"approved": True})
    done = finished(backend, run.id, timeout=90)
    assert done.state is RunState.COMPLETED
    logged(backend, run.id, "approved=True version=1.2 replicas=2")
    answered = [r.action for r in backend.audit_trail(run.id) if r.action.startswith("answer.")]
    assert answered == ["answer.received", "answer.accepted"]


class _Heard:
    """An observer that keeps what it is handed."""

    def __init__(self) -> None:
        self.kinds: list[EventKind] = []

    def on_event(self, event: Event) -> None:
        self.kinds.append(event.kind)


def test_a_verdict_handed_on_by_two_processes_is_audited_once(
    prefect_backend: PrefectBackend,
) -> None:
    # Two replicas (here, two consumers) each hand the flow's verdict on; the trail had
    # "answer.accepted" once per process that did.
    backend = prefect_backend
    run = backend.start_run("greet-user/tests", {}, started_by=CAROL)
    pause = wait_for(
        lambda: (p := backend.waiting_pause(run.id)) and p.schema is not None and p,
        timeout=60,
        what="the run to ask for its input",
    )
    assert isinstance(backend.answer(run.id, pause.key, {"name": "Ada"}, responder=ALICE), Accepted)
    assert finished(backend, run.id).state is RunState.COMPLETED
    # (The second's records start as audit entries' names do: they are not read as such.)
    for consumer in ("replica-a", "audit-replica-b"):
        heard = _Heard()
        delivery = Delivery(
            backend.current, backend.records, backend.timers.restore, consumer, heard
        )
        wait_for(lambda d=delivery: d.sync(run.id) is not None, what=f"{consumer} synced")
        assert EventKind.INPUT_ACCEPTED in heard.kinds
    accepted = [r for r in backend.audit_trail(run.id) if r.action == "answer.accepted"]
    assert [(r.key, r.data) for r in accepted] == [(pause.key, {"responder": "U0ALICE"})]


def test_a_restarted_bot_neither_loses_nor_repeats_a_prompt(
    prefect_api_url: str, prefect_backend: PrefectBackend
) -> None:
    backend = prefect_backend
    run = backend.start_run("greet-user/tests", {}, started_by=CAROL)
    with serving(backend) as first:
        root = first.root_message(run.id, timeout=60)
        wait_for(
            lambda: backend.get_record(run.id, f"{ids.CONSUMER}.delivered"),
            timeout=30,
            what="the record of the delivered prompt",
        )
        sandbox_client = first.slack.client()
        posted = len(first.slack.calls("chat.postMessage"))
        # Another process starting up (same records on the run) posts nothing new.
        other = PrefectBackend(PrefectSettings.load(api_url=prefect_api_url))
        try:
            replay = SlackNotifier(other, sandbox_client, CHANNEL)
            delivery = Delivery(
                other.current, other.records, other.timers.restore, ids.CONSUMER, replay
            )
            assert delivery.sync(run.id) is not None
        finally:
            other.close()
        assert len(first.slack.calls("chat.postMessage")) == posted
        assert first.slack.channel(CHANNEL).message(root.ts).ts == root.ts
    backend.cancel(run.id, by=CAROL)
    assert finished(backend, run.id).state is RunState.CANCELLED


def test_permissions_per_deployment(prefect_api_url: str, tmp_path: Path) -> None:
    rules = tmp_path / "permissions.json"
    rules.write_text(
        json.dumps(
            {"greet-user": {"approvers": ["U0BOB"], "start": ["U0CAROL"], "cancel": ["U0CAROL"]}}
        )
    )
    backend = PrefectBackend(PrefectSettings.load(api_url=prefect_api_url, permissions_file=rules))
    try:
        with serving(backend) as bot:
            refused = runs(bot, "alice", "start greet-user/tests")
            assert "may not start this" in refused.text and "<@U0CAROL>" in refused.text
            run = backend.start_run("greet-user/tests", {}, started_by=CAROL)
            root = bot.root_message(run.id, timeout=60)
            assert "<@U0BOB>" in json.dumps(root.blocks)
            bot.driver.click("alice", root, action_id=ids.PROVIDE_INPUT)
            note = bot.slack.wait_for(
                lambda ws: [m for m in ws.ephemeral("alice") if "may answer" in m.text],
                timeout=30,
            )[-1]
            assert "Only <@U0BOB> may answer this." in note.text
            assert "may cancel" in runs(bot, "alice", f"cancel {run.id}").text
            # Nor may she see it (her refused attempts do not count as acting on it) ...
            hidden = runs(bot, "alice", f"show {run.id}").text
            assert hidden.startswith(":no_entry: You may not view this: runs of 'greet-user'")
            assert "Parameters" not in hidden
            assert run.id[:8] not in json.dumps(runs(bot, "alice", "").blocks)
            # ... while whoever the file names may.
            assert "Parameters" in runs(bot, "bob", f"show {run.id}").text
            assert run.id[:8] in json.dumps(runs(bot, "bob", "").blocks)
            refusals = [
                r.data["action"] for r in backend.audit_trail(run.id) if r.action == "refused"
            ]
            assert {"cancel", "view"} <= set(refusals)  # recorded, as the engine records them
            backend.cancel(run.id, by=CAROL)
            assert finished(backend, run.id).state is RunState.CANCELLED
    finally:
        backend.close()


def test_the_prefect_demo_plays_the_reference_flows(prefect_api_url: str) -> None:
    # On the session's server (--prefect-url), rather than a throwaway one of its own.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "signoff",
            "demo",
            "--backend",
            "prefect",
            "--prefect-url",
            prefect_api_url,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout
    # The transcript and its progress (on stderr) say where a failed demo stopped.
    seen = f"exit status {done.returncode}\nstdout:\n{out[-4000:]}\nstderr:\n{done.stderr[-3000:]}"
    assert done.returncode == 0, seen
    assert "demo finished in" in done.stderr, seen
    assert "*greet-user* run" in out, seen
    assert 'Name (optional): [text: "anonymous"]' in out, seen
    # each modal's Block Kit Builder link, at the end as the transcript says
    links = re.findall(r"^\[\d+\] [\w-]+ run \w{8}: https://\S+$", out, re.MULTILINE)
    assert len(links) == out.count("── modal ") == 4, seen
    assert out.index("link [4] at the end") < out.index(links[0]), seen
    assert "@alice's answer was not accepted" in out and "needs input again" in out, seen
    assert out.index("not accepted") < out.index("needs input again"), seen
    assert "── final states on Prefect" in out, seen
    assert "input paused-1 rejected by @alice, input paused-2 accepted by @bob" in out, seen
    assert "deploy-release     Completed  input suspended-1 accepted by @bob" in out, seen


def test_the_schemas_kept_read_are_bounded_and_one_dropped_is_read_again(
    prefect_api_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each request's schema was kept for as long as the bot ran, once read: a bot that
    runs for months held every run's. Now it keeps the most recently used ones only; a run
    whose schema was dropped still shows its form, read again from Prefect."""
    from signoff.bot.backends.prefect import reading

    monkeypatch.setattr(reading, "STATIC_INPUTS", 2, raising=False)
    backend = PrefectBackend(PrefectSettings.load(api_url=prefect_api_url))
    runs: list[str] = []
    try:
        for n in range(5):
            run_id = paused_without_schema(backend, f"bounded-schemas-{n}")
            runs.append(run_id)
            backend.api.create_input(
                run_id, KEYSET["schema"], {**TARGET_SCHEMA, "title": f"Target{n}"}
            )
        titles = []
        for run_id in [*runs, runs[0]]:
            pause = backend.waiting_pause(run_id)
            assert pause is not None and pause.schema is not None
            titles.append(pause.schema["title"])
            assert len(backend._static) <= 2
        assert titles == [f"Target{n}" for n in range(5)] + ["Target0"]
    finally:
        for run_id in runs:
            backend.cancel(run_id, by=CAROL)
        backend.close()
