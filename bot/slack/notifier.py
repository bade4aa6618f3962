"""Turns the backend's run changes into Slack messages, at least once and in order.

The bot subscribes as the durable consumer ``slack``: an event whose Slack call fails is
retried (the WebClient also retries rate limits and server errors), so an outage delays
messages but loses none. Delivery is at least once, so handling an event twice must not
post twice. Run metadata remembers what was posted:

- ``slack.thread``: the run's first message (channel and ts), the root of its thread;
- ``slack.prompts``: pause key -> ts of the message asking for it;
- ``slack.notes``: event id -> ts of the thread note posted for that event;
- ``slack.dms.*`` and ``slack.dm_prompts``: the prompts sent directly (``direct``);
- ``slack.homes``: whose Home tab lists the run (``home``), published again on its deletion.

Everything else is an update of an existing message rendered from the run's current
state, which is the same however often it is repeated.

A post itself is made effectively once (``posting``); the run's first message and the
replies under it, including a thread started again when its first message is gone, are
``threads``' part.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient

from signoff.bot.backends import Actor, Backend, Event, EventKind, Pause, PauseStatus, Run, RunState
from signoff.bot.errors import RunNotChangeable, SecretField
from signoff.bot.forms.modals import ModalError, check_renderable
from signoff.bot.slack import (
    deleted,
    delivery_failures,
    home,
    ids,
    messages,
    reminders,
    thread_notes,
)
from signoff.bot.slack.approvers import Approvers
from signoff.bot.slack.direct import DirectPrompts
from signoff.bot.slack.posting import Poster
from signoff.bot.slack.threads import RunThreads, askable

logger = logging.getLogger(__name__)

_GROUP = re.compile(r"^S[A-Z0-9]{2,}$")


class SlackNotifier:
    """A ``RunObserver`` that keeps each run's Slack thread up to date."""

    #: the records of where a run's messages are, which closing them needs once the run
    #: is deleted under the bot (``Backend.watch``), and whose Home tabs list it
    KEPT = (ids.THREAD, ids.PROMPTS, ids.DM_PROMPTS, ids.HOMES)

    def __init__(
        self,
        backend: Backend,
        client: WebClient,
        default_channel: str,
        fence: Callable[[], None] | None = None,
        groups: Approvers | None = None,
    ) -> None:
        self.backend = backend
        self.client = client
        self.default_channel = default_channel
        #: raises (``LeaseLost``) when this process may no longer post; checked per post
        self.fence: Callable[[], None] = fence or (lambda: None)
        # Through a method: the server installs its lease check after construction.
        self.poster = Poster(backend, client, self._check_fence)
        self._update = self.poster.update
        self.threads = RunThreads(backend, self.poster, default_channel)
        self.groups = groups or Approvers(client)
        self.direct = DirectPrompts(backend, client, self.groups.people, self._update)
        self.homes = home.HomeTabs(backend, client, self.groups.people)

    def _check_fence(self) -> None:
        self.fence()

    def _counted(self, event: Event) -> None:
        """One answer of a quorum (or new approvers): the prompts show the count, who gave
        it and who may answer now."""
        run = self.backend.get_run(event.run_id)
        key = str(event.data["key"])
        pause = self.backend.get_pause(run.id, key)
        if pause is None or pause.status is not PauseStatus.WAITING:
            return
        ts, thread = self.threads.prompts(run.id).get(key), self.thread(run.id)
        if ts is not None and thread is not None:
            self._update(
                channel=thread["channel"],
                ts=ts,
                text=messages.prompt_text(run),
                blocks=messages.prompt_blocks(run, pause),
            )
        self.direct.refresh(run, pause)

    def _escalated(self, event: Event) -> None:
        run = self.backend.get_run(event.run_id)
        key = str(event.data["key"])
        pause = self.backend.get_pause(run.id, key)
        thread = self.thread(run.id)
        # Those told (not whoever could never answer it): the approvers added, or on a pause
        # anyone may answer, those it names. An older event had only "added", or "to".
        named = event.data.get("notified", event.data.get("added", event.data.get("to")))
        added = [str(a) for a in named or []]
        if thread is not None:
            self.threads.note_once(event, thread, thread_notes.escalation_text(key, added, pause))
        if pause is not None and pause.status is PauseStatus.WAITING:
            self._counted(event)  # the prompt now names the added approvers
            if pause.notify == "dm":
                self.direct.send(run, pause, added, messages.prompt_text(run))

    def _reassigned(self, event: Event) -> None:
        run = self.backend.get_run(event.run_id)
        key, by, to = str(event.data["key"]), str(event.data["by"]), str(event.data["to"])
        thread = self.thread(run.id)
        if thread is not None:
            self.threads.note_once(
                event,
                thread,
                f":arrow_right: {messages.who(by)} handed input `{key}` to {messages.who(to)}.",
            )
        pause = self.backend.get_pause(run.id, key)
        if pause is not None and pause.status is PauseStatus.WAITING:
            self._counted(event)
            self.direct.handed_on(run, pause, by, to)
            self.direct.send(
                run,
                pause,
                [to],
                f"{messages.who(by)} asked you to decide: {messages.prompt_text(run)}",
            )

    def on_event(self, event: Event) -> None:
        with delivery_failures.judged(event, self.threads.default_channel):
            self._handle(event)
            self.homes.refresh(event)

    def _handle(self, event: Event) -> None:
        if event.kind is EventKind.RUN_DELETED:
            found = event.data.get("records")
            records = dict(found) if isinstance(found, dict) else {}
            deleted.close_deleted_run(self.client, self._update, event.run_id, records)
            prompts = records.get(ids.PROMPTS)
            for key in prompts if isinstance(prompts, dict) else {}:
                reminders.cancel(self.backend, event.run_id, str(key))
        elif event.kind is EventKind.WAITING_FOR_INPUT:
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
            EventKind.PAUSE_CANCELLED,
        ):
            self._close_prompt(self.backend.get_run(event.run_id), str(event.data["key"]))
        elif event.kind is EventKind.INPUT_REJECTED:
            self._rejected(event)
        elif event.kind is EventKind.STATE_CHANGED and RunState(event.data["state"]).is_final:
            self._finished(event)

    # -- what was posted (``bot.slack.threads``) -------------------------------------------

    def thread(self, run_id: str) -> dict[str, str] | None:
        """The run's root message (``channel``, ``ts``), if one was posted."""
        return self.threads.root(run_id)

    def reply(
        self,
        run_id: str,
        thread: dict[str, str],
        post_id: str,
        text: str,
        blocks: list[Any] | None = None,
        *,
        fenced: bool = True,
    ) -> dict[str, str]:
        """Post in the run's thread, once (``RunThreads.reply``)."""
        return self.threads.reply(run_id, thread, post_id, text, blocks, fenced=fenced)

    # -- events -------------------------------------------------------------------------

    def _prompt(self, event: Event) -> None:
        run_id, key = event.run_id, str(event.data["key"])
        run = self.backend.get_run(run_id)
        pause = self.backend.get_pause(run_id, key)
        if pause is None:
            return
        if key in self.threads.prompts(run_id):
            # Delivered before: the prompt is posted, but what follows it may not all have
            # been done (a direct message Slack failed), and is done now, once each.
            thread = self.thread(run_id)
            if thread is not None and pause.status is PauseStatus.WAITING and askable(pause):
                self._after_prompt(event, run, pause, thread)
            return
        if pause.status is not PauseStatus.WAITING:
            # Answered before Slack heard of it (from the CLI, or while Slack was down):
            # the run still gets its thread, saying who answered and how it ended.
            self._settled_prompt(run, pause)
            return
        if pause.unanswerable is not None:
            note = thread_notes.unanswerable_text(pause)
            self._cannot_ask(event, run, pause, note, "prompt_unanswerable")
            return
        if pause.schema is not None:
            try:
                check_renderable(pause.schema, description=pause.description)
            except SecretField as exc:
                # Given from the command line, as the model means it to be: the run waits.
                note = thread_notes.secret_text(run, pause, exc.field)
                self._cannot_ask(event, run, pause, note, "prompt_secret", str(exc)[:300])
                return
            except ModalError as exc:
                self._unrenderable(event, run, pause, str(exc))
                return
        thread = self.thread(run_id)
        if thread is None:
            thread = self.threads.post_root(
                run, messages.prompt_text(run), messages.prompt_blocks(run, pause)
            )
            ts = thread["ts"]
        else:
            ts = self.reply(
                run_id,
                thread,
                f"prompt.{key}",
                messages.prompt_text(run),
                messages.prompt_blocks(run, pause, again=self._asks_again(pause)),
            )["ts"]
        prompts = self.threads.prompts(run_id)
        prompts[key] = ts
        self.backend.set_record(run_id, ids.PROMPTS, prompts)
        logger.info(
            "prompt posted", extra={"action": "prompt_posted", "run_id": run_id, "key": key}
        )
        self._after_prompt(event, run, pause, thread)

    def _after_prompt(self, event: Event, run: Run, pause: Pause, thread: dict[str, str]) -> None:
        """What follows a prompt: the note that too few may answer, the direct messages,
        the reminder. Each is done once however often it is asked for."""
        run_id, key = run.id, pause.key
        short = self.groups.short_of_quorum(run, pause)
        if short is not None:
            groups = any(_GROUP.match(p) for p in (*pause.approvers, *pause.escalate_to))
            text = thread_notes.short_quorum_text(key, pause.quorum, short, groups=groups)
            self.threads.note_once(event, thread, text)
            logger.warning(
                "fewer people may answer than the quorum needs",
                extra={
                    "action": "quorum_unreachable",
                    "run_id": run_id,
                    "key": key,
                    "quorum": pause.quorum,
                    "people": len(short),
                },
            )
        if pause.notify == "dm":
            # The thread stays the record; the direct message carries the same buttons.
            self.direct.send(run, pause, pause.approvers, messages.prompt_text(run))
        if pause.deadline is not None:
            reminders.schedule(self.backend, run_id, key, pause.deadline)

    def _settled_prompt(self, run: Run, pause: Pause) -> None:
        """Post a prompt that was settled before it could be posted, already closed."""
        outcome = messages.pause_outcome(pause, run)
        blocks = messages.closed_prompt_blocks(run, pause, outcome)
        thread = self.thread(run.id)
        if thread is None:
            thread = self.threads.post_root(run, messages.status_line(run), blocks)
            ts = thread["ts"]
        else:
            ts = self.reply(run.id, thread, f"prompt.{pause.key}", outcome, blocks)["ts"]
        prompts = self.threads.prompts(run.id)
        prompts[pause.key] = ts
        self.backend.set_record(run.id, ids.PROMPTS, prompts)
        self._refresh_root(run, self.thread(run.id) or thread)
        logger.info(
            "settled prompt posted",
            extra={"action": "prompt_posted_settled", "run_id": run.id, "key": pause.key},
        )

    def _asks_again(self, pause: Pause) -> bool:
        """True when this pause asks for the same model as an answer that was rejected."""
        return any(
            p.status is PauseStatus.REJECTED and p.title == pause.title
            for p in self.backend.detail(pause.run_id).pauses
            if p.key != pause.key
        )

    def _cannot_ask(
        self, event: Event, run: Run, pause: Pause, note: str, action: str, reason: str = ""
    ) -> None:
        """Say once, in the run's thread, why nobody can answer ``pause`` from Slack (no
        button): when the run pauses, not when someone clicks. ``action``: the log's key;
        ``reason``: why, for the log (which field, what Slack would refuse)."""
        thread = self.thread(run.id) or self.threads.post_root(
            run,
            f"{run.flow_name} run {run.id[:8]} cannot ask for input",
            [
                messages.text_block(
                    f":x: {messages.run_label(run)} asks for input that cannot be given here"
                )
            ],
        )
        self.threads.note_once(event, thread, note)
        # Said once: the root message stands for this pause from now on.
        prompts = self.threads.prompts(run.id)
        prompts.setdefault(pause.key, thread["ts"])
        self.backend.set_record(run.id, ids.PROMPTS, prompts)
        logger.warning(
            "input cannot be asked for%s",
            f": {reason}" if reason else "",
            extra={"action": action, "run_id": run.id, "key": pause.key},
        )

    def _unrenderable(self, event: Event, run: Run, pause: Pause, reason: str) -> None:
        cancelled = False
        if not self.backend.answerable_elsewhere:
            # Nobody could ever answer it here. It may have ended meanwhile (timed out,
            # cancelled by someone): nothing to stop, and the note does not say it was.
            what = repr(pause.title) if pause.title else f"for {pause.key!r}"
            with contextlib.suppress(RunNotChangeable):
                self.backend.cancel(
                    run.id,
                    by=Actor.system(),
                    reason=f"cancelled by the Slack bot: input {what} cannot be shown ({reason})",
                )
                cancelled = True
        note = thread_notes.unrenderable_text(
            pause, reason, cancelled=cancelled, elsewhere=self.backend.answerable_elsewhere
        )
        self._cannot_ask(event, run, pause, note, "prompt_unrenderable", reason[:300])

    def _close_prompt(self, run: Run, key: str) -> None:
        """Take the button off the prompt for ``key`` and say how it ended."""
        ts = self.threads.prompts(run.id).get(key)
        thread = self.thread(run.id)
        if ts is None or thread is None:
            reminders.cancel(self.backend, run.id, key)
            return
        self._close_thread_prompt(run, thread, key, ts)
        self._refresh_root(run, thread)

    def _close_thread_prompt(self, run: Run, thread: dict[str, str], key: str, ts: str) -> None:
        """Drop the pause's reminder; a prompt in the thread shows the outcome instead of a
        button (the first message is left to ``_refresh_root``)."""
        reminders.cancel(self.backend, run.id, key)
        pause = self.backend.get_pause(run.id, key)
        if pause is not None and pause.status is not PauseStatus.WAITING:
            self.direct.close(run, pause)
        if ts == thread["ts"] or pause is None:
            return
        outcome = messages.pause_outcome(pause, run)
        self._update(
            channel=thread["channel"],
            ts=ts,
            text=outcome,
            blocks=messages.closed_prompt_blocks(run, pause, outcome),
        )

    def _refresh_root(self, run: Run, thread: dict[str, str]) -> None:
        """Show the run's status and who gave each input on its first message.

        Left alone while the first message still carries the button of a waiting pause.
        """
        detail = self.backend.detail(run.id)
        run = detail.run  # the freshest state: events are handled after they happened
        root_keys = {k for k, ts in self.threads.prompts(run.id).items() if ts == thread["ts"]}
        if run.state.is_waiting and any(
            p.key in root_keys and p.status is PauseStatus.WAITING for p in detail.pauses
        ):
            return
        self._update(
            channel=thread["channel"],
            ts=thread["ts"],
            text=messages.status_line(run),
            blocks=messages.root_blocks(run, detail.pauses),
        )

    def _rejected(self, event: Event) -> None:
        run = self.backend.get_run(event.run_id)
        thread = self.thread(run.id)
        if thread is None:
            return
        self._close_prompt(run, str(event.data["key"]))
        errors = event.data.get("errors") or {}
        self.threads.note_once(
            event,
            thread,
            thread_notes.rejection_text(
                event.data.get("responder"), errors, event.data.get("response")
            ),
        )

    def _finished(self, event: Event) -> None:
        run = self.backend.get_run(event.run_id)
        thread = self.thread(run.id)
        if thread is None:
            return
        for key, ts in self.threads.prompts(run.id).items():
            self._close_thread_prompt(run, thread, key, ts)
        self._refresh_root(run, thread)
        if run.state is not RunState.COMPLETED:
            self.threads.note_once(event, thread, thread_notes.finished_text(run))
        logger.info(
            "run outcome posted",
            extra={"action": "run_outcome_posted", "run_id": run.id, "state": run.state.value},
        )
