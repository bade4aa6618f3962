"""Waiting for what the bot says in a run's Slack thread."""

from __future__ import annotations

from signoff.bot.sandbox import Message
from signoff.bot.testing import RunningBot, ServedBot


def reply_with(bot: RunningBot | ServedBot, ts: str, needle: str, timeout: float = 10) -> Message:
    """The first reply under the message ``ts`` in the bot's channel whose text has
    ``needle``, once there is one."""
    return bot.slack.wait_for(
        lambda ws: next((m for m in ws.channel(bot.channel).thread(ts) if needle in m.text), None),
        timeout=timeout,
    )
