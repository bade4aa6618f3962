"""Prompts sent to people directly: each approver of a ``notify="dm"`` pause, and whoever a
decision is handed or escalated to.

A direct prompt carries the same buttons as the prompt in the run's thread, so it is kept
in step with it: when a quorum counts an answer or the approvers change it shows the
pause as it is now, and once the pause no longer waits its buttons give way to the outcome,
as the thread's prompt does. (Left alone, it said "waiting for input" with live buttons for
a decision made long ago.)

Run metadata remembers what was sent:

- ``slack.dms.<pause key>.<user>``: claimed before the message is sent, so an event
  delivered again sends nothing; then the message's channel and ts;
- ``slack.dm_prompts``: pause key -> the direct prompts sent for it (channel and ts), the
  messages to update. The notifier handles one run's events in order, so this is read
  and written without a race.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from slack_sdk import WebClient

from signoff.bot.backends import Backend, Pause, Run
from signoff.bot.slack import ids, messages

logger = logging.getLogger(__name__)

__all__ = ["DirectPrompts"]


class DirectPrompts:
    """Sends a run's direct prompts and keeps them in step with its pauses.

    ``people`` expands the ids named (user groups to their members); ``update`` edits a
    posted message, leaving one that is gone from Slack alone (the notifier's).
    """

    def __init__(
        self,
        backend: Backend,
        client: WebClient,
        people: Callable[[Iterable[str]], list[str]],
        update: Callable[..., None],
    ) -> None:
        self.backend = backend
        self.client = client
        self.people = people
        self.update = update

    def send(self, run: Run, pause: Pause, users: Iterable[str], text: str) -> None:
        """Message each user directly with the prompt's buttons, once per (pause, user),
        except those its rules would refuse: the run's starter under ``forbid_starter``
        (named in a group of approvers), and whoever already answered it."""
        refused = {a.responder for a in pause.answers if a.responder}
        if pause.forbid_starter and run.started_by:
            refused.add(run.started_by)
        for user in self.people(users):
            if user in refused:
                continue
            claim = f"{ids.DMS}.{pause.key}.{user}"
            if not self.backend.add_record(run.id, claim, None):
                continue  # told already (this event was delivered before)
            reply = self.client.chat_postMessage(
                channel=user, text=text, blocks=messages.prompt_blocks(run, pause)
            )
            # The D... conversation id, not the user id: chat.update needs it.
            sent = {"channel": str(reply["channel"]), "ts": str(reply["ts"])}
            self.backend.set_record(run.id, claim, sent)
            index = self._index(run.id)
            index[pause.key] = [*index.get(pause.key, []), sent]
            self.backend.set_record(run.id, ids.DM_PROMPTS, index)

    def refresh(self, run: Run, pause: Pause) -> None:
        """Show a waiting pause as it is now (answers counted, approvers) in its direct
        prompts."""
        self._edit(
            run.id,
            pause.key,
            text=messages.prompt_text(run),
            blocks=messages.prompt_blocks(run, pause),
        )

    def close(self, run: Run, pause: Pause) -> None:
        """Take the buttons off the direct prompts of a pause that no longer waits, and say
        how it ended."""
        outcome = messages.pause_outcome(pause)
        self._edit(
            run.id,
            pause.key,
            text=outcome,
            blocks=messages.closed_prompt_blocks(run, pause, outcome),
        )

    def handed_on(self, run: Run, pause: Pause, by: str, to: str) -> None:
        """Take the buttons off the direct prompt of ``by``, who handed ``pause`` to ``to``:
        its buttons would only get them a refusal now."""
        sent = self.backend.get_record(run.id, f"{ids.DMS}.{pause.key}.{by}")
        if not isinstance(sent, dict) or "channel" not in sent or "ts" not in sent:
            return
        outcome = f":arrow_right: You handed this to {messages.who(to)}."
        self.update(
            channel=str(sent["channel"]),
            ts=str(sent["ts"]),
            text=outcome,
            blocks=messages.closed_prompt_blocks(run, pause, outcome),
        )

    def _edit(self, run_id: str, key: str, **message: Any) -> None:
        sent = self._index(run_id).get(key) or []
        for post in sent:
            self.update(channel=post["channel"], ts=post["ts"], **message)
        if sent:
            logger.info(
                "direct prompts updated",
                extra={"action": "direct_prompts_updated", "run_id": run_id, "key": key},
            )

    def _index(self, run_id: str) -> dict[str, list[dict[str, str]]]:
        found = self.backend.get_record(run_id, ids.DM_PROMPTS)
        if not isinstance(found, dict):
            return {}
        return {
            str(key): [dict(p) for p in posts if isinstance(p, dict)]
            for key, posts in found.items()
            if isinstance(posts, list)
        }
