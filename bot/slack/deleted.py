"""Buttons of a run the backend no longer has (deleted where it ran, as in Prefect's UI).

Nothing about a deleted run can be done, and its prompt would offer buttons for ever:
whoever presses one is told the run no longer exists (``GONE``), and the message they
pressed keeps what it said but loses its buttons (``close_pressed_prompt``). The message is
known from the press itself, so this needs nothing the deletion took with it (the run's
records of what was posted where). Only a message that holds the button pressed is
closed: a press carrying some other value (forged, say, to name a run that never existed)
must not take the buttons off a prompt whose run still waits.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

__all__ = ["GONE", "close_pressed_prompt"]

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
    note = f":wastebasket: Run `{run_id[:8]}` was deleted; there is nothing left to answer."
    kept = [b for b in message.get("blocks") or [] if b.get("type") != "actions"]
    blocks = [*kept, {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}]
    try:
        client.chat_update(channel=channel, ts=ts, text=note, blocks=blocks)
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
