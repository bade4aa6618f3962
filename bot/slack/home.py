"""The app's Home tab: what waits on the person, what they started, what they decided.

Published with ``views.publish`` when the person opens the tab (``app_home_opened``) and
whenever the notifier sees an event that concerns them. Every list is one bounded query
(waiting pauses are read a page at a time, the rest are index-served "newest N" queries),
so the cost does not grow with the number of runs stored.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
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

from signoff.bot.backends import Actor, Backend, Via
from signoff.bot.errors import BackendError
from signoff.bot.forms.mrkdwn import clip_mrkdwn
from signoff.bot.slack import ids, messages

logger = logging.getLogger(__name__)

#: each list's length: three lists stay well under the Home tab's 100 blocks
SHOWN = 10


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
    logger.info("home published", extra={"action": "home_published"})


def register(app: App, backend: Backend) -> None:
    """Publish the Home tab whenever someone opens it."""

    @app.event("app_home_opened")
    def opened(event: dict[str, Any], client: WebClient) -> None:
        # The edge refused a malformed user id; an event without one names nobody.
        if event.get("tab", "home") == "home" and event.get("user"):
            publish(client, backend, str(event["user"]))


__all__ = ["home_view", "publish", "register"]
