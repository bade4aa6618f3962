"""Prompts sent to people directly: each approver of a ``notify="dm"`` pause, and whoever a
decision is handed or escalated to.

A direct prompt carries the same buttons as the prompt in the run's thread, so it is kept
in step with it: when a quorum counts an answer or the approvers change it shows the
pause as it is now, and once the pause no longer waits its buttons give way to the outcome,
as the thread's prompt does. (Left alone, it said "waiting for input" with live buttons for
a decision made long ago.)

Run metadata remembers what was sent:

- ``slack.dms.<pause key>.<user>``: claimed before the message is sent (when, and by
  which process), so an event delivered again sends nothing twice; then the message's
  channel and ts, or why Slack refused it for good (the person left, say). A claim
  without either is an attempt that failed (Slack down): the event delivered again makes
  it again, unless another process made it moments ago and may still be making it;
- ``slack.dm_prompts``: pause key -> the direct prompts sent for it (channel and ts), the
  messages to update. The notifier handles one run's events in order, so this is read
  and written without a race.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from signoff.bot.backends import Backend, Pause, Run
from signoff.bot.errors import PostInFlight
from signoff.bot.slack import ids, messages
from signoff.bot.slack.posting import CANNOT_POST, MESSAGE_REFUSED

logger = logging.getLogger(__name__)

__all__ = ["PERSON_UNREACHABLE", "DirectPrompts"]

#: what Slack answers when a person cannot be messaged (they left, or are a bot), which
#: trying again does not change
PERSON_UNREACHABLE = frozenset(
    {
        "user_not_found",
        "users_not_found",
        "user_not_visible",
        "user_disabled",
        "cannot_dm_bot",
        "messages_tab_disabled",
    }
)
#: how long past the client's timeout another process's claim counts as in flight
_IN_FLIGHT_MARGIN_SECONDS = 5.0


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
        #: marks the claims this process made, told apart from other processes'
        self.token = uuid.uuid4().hex[:12]

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
            if not self._claim(run.id, claim):
                continue  # told already, or refused for good
            try:
                reply = self.client.chat_postMessage(
                    channel=user, text=text, blocks=messages.prompt_blocks(run, pause)
                )
            except SlackApiError as exc:
                error = str(exc.response.get("error"))
                if error not in PERSON_UNREACHABLE | CANNOT_POST | MESSAGE_REFUSED:
                    raise  # Slack down, say: the claim stays ours, to make again
                # This person only: the others are still told.
                self.backend.set_record(run.id, claim, {"refused": error})
                logger.warning(
                    "Slack refused a direct prompt to %s (%s); the others are sent",
                    user,
                    error,
                    extra={
                        "action": "direct_prompt_refused",
                        "run_id": run.id,
                        "key": pause.key,
                        "user": user,
                    },
                )
                continue
            # The D... conversation id, not the user id: chat.update needs it.
            sent = {"channel": str(reply["channel"]), "ts": str(reply["ts"])}
            self.backend.set_record(run.id, claim, sent)
            index = self._index(run.id)
            index[pause.key] = [*index.get(pause.key, []), sent]
            self.backend.set_record(run.id, ids.DM_PROMPTS, index)

    def _claim(self, run_id: str, claim: str) -> bool:
        """Whether to send the direct prompt ``claim`` names now: nobody claimed it, or
        an attempt claimed it and failed (this process's, or another's long enough ago
        that its call cannot still be on its way).

        Raises:
            PostInFlight: another process claimed it moments ago.
        """
        if self.backend.add_record(run_id, claim, {"at": time.time(), "by": self.token}):
            return True
        earlier = self.backend.get_record(run_id, claim)
        if not isinstance(earlier, dict) or "ts" in earlier or "refused" in earlier:
            return False  # sent, refused for good, or claimed before claims said by whom
        if earlier.get("by") != self.token:
            try:
                age = time.time() - float(earlier.get("at") or 0)
            except (TypeError, ValueError):
                age = float("inf")
            if age < float(self.client.timeout) + _IN_FLIGHT_MARGIN_SECONDS:
                raise PostInFlight(run_id, claim)
            self.backend.set_record(run_id, claim, {"at": time.time(), "by": self.token})
        return True

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
        outcome = messages.pause_outcome(pause, run)
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
