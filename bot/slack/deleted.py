"""Prompts of a run the backend no longer has (deleted where it ran, as in Prefect's UI).

Nothing about a deleted run can be done, and its prompts would offer buttons for ever. The
backend tells of the deletion (``RUN_DELETED``), with the records of where the run's
messages are that it kept apart from the run; each then keeps what it said but loses its
buttons, and says the run was deleted (``close_deleted_run``). Direct messages cannot be
read back, so a direct prompt becomes that note alone.

A button pressed before that (or on a prompt whose records were not kept) tells whoever
pressed it that the run no longer exists (``GONE``), and the message pressed is closed
the same way (``close_pressed_prompt``): it is known from the press itself. Only a message
that holds the button pressed is closed: a press carrying some other value (forged, say,
to name a run that never existed) must not take the buttons off a prompt whose run still
waits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from signoff.bot.slack import ids

__all__ = ["GONE", "close_deleted_run", "close_pressed_prompt"]

logger = logging.getLogger(__name__)

#: what the person who pressed a button of a deleted run is told
GONE = "This run no longer exists: it was deleted, so there is nothing left to do here."


def close_pressed_prompt(client: WebClient, body: dict[str, Any], run_id: str) -> None:
    """Take the buttons off the message whose button was pressed (``body``: the
    ``block_actions`` payload) and say that run ``run_id`` was deleted. Messages only: a
    Home tab is published again from the runs that exist, and an ephemeral message cannot
    be updated."""
    container = body.get("container") or {}
    channel, ts = container.get("channel_id"), container.get("message_ts")
    if container.get("type") != "message" or container.get("is_ephemeral") or not channel or not ts:
        return
    message = body.get("message") or {}
    if not _holds_pressed(message, body.get("actions") or []):
        logger.info(
            "pressed message does not hold the button pressed; kept",
            extra={"action": "deleted_run_prompt_kept", "channel": channel},
        )
        return
    note = deleted_note(run_id)
    try:
        client.chat_update(channel=channel, ts=ts, text=note, blocks=closed_blocks(message, note))
    except SlackApiError as exc:
        # Someone deleted the message too, or the bot left the channel: nothing to close.
        logger.warning(
            "prompt of a deleted run not updated",
            extra={"action": "deleted_run_prompt_failed", "error": exc.response.get("error")},
        )
        return
    logger.info(
        "prompt of a deleted run closed",
        extra={"action": "deleted_run_prompt_closed", "run_id": run_id, "channel": channel},
    )


def deleted_note(run_id: str) -> str:
    return f":wastebasket: Run `{run_id[:8]}` was deleted; there is nothing left to answer."


def closed_blocks(message: dict[str, Any], note: str) -> list[Any]:
    """``message``'s blocks without its buttons, ending with ``note`` (once, however often
    it is closed)."""
    kept = [b for b in message.get("blocks") or [] if b.get("type") != "actions"]
    said = {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}
    return kept if kept and kept[-1] == said else [*kept, said]


def close_deleted_run(
    client: WebClient, update: Callable[..., None], run_id: str, records: dict[str, Any]
) -> None:
    """Close the messages of run ``run_id``, deleted where it ran: its first message and
    the prompts in its thread that still have buttons (read back from Slack), and its
    direct prompts. ``records``: the notifier's records about the run, as kept past its
    deletion; ``update``: the notifier's, which leaves a message gone from Slack alone."""
    note = deleted_note(run_id)
    thread = records.get(ids.THREAD)
    prompts = records.get(ids.PROMPTS)
    if isinstance(thread, dict) and thread.get("channel") and thread.get("ts"):
        channel, root = str(thread["channel"]), str(thread["ts"])
        asked = {str(ts) for ts in prompts.values()} if isinstance(prompts, dict) else set()
        try:
            found = client.conversations_replies(channel=channel, ts=root, limit=1000)
        except SlackApiError as exc:
            if exc.response.get("error") not in ("thread_not_found", "channel_not_found"):
                raise
            found = None  # someone deleted the thread too: nothing to close
        for message in (found.get("messages") if found is not None else None) or []:
            ts = str(message.get("ts"))
            open_prompt = ts in asked and any(
                b.get("type") == "actions" for b in message.get("blocks") or []
            )
            if ts == root or open_prompt:
                update(channel=channel, ts=ts, text=note, blocks=closed_blocks(message, note))
    direct = records.get(ids.DM_PROMPTS)
    for posts in direct.values() if isinstance(direct, dict) else []:
        for post in posts if isinstance(posts, list) else []:
            if isinstance(post, dict) and post.get("channel") and post.get("ts"):
                update(
                    channel=str(post["channel"]),
                    ts=str(post["ts"]),
                    text=note,
                    blocks=closed_blocks({}, note),
                )
    logger.info(
        "messages of a deleted run closed",
        extra={"action": "deleted_run_closed", "run_id": run_id},
    )


def _holds_pressed(message: dict[str, Any], actions: list[Any]) -> bool:
    """Whether ``message`` (as the payload gives it) has a button with the action id and
    value of one of ``actions``: as every press of a button Slack shows does."""
    pressed = {(a.get("action_id"), a.get("value")) for a in actions if isinstance(a, dict)}
    return any(
        isinstance(element, dict) and (element.get("action_id"), element.get("value")) in pressed
        for block in message.get("blocks") or []
        if isinstance(block, dict) and block.get("type") == "actions"
        for element in block.get("elements") or []
    )
