"""Where a run's messages are in Slack, and posting in its thread.

Run metadata remembers what was posted (``bot.slack.notifier`` lists the records). A
reply whose thread is gone (someone deleted the run's first message, so Slack answers
``thread_not_found``) is not retried there: the run's first message is posted again,
from the run's current state, and the thread goes on under it (``thread_gone``). A
channel Slack refuses the bot moves the run's messages to the default channel
(``run_channel_unavailable``).
"""

from __future__ import annotations

import logging
from typing import Any

from signoff.bot.backends import Backend, Event, Pause, PauseStatus, Run
from signoff.bot.forms.modals import ModalError, check_renderable
from signoff.bot.slack import ids, messages
from signoff.bot.slack.posting import ChannelUnavailable, Poster, ThreadGone

logger = logging.getLogger(__name__)


class RunThreads:
    """Each run's first message and the replies under it, as posted by this bot."""

    def __init__(self, backend: Backend, poster: Poster, default_channel: str) -> None:
        self.backend = backend
        self.default_channel = default_channel
        self._post = poster.post

    def root(self, run_id: str) -> dict[str, str] | None:
        """The run's root message (``channel``, ``ts``), if one was posted."""
        found = self.backend.get_record(run_id, ids.THREAD)
        return dict(found) if isinstance(found, dict) else None

    def prompts(self, run_id: str) -> dict[str, str]:
        """Pause key -> ts of the message that asks for it."""
        found = self.backend.get_record(run_id, ids.PROMPTS)
        return dict(found) if isinstance(found, dict) else {}

    def notes(self, run_id: str) -> dict[str, str]:
        """Event id -> ts of the thread note posted for it."""
        found = self.backend.get_record(run_id, ids.NOTES)
        return dict(found) if isinstance(found, dict) else {}

    def post_root(self, run: Run, text: str, blocks: list[Any]) -> dict[str, str]:
        """Post the run's first message: in its own channel (where ``/runs start`` was
        typed), or in the default channel when Slack refuses the bot that one."""
        channel = run.tags.get("slack.channel") or self.default_channel
        try:
            thread = self._post(run.id, "root", channel, text, blocks)
        except ChannelUnavailable as exc:
            if channel == self.default_channel:
                raise  # the configuration is wrong: retried, as the log says
            self._cannot_post(run.id, exc)
            moved = [blocks[0], messages.thread_restarted_block((channel, exc.error)), *blocks[1:]]
            thread = self._post(run.id, "root", self.default_channel, text, moved)
        self.backend.set_record(run.id, ids.THREAD, thread)
        return thread

    def _cannot_post(self, run_id: str, refused: ChannelUnavailable) -> None:
        logger.warning(
            "cannot post in the run's channel; its messages go to the default channel",
            extra={
                "action": "run_channel_unavailable",
                "run_id": run_id,
                "channel": refused.channel,
                "error": refused.error,
            },
        )

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
        """Post in the run's thread, once. If Slack no longer has the thread (its first
        message was deleted), the thread starts again under a new first message and the
        reply goes there: trying the gone thread again would hold up the run's events for
        ever. ``fenced``: as for ``Poster.post``."""
        where = thread["channel"], thread["ts"]
        try:
            return self._post(run_id, post_id, where[0], text, blocks, where[1], fenced=fenced)
        except ThreadGone:
            thread = self._restart(run_id, thread, fenced=fenced)
        except ChannelUnavailable as exc:
            if thread["channel"] == self.default_channel:
                raise  # the configuration is wrong: retried, as the log says
            self._cannot_post(run_id, exc)
            thread = self._restart(run_id, thread, cannot_post=exc, fenced=fenced)
        where = thread["channel"], thread["ts"]
        return self._post(run_id, post_id, where[0], text, blocks, where[1], fenced=fenced)

    def _restart(
        self,
        run_id: str,
        gone: dict[str, str],
        cannot_post: ChannelUnavailable | None = None,
        *,
        fenced: bool = True,
    ) -> dict[str, str]:
        """Post the run's first message again, from its current state, in place of ``gone``:
        in the same channel, or in the default one when Slack refuses the bot ``gone``'s
        (``cannot_post``).

        It carries the button of a waiting pause whose prompt was the deleted message, so
        the run can still be answered; pauses the deleted message stood for now point at
        the new one.
        """
        detail = self.backend.detail(run_id)
        run, prompts = detail.run, self.prompts(run_id)
        # Out of the bot's reach, every prompt is as good as deleted.
        on_root = {key for key, ts in prompts.items() if ts == gone["ts"] or cannot_post}
        asking = next(
            (
                p
                for p in detail.pauses
                if p.key in on_root and p.status is PauseStatus.WAITING and askable(p)
            ),
            None,
        )
        if asking is not None:
            text, blocks = messages.prompt_text(run), messages.prompt_blocks(run, asking)
        else:
            text, blocks = messages.status_line(run), messages.root_blocks(run, detail.pauses)
        moved = None if cannot_post is None else (cannot_post.channel, cannot_post.error)
        blocks.insert(1, messages.thread_restarted_block(moved))
        channel = gone["channel"] if cannot_post is None else self.default_channel
        # One new first message per deleted one, whatever is retried.
        thread = self._post(run_id, f"root.{gone['ts']}", channel, text, blocks, fenced=fenced)
        self.backend.set_record(run_id, ids.THREAD, thread)
        self.backend.set_record(
            run_id,
            ids.PROMPTS,
            {k: thread["ts"] if k in on_root else v for k, v in prompts.items()},
        )
        if cannot_post is not None:
            return thread  # said by _cannot_post
        logger.warning(
            "run's first message is gone; posted again with its thread",
            extra={
                "action": "thread_gone",
                "run_id": run_id,
                "channel": gone["channel"],
                "ts": gone["ts"],
                "new_ts": thread["ts"],
            },
        )
        return thread

    def note_once(self, event: Event, thread: dict[str, str], text: str) -> None:
        """Post ``text`` in the thread unless this event's note was posted already."""
        notes = self.notes(event.run_id)
        if str(event.id) in notes:
            return
        reply = self.reply(event.run_id, thread, f"note.{event.id}", text)
        notes[str(event.id)] = reply["ts"]
        self.backend.set_record(event.run_id, ids.NOTES, notes)


def askable(pause: Pause) -> bool:
    """True when Slack can show a button and form for ``pause``."""
    if pause.unanswerable is not None:
        return False
    if pause.schema is None:
        return True
    try:
        check_renderable(pause.schema, description=pause.description)
    except ModalError:
        return False
    return True
