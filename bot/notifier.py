"""Turns the engine's stored events into Slack messages, at least once and in order.

The bot subscribes as the durable consumer ``slack``: an event whose Slack call fails is
retried (the WebClient also retries rate limits and server errors), and the message
references kept in run metadata make a repeated event update rather than post twice.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient

from bot import ids, messages
from bot.modals import ModalError, check_renderable
from engine import Engine, Event, EventKind, Pause, Run, RunState

logger = logging.getLogger(__name__)


class SlackNotifier:
    """A ``RunObserver`` that keeps each run's Slack thread up to date."""

    def __init__(self, engine: Engine, client: WebClient, default_channel: str) -> None:
        self.engine = engine
        self.client = client
        self.default_channel = default_channel

    def on_event(self, event: Event) -> None:
        if event.kind is EventKind.WAITING_FOR_INPUT:
            self._prompt(event.run_id, str(event.data["key"]))
        elif event.kind in (
            EventKind.INPUT_RECEIVED,
            EventKind.INPUT_ACCEPTED,
            EventKind.PAUSE_TIMED_OUT,
        ):
            self._close_prompt(event.run_id, str(event.data["key"]))
        elif event.kind is EventKind.INPUT_REJECTED:
            self._rejected(event)
        elif event.kind is EventKind.STATE_CHANGED and event.data.get("state") in {
            s.value
            for s in (RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED, RunState.CRASHED)
        }:
            self._finished(event.run_id)

    # -- thread bookkeeping -------------------------------------------------------------

    def _thread(self, run: Run) -> dict[str, str] | None:
        found = self.engine.get_metadata(run.id, ids.THREAD)
        return dict(found) if isinstance(found, dict) else None

    def _prompts(self, run_id: str) -> dict[str, str]:
        found = self.engine.get_metadata(run_id, ids.PROMPTS)
        return dict(found) if isinstance(found, dict) else {}

    def _post_root(self, run: Run, text: str, blocks: list[Any]) -> dict[str, str]:
        channel = run.tags.get("slack.channel") or self.default_channel
        reply = self.client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        thread = {"channel": str(reply["channel"]), "ts": str(reply["ts"])}
        self.engine.set_metadata(run.id, ids.THREAD, thread)
        return thread

    # -- events -------------------------------------------------------------------------

    def _prompt(self, run_id: str, key: str) -> None:
        run = self.engine.get_run(run_id)
        pause = self.engine.get_pause(run_id, key)
        if pause is None or pause.status.value != "waiting" or key in self._prompts(run_id):
            return  # answered already, or this event was delivered before
        if pause.schema is not None:
            try:
                check_renderable(pause.schema)
            except ModalError as exc:
                self._unrenderable(run, pause, str(exc))
                return
        thread = self._thread(run)
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
                blocks=messages.prompt_blocks(run, pause, again=True),
            )
            ts = str(reply["ts"])
        prompts = self._prompts(run_id)
        prompts[key] = ts
        self.engine.set_metadata(run_id, ids.PROMPTS, prompts)
        logger.info(
            "prompt posted", extra={"action": "prompt_posted", "run_id": run_id, "key": key}
        )

    def _unrenderable(self, run: Run, pause: Pause, reason: str) -> None:
        thread = self._thread(run) or self._post_root(
            run,
            f"{run.flow_name} cannot ask for input",
            [
                messages.text_block(
                    f":x: {messages.run_label(run)} asks for input that Slack cannot show"
                )
            ],
        )
        self.client.chat_postMessage(
            channel=thread["channel"],
            thread_ts=thread["ts"],
            text=f"The input model {pause.title} cannot be shown as a Slack form: {reason}. "
            "The run is cancelled; change the model and start it again.",
        )
        self.engine.cancel(
            run.id, by=f"the Slack bot: input {pause.title} cannot be rendered ({reason})"
        )

    def _close_prompt(self, run_id: str, key: str) -> None:
        ts = self._prompts(run_id).get(key)
        thread = self.engine.get_metadata(run_id, ids.THREAD)
        pause = self.engine.get_pause(run_id, key)
        if ts is None or not isinstance(thread, dict) or pause is None:
            return
        run = self.engine.get_run(run_id)
        outcome = messages.pause_outcome(pause)
        self.client.chat_update(
            channel=thread["channel"],
            ts=ts,
            text=outcome,
            blocks=messages.closed_prompt_blocks(run, pause, outcome),
        )

    def _rejected(self, event: Event) -> None:
        run = self.engine.get_run(event.run_id)
        thread = self._thread(run)
        if thread is None:
            return
        self._close_prompt(run.id, str(event.data["key"]))
        errors = event.data.get("errors") or {}
        self.client.chat_postMessage(
            channel=thread["channel"],
            thread_ts=thread["ts"],
            text=messages.rejection_text(
                event.data.get("responder"), errors, event.data.get("response")
            ),
        )

    def _finished(self, run_id: str) -> None:
        run = self.engine.get_run(run_id)
        thread = self._thread(run)
        if thread is None:
            return
        for key in self._prompts(run_id):
            self._close_prompt(run_id, key)
        line = messages.status_line(run)
        self.client.chat_update(
            channel=thread["channel"],
            ts=thread["ts"],
            text=line,
            blocks=[messages.text_block(line)],
        )
        if run.state is not RunState.COMPLETED:
            self.client.chat_postMessage(
                channel=thread["channel"], thread_ts=thread["ts"], text=line
            )
