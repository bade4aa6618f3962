"""Requests that someone holding a leaked secret could forge, to check they are refused."""

from __future__ import annotations

from signoff.bot.sandbox import OpenView
from signoff.bot.testing import RunningBot


def reopen_pointed_at(
    bot: RunningBot, user_id: str, opened: OpenView, mine: str, other: str
) -> None:
    """Open the form ``opened`` again for ``user_id`` with its sealed metadata edited to
    name run ``other`` where it named run ``mine``."""
    sealed = opened.view["private_metadata"]
    edited = sealed.replace(mine, other)
    assert edited != sealed
    view = {k: opened.view[k] for k in ("type", "title", "submit", "blocks", "callback_id")}
    bot.slack.workspace.open_modal(user_id, {**view, "private_metadata": edited})
