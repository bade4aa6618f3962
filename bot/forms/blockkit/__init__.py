"""Block Kit limit checks, reported the way Slack reports them.

``slack_sdk.models`` catches most length and id limits when a view is built, but not all of
them (a missing modal title, radio buttons with eleven options, an ``initial_option`` that
matches no option, ``"2024-02-30"`` as a date, ...), and it checks nothing when a view is a
plain dict. These functions apply every limit we know Slack enforces and return one string per
problem in Slack's own ``invalid_arguments`` format, so the sandbox can answer exactly like the
real Web API and tests can assert on the messages::

    >>> check_view({"type": "modal", "blocks": [{"type": "divider"}]})
    ['[ERROR] missing required field: title [json-pointer:/view]']
    >>> check_message([{"type": "header", "text": {"type": "mrkdwn", "text": "Hi"}}], "Hi")
    ['[ERROR] must be plain_text, not mrkdwn [json-pointer:/blocks/0/text/type]']

Pointers are relative to the request argument: ``/view/...`` for views, ``/blocks/...`` and
``/text`` for messages. An empty list means Slack would accept the payload (as far as we know).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from signoff.bot.forms.blockkit.rules import (
    DATETIME_SECONDS,
    INPUT_ELEMENT_TYPES,
    MESSAGE_BLOCK_LIMIT,
    STATEFUL_ELEMENT_TYPES,
    VIEW_SIZE_LIMIT,
    format_problem,
    view_size,
)
from signoff.bot.forms.blockkit.walker import Checker

__all__ = [
    "DATETIME_SECONDS",
    "INPUT_ELEMENT_TYPES",
    "STATEFUL_ELEMENT_TYPES",
    "VIEW_SIZE_LIMIT",
    "check_message",
    "check_view",
    "format_problem",
    "view_size",
]


def check_view(view: Mapping[str, Any]) -> list[str]:
    """Check a modal or Home tab view against Slack's limits.

    Args:
        view: The view as sent to ``views.open``/``update``/``push``/``publish``
            (a dict, e.g. ``View(...).to_dict()``).

    Returns:
        One ``[ERROR] ... [json-pointer:/view/...]`` string per problem; empty if valid.
        A view larger than ``VIEW_SIZE_LIMIT`` (``view_size``) gets one at ``/view``; Slack
        answers that one with ``view_too_large`` rather than ``invalid_arguments``.
    """
    if not isinstance(view, Mapping):
        return [format_problem("must be an object", "/view")]
    kind = view.get("type")
    if kind is None:
        return [format_problem("missing required field: type", "/view")]
    if kind not in ("modal", "home"):
        return [format_problem("must be a valid enum value (modal or home)", "/view/type")]
    checker = Checker("modal" if kind == "modal" else "home")
    checker.view(view)
    return checker.problems


def check_message(blocks: Sequence[Mapping[str, Any]] | None, text: str | None) -> list[str]:
    """Check the ``blocks`` and ``text`` of a ``chat.postMessage``/``chat.update`` call.

    Args:
        blocks: The message blocks, or None when the message has none.
        text: The message text (the notification fallback when blocks are given).

    Returns:
        One ``[ERROR] ... [json-pointer:/blocks/...]`` string per problem; empty if valid.
    """
    checker = Checker("message")
    if text is not None:
        if not isinstance(text, str):
            checker.error("/text", "must provide a string")
        elif len(text) > 40000:
            checker.error("/text", "must be less than 40001 characters")
    if blocks is not None:
        checker.blocks(blocks, "/blocks", MESSAGE_BLOCK_LIMIT, allow_empty=True)
    return checker.problems
