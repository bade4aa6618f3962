"""The app's Home tab: what waits on the person, what they started, what they decided.

Published with ``views.publish`` when the person opens the tab (``app_home_opened``) and
whenever the notifier sees an event that concerns them (``HomeTabs``). A run deleted where
it ran (Prefect's UI) is gone from every list, but a tab shows what it was published with:
on a backend that deletes runs, those it was published for because of the run are kept
with the run's records (``ids.HOMES``), and get theirs again when its deletion is
delivered. Every list is one bounded query
(waiting pauses are read a page at a time, the rest are index-served "newest N" queries),
so the cost does not grow with the number of runs stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from signoff.bot.backends import Actor, Backend, Event, EventKind, Via
from signoff.bot.errors import BackendError
from signoff.bot.forms.mrkdwn import clip_mrkdwn
from signoff.bot.slack import ids, messages

logger = logging.getLogger(__name__)

#: each list's length: three lists stay well under the Home tab's 100 blocks
SHOWN = 10
#: events after which the Home tabs of the people concerned are published again
HOME_EVENTS = frozenset(
    {
        EventKind.WAITING_FOR_INPUT,
        EventKind.INPUT_RECEIVED,
        EventKind.ANSWER_COUNTED,
        EventKind.PAUSE_ESCALATED,
        EventKind.PAUSE_REASSIGNED,
        EventKind.PAUSE_TIMED_OUT,
        EventKind.PAUSE_CANCELLED,
        EventKind.STATE_CHANGED,
    }
)
#: at most this many people a run's Home tabs are kept for
MAX_HOMES = 50


def home_view(backend: Backend, user_id: str) -> View:
    """The Home tab for ``user_id``, from the backend's current state."""
    actor = Actor(user_id, via=Via.SLACK)
    blocks: list[Block] = [HeaderBlock(text="Waiting on you")]
    # One more than shown: whether more wait than the tab lists is known from the same scan.
    waiting = backend.waiting_on(actor, limit=SHOWN + 1)
    for run, pause in waiting[:SHOWN]:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"{messages.run_label(run)} asks for input `{pause.key}` "
                    f"(deadline: {messages.when(pause.deadline)})"
                )
            )
        )
        blocks.append(
            ActionsBlock(
                block_id=f"home:{run.id}:{pause.key}"[:255],
                elements=messages.prompt_buttons(run, pause),
            )
        )
    if not waiting:
        blocks.append(_quiet("Nothing waits on you."))
    elif len(waiting) > SHOWN:
        blocks.append(
            _quiet(
                f"The {SHOWN} newest of more than {SHOWN} runs waiting on you. Answer these "
                f"to see the next, or list every run waiting for input with `{ids.RUNS_COMMAND}`."
            )
        )
    blocks += [DividerBlock(), HeaderBlock(text="Started by you")]
    started = backend.started_by(user_id, limit=SHOWN)
    blocks += [SectionBlock(text=MarkdownTextObject(text=messages.status_line(r))) for r in started]
    if not started:
        blocks.append(_quiet("You have not started any runs."))
    blocks += [DividerBlock(), HeaderBlock(text="Your recent decisions")]
    decided = backend.decisions_by(user_id, limit=SHOWN)
    if decided:
        lines = "\n".join(messages.audit_line(r) for r in decided)
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip_mrkdwn(lines, 3000))))
    else:
        blocks.append(_quiet("No decisions yet."))
    return View(type="home", blocks=blocks)


def _quiet(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text)])


def publish(client: WebClient, backend: Backend, user_id: str) -> None:
    """Publish ``user_id``'s Home tab as it is now (or, when the runs cannot be read, a
    tab that says so, rather than the one they had)."""
    try:
        view = home_view(backend, user_id)
    except BackendError as exc:
        logger.warning(
            "cannot read runs for the Home tab",
            extra={"action": "home_failed", "error": str(exc)[:300]},
        )
        text = f"Signoff cannot read runs just now: {exc}. Open this tab again in a moment."
        view = View(type="home", blocks=[SectionBlock(text=MarkdownTextObject(text=text[:3000]))])
    client.views_publish(user_id=user_id, view=view)
    logger.debug("home published", extra={"action": "home_published"})


class HomeTabs:
    """Publishes the Home tabs a run's events concern, and remembers them per run.

    ``people``: principals (users, user groups) -> the user ids they name.
    """

    def __init__(
        self,
        backend: Backend,
        client: WebClient,
        people: Callable[[Iterable[str]], list[str]],
    ) -> None:
        self.backend = backend
        self.client = client
        self.people = people

    def refresh(self, event: Event) -> None:
        """Publish the Home tab of everyone ``event`` concerns (approvers, starter, actor);
        for a deleted run, of everyone it was published for, since it is listed there."""
        if event.kind is EventKind.RUN_DELETED:
            records = event.data.get("records")
            kept = records.get(ids.HOMES) if isinstance(records, dict) else None
            self._publish([str(u) for u in kept] if isinstance(kept, list) else [])
            return
        if event.kind not in HOME_EVENTS:
            return
        try:
            run = self.backend.get_run(event.run_id)
        except BackendError:
            return
        key = event.data.get("key")
        pause = self.backend.get_pause(run.id, str(key)) if key else None
        named = [*(pause.approvers if pause else run.approvers)]
        named += [str(v) for v in (run.started_by, event.data.get("responder")) if v]
        named += [str(event.data[k]) for k in ("by", "to") if event.data.get(k)]
        users = self.people(named)
        if self.backend.deletes_runs:
            self._remember(run.id, users)
        self._publish(users)

    def _remember(self, run_id: str, users: list[str]) -> None:
        """Add ``users`` to the people whose Home tab lists the run (written when it grows)."""
        try:
            known = self.backend.get_record(run_id, ids.HOMES)
            listed = [str(u) for u in known] if isinstance(known, list) else []
            if not set(users) <= set(listed):
                added = listed + [u for u in users if u not in listed]
                self.backend.set_record(run_id, ids.HOMES, added[:MAX_HOMES])
        except BackendError as exc:
            # Only a deletion's refresh needs it: the tabs are still published now.
            logger.warning(
                "home tabs of a run not recorded",
                extra={"action": "homes_not_recorded", "run_id": run_id, "error": str(exc)[:300]},
            )

    def _publish(self, users: list[str]) -> None:
        for user in users:
            try:
                publish(self.client, self.backend, user)
            except SlackApiError as exc:
                # A Home tab is a convenience: a person Slack will not publish for (gone,
                # not in this workspace) must not hold up the events behind this one.
                logger.warning(
                    "home not published",
                    extra={"action": "home_publish_failed", "error": exc.response.get("error")},
                )


def register(app: App, backend: Backend) -> None:
    """Publish the Home tab whenever someone opens it."""

    @app.event("app_home_opened")
    def opened(event: dict[str, Any], client: WebClient) -> None:
        # The edge refused a malformed user id; an event without one names nobody.
        if event.get("tab", "home") == "home" and event.get("user"):
            publish(client, backend, str(event["user"]))


__all__ = ["HOME_EVENTS", "HomeTabs", "home_view", "publish", "register"]
