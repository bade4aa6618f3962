"""Block Kit as HTML, from the same JSON the app sent: the templates in ``templates/``.

A :class:`Surface` says where the blocks are (a message, an ephemeral message, a view), what
the user entered so far, which errors show under which inputs, and how mentions read. Every
block and element type Signoff's forms use is drawn; any other type is drawn as
"Unknown block type ..." so nothing disappears silently::

    surface = Surface(kind="view", names={"U0BOB": "bob"}, view_id="V1")
    html = render_blocks(view["blocks"], surface)
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from signoff.bot.sandbox.forms import StateValues, initial_state
from signoff.bot.sandbox.records import JsonDict
from signoff.bot.sandbox.web.mrkdwn import plain_html, to_html

__all__ = ["Surface", "environment", "render_blocks"]


@functools.cache
def environment() -> Environment:
    """The page's Jinja environment: package templates, HTML autoescaping, mrkdwn filters."""
    env = Environment(
        loader=PackageLoader("signoff.bot.sandbox.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["mrkdwn"] = to_html
    env.filters["plain"] = plain_html
    return env


@dataclass
class Surface:
    """Where blocks are shown, and what goes with them.

    Attributes:
        kind: ``message``, ``ephemeral`` or ``view``.
        names: Ids to handles and channel names, for mentions.
        channel: The message's conversation (messages only).
        ts: The message's ts (messages only).
        view_id: The view's id (views only).
        state: What the user has entered into the view so far.
        errors: Input block_id -> the error shown under it.
        users: (id, handle) choices for user pickers.
        channels: (id, name) choices for conversation pickers.
        tz: The user's time zone, for datetime pickers.
    """

    kind: Literal["message", "ephemeral", "view"]
    names: Mapping[str, str]
    channel: str = ""
    ts: str = ""
    view_id: str = ""
    state: StateValues = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    users: Sequence[tuple[str, str]] = ()
    channels: Sequence[tuple[str, str]] = ()
    tz: str = "UTC"

    def value_of(self, block_id: str, element: Mapping[str, Any]) -> JsonDict:
        """The element's value as entered, else its initial value."""
        entered = self.state.get(block_id, {}).get(str(element.get("action_id")))
        if entered is not None:
            return entered
        try:
            return initial_state(element)
        except KeyError:  # not a stateful element (buttons, unknown kinds)
            return {}

    def control_id(self, block_id: str) -> str:
        """A document-wide unique id for the input of block ``block_id``, for its label to
        point at (block ids are any text and repeat across views; element ids may not)."""
        digest = hashlib.sha1(block_id.encode(), usedforsecurity=False).hexdigest()[:12]
        return f"in-{self.view_id or self.ts}-{digest}"

    @staticmethod
    def chosen(value: Mapping[str, Any]) -> set[str]:
        """Option values / ids selected in a state value, whatever the element type."""
        found: set[str] = set()
        for key, item in value.items():
            if key == "type" or item is None:
                continue
            for one in item if isinstance(item, list) else [item]:
                found.add(str(one.get("value")) if isinstance(one, Mapping) else str(one))
        return found

    def local_datetime(self, epoch: object) -> str:
        """A datetimepicker's epoch seconds as ``YYYY-MM-DDTHH:MM`` in the user's zone."""
        if not isinstance(epoch, int | float) or isinstance(epoch, bool):
            return ""
        moment = dt.datetime.fromtimestamp(epoch, ZoneInfo(self.tz))
        return moment.replace(tzinfo=None).isoformat(timespec="minutes")

    def rich_text(self, block: Mapping[str, Any]) -> Markup:
        """A ``rich_text`` block's sections, lists, quotes and preformatted parts."""
        parts: list[str] = []
        for part in block.get("elements") or []:
            kind = part.get("type")
            inner = "".join(self._rich_piece(p) for p in part.get("elements") or [])
            if kind == "rich_text_list":
                items = "".join(
                    f"<li>{''.join(self._rich_piece(p) for p in item.get('elements') or [])}</li>"
                    for item in part.get("elements") or []
                )
                tag = "ol" if part.get("style") == "ordered" else "ul"
                parts.append(f"<{tag}>{items}</{tag}>")
            elif kind == "rich_text_quote":
                parts.append(f"<blockquote>{inner}</blockquote>")
            elif kind == "rich_text_preformatted":
                parts.append(f"<pre>{inner}</pre>")
            else:
                parts.append(f"<div>{inner}</div>")
        return Markup("".join(parts))

    def _rich_piece(self, piece: Mapping[str, Any]) -> str:
        kind = piece.get("type")
        if kind == "text":
            html = str(plain_html(str(piece.get("text", ""))))
            style = piece.get("style") or {}
            for key, tag in (("bold", "b"), ("italic", "i"), ("strike", "s"), ("code", "code")):
                if style.get(key):
                    html = f"<{tag}>{html}</{tag}>"
            return html
        if kind == "link":
            return str(to_html(f"<{piece.get('url', '')}|{piece.get('text') or ''}>"))
        if kind == "user":
            return str(to_html(f"<@{piece.get('user_id', '')}>", self.names))
        if kind == "channel":
            return str(to_html(f"<#{piece.get('channel_id', '')}>", self.names))
        if kind == "emoji":
            return f":{escape(piece.get('name', ''))}:"
        if kind in ("rich_text_section",):
            return "".join(self._rich_piece(p) for p in piece.get("elements") or [])
        return str(
            Markup('<span class="sk-unknown">Unknown rich text <code>{}</code></span>').format(kind)
        )


def render_blocks(blocks: Sequence[Mapping[str, Any]], surface: Surface) -> Markup:
    """The blocks as HTML, each drawn as Slack lays it out.

    Args:
        blocks: Block Kit blocks, as the app sent them.
        surface: Where they are shown (see :class:`Surface`).
    """
    module = environment().get_template("blocks.html").make_module({"s": surface})
    html: Markup = module.blocks(list(blocks))  # type: ignore[attr-defined]
    return html
