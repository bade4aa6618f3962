"""Turns the engine's stored events into Slack messages, at least once and in order.

The bot subscribes as the durable consumer ``slack``: an event whose Slack call fails is
retried (the WebClient also retries rate limits and server errors), so an outage delays
messages but loses none. Delivery is at least once, so handling an event twice must not
post twice. Run metadata remembers what was posted:

- ``slack.thread``: the run's first message (channel and ts), the root of its thread;
- ``slack.prompts``: pause key -> ts of the message asking for it;
- ``slack.notes``: event id -> ts of the thread note posted for that event.

Everything else is an update of an existing message rendered from the run's current
state, which is the same however often it is repeated.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import home, ids, messages, reminders
from bot.approvers import Approvers
from bot.modals import ModalError, check_renderable
from engine import (
    Actor,
    Engine,
    EngineError,
    Event,
    EventKind,
    InvalidTransition,
    Pause,
    PauseStatus,
    Run,
    RunState,
)

logger = logging.getLogger(__name__)

_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_GROUP = re.compile(r"^S[A-Z0-9]{2,}$")
#: at most this many people get a Home refresh or a direct message per event
MAX_PEOPLE = 50
#: events after which the Home tabs of the people concerned are published again
HOME_EVENTS = frozenset(
    {
        EventKind.WAITING_FOR_INPUT,
        EventKind.INPUT_RECEIVED,
        EventKind.ANSWER_COUNTED,
        EventKind.PAUSE_ESCALATED,
        EventKind.PAUSE_REASSIGNED,
        EventKind.PAUSE_TIMED_OUT,
        EventKind.STATE_CHANGED,
    }
)


class SlackNotifier:
    """A ``RunObserver`` that keeps each run's Slack thread up to date."""

    def __init__(self, engine: Engine, client: WebClient, default_channel: str) -> None:
        self.engine = engine
        self.client = client
        self.default_channel = default_channel
        self.groups = Approvers(client)

    # -- people ---------------------------------------------------------------------------

    def people(self, principals: Iterable[str]) -> list[str]:
        """User ids named, with user groups expanded to their members (capped)."""
        found: list[str] = []
        for principal in principals:
            members = self.groups.members(principal) if _GROUP.match(principal) else {principal}
            found += [m for m in sorted(members) if _USER.match(m) and m not in found]
        return found[:MAX_PEOPLE]

    def _refresh_homes(self, event: Event) -> None:
        """Publish the Home tab of everyone an event concerns (approvers, starter, actor)."""
        if event.kind not in HOME_EVENTS:
            return
        try:
            run = self.engine.get_run(event.run_id)
        except EngineError:
            return
        key = event.data.get("key")
        pause = self.engine.get_pause(run.id, str(key)) if key else None
        named = [*(pause.approvers if pause else run.approvers)]
        named += [str(v) for v in (run.started_by, event.data.get("responder")) if v]
        named += [str(event.data[k]) for k in ("by", "to") if event.data.get(k)]
        for user in self.people(named):
            try:
                home.publish(self.client, self.engine, user)
            except SlackApiError as exc:
                # A Home tab is a convenience: a person Slack will not publish for (gone,
                # not in this workspace) must not hold up the events behind this one.
                logger.warning(
                    "home not published",
                    extra={"action": "home_publish_failed", "error": exc.response.get("error")},
                )

    def _direct(self, run: Run, pause: Pause, users: Iterable[str], text: str) -> None:
        """Message each user directly with the prompt's buttons, once per (pause, user)."""
        for user in self.people(users):
            claim = f"{ids.DMS}.{pause.key}.{user}"
            if not self.engine.add_metadata(run.id, claim, None):
                continue  # told already (this event was delivered before)
            reply = self.client.chat_postMessage(
                channel=user, text=text, blocks=messages.prompt_blocks(run, pause)
            )
            self.engine.set_metadata(run.id, claim, str(reply["ts"]))

    def _counted(self, event: Event) -> None:
        """One answer of a quorum: the prompt shows the count and who gave it."""
        run = self.engine.get_run(event.run_id)
        key = str(event.data["key"])
        pause = self.engine.get_pause(run.id, key)
        ts, thread = self._prompts(run.id).get(key), self.thread(run.id)
        if pause is None or ts is None or thread is None:
            return
        if pause.status is PauseStatus.WAITING:
            self.client.chat_update(
                channel=thread["channel"],
                ts=ts,
                text=messages.prompt_text(run),
                blocks=messages.prompt_blocks(run, pause),
            )

    def _escalated(self, event: Event) -> None:
        run = self.engine.get_run(event.run_id)
        key = str(event.data["key"])
        pause = self.engine.get_pause(run.id, key)
        thread = self.thread(run.id)
        added = [str(a) for a in event.data.get("to") or []]
        if thread is not None:
            self._note_once(
                event,
                thread,
                f":rotating_light: Nobody has answered input `{key}` yet: "
                + ", ".join(messages.who(a) for a in added)
                + " may answer it now.",
            )
        if pause is not None and pause.status is PauseStatus.WAITING:
            self._counted(event)  # the prompt now names the added approvers
            if pause.notify == "dm":
                self._direct(run, pause, added, messages.prompt_text(run))

    def _reassigned(self, event: Event) -> None:
        run = self.engine.get_run(event.run_id)
        key, by, to = str(event.data["key"]), str(event.data["by"]), str(event.data["to"])
        thread = self.thread(run.id)
        if thread is not None:
            self._note_once(
                event,
                thread,
                f":arrow_right: {messages.who(by)} handed input `{key}` to {messages.who(to)}.",
            )
        pause = self.engine.get_pause(run.id, key)
        if pause is not None and pause.status is PauseStatus.WAITING:
            self._counted(event)
            self._direct(
                run,
                pause,
                [to],
                f"{messages.who(by)} asked you to decide: {messages.prompt_text(run)}",
            )

    def on_event(self, event: Event) -> None:
        self._handle(event)
        self._refresh_homes(event)

    def _handle(self, event: Event) -> None:
        if event.kind is EventKind.WAITING_FOR_INPUT:
            self._prompt(event)
        elif event.kind is EventKind.ANSWER_COUNTED:
            self._counted(event)
        elif event.kind is EventKind.PAUSE_ESCALATED:
            self._escalated(event)
        elif event.kind is EventKind.PAUSE_REASSIGNED:
            self._reassigned(event)
        elif event.kind in (
            EventKind.INPUT_RECEIVED,
            EventKind.INPUT_ACCEPTED,
            EventKind.PAUSE_TIMED_OUT,
        ):
            self._close_prompt(self.engine.get_run(event.run_id), str(event.data["key"]))
        elif event.kind is EventKind.INPUT_REJECTED:
            self._rejected(event)
        elif event.kind is EventKind.STATE_CHANGED and RunState(event.data["state"]).is_final:
            self._finished(event)

    # -- what was posted ----------------------------------------------------------------

    def thread(self, run_id: str) -> dict[str, str] | None:
        """The run's root message (``channel``, ``ts``), if one was posted."""
        found = self.engine.get_metadata(run_id, ids.THREAD)
        return dict(found) if isinstance(found, dict) else None

    def _prompts(self, run_id: str) -> dict[str, str]:
        found = self.engine.get_metadata(run_id, ids.PROMPTS)
        return dict(found) if isinstance(found, dict) else {}

    def _notes(self, run_id: str) -> dict[str, str]:
        found = self.engine.get_metadata(run_id, ids.NOTES)
        return dict(found) if isinstance(found, dict) else {}

    def _post_root(self, run: Run, text: str, blocks: list[Any]) -> dict[str, str]:
        channel = run.tags.get("slack.channel") or self.default_channel
        reply = self.client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        thread = {"channel": str(reply["channel"]), "ts": str(reply["ts"])}
        self.engine.set_metadata(run.id, ids.THREAD, thread)
        return thread

    def _note_once(self, event: Event, thread: dict[str, str], text: str) -> None:
        """Post ``text`` in the thread unless this event's note was posted already."""
        notes = self._notes(event.run_id)
        if str(event.id) in notes:
            return
        reply = self.client.chat_postMessage(
            channel=thread["channel"], thread_ts=thread["ts"], text=text
        )
        notes[str(event.id)] = str(reply["ts"])
        self.engine.set_metadata(event.run_id, ids.NOTES, notes)

    # -- events -------------------------------------------------------------------------

    def _prompt(self, event: Event) -> None:
        run_id, key = event.run_id, str(event.data["key"])
        run = self.engine.get_run(run_id)
        pause = self.engine.get_pause(run_id, key)
        if pause is None or pause.status is not PauseStatus.WAITING or key in self._prompts(run_id):
            return  # answered already, or this event was delivered before
        if pause.schema is not None:
            try:
                check_renderable(pause.schema, description=pause.description)
            except ModalError as exc:
                self._unrenderable(event, run, pause, str(exc))
                return
        thread = self.thread(run_id)
        if thread is None:
            thread = self._post_root(
                run, messages.prompt_text(run), messages.prompt_blocks(run, pause)
            )
            ts = thread["ts"]
        else:
            reply = self.client.chat_postMessage(
                channel=thread["channel"],
                thread_ts=thread["ts"],
                text=messages.prompt_text(run),
                blocks=messages.prompt_blocks(run, pause, again=self._asks_again(pause)),
            )
            ts = str(reply["ts"])
        prompts = self._prompts(run_id)
        prompts[key] = ts
        self.engine.set_metadata(run_id, ids.PROMPTS, prompts)
        logger.info(
            "prompt posted", extra={"action": "prompt_posted", "run_id": run_id, "key": key}
        )
        if pause.notify == "dm":
            # The thread stays the record; the direct message carries the same buttons.
            self._direct(run, pause, pause.approvers, messages.prompt_text(run))
        if pause.deadline is not None:
            reminders.schedule(self.engine, run_id, key, pause.deadline)

    def _asks_again(self, pause: Pause) -> bool:
        """True when this pause asks for the same model as an answer that was rejected."""
        return any(
            p.status is PauseStatus.REJECTED and p.title == pause.title
            for p in self.engine.detail(pause.run_id).pauses
            if p.key != pause.key
        )

    def _unrenderable(self, event: Event, run: Run, pause: Pause, reason: str) -> None:
        # Said when the run pauses, not when someone clicks: nobody could ever answer it.
        thread = self.thread(run.id) or self._post_root(
            run,
            f"{run.flow_name} cannot ask for input",
            [
                messages.text_block(
                    f":x: {messages.run_label(run)} asks for input that Slack cannot show"
                )
            ],
        )
        self._note_once(event, thread, messages.unrenderable_text(pause, reason))
        # It may have ended meanwhile (timed out, cancelled by someone): nothing to stop.
        with contextlib.suppress(InvalidTransition):
            self.engine.cancel(
                run.id,
                by=Actor.system(),
                reason=f"cancelled by the Slack bot: input {pause.title} cannot be rendered ({reason})",
            )
        logger.warning(
            "input model cannot be rendered; run cancelled",
            extra={"action": "prompt_unrenderable", "run_id": run.id, "key": pause.key},
        )

    def _close_prompt(self, run: Run, key: str) -> None:
        """Take the button off the prompt for ``key`` and say how it ended."""
        ts = self._prompts(run.id).get(key)
        thread = self.thread(run.id)
        if ts is None or thread is None:
            reminders.cancel(self.engine, run.id, key)
            return
        self._close_thread_prompt(run, thread, key, ts)
        self._refresh_root(run, thread)

    def _close_thread_prompt(self, run: Run, thread: dict[str, str], key: str, ts: str) -> None:
        """Drop the pause's reminder; a prompt in the thread shows the outcome instead of a
        button (the first message is left to ``_refresh_root``)."""
        reminders.cancel(self.engine, run.id, key)
        pause = self.engine.get_pause(run.id, key)
        if ts == thread["ts"] or pause is None:
            return
        outcome = messages.pause_outcome(pause)
        self.client.chat_update(
            channel=thread["channel"],
            ts=ts,
            text=outcome,
            blocks=messages.closed_prompt_blocks(run, pause, outcome),
        )

    def _refresh_root(self, run: Run, thread: dict[str, str]) -> None:
        """Show the run's status and who gave each input on its first message.

        Left alone while the first message still carries the button of a waiting pause.
        """
        detail = self.engine.detail(run.id)
        run = detail.run  # the freshest state: events are handled after they happened
        root_keys = {k for k, ts in self._prompts(run.id).items() if ts == thread["ts"]}
        if run.state.is_waiting and any(
            p.key in root_keys and p.status is PauseStatus.WAITING for p in detail.pauses
        ):
            return
        self.client.chat_update(
            channel=thread["channel"],
            ts=thread["ts"],
            text=messages.status_line(run),
            blocks=messages.root_blocks(run, detail.pauses),
        )

    def _rejected(self, event: Event) -> None:
        run = self.engine.get_run(event.run_id)
        thread = self.thread(run.id)
        if thread is None:
            return
        self._close_prompt(run, str(event.data["key"]))
        errors = event.data.get("errors") or {}
        self._note_once(
            event,
            thread,
            messages.rejection_text(
                event.data.get("responder"), errors, event.data.get("response")
            ),
        )

    def _finished(self, event: Event) -> None:
        run = self.engine.get_run(event.run_id)
        thread = self.thread(run.id)
        if thread is None:
            return
        for key, ts in self._prompts(run.id).items():
            self._close_thread_prompt(run, thread, key, ts)
        self._refresh_root(run, thread)
        if run.state is not RunState.COMPLETED:
            self._note_once(event, thread, messages.finished_text(run))
        logger.info(
            "run outcome posted",
            extra={"action": "run_outcome_posted", "run_id": run.id, "state": run.state.value},
        )
